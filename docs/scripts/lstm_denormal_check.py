"""Diagnostic for docs/experiments.md: why torch's LSTM slows down during `grukit compare --task adding`.

Its seconds per epoch rise from about 3 to 12 over the run while the other networks' stay flat. The
check: one training step (forward and backward of the squared error, batch of 32, T = 200, one thread)
of the run's saved LSTM, timed with the CPU's denormal floats kept and flushed to zero
(`torch.set_flush_denormal`). A step that is many times faster with them flushed spends its time on
denormal arithmetic, which x86 cores run in slow microcode.

    grukit compare --task adding --out runs/adding
    .venv/bin/python docs/scripts/lstm_denormal_check.py runs/adding/lstm-seed0
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import torch

import grukit
from grukit.tasks.synthetic import make_data

REPEATS = 7


def step_ms(path: Path, flush: bool) -> float:
    """Median milliseconds of one training step of the model in `path` (no optimizer step: the same weights)."""
    torch.set_flush_denormal(flush)
    try:
        model = grukit.load(path).train()
        x, y = make_data("adding", 32, 200, seed=123)  # (32, 200, 2), (32,)
        times = []
        for _ in range(REPEATS):
            start = time.perf_counter()
            ((model(x) - y) ** 2).mean().backward()
            times.append(time.perf_counter() - start)
        return 1000 * statistics.median(times)
    finally:
        torch.set_flush_denormal(False)


def main() -> None:
    folder = Path(sys.argv[1])
    torch.set_num_threads(1)  # as compare trains
    for name in ("last.safetensors", "model.safetensors"):  # the last epoch's weights, the kept epoch's
        kept, flushed = step_ms(folder / name, False), step_ms(folder / name, True)
        print(f"{name}: {kept:.1f} ms a step with denormals, {flushed:.1f} ms flushed to zero "
              f"({kept / flushed:.1f}×)")


if __name__ == "__main__":
    main()
