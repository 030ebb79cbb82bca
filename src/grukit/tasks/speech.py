"""Spoken-digit recognition (FSDD): MFCC frames → GRU → digit.

    x_t = (mfcc_t − μ) / σ                     (T, 13), μ, σ from the training frames
    h_t = GRU(x_t, h_{t−1})                    t = 1..T (each recording's own length)
    p(digit | x) = softmax(W h_T + b)          10 classes, cross-entropy loss

Data: the bundled MFCC of all 3,000 FSDD recordings (or `--dir` with wav files
`{digit}_{speaker}_{take}.wav`). Split: takes 0–4 test (official), takes 5–9
validation (model choice), takes 10–49 training: split by take, not by speaker
(speaker-dependent accuracy). Reports test accuracy and a
confusion matrix; `--cell lstm|rnn|torch-gru` swaps the recurrent network.

Example:
    >>> import torch
    >>> from grukit.tasks.speech import SpeechClassifier
    >>> model = SpeechClassifier(n_features=13, hidden_size=16)
    >>> model(torch.randn(4, 30, 13), torch.tensor([30, 12, 7, 30])).shape
    torch.Size([4, 10])
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from grukit.checkpoint import register
from grukit.errors import UsageError
from grukit.tasks.arch import KINDS, LABELS, count_parameters, make_rnn, no_gates, rnn_gates, top_state

log = logging.getLogger(__name__)
DIGITS = [str(d) for d in range(10)]


@dataclass(frozen=True)
class SpeechConfig:
    n_features: int = 13  # C, MFCC coefficients per frame
    hidden_size: int = 64  # H, recurrent units per direction
    num_layers: int = 1  # stacked recurrent layers
    num_classes: int = 10  # digits 0..9
    cell: str = "gru"  # "gru" (grukit), "torch-gru", "lstm" or "rnn"
    bidirectional: bool = False  # read each recording both ways
    dropout: float = 0.1  # dropout before the classifier (and between layers)
    reset: str = "before"  # GRU reset placement (DESIGN §1), cell="gru" only
    backend: str = "auto"  # GRU kernel backend, cell="gru" only
    # the FeatureConfig of the MFCC it reads (None: saved before it was recorded, which means FeatureConfig(), the
    # only one the command used then); a dict, so left out of the hash
    features: dict | None = field(default=None, hash=False)
    FLAGS: ClassVar[dict[str, str]] = {  # the `grukit speech` flag behind each field, for resume messages
        "hidden_size": "--hidden", "num_layers": "--layers", "cell": "--cell"}


@register
class SpeechClassifier(nn.Module):
    __doc__ = __doc__

    def __init__(self, n_features: int = 13, hidden_size: int = 64, num_layers: int = 1, num_classes: int = 10,
                 cell: str = "gru", bidirectional: bool = False, dropout: float = 0.1, reset: str = "before",
                 backend: str = "auto", features: dict | None = None):
        super().__init__()
        if features is not None:
            features = _features(features, n_features).to_dict()
        self.config = SpeechConfig(n_features, hidden_size, num_layers, num_classes, cell, bidirectional, dropout,
                                   reset, backend, features)
        self.register_buffer("mean", torch.zeros(n_features))  # (C,) feature mean of the training frames
        self.register_buffer("std", torch.ones(n_features))  # (C,) feature std of the training frames
        self.rnn = make_rnn(cell, n_features, hidden_size, num_layers=num_layers, batch_first=True,
                            bidirectional=bidirectional, dropout=dropout, reset=reset,
                            backend=backend)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size * (2 if bidirectional else 1), num_classes)

    def feature_config(self):
        """The `grukit.features.FeatureConfig` of the MFCC this model reads."""
        from grukit.features import FeatureConfig

        return FeatureConfig(**self.config.features) if self.config.features is not None else FeatureConfig()

    def set_normalisation(self, frames: np.ndarray) -> None:
        """μ, σ per coefficient from all training frames (F, C)."""
        self.mean.copy_(torch.as_tensor(frames.mean(axis=0), dtype=self.mean.dtype))  # (C,)
        self.std.copy_(torch.as_tensor(frames.std(axis=0) + 1e-5, dtype=self.std.dtype))  # (C,)

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        """x (N, T, C) zero-padded MFCC, lengths (N,) → logits (N, classes)."""
        x = (x - self.mean) / self.std  # (N, T, C); padding is ignored through `lengths`
        _, h_n = self.rnn(x, lengths=lengths)  # (L·D, N, H)
        h_T = top_state(h_n, 2 if self.config.bidirectional else 1)  # (N, D·H)
        return self.head(self.drop(h_T))  # (N, classes)

    def gates(self, x: Tensor) -> tuple[Tensor, Tensor] | None:
        """z, r (T, H) of the last layer's forward direction reading one recording x (T, C); None unless the
        network is a grukit.GRU (`arch.rnn_gates`)."""
        return rnn_gates(self.rnn, (x - self.mean) / self.std)  # (T, C) normalised as in forward


def _features(features: dict, n_features: int):
    """`features` as a FeatureConfig of n_mfcc = `n_features`, or ValueError naming the argument."""
    from grukit.features import FeatureConfig

    if not isinstance(features, dict):
        raise ValueError(f"features: expected a dict of FeatureConfig fields, got {features!r}")
    try:
        config = FeatureConfig(**features)
    except (TypeError, ValueError) as err:
        raise ValueError(f"features: expected FeatureConfig fields, got {features!r} ({err})") from None
    if config.n_mfcc != n_features:
        raise ValueError(f"features: expected n_mfcc = n_features ({n_features}), got n_mfcc {config.n_mfcc}")
    return config


# ----------------------------------------------------------------------------- data

def data_name(folder: str | Path | None) -> str:
    """What a report calls the data: the --dir folder's name, else the bundled FSDD."""
    return Path(folder).name if folder else "FSDD"


def load_splits(folder: str | Path | None, limit: int | None = None, seed: int = 0):
    """(train, val, test) SpeechSets from the bundled features or a wav folder; `limit` caps each split."""
    from grukit.data import speech

    data = speech.load_bundled() if folder is None else speech.read_folder(folder)
    parts = speech.split(data)
    if limit is not None:
        rng = np.random.default_rng(seed)
        parts = tuple(p.subset(np.sort(rng.permutation(len(p))[:limit])) for p in parts)
    return parts


def as_dataset(part):
    from grukit.tasks.sequences import SequenceDataset

    return SequenceDataset([torch.from_numpy(f) for f in part.features], torch.from_numpy(part.digits))


@torch.no_grad()
def predict(model: SpeechClassifier, dataset, batch_size: int = 256) -> np.ndarray:
    """Predicted digits for every item of `dataset`, in order."""
    from grukit.tasks.sequences import pad_collate

    model.eval()
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(dataset), batch_size):
        x, lengths, _ = pad_collate([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])
        out.append(model(x.to(device), lengths.to(device)).argmax(dim=1).cpu())  # (B,)
    return torch.cat(out).numpy()


@torch.no_grad()
def recognize(model: SpeechClassifier, wav: str | Path) -> np.ndarray:
    """p(digit | recording) (10,): a saved `grukit speech` model's probabilities for one wav file, whose MFCC
    are computed as the model's training data were (`SpeechClassifier.feature_config`; any sample rate
    resampled to its rate, stereo averaged).

    Example:
        >>> import grukit
        >>> model = grukit.load("runs/speech/model.safetensors")  # doctest: +SKIP
        >>> recognize(model, "seven.wav").argmax()  # doctest: +SKIP
        7
    """
    from grukit.data.speech import read_wav
    from grukit.features import mfcc

    if not isinstance(model, SpeechClassifier):
        raise TypeError(f"model: expected a grukit speech model (SpeechClassifier), got {type(model).__name__}")
    config = model.feature_config()
    if model.config.n_features != config.n_mfcc:  # only a model saved before its features were recorded
        raise UsageError(f"model: expected a speech model of {config.n_mfcc} MFCC inputs (the command's), got one "
                         f"of {model.config.n_features}")
    x = torch.from_numpy(mfcc(read_wav(wav, config.sample_rate, "wav"), config)).float()  # (T, C)
    model.eval()
    device = next(model.parameters()).device
    logits = model(x[None].to(device), torch.tensor([len(x)]))  # (1, 10)
    return logits.softmax(-1)[0].cpu().numpy()


def confusion_matrix(truth: np.ndarray, predicted: np.ndarray, classes: int = 10) -> np.ndarray:
    """counts[i, j] = recordings of digit i predicted as j."""
    counts = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(counts, (truth, predicted), 1)
    return counts


def step_loss(model: nn.Module, batch) -> Tensor:
    x, lengths, y = batch
    return nn.functional.cross_entropy(model(x, lengths), y)


def evaluate(model: nn.Module, dataset) -> dict[str, float]:
    from grukit.tasks.sequences import pad_collate

    device = next(model.parameters()).device
    x, lengths, y = pad_collate([dataset[i] for i in range(len(dataset))])
    logits = model(x.to(device), lengths.to(device))  # (n, classes)
    y = y.to(device)
    return {"val_loss": nn.functional.cross_entropy(logits, y).item(),
            "val_accuracy": (logits.argmax(1) == y).double().mean().item()}


def train(config: SpeechConfig, splits, train_config, out: Path | None) -> dict:
    """Train one classifier; returns {"model", "fit", "test_accuracy", "confusion", "parameters"}."""
    from grukit.tasks.common import OPTIMISER_FLAGS
    from grukit.tasks.sequences import pad_collate
    from grukit.train import fit

    train_part, val_part, test_part = splits
    torch.manual_seed(train_config.seed)
    model = SpeechClassifier(**dataclasses.asdict(config))
    model.set_normalisation(np.concatenate(train_part.features))
    result = fit(model, as_dataset(train_part), as_dataset(val_part), step_loss=step_loss, evaluate=evaluate,
                 config=train_config, out=out, collate=pad_collate,
                 flags=OPTIMISER_FLAGS)  # as `train_config_from` sets them
    test = as_dataset(test_part)
    predicted = predict(model, test)
    return {"model": model, "fit": result, "parameters": count_parameters(model),
            "test_accuracy": float((predicted == test_part.digits).mean()),
            "confusion": confusion_matrix(test_part.digits, predicted, config.num_classes)}


# ----------------------------------------------------------------------------- command

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", type=Path, default=None,
                        help="folder of FSDD-style wavs {digit}_{speaker}_{take}.wav (default: bundled MFCC)")
    parser.add_argument("--cell", choices=KINDS, default="gru", help="recurrent network (default gru = grukit.GRU)")
    parser.add_argument("--hidden", type=int, default=64, help="hidden units (default 64)")
    parser.add_argument("--layers", type=int, default=1, help="stacked layers (default 1)")
    parser.add_argument("--batch-size", type=int, default=32, help="batch size (default 32)")
    parser.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (default 3e-3)")
    parser.add_argument("--limit", type=int, default=None, help="use at most N recordings per split (quick runs)")
    from grukit.tasks.common import add_resume

    add_resume(parser)


def train_config_from(args, *, epochs: int, metric: str, mode: str, lr: float, batch_size: int, **extra):
    from grukit.train import TrainConfig

    return TrainConfig(epochs=args.epochs or epochs, lr=lr, batch_size=batch_size, metric=metric, mode=mode,
                       seed=args.seed, device=args.device, progress=False, resume=args.resume, **extra)


def run(args) -> dict:
    from grukit import plots, report
    from grukit.distributed import is_main
    from grukit.tasks.common import args_dict, check_at_least, check_common, check_trainable, environment

    check_at_least(args, ("hidden", "layers", "batch_size", "limit"))
    check_common(args, threads=1)  # a small model runs faster on one thread of a busy machine
    splits = load_splits(args.dir, args.limit, args.seed)
    config = SpeechConfig(n_features=splits[0].features[0].shape[1], hidden_size=args.hidden,
                          num_layers=args.layers, cell=args.cell, backend=args.backend,
                          features=splits[0].config.to_dict())
    check_trainable(lambda: SpeechClassifier(**dataclasses.asdict(config)), "--hidden, --layers")
    train_config = train_config_from(args, epochs=20, metric="val_accuracy", mode="max", lr=args.lr,
                                     batch_size=args.batch_size)
    out = Path(args.out)
    result = train(config, splits, train_config, out)
    if not is_main():  # under torchrun only rank 0 writes the report
        return {}
    fit_result = result["fit"]
    files = {}
    name = data_name(args.dir)
    files["confusion"] = plots.confusion(result["confusion"], DIGITS, out / "confusion.png",
                                         title=f"{name} test set, {LABELS[args.cell]}: accuracy "
                                               f"{result['test_accuracy']:.1%}")
    files["loss curves"] = plots.loss_curves(fit_result.history, out / "loss.png",
                                        keys=["train_loss", "val_loss", "val_accuracy"], title=f"{name} training")
    test = splits[2]
    k = int(np.argsort([len(f) for f in test.features])[len(test) // 2])  # a recording of median length
    model = result["model"].eval()
    gates = model.gates(torch.from_numpy(test.features[k]).to(next(model.parameters()).device))
    if gates is not None:
        files["gates"] = plots.gates(gates[0].cpu().numpy(), gates[1].cpu().numpy(), out / "gates.png",
                                     title=f"GRU gates reading one test recording (digit {int(test.digits[k])}, "
                                           f"speaker {test.speakers[k]})", xlabel="MFCC frame (every 20 ms)")
    metrics = {
        "task": "speech", "data": str(args.dir) if args.dir else "bundled FSDD MFCC",
        "cell": args.cell, "hidden_size": args.hidden, "parameters": result["parameters"],
        "train_recordings": len(splits[0]), "val_recordings": len(splits[1]), "test_recordings": len(splits[2]),
        "test_accuracy": result["test_accuracy"], "val_accuracy": fit_result.best.get("val_accuracy"),
        "best_epoch": fit_result.best_epoch, "epochs_run": len(fit_result.history),
        "seconds_per_epoch": float(np.mean([row["seconds"] for row in fit_result.history])),
        "train_seconds": round(fit_result.run_seconds, 2),  # the whole run's, its resumed calls too
        "confusion": result["confusion"].tolist(),
        "features": splits[0].config.to_dict(), "train_config": dataclasses.asdict(train_config),
        "args": args_dict(args), "environment": environment(),
    }
    files["metrics"] = report.write_json(out / "metrics.json", metrics)
    summary = (f"{name} spoken digits, {LABELS[args.cell]} H={args.hidden} ({result['parameters']:,} parameters): "
               f"test accuracy {result['test_accuracy']:.2%} on {len(splits[2])} recordings "
               f"(best val accuracy {metrics['val_accuracy']:.2%} at epoch {fit_result.best_epoch}; "
               f"{report.seconds(metrics['train_seconds'])} of training)")
    body = report.table([{"model": LABELS[args.cell], "hidden": args.hidden, "parameters": result["parameters"],
                          "val accuracy": metrics["val_accuracy"], "test accuracy": result["test_accuracy"],
                          "s/epoch": metrics["seconds_per_epoch"]}],
                        ["model", "hidden", "parameters", "val accuracy", "test accuracy", "s/epoch"])
    limited = (f" With --limit {args.limit}, each split is a seeded random subset of at most {args.limit} "
               f"recordings: {len(splits[0])} train, {len(splits[1])} validation, {len(splits[2])} test."
               if args.limit else f" {len(splits[0])} train, {len(splits[1])} validation, {len(splits[2])} test "
                                  f"recordings.")
    ran = (f"{LABELS[args.cell]}, {args.layers} layer(s) of {args.hidden} units over the normalised MFCC frames "
           f"(training frames' mean and std), its last state → dropout {config.dropout} → linear over 10 digits; "
           f"cross-entropy, AdamW lr {args.lr} with a cosine schedule, batches of {args.batch_size}, seed "
           f"{args.seed}; best epoch {fit_result.best_epoch} of {len(fit_result.history)} by validation accuracy "
           f"(at most {train_config.epochs}).")
    figures = [("Confusion matrix (test)", report.figure("confusion", "confusion.png")),
               ("Training curves", report.figure("curves", "loss.png"))]
    figures.append(("Gates", report.figure("gates", "gates.png") if "gates" in files else no_gates(args.cell)))
    files["report"] = report.write_report(out / "report.md", "grukit speech", [
        ("Result", summary + "\n\n" + body),
        ("What ran", ran),
        ("Data", f"{metrics['data']}: test = takes 0-4 ({'as in ' if args.dir else ''}FSDD's official split), "
                 f"validation = takes 5-9, "
                 f"train = takes 10 and up: split by take, not by speaker, so the accuracy is for voices the "
                 f"model has heard in training (speaker-dependent).{limited} Features: MFCC, {config.n_features} "
                 f"coefficients, 32 ms frames every 20 ms (NumPy/SciPy, grukit.features)."),
        *figures,
    ])
    files.update(fit_result.shown_files())
    return {"summary": summary, "files": files, "metrics": metrics}
