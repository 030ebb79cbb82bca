"""`compare --task forecast|classify`: the forecast and classify tasks with any recurrent network.

Their models (grukit.tasks.forecast_model.Forecaster, classify_model.SentenceClassifier)
hold a grukit.GRU in `.gru` and read `(output, h_n)` from it. Here that module is
swapped for the network under comparison; `StatesOnly` hands the LSTM's h_n (not
c_n) to the model, so the model code is untouched. Data, split, loss and metric are
the tasks' own (defaults of their commands: CO2 weekly, MASE over 52 weeks; MR
polarity, accuracy). Swapped models are not written as checkpoints: their config
still names a GRU, so a checkpoint would not load back.

Example:
    >>> import torch
    >>> from grukit.tasks.arch import make_rnn
    >>> from grukit.tasks.compare_apps import StatesOnly
    >>> _, h_n = StatesOnly(make_rnn("lstm", 3, 4))(torch.randn(5, 2, 3))
    >>> h_n.shape
    torch.Size([1, 2, 4])
"""
from __future__ import annotations

import argparse

import numpy as np
import torch
from torch import nn
from torch.utils.data import TensorDataset

from grukit.errors import UsageError
from grukit.tasks.arch import make_rnn

CLASSIFY_MIN_LIMIT = 20  # the classify command's own bound on --limit: every split non-empty, both classes likely


class StatesOnly(nn.Module):
    """Wraps a recurrent network so that forward returns (output, h_n) for every kind."""

    def __init__(self, rnn: nn.Module):
        super().__init__()
        self.rnn = rnn

    def forward(self, x, h0=None, lengths=None):
        output, h_n = self.rnn(x, h0, lengths=lengths)
        return output, (h_n[0] if isinstance(h_n, tuple) else h_n)


def _defaults(module, **overrides) -> argparse.Namespace:
    """The task command's own defaults, with `overrides`."""
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    namespace = parser.parse_args([])
    for key, value in overrides.items():
        setattr(namespace, key, value)
    return namespace


def _swap(model: nn.Module, kind: str, input_size: int, hidden: int, **kwargs) -> nn.Module:
    if kind != "gru":
        model.gru = StatesOnly(make_rnn(kind, input_size, hidden, **kwargs))
    return model


def _forecast(args, kinds):
    from grukit.tasks import forecast as F
    from grukit.tasks.arch import matched_sizes
    from grukit.tasks.compare import Spec, _train_config
    from grukit.tasks.forecast_data import errors, min_rows, prepare
    from grukit.tasks.forecast_model import Forecaster

    ns = _defaults(F, limit=args.limit)
    full = F.load_series(_defaults(F))  # the season, before --limit (which must hold at least min_rows)
    season = ns.season or full.season
    need = min_rows(ns.lookback, ns.horizon, season)
    if args.limit is not None and args.limit < need:  # compare has no --lookback/--horizon: --limit is what to change
        raise UsageError(f"--limit: expected at least {need} rows for --task forecast (the forecast command's "
                         f"lookback {ns.lookback} + horizon {ns.horizon}, season {season}; 70% train, 15% "
                         f"validation, 15% test), got {args.limit}")
    series = full if args.limit is None else F.load_series(ns)
    p = prepare(series.values, lookback=ns.lookback, horizon=ns.horizon, season=season)

    def dataset(part: str) -> TensorDataset:
        t = p.origins(part)  # (n,)
        target, observed = p.targets(t)  # (n, K), (n, K)
        return TensorDataset(torch.from_numpy(p.inputs(t)), torch.from_numpy(target), torch.from_numpy(observed))

    def build(kind: str, H: int) -> nn.Module:
        model = Forecaster(p.n_features, ns.horizon, hidden_size=H, patch=ns.patch, dropout=ns.dropout,
                           backend=args.backend)
        return _swap(model, kind, ns.patch * p.n_features, H)

    t_test = p.origins("test")
    target, observed = p.targets(t_test)
    truth = p.unscale(t_test, target)

    def test(model: nn.Module) -> float:
        return errors(F.predict(model, p, t_test), truth, observed, p.mase_scale)["MASE"]

    hidden = matched_sizes(kinds, args.hidden or ns.hidden, build)
    config = _train_config(args, epochs=F.EPOCHS, batch_size=ns.batch_size, lr=ns.lr, weight_decay=0.01,
                           warmup_steps=20, metric="val_mase", mode="min")
    a, b = p.bounds
    rows = f"{len(p.y):,} rows" + (f" (the first {args.limit:,}: --limit)" if args.limit is not None else "")
    notes = [f"{series.source}: {rows}, training steps 0–{a - 1}, validation {a}–{b - 1}, test {b}–{len(p.y) - 1} "
             f"({len(t_test)} test origins); horizon {ns.horizon}, lookback {ns.lookback}, patches of {ns.patch}; "
             "the forecast command's split, loss (masked MSE) and metric (MASE vs seasonal-naive MAE)"]
    return Spec("forecast", "test MASE", True, hidden, build, dataset("train"), dataset("val"), F.masked_mse,
                F.val_mase, test, config, notes=notes, checkpoints=False)


def _classify(args, kinds):
    from grukit.data.sentiment import Vocabulary, tokenize
    from grukit.tasks import classify as C
    from grukit.tasks.arch import matched_sizes
    from grukit.tasks.classify_model import SentenceClassifier
    from grukit.tasks.compare import Spec, _train_config

    if args.limit is not None and args.limit < CLASSIFY_MIN_LIMIT:
        raise UsageError(f"--limit: expected an integer >= {CLASSIFY_MIN_LIMIT} for --task classify (sentences "
                         f"split into train, validation and test), got {args.limit}")
    ns = _defaults(C, limit=args.limit)
    texts, labels, names, source = C.load_sentences(ns)
    tokens = [tokenize(t) for t in texts]
    keep = [i for i, t in enumerate(tokens) if t]
    if ns.limit is not None and ns.limit < len(keep):
        keep = sorted(np.random.default_rng(args.seed).choice(keep, ns.limit, replace=False).tolist())
    tokens, labels = [tokens[i] for i in keep], np.array([labels[i] for i in keep])
    i_train, i_val, i_test = C.split(len(tokens), args.seed)
    vocab = Vocabulary.build([tokens[i] for i in i_train], min_count=ns.min_count)
    encoded = [(vocab.encode(t), int(y)) for t, y in zip(tokens, labels)]
    train, val, test = ([encoded[i] for i in part] for part in (i_train, i_val, i_test))
    words = "\n".join(vocab.words)

    def build(kind: str, H: int) -> nn.Module:
        model = SentenceClassifier(words, classes=len(names), embedding=ns.embedding, hidden_size=H,
                                   dropout=ns.dropout, backend=args.backend)
        return _swap(model, kind, ns.embedding, H, batch_first=True, bidirectional=True)

    y_test = labels[i_test]

    def test_accuracy(model: nn.Module) -> float:
        return float((C.predict(model.eval(), test) == y_test).mean())

    hidden = matched_sizes(kinds, args.hidden or ns.hidden, build)
    config = _train_config(args, epochs=C.EPOCHS, batch_size=ns.batch_size, lr=ns.lr, weight_decay=0.01,
                           warmup_steps=50, metric="val_accuracy", mode="max", patience=4)
    notes = [f"{source}: {len(train):,} train / {len(val):,} validation / {len(test):,} test sentences "
             f"(the classify command's seeded split); embedding {ns.embedding}, bidirectional, "
             "[last states; max over time] → linear; the embedding's parameters count in the totals"]
    return Spec("classify", "test accuracy", False, hidden, build, train, val, C.class_loss, C.evaluate,
                test_accuracy, config, collate=C.collate, notes=notes, checkpoints=False)


def spec(args, kinds):
    """The compare Spec of `args.task` ("forecast" or "classify")."""
    return _forecast(args, kinds) if args.task == "forecast" else _classify(args, kinds)
