"""Benchmark the GRU layer on CPU: grukit backends vs torch.nn.GRU vs JAX (`make bench`).

Writes benchmarks/results/cpu.json and cpu.md (the table the README shows) and prints
the table. It is `grukit bench --out benchmarks/results` (the machinery lives in `grukit.bench`),
so it takes the same checks: one run at a time in --out, one line and exit code 2 on bad input.

    python benchmarks/bench_layer.py [--rows N1,N16,N32,N64,stream,before] [--repeats 5] [--out DIR]
"""
from __future__ import annotations

import sys
from pathlib import Path

from grukit import cli

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not any(arg == "--out" or arg.startswith("--out=") for arg in argv):
        argv += ["--out", str(RESULTS)]
    return cli.main(["bench", *argv])


if __name__ == "__main__":
    sys.exit(main())
