"""Screen for docs/applications.md: does averaging the ensemble's probabilities over the epochs
around the kept one (a snapshot average) beat the kept epoch alone?

The same inner splits as `classify_epoch_criterion.py` (seed s permutes the default split's
9,596 non-test sentences with seed [2000, s] into inner test 960, validation 960, training
7,676; the 1,066 test sentences are never read). The command's model trains all 15 epochs;
after each one the script keeps the ensemble's class probabilities on validation and inner
test. Then, with b the epoch early stopping keeps on validation cross-entropy (patience 4, as
the command), it scores on inner test: the epoch b alone (the command now) and the mean
probability of epochs b-1, b, b+1 (within the epochs the command would have run). Rule fixed
before running: adopt the average if its mean paired gain over the 12 splits is at least one
standard error.

    OMP_NUM_THREADS=1 .venv/bin/python docs/scripts/classify_snapshot_screen.py 1 2 3 4 5 6
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

from grukit.tasks import classify

sys.path.insert(0, str(Path(__file__).parent))
from classify_epoch_criterion import inner_split, kept_epoch, train_all_epochs  # noqa: E402


def probabilities(model, data) -> np.ndarray:
    """(N, C) the ensemble's class probabilities on `data` [(ids, label)]."""
    ids, lengths, _ = classify.collate(data)
    with torch.no_grad():
        return model.eval()(ids, lengths).exp().numpy()  # the ensemble returns log-probabilities


def run_seed(seed: int) -> dict:
    """Epoch b alone against the mean of epochs b-1..b+1, scored on inner test, for inner split `seed`."""
    args, model, train, val, inner, out = inner_split(seed)
    inner_probs = []

    def evaluate(m, v):
        inner_probs.append(probabilities(m, inner))
        return classify.evaluate(m, v)

    history = train_all_epochs(args, model, train, val, evaluate, out)
    y = np.array([label for _, label in inner])
    b = kept_epoch([row["val_loss"] for row in history], lambda a, c: a < c)
    ran = min(len(inner_probs), b + classify.PATIENCE + 1)  # the epochs the command would have run
    window = range(max(0, b - 1), min(ran, b + 2))
    single = float((inner_probs[b].argmax(1) == y).mean())
    averaged = float((np.mean([inner_probs[e] for e in window], axis=0).argmax(1) == y).mean())
    return {"seed": seed, "kept_epoch": b + 1, "window": [e + 1 for e in window], "single": single,
            "averaged": averaged}


if __name__ == "__main__":
    for s in [int(a) for a in sys.argv[1:]] or [1]:
        print(json.dumps(run_seed(s)), flush=True)
