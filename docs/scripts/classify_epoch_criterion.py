"""Screen for docs/applications.md: which validation number should pick `grukit classify`'s epoch?

Inside the default split's 9,596 non-test sentences only (its 1,066 test sentences are never
read), seed s permutes them with seed [2000, s] into an inner test part (960), a validation
part (960) and a training part (7,676). The command's model trains for all 15 epochs of its
schedule; after every epoch the script records the validation cross-entropy and accuracy and
the inner-test accuracy. It then replays early stopping (patience 4, as the command) on
each validation number and prints the inner-test accuracy of the epoch each would keep.

    OMP_NUM_THREADS=1 .venv/bin/python docs/scripts/classify_epoch_criterion.py 1 2 3 4 5 6 7 8 9 10 11 12
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from grukit.cli import build_parser
from grukit.tasks import classify
from grukit.tasks.common import check_common
from grukit.train import FitResult, fit


def kept_epoch(values: list[float], better, patience: int = classify.PATIENCE) -> int:
    """The 0-based epoch early stopping keeps when it watches `values`."""
    best = 0
    for i in range(1, len(values)):
        if better(values[i], values[best]):
            best = i
        elif i - best >= patience:
            break
    return best


# The screens before the thirteenth session ran the command without pretrained word vectors; they still do,
# so that they reproduce their recorded numbers. `classify_flag_screen.py` runs the command as it is.
BEFORE_VECTORS = ("--vectors", "none")


def inner_indices(seed: int, flags: tuple[str, ...] = BEFORE_VECTORS):
    """(args, out, loaded, i_train, i_val, i_inner): the command's arguments (with the command-line `flags`, if
    any), its tokens and labels (`classify.load_tokens`), and the default split's non-test sentences permuted
    with seed [2000, seed] into inner test (960), validation (960) and training."""
    out = tempfile.mkdtemp()
    args = build_parser().parse_args(["classify", "--out", out, "--threads", "1", *flags])
    check_common(args)
    loaded = classify.load_tokens(args)
    i_train, i_val, _ = classify.split(len(loaded["tokens"]), args.seed)
    rest = np.random.default_rng([2000, seed]).permutation(np.concatenate([i_val, i_train]))
    return args, out, loaded, rest[1920:], rest[960:1920], rest[:960]


def build_model(args, loaded, i_fit, i_val, i_test):
    """(untrained ensemble, its training items [(ids, label, out-of-fold ρ)], validation items, test items): the
    command's vocabulary, ratio tables, word vectors and ensemble from the sentences i_fit
    (`classify.prepare_split`, `classify.build`)."""
    d = classify.prepare_split(args, loaded, (i_fit, i_val, i_test))
    model, train, _ = classify.build(args, d)
    return model, train, d["gru"][1], d["gru"][2]


def inner_split(seed: int, flags: tuple[str, ...] = BEFORE_VECTORS):
    """(args, model, train, val, inner, out) for inner split `seed` (`inner_indices`): the command's untrained
    ensemble (with `flags`) built from that training part."""
    args, out, loaded, i_train, i_val, i_inner = inner_indices(seed, flags)
    return args, *build_model(args, loaded, i_train, i_val, i_inner), out


def replay(args, model, train, val, out, *, step_loss=classify.ensemble_loss, evaluate=classify.evaluate,
           **overrides) -> FitResult:
    """The command's training of `model` (`classify.command_config`, with `overrides`) on `train`, early
    stopping on `val`; writes into the folder `out` (None: nothing)."""
    return fit(model, classify.Buckets(train, args.batch_size, args.seed), val, step_loss=step_loss,
               evaluate=evaluate, config=classify.command_config(args, **overrides),
               out=None if out is None else Path(out), collate=classify.collate_batch)


def scores(model, val, inner) -> dict:
    """{"val": validation cross-entropy and accuracy, "inner_accuracy"} of a trained (averaged) model."""
    model.eval()
    return {"val": classify.evaluate(model, val), "inner_accuracy": classify.evaluate(model, inner)["val_accuracy"]}


def train_all_epochs(args, model, train, val, evaluate, out) -> list[dict]:
    """The command's training of `model` through all its epochs (no early stop); fit's history."""
    return replay(args, model, train, val, out, evaluate=evaluate, patience=classify.EPOCHS, snapshots=0).history


def run_seed(seed: int) -> list[dict]:
    """Per-epoch validation loss/accuracy and inner-test accuracy of the default model on inner split `seed`."""
    args, model, train, val, inner, out = inner_split(seed)

    def evaluate(m, v):
        scores = classify.evaluate(m, v)
        return {**scores, "inner_accuracy": classify.evaluate(m, inner)["val_accuracy"]}

    return train_all_epochs(args, model, train, val, evaluate, out)


def run_with_file(run_seed, option: str, help: str) -> None:
    """The command line of a screen that reads one file: `option PATH` and the inner splits' seeds; prints
    run_seed(seed, PATH)'s JSON line per seed."""
    p = argparse.ArgumentParser()
    p.add_argument(option, type=Path, required=True, help=help)
    p.add_argument("seeds", type=int, nargs="*", default=[1])
    a = p.parse_args()
    for seed in a.seeds:
        print(json.dumps(run_seed(seed, getattr(a, option.lstrip("-")))), flush=True)


def main(seeds: list[int]) -> None:
    for seed in seeds:
        h = run_seed(seed)
        inner = [row["inner_accuracy"] for row in h]
        by_accuracy = kept_epoch([row["val_accuracy"] for row in h], lambda a, b: a > b)
        by_loss = kept_epoch([row["val_loss"] for row in h], lambda a, b: a < b)
        print(json.dumps({"seed": seed, "accuracy_epoch": by_accuracy + 1, "accuracy_kept": inner[by_accuracy],
                          "loss_epoch": by_loss + 1, "loss_kept": inner[by_loss]}), flush=True)


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [1])
