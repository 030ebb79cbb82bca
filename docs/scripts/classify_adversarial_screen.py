"""Screen for docs/applications.md: does adversarial training on the word embeddings (Miyato et al.
2017) lift `grukit classify` on held-out sentences?

Each training step adds, to every member's loss on the batch, its loss with the embeddings moved
a little in the direction that raises that loss most (`classify.adversarial_loss`, `--adversarial`).

The same inner splits as `classify_epoch_criterion.py` (the default split's 1,066 test sentences
are never read). The command is replayed as it is (early stopping on validation cross-entropy,
patience 4, the snapshot average of epochs b-1..b+1) with the adversarial loss; it prints the
inner-test accuracy and validation cross-entropy. `--eps 0` is the command itself, whose inner
test accuracy the snapshot screen recorded for every split.

    OMP_NUM_THREADS=1 .venv/bin/python docs/scripts/classify_adversarial_screen.py --eps 0.1 1 2 3
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from grukit.tasks import classify
from grukit.tasks.classify_model import snapshot_average

sys.path.insert(0, str(Path(__file__).parent))
from classify_epoch_criterion import inner_split, replay, scores  # noqa: E402


def run_seed(seed: int, eps: float) -> dict:
    args, model, train, val, inner, out = inner_split(seed)
    t0 = time.perf_counter()
    result = replay(args, model, train, val, out, step_loss=classify.adversarial_loss(eps))
    return {"seed": seed, "eps": eps, "best_epoch": result.best_epoch,
            "window": [e for e, _ in result.snapshots], "epochs_run": len(result.history),
            "val_loss_best_epoch": round(result.best["val_loss"], 4),
            **scores(snapshot_average(model, result.snapshots), val, inner),
            "seconds": round(time.perf_counter() - t0, 1)}


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--eps", type=float, required=True)
    p.add_argument("seeds", type=int, nargs="*", default=[1])
    a = p.parse_args()
    for s in a.seeds:
        print(json.dumps(run_seed(s, a.eps)), flush=True)
