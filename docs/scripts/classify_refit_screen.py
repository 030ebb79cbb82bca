"""Screen for docs/applications.md: after validation has chosen the epochs, does training the same
model anew on training + validation sentences (12.5% more data) lift `grukit classify` on held-out
sentences?

The same inner splits as `classify_epoch_criterion.py` (seed s permutes the default split's 9,596
non-test sentences with seed [2000, s] into inner test 960, validation 960 and training 7,676; the
1,066 test sentences are never read). Per split:

1. the command as it is: vocabulary, ratio tables and the ensemble from the training part, early
   stopping on validation cross-entropy (patience 4), the snapshot average of epochs b-1..b+1;
2. the refit: vocabulary, ratio tables (out of fold) and a new ensemble from training + validation,
   the same seed, schedule (15 epochs of cosine decay) and batches, stopped after the last epoch of
   step 1's window; the snapshot average of the same epochs.

Both are scored on the inner test part. Rule fixed before running: adopt the refit if its mean paired
gain over the 12 splits is at least one standard error.

    OMP_NUM_THREADS=1 .venv/bin/python docs/scripts/classify_refit_screen.py 1 2 3
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from grukit.tasks import classify
from grukit.tasks.classify_model import snapshot_average

sys.path.insert(0, str(Path(__file__).parent))
from classify_epoch_criterion import build_model, inner_indices, replay  # noqa: E402


class _Done(Exception):
    """Raised by the refit's evaluate after the last epoch it needs."""


def run_seed(seed: int) -> dict:
    args, out, loaded, i_train, i_val, i_inner = inner_indices(seed)
    t0 = time.perf_counter()

    # 1. the command
    model, train, val, inner = build_model(args, loaded, i_train, i_val, i_inner)
    result = replay(args, model, train, val, out)
    window = [e for e, _ in result.snapshots] or [result.best_epoch]
    command = classify.evaluate(snapshot_average(model, result.snapshots).eval(), inner)["val_accuracy"]

    # 2. the refit on training + validation, stopped after the window's last epoch
    i_fit = np.concatenate([i_train, i_val])
    refit, part, _, inner2 = build_model(args, loaded, i_fit, i_val[:0], i_inner)
    kept = []

    def evaluate(m, v):
        epoch = len(kept) + 1
        kept.append((epoch, {k: t.detach().clone() for k, t in m.state_dict().items()}))
        if epoch >= window[-1]:
            raise _Done
        return {"val_loss": 0.0}

    try:
        replay(args, refit, part, None, None, evaluate=evaluate, patience=None, snapshots=0)
    except _Done:
        pass
    snaps = [(e, s) for e, s in kept if e in window]
    refit_acc = classify.evaluate(snapshot_average(refit, snaps).eval(), inner2)["val_accuracy"]
    return {"seed": seed, "window": window, "command": round(command * 100, 2), "refit": round(refit_acc * 100, 2),
            "seconds": round(time.perf_counter() - t0, 1)}


if __name__ == "__main__":
    for s in [int(a) for a in sys.argv[1:]] or [1]:
        print(json.dumps(run_seed(s)), flush=True)
