"""Diagnostic for docs/applications.md: `grukit classify` with its default settings on the default
split's test part, the validation part drawn anew.

Draw 0 is the default split (validation first, as `classify.split` orders it); draw k ≥ 1
permutes the 9,596 non-test sentences with seed [1000, k] and takes the first 960 as
validation. It shows how much of one run's test accuracy the validation draw decides;
nothing is chosen from it. Since the tenth session the command tests the snapshot average
(`test_accuracy`); `test_accuracy_best_epoch` is the kept epoch alone, the model of the
earlier sessions' tables.

    OMP_NUM_THREADS=1 .venv/bin/python docs/scripts/classify_val_draws.py 0 1 2 3 4 5
"""
from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from grukit.cli import build_parser
from grukit.data.sentiment import Vocabulary
from grukit.tasks import classify
from grukit.tasks.common import check_common


def run_draw(draw: int, out: str) -> dict:
    """Train and score the default model with validation draw `draw`; returns its metrics."""
    args = build_parser().parse_args(["classify", "--out", out, "--threads", "1"])
    check_common(args)
    loaded = classify.load_tokens(args)
    tokens, labels = loaded["tokens"], loaded["labels"]
    i_train, i_val, i_test = classify.split(len(tokens), args.seed)
    rest = np.concatenate([i_val, i_train])  # (9596,) the default validation first
    if draw:
        rest = np.random.default_rng([1000, draw]).permutation(rest)
    i_val, i_train = rest[:len(i_val)], rest[len(i_val):]
    vocab = Vocabulary.build([tokens[i] for i in i_train], min_count=args.min_count)
    encoded = [(vocab.encode(t), int(y)) for t, y in zip(tokens, labels)]
    d = {**loaded, "vocab": vocab, "split": (i_train, i_val, i_test),
         **{name: [encoded[i] for i in part] for name, part in zip(("train", "val", "test"), (i_train, i_val, i_test))}}
    return classify.run_split(args, d, Path(out))["metrics"]


def main(draws: list[int]) -> None:
    for draw in draws:
        with tempfile.TemporaryDirectory() as out:
            m = run_draw(draw, out)
        print(json.dumps({"draw": draw, "test_accuracy": m["test_accuracy"], "val_accuracy": m["val_accuracy"],
                          "best_epoch": m["best_epoch"], "snapshot_epochs": m["snapshot_epochs"],
                          "test_accuracy_best_epoch": m["test_accuracy_best_epoch"]}))


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [0])
