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
import tempfile
from pathlib import Path

import numpy as np
import torch

from grukit.cli import build_parser
from grukit.data.sentiment import Vocabulary
from grukit.tasks import classify
from grukit.tasks.classify_model import SentenceEnsemble
from grukit.tasks.common import check_common, train_config
from grukit.train import fit, seed_everything

sys.path.insert(0, str(Path(__file__).parent))
from classify_epoch_criterion import kept_epoch  # noqa: E402


def probabilities(model, data) -> np.ndarray:
    """(N, C) the ensemble's class probabilities on `data` [(ids, label)]."""
    ids, lengths, _ = classify.collate(data)
    with torch.no_grad():
        return model.eval()(ids, lengths).exp().numpy()  # the ensemble returns log-probabilities


def run_seed(seed: int) -> dict:
    """Per-epoch validation cross-entropy and the probabilities on inner test, for inner split `seed`."""
    out = tempfile.mkdtemp()
    args = build_parser().parse_args(["classify", "--out", out, "--threads", "1"])
    check_common(args)
    loaded = classify.load_tokens(args)
    tokens, labels, names = loaded["tokens"], loaded["labels"], loaded["names"]
    i_train, i_val, _ = classify.split(len(tokens), args.seed)
    rest = np.random.default_rng([2000, seed]).permutation(np.concatenate([i_val, i_train]))
    i_inner, i_val, i_train = rest[:960], rest[960:1920], rest[1920:]
    vocab = Vocabulary.build([tokens[i] for i in i_train], min_count=args.min_count)
    encoded = [(vocab.encode(t), int(y)) for t, y in zip(tokens, labels)]
    train, val, inner = ([encoded[i] for i in part] for part in (i_train, i_val, i_inner))
    tables, train = classify.ratios(train, len(vocab), len(names), args.seed, bigram_min_count=args.min_count)
    seed_everything(args.seed)
    model = SentenceEnsemble("\n".join(vocab.words), classes=len(names), members=args.members,
                             embedding=args.embedding, hidden_size=args.hidden, dropout=args.dropout,
                             backend=args.backend, ratios=len(names), word_dropout=args.word_dropout,
                             pooling=args.pooling, bigrams=len(tables.get("bigram_keys", ())))
    model.set_ratios(**tables)
    inner_probs = []

    def evaluate(m, v):
        inner_probs.append(probabilities(m, inner))
        return classify.evaluate(m, v)

    config = train_config(args, epochs=classify.EPOCHS, batch_size=1, lr=args.lr, weight_decay=args.weight_decay,
                          warmup_steps=50, metric="val_loss", mode="min", patience=classify.EPOCHS)  # all epochs
    result = fit(model, classify.Buckets(train, args.batch_size, args.seed), val, step_loss=classify.ensemble_loss,
                 evaluate=evaluate, config=config, out=Path(out), collate=classify.collate_batch)
    y = np.array([label for _, label in inner])
    b = kept_epoch([row["val_loss"] for row in result.history], lambda a, c: a < c)
    ran = min(len(inner_probs), b + classify.PATIENCE + 1)  # the epochs the command would have run
    window = range(max(0, b - 1), min(ran, b + 2))
    single = float((inner_probs[b].argmax(1) == y).mean())
    averaged = float((np.mean([inner_probs[e] for e in window], axis=0).argmax(1) == y).mean())
    return {"seed": seed, "kept_epoch": b + 1, "window": [e + 1 for e in window], "single": single,
            "averaged": averaged}


if __name__ == "__main__":
    for s in [int(a) for a in sys.argv[1:]] or [1]:
        print(json.dumps(run_seed(s)), flush=True)
