"""Benchmark the GRU layer on CPU: grukit backends vs torch.nn.GRU vs JAX (`make bench`).

Writes benchmarks/results/cpu.json and cpu.md (the table the README shows) and prints
the table. The machinery lives in `grukit.bench` (also `grukit bench --out DIR`).

    python benchmarks/bench_layer.py [--rows N1,N16,N32,N64,stream,before] [--repeats 5]
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from grukit import bench, run_lock


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    bench.add_arguments(parser)
    args = parser.parse_args(argv)
    if args.out is None:
        args.out = Path(__file__).resolve().parent / "results"
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        lock = run_lock.acquire(Path(args.out))  # as `grukit bench` does: one run at a time writes into --out
    except run_lock.Busy as err:
        print(f"bench_layer.py: error: {err}", file=sys.stderr)
        return 2
    try:
        result = bench.run(args)
    finally:
        run_lock.release(lock)
    print(result["summary"])
    for name, path in result["files"].items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
