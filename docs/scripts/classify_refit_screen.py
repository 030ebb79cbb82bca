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
import tempfile
import time
from pathlib import Path

import numpy as np

from grukit.cli import build_parser
from grukit.data.sentiment import Vocabulary
from grukit.tasks import classify
from grukit.tasks.classify_model import SentenceEnsemble, snapshot_average
from grukit.tasks.common import check_common, train_config
from grukit.train import fit, seed_everything


class _Done(Exception):
    """Raised by the refit's evaluate after the last epoch it needs."""


def build(args, tokens, labels, names, i_fit):
    """(model, training samples with out-of-fold ρ, vocabulary) from the sentences i_fit, as the command does."""
    vocab = Vocabulary.build([tokens[i] for i in i_fit], min_count=args.min_count)
    part = [(vocab.encode(tokens[i]), int(labels[i])) for i in i_fit]
    tables, part = classify.ratios(part, len(vocab), len(names), args.seed, bigram_min_count=args.min_count)
    seed_everything(args.seed)
    model = SentenceEnsemble("\n".join(vocab.words), classes=len(names), members=args.members,
                             embedding=args.embedding, hidden_size=args.hidden, dropout=args.dropout,
                             backend=args.backend, ratios=len(names), word_dropout=args.word_dropout,
                             pooling=args.pooling, bigrams=len(tables.get("bigram_keys", ())))
    model.set_ratios(**tables)
    return model, part, vocab


def encode(vocab, tokens, labels, idx):
    return [(vocab.encode(tokens[i]), int(labels[i])) for i in idx]


def run_seed(seed: int) -> dict:
    out = tempfile.mkdtemp()
    args = build_parser().parse_args(["classify", "--out", out, "--threads", "1"])
    check_common(args)
    loaded = classify.load_tokens(args)
    tokens, labels, names = loaded["tokens"], loaded["labels"], loaded["names"]
    i_train, i_val, _ = classify.split(len(tokens), args.seed)
    rest = np.random.default_rng([2000, seed]).permutation(np.concatenate([i_val, i_train]))
    i_inner, i_val, i_train = rest[:960], rest[960:1920], rest[1920:]
    t0 = time.perf_counter()

    # 1. the command
    model, train, vocab = build(args, tokens, labels, names, i_train)
    val, inner = encode(vocab, tokens, labels, i_val), encode(vocab, tokens, labels, i_inner)
    config = train_config(args, epochs=classify.EPOCHS, batch_size=1, lr=args.lr, weight_decay=args.weight_decay,
                          warmup_steps=50, metric="val_loss", mode="min", patience=classify.PATIENCE,
                          snapshots=classify.SNAPSHOTS)
    result = fit(model, classify.Buckets(train, args.batch_size, args.seed), val, step_loss=classify.ensemble_loss,
                 evaluate=classify.evaluate, config=config, out=Path(out), collate=classify.collate_batch)
    window = [e for e, _ in result.snapshots] or [result.best_epoch]
    command = classify.evaluate(snapshot_average(model, result.snapshots).eval(), inner)["val_accuracy"]

    # 2. the refit on training + validation, stopped after the window's last epoch
    i_fit = np.concatenate([i_train, i_val])
    refit, part, vocab2 = build(args, tokens, labels, names, i_fit)
    inner2 = encode(vocab2, tokens, labels, i_inner)
    kept = []

    def evaluate(m, v):
        epoch = len(kept) + 1
        kept.append((epoch, {k: t.detach().clone() for k, t in m.state_dict().items()}))
        if epoch >= window[-1]:
            raise _Done
        return {"val_loss": 0.0}

    config2 = train_config(args, epochs=classify.EPOCHS, batch_size=1, lr=args.lr, weight_decay=args.weight_decay,
                           warmup_steps=50, metric="val_loss", mode="min", patience=None)
    try:
        fit(refit, classify.Buckets(part, args.batch_size, args.seed), None, step_loss=classify.ensemble_loss,
            evaluate=evaluate, config=config2, out=None, collate=classify.collate_batch)
    except _Done:
        pass
    snaps = [(e, s) for e, s in kept if e in window]
    refit_acc = classify.evaluate(snapshot_average(refit, snaps).eval(), inner2)["val_accuracy"]
    return {"seed": seed, "window": window, "command": round(command * 100, 2), "refit": round(refit_acc * 100, 2),
            "seconds": round(time.perf_counter() - t0, 1)}


if __name__ == "__main__":
    for s in [int(a) for a in sys.argv[1:]] or [1]:
        print(json.dumps(run_seed(s)), flush=True)
