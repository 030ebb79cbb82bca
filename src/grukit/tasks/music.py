"""Polyphonic music modelling (JSB Chorales): predict the next chord, key by key.

    h_t = GRU(dropout(v_t), h_{t−1})                       v_t ∈ {0,1}^88, the keys sounding at step t
    p(v_{t+1,k} = 1 | v_{≤t}) = σ(W dropout(h_t) + b)_k     88 independent Bernoulli outputs
    NLL = −(1/#steps) Σ_sequences Σ_{t ≥ 1} Σ_k log p(v_{t,k} | v_{<t})      nats per time step

The NLL is summed over the 88 keys and averaged over every predicted time step of
the split (the first step of a chorale has no context and is not scored), the units
of Chung et al. 2014, Table 2 (and of Bai et al. 2018). Model sizes of Chung et al.
(~20k parameters): GRU 46 units, LSTM 36, tanh-RNN 100; the output bias starts at the
log-odds of each key's frequency in the training set. The best epoch is chosen on the
validation NLL; dropout on v_t and h_t stands in for Chung et al.'s weight noise.

Example:
    >>> import torch
    >>> from grukit.tasks.music import MusicModel
    >>> model = MusicModel(hidden_size=46)
    >>> sum(p.numel() for p in model.parameters())
    22904
    >>> model(torch.zeros(2, 10, 88), torch.tensor([10, 6])).shape
    torch.Size([2, 10, 88])
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from grukit.checkpoint import register
from grukit.tasks.arch import KINDS, LABELS, count_parameters, make_rnn, no_gates, rnn_gates

log = logging.getLogger(__name__)
KEYS = 88
PAPER_HIDDEN = {"gru": 46, "torch-gru": 46, "lstm": 36, "rnn": 100}  # Chung et al. 2014, ~20k parameters
PAPER_NLL = {"gru": 8.54, "torch-gru": 8.54, "lstm": 8.67, "rnn": 9.10}  # Chung et al. 2014, Table 2 (test)
BAI_NLL = {"gru": 8.43, "torch-gru": 8.43, "lstm": 8.45, "rnn": 8.91}  # Bai et al. 2018, Table 1 (test)


@dataclass(frozen=True)
class MusicConfig:
    keys: int = KEYS  # piano-roll width, input and output
    hidden_size: int = 46  # H, recurrent units
    num_layers: int = 1  # stacked recurrent layers
    cell: str = "gru"  # "gru" (grukit), "torch-gru", "lstm" or "rnn"
    input_dropout: float = 0.1  # dropout on v_t (training only)
    output_dropout: float = 0.1  # dropout on h_t before the output layer (training only)
    reset: str = "before"  # GRU reset placement (DESIGN §1), cell="gru" only
    backend: str = "auto"  # GRU kernel backend, cell="gru" only
    FLAGS: ClassVar[dict[str, str]] = {  # the `grukit music` flag behind each field, for resume messages
        "hidden_size": "--hidden", "cell": "--cell", "input_dropout": "--dropout", "output_dropout": "--dropout"}


@register
class MusicModel(nn.Module):
    __doc__ = __doc__

    def __init__(self, keys: int = KEYS, hidden_size: int = 46, num_layers: int = 1, cell: str = "gru",
                 input_dropout: float = 0.1, output_dropout: float = 0.1, reset: str = "before",
                 backend: str = "auto"):
        super().__init__()
        self.config = MusicConfig(keys, hidden_size, num_layers, cell, input_dropout, output_dropout, reset, backend)
        self.drop_in = nn.Dropout(input_dropout)
        self.rnn = make_rnn(cell, keys, hidden_size, num_layers=num_layers, batch_first=True, reset=reset,
                            backend=backend)
        self.drop_out = nn.Dropout(output_dropout)
        self.out = nn.Linear(hidden_size, keys)

    @torch.no_grad()
    def init_output_bias(self, rolls: list[np.ndarray]) -> None:
        """b_k = log(f_k / (1 − f_k)), f_k = how often key k sounds in `rolls` (clipped to [1e-4, 1 − 1e-4])."""
        f = np.concatenate(rolls).mean(axis=0).clip(1e-4, 1 - 1e-4)  # (88,)
        self.out.bias.copy_(torch.as_tensor(np.log(f / (1 - f)), dtype=self.out.bias.dtype))

    def forward(self, v: Tensor, lengths: Tensor) -> Tensor:
        """v (N, T, 88) chords → logits (N, T, 88) of the chord at the next step."""
        h, _ = self.rnn(self.drop_in(v), lengths=lengths)  # (N, T, H)
        return self.out(self.drop_out(h))  # (N, T, 88)

    def gates(self, v: Tensor) -> tuple[Tensor, Tensor] | None:
        """z, r (T, H) of the last layer reading one chorale v (T, 88); None unless the network is a grukit.GRU
        (`arch.rnn_gates`)."""
        return rnn_gates(self.rnn, v)


# ----------------------------------------------------------------------------- data and loss

def data_name(mat: str | Path | None) -> str:
    """What a report calls the data: the --mat file's name, else the bundled JSB Chorales (the one data set
    the published figures are for)."""
    return Path(mat).name if mat else "JSB Chorales"


def load_splits(mat: str | Path | None, limit: int | None = None) -> dict[str, list[np.ndarray]]:
    """{'train', 'valid', 'test'} rolls from the bundled file or a .mat; `limit` keeps the first N of each."""
    from grukit.data import music

    splits = music.load_bundled() if mat is None else music.read_mat(mat)
    return {k: v[:limit] if limit is not None else v for k, v in splits.items()}


def as_dataset(rolls: list[np.ndarray]):
    from grukit.tasks.sequences import SequenceDataset

    return SequenceDataset([torch.from_numpy(r) for r in rolls])


def nll_sum(model: nn.Module, batch) -> tuple[Tensor, Tensor]:
    """(Σ over predicted steps of the 88-key NLL, number of predicted steps) for a padded batch."""
    v, lengths, _ = batch  # (N, T, 88), (N,)
    logits = model(v[:, :-1], (lengths - 1).clamp(min=1))  # (N, T-1, 88): predicts v[:, 1:]
    bce = nn.functional.binary_cross_entropy_with_logits(logits, v[:, 1:], reduction="none").sum(-1)  # (N, T-1)
    steps = torch.arange(v.shape[1] - 1, device=v.device)  # (T-1,)
    mask = (steps[None, :] < (lengths[:, None] - 1)).to(bce.dtype)  # (N, T-1)
    return (bce * mask).sum(), mask.sum()


def step_loss(model: nn.Module, batch) -> Tensor:
    total, steps = nll_sum(model, batch)
    return total / steps


@torch.no_grad()
def nll(model: nn.Module, dataset, batch_size: int = 64) -> float:
    """NLL per time step (nats) over a whole split, every predicted step weighted equally."""
    from grukit.tasks.sequences import pad_collate

    device = next(model.parameters()).device
    total, steps = 0.0, 0.0
    for start in range(0, len(dataset), batch_size):
        v, lengths, _ = pad_collate([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])
        t, s = nll_sum(model, (v.to(device), lengths.to(device), None))
        total, steps = total + t.item(), steps + s.item()
    return total / steps


def evaluate(model: nn.Module, dataset) -> dict[str, float]:
    return {"val_nll": nll(model, dataset)}


def train(config: MusicConfig, splits: dict, train_config, out: Path | None) -> dict:
    """Train one model, best epoch on validation NLL; returns {"model", "fit", "parameters", "*_nll"}."""
    from grukit.tasks.common import OPTIMISER_FLAGS
    from grukit.tasks.sequences import pad_collate
    from grukit.train import fit

    torch.manual_seed(train_config.seed)
    model = MusicModel(**dataclasses.asdict(config))
    model.init_output_bias(splits["train"])
    result = fit(model, as_dataset(splits["train"]), as_dataset(splits["valid"]), step_loss=step_loss,
                 evaluate=evaluate, config=train_config, out=out, collate=pad_collate,
                 flags=OPTIMISER_FLAGS)  # as `train_config_from` sets them
    model.eval()
    return {"model": model, "fit": result, "parameters": count_parameters(model),
            "train_nll": nll(model, as_dataset(splits["train"])), "valid_nll": nll(model, as_dataset(splits["valid"])),
            "test_nll": nll(model, as_dataset(splits["test"]))}


def paper_sizes() -> list[dict]:
    """Chung et al.'s three models with the parameter counts of our builds of them."""
    rows = []
    for kind in ("gru", "lstm", "rnn"):
        model = MusicModel(hidden_size=PAPER_HIDDEN[kind], cell=kind)
        rows.append({"model": LABELS[kind], "hidden": PAPER_HIDDEN[kind], "parameters": count_parameters(model),
                     "Chung 2014 test NLL": PAPER_NLL[kind], "Bai 2018 test NLL": BAI_NLL[kind]})
    return rows


# ----------------------------------------------------------------------------- command

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mat", type=Path, default=None,
                        help="JSB_Chorales.mat-style file with traindata/validdata/testdata (default: bundled)")
    parser.add_argument("--cell", choices=KINDS, default="gru", help="recurrent network (default gru = grukit.GRU)")
    parser.add_argument("--hidden", type=int, default=None,
                        help="hidden units (default: Chung et al.'s size for the cell: GRU 46, LSTM 36, RNN 100)")
    parser.add_argument("--batch-size", type=int, default=8, help="chorales per batch (default 8)")
    parser.add_argument("--lr", type=float, default=2e-2, help="peak learning rate (default 2e-2)")
    parser.add_argument("--dropout", type=float, default=0.2, help="dropout on inputs and outputs (default 0.2)")
    parser.add_argument("--limit", type=int, default=None, help="use the first N chorales of each split (quick runs)")
    from grukit.tasks.common import add_resume

    add_resume(parser)


def train_config_from(args, epochs: int = 30):
    from grukit.train import TrainConfig

    return TrainConfig(epochs=args.epochs or epochs, lr=args.lr, batch_size=args.batch_size, weight_decay=0.0,
                       patience=8, metric="val_nll", mode="min", seed=args.seed, device=args.device, progress=False,
                       resume=args.resume)


def run(args) -> dict:
    from grukit import plots, report
    from grukit.distributed import is_main
    from grukit.errors import UsageError
    from grukit.tasks.common import args_dict, check_at_least, check_common, check_trainable, environment

    check_at_least(args, ("hidden", "batch_size", "limit"))
    if not 0.0 <= args.dropout < 1.0:  # also refuses nan
        raise UsageError(f"--dropout: expected a number in [0, 1), got {args.dropout}")
    check_common(args, threads=1)  # a small model runs faster on one thread of a busy machine
    hidden = PAPER_HIDDEN[args.cell] if args.hidden is None else args.hidden
    splits = load_splits(args.mat, args.limit)
    config = MusicConfig(hidden_size=hidden, cell=args.cell, input_dropout=args.dropout,
                         output_dropout=args.dropout, backend=args.backend)
    check_trainable(lambda: MusicModel(**dataclasses.asdict(config)), "--hidden")
    train_config = train_config_from(args)
    out = Path(args.out)
    result = train(config, splits, train_config, out)
    if not is_main():  # under torchrun only rank 0 writes the report
        return {}
    fit_result = result["fit"]
    files = {}
    name = data_name(args.mat)
    files["loss curves"] = plots.loss_curves(fit_result.history, out / "loss.png", keys=["train_loss", "val_nll"],
                                        title=f"{name}: NLL per time step (nats)")
    model = result["model"].eval()
    gates = model.gates(torch.from_numpy(splits["test"][0]).float().to(next(model.parameters()).device))
    if gates is not None:
        files["gates"] = plots.gates(gates[0].cpu().numpy(), gates[1].cpu().numpy(), out / "gates.png",
                                     title="GRU gates reading the first test chorale", xlabel="time step (chord)")
    sizes = paper_sizes()
    metrics = {
        "task": "music", "data": str(args.mat) if args.mat else "bundled JSB Chorales",
        "chorales": {k: len(v) for k, v in splits.items()},
        "cell": args.cell, "hidden_size": hidden, "parameters": result["parameters"],
        "train_nll": result["train_nll"], "valid_nll": result["valid_nll"], "test_nll": result["test_nll"],
        "paper_test_nll": PAPER_NLL[args.cell], "best_epoch": fit_result.best_epoch,
        "epochs_run": len(fit_result.history),
        "seconds_per_epoch": float(np.mean([row["seconds"] for row in fit_result.history])),
        "train_seconds": round(fit_result.run_seconds, 2),  # the whole run's, its resumed calls too
        "paper_sizes": sizes,
        "train_config": dataclasses.asdict(train_config),
        "args": args_dict(args), "environment": environment(),
    }
    files["metrics"] = report.write_json(out / "metrics.json", metrics)
    # their figure beside ours only where it measures the same: their data whole, their size for this cell
    comparable = not args.mat and args.limit is None and hidden == PAPER_HIDDEN[args.cell]
    paper = f"; Chung et al. 2014: {PAPER_NLL[args.cell]:.2f}" if comparable else ""
    summary = (f"{name}, {LABELS[args.cell]} H={hidden} ({result['parameters']:,} parameters): "
               f"test NLL {result['test_nll']:.3f} nats/step (valid {result['valid_nll']:.3f}, best epoch "
               f"{fit_result.best_epoch}){paper}; {report.seconds(metrics['train_seconds'])} of training"
               + "".join(f"\n  {r['model']:<17} H={r['hidden']:<4} {r['parameters']:>6,} parameters   "
                         f"Chung 2014 {r['Chung 2014 test NLL']:.2f}" for r in (sizes if comparable else [])))
    columns = ["model", "hidden", "parameters", "train NLL", "valid NLL", "test NLL",
               *(["Chung 2014"] if comparable else []), "best epoch"]
    ours = report.table([{"model": LABELS[args.cell], "hidden": hidden, "parameters": result["parameters"],
                          "train NLL": result["train_nll"], "valid NLL": result["valid_nll"],
                          "test NLL": result["test_nll"], "Chung 2014": PAPER_NLL[args.cell],
                          "best epoch": fit_result.best_epoch}], columns, digits=3)
    counts = metrics["chorales"]
    cut = f", each split cut to its first {args.limit} by --limit" if args.limit else ""
    data = (f"{metrics['data']}: {counts['train']} train, {counts['valid']} validation, {counts['test']} test "
            f"chorales{'' if args.mat else ' (Boulanger-Lewandowski et al.’s split)'}{cut}; piano rolls of 88 "
            f"keys, one chord a step.")
    ran = (f"{LABELS[args.cell]}, {hidden} units, reading each chord v_t (dropout {args.dropout}) and predicting "
           f"the next chord's 88 keys as independent Bernoullis (dropout {args.dropout} before the output layer, "
           f"its bias started at the keys' training frequencies); AdamW lr {train_config.lr}, no weight decay, "
           f"batches of {train_config.batch_size}, seed {args.seed}; best epoch {fit_result.best_epoch} of "
           f"{len(fit_result.history)} by validation NLL (at most {train_config.epochs}).")
    gates_section = report.figure("gates", "gates.png") if "gates" in files else no_gates(args.cell)
    files["report"] = report.write_report(out / "report.md", "grukit music", [
        ("Result", ours),
        ("What ran", ran),
        ("Data", data),
        ("Chung et al. 2014 model sizes (our parameter counts; their figures are for JSB Chorales"
         + (f", not {name})" if args.mat else ")"),
         report.table(sizes, ["model", "hidden", "parameters", "Chung 2014 test NLL", "Bai 2018 test NLL"], digits=2)),
        ("Units", "NLL per time step in nats: summed over the 88 keys, averaged over every predicted step "
                  "of the split (first step of each chorale not scored)."),
        ("Training curves", report.figure("curves", "loss.png")),
        ("Gates", gates_section),
    ])
    files.update(fit_result.shown_files())
    return {"summary": summary, "files": files, "metrics": metrics}
