"""Screen for docs/applications.md: does `grukit classify` with other settings (command-line flags) beat
the command's defaults on held-out sentences?

The same inner splits as `classify_epoch_criterion.py` (the default split's 1,066 test sentences are never
read). The command is replayed as it is (early stopping on validation cross-entropy, patience 4, the
snapshot average of epochs b-1..b+1) with the flags given; it prints the inner-test accuracy. With no
flags it is the command itself (since the thirteenth session with pretrained word vectors); with
`--flags="--vectors none"` it is the command that the snapshot screen recorded for every split.

    OMP_NUM_THREADS=1 .venv/bin/python docs/scripts/classify_flag_screen.py --flags="--members 10" 1 2 3
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

from grukit.tasks import classify
from grukit.tasks.classify_model import snapshot_average

sys.path.insert(0, str(Path(__file__).parent))
from classify_epoch_criterion import inner_split, replay, scores  # noqa: E402


def run_seed(seed: int, flags: tuple[str, ...]) -> dict:
    args, model, train, val, inner, out = inner_split(seed, flags)
    t0 = time.perf_counter()
    result = replay(args, model, train, val, out, step_loss=classify.adversarial_loss(args.adversarial))
    return {"seed": seed, "flags": " ".join(flags), "best_epoch": result.best_epoch,
            "window": [e for e, _ in result.snapshots], **scores(snapshot_average(model, result.snapshots), val, inner),
            "seconds": round(time.perf_counter() - t0, 1)}


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--flags", default="", help="classify's command-line flags, quoted as one argument")
    p.add_argument("seeds", type=int, nargs="*", default=[1])
    a = p.parse_args()
    for s in a.seeds:
        print(json.dumps(run_seed(s, tuple(shlex.split(a.flags)))), flush=True)
