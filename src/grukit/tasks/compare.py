"""GRU vs LSTM vs tanh-RNN on one task, at matched parameter counts (music: Chung et al.'s sizes), same budget
and seeds.

For every seed s and every network k ∈ {GRU (grukit), GRU (torch), LSTM, tanh-RNN}:

    H_k = argmin_H |params(task model with k, H) − params(task model with GRU, H_gru)|
    train with the same data, optimiser, schedule, epochs and seed; pick the epoch on validation
    report params, seconds per epoch (training only), the test metric: mean ± std over seeds

torch's GRU, LSTM and RNN share one implementation family (torch's own kernels), so
their speed columns compare architectures; grukit's GRU is the fourth column. On
`music` the sizes are Chung et al.'s (GRU 46, LSTM 36, tanh 100), not re-matched.
The tasks: adding and copy (grukit.tasks.synthetic), music, speech, and the issue-5
tasks forecast and classify (through their own data and model modules).

Example:
    >>> from grukit.tasks.compare import build_parser_for_tests
    >>> args = build_parser_for_tests().parse_args(["--task", "adding", "--length", "20"])
    >>> args.task, args.length, args.seeds
    ('adding', 20, 1)
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from torch.utils.data import TensorDataset

from grukit.tasks.arch import KINDS, LABELS, count_parameters, matched_sizes

log = logging.getLogger(__name__)
TASKS = ("music", "adding", "copy", "forecast", "classify", "speech")
# the options that only some tasks read (all default to None, so a given one is seen): option -> its tasks
TASK_FLAGS = {"length": ("adding", "copy"), "train_size": ("adding", "copy"), "steps": ("adding", "copy"),
              "limit": ("music", "speech", "forecast", "classify"), "mat": ("music",), "dir": ("speech",)}
BAI_ADDING_600 = {"gru": 5.3e-5, "torch-gru": 5.3e-5, "lstm": 0.164, "rnn": 0.177}  # Bai et al. 2018, Table 1, MSE


@dataclass
class Spec:
    """Everything compare needs to train one task with any recurrent network."""

    task: str  # task name
    metric: str  # name of the test metric, e.g. "test MSE"
    lower_is_better: bool  # direction of `metric`
    hidden: dict[str, int]  # hidden size per kind
    build: Callable[[str, int], nn.Module]  # (kind, H) → a fresh, initialised task model
    train: Any  # torch Dataset
    val: Any  # what `evaluate` reads
    step_loss: Callable  # (model, batch) → loss
    evaluate: Callable  # (model, val) → {name: float}
    test: Callable[[nn.Module], float]  # the test metric of a trained model
    train_config: Any  # grukit.train.TrainConfig (seed replaced per run)
    collate: Callable | None = None  # batch builder, None = default
    notes: list[str] = field(default_factory=list)  # lines for the report (trivial baselines, published numbers)
    reference: dict[str, float] = field(default_factory=dict)  # published test metric per kind
    checkpoints: bool = True  # write each run's checkpoints under out/<kind>-seed<s>/


# ----------------------------------------------------------------------------- tasks

def _train_config(args, **defaults):
    from grukit.train import TrainConfig

    epochs = defaults.pop("epochs")
    chosen = {"epochs": args.epochs or epochs, "seed": args.seed, "device": args.device,
              "progress": False}
    for name in ("lr", "batch_size"):
        value = getattr(args, name)
        if value is not None:
            defaults[name] = value
    return TrainConfig(**chosen, **defaults)


def _synthetic(args, kinds) -> Spec:
    from grukit.tasks import synthetic as S

    T = args.length or (200 if args.task == "adding" else 100)
    n_train = args.train_size or 16000
    n_eval = min(1000, max(10, n_train // 4))
    train = S.make_data(args.task, n_train, T, seed=10_000 + args.seed)
    val = S.make_data(args.task, n_eval, T, seed=20_000 + args.seed)
    test = S.make_data(args.task, n_eval, T, seed=30_000 + args.seed)
    build = lambda kind, H: S.SyntheticModel(args.task, H, cell=kind, backend=args.backend)  # noqa: E731
    hidden = matched_sizes(kinds, args.hidden or 64, build)
    config = _train_config(args, epochs=20, lr=3e-3, batch_size=32, steps_per_epoch=args.steps or 100,
                           schedule="constant", weight_decay=0.0, metric="val_loss", mode="min")
    trivial = S.memoryless_loss(args.task, test[1])  # on this run's test set
    expected = " (1/6 in expectation)" if args.task == "adding" else ""
    notes = [f"length T = {T}; {n_train} training sequences, {n_eval} validation, {n_eval} test (fixed seeds)",
             f"memoryless baseline ({'predict 1' if args.task == 'adding' else 'blank, then uniform'}) on the test "
             f"set: {trivial:.4g}{expected}"]
    reference = {}
    if args.task == "adding":
        notes.append("Bai et al. 2018, Table 1, T = 600, ~70k parameters: GRU 5.3e-5, LSTM 0.164, "
                     "tanh-RNN 0.177 (trivial 0.1767)")
        reference = BAI_ADDING_600 if T == 600 else {}
    name = "test MSE" if args.task == "adding" else "test loss (nats/step)"
    return Spec(args.task, name, True, hidden, build, TensorDataset(*train), val, S.step_loss, S.evaluate,
                lambda model: S.evaluate(model, test)["val_loss"], config, notes=notes, reference=reference)


def _music(args, kinds) -> Spec:
    from grukit.tasks import music as M

    splits = M.load_splits(args.mat, args.limit)
    dropout = 0.2  # the music command's default

    def build(kind: str, H: int) -> nn.Module:
        model = M.MusicModel(hidden_size=H, cell=kind, input_dropout=dropout, output_dropout=dropout,
                             backend=args.backend)
        model.init_output_bias(splits["train"])
        return model

    hidden = {k: M.PAPER_HIDDEN[k] for k in kinds} if args.hidden is None else matched_sizes(kinds, args.hidden, build)
    config = _train_config(args, epochs=30, lr=2e-2, batch_size=8, weight_decay=0.0, patience=8,
                           metric="val_nll", mode="min")
    from grukit.tasks.sequences import pad_collate

    test = M.as_dataset(splits["test"])
    name = M.data_name(args.mat)
    notes = [f"{name}, NLL per time step (nats, summed over 88 keys); sizes of Chung et al. 2014 "
             "(GRU 46, LSTM 36, tanh 100) unless --hidden is given",
             *([] if args.mat else ["Chung et al. 2014 Table 2 (test): GRU 8.54, LSTM 8.67, tanh-RNN 9.10; "
                                    "Bai et al. 2018: GRU 8.43, LSTM 8.45, RNN 8.91"]),
             _sizes("chorales", {k: len(v) for k, v in splits.items()}, args.limit)]
    # the published figures beside ours: the paper's sizes and its data, whole, only
    paper_sizes = args.hidden is None and not args.mat and args.limit is None
    return Spec("music", "test NLL", True, hidden, build, M.as_dataset(splits["train"]),
                M.as_dataset(splits["valid"]), M.step_loss, M.evaluate, lambda model: M.nll(model, test), config,
                collate=pad_collate, notes=notes,
                reference={k: M.PAPER_NLL[k] for k in kinds} if paper_sizes else {})


def _sizes(items: str, parts: dict[str, int], limit: int | None) -> str:
    """The note on the split sizes: 'train 229, valid 76, test 77 chorales', and a --limit when one cut them."""
    cut = f" (each split cut to at most {limit} by --limit)" if limit is not None else ""
    return ", ".join(f"{name} {n:,}" for name, n in parts.items()) + f" {items}{cut}"


def _speech(args, kinds) -> Spec:
    from grukit.tasks import speech as Sp
    from grukit.tasks.sequences import pad_collate

    train, val, test = Sp.load_splits(args.dir, args.limit, args.seed)
    frames = np.concatenate(train.features)

    def build(kind: str, H: int) -> nn.Module:
        model = Sp.SpeechClassifier(n_features=frames.shape[1], hidden_size=H, cell=kind, backend=args.backend)
        model.set_normalisation(frames)
        return model

    hidden = matched_sizes(kinds, args.hidden or 64, build)
    config = _train_config(args, epochs=15, lr=3e-3, batch_size=32, metric="val_accuracy", mode="max")
    test_set = Sp.as_dataset(test)
    test_metric = lambda model: float((Sp.predict(model, test_set) == test.digits).mean())  # noqa: E731
    return Spec("speech", "test accuracy", False, hidden, build, Sp.as_dataset(train), Sp.as_dataset(val),
                Sp.step_loss, Sp.evaluate, test_metric, config, collate=pad_collate,
                notes=[f"{Sp.data_name(args.dir) + ': FSDD-style' if args.dir else 'FSDD'}, official split (takes 0-4 "
                       "test); validation = takes 5-9",
                       _sizes("recordings", {"train": len(train), "validation": len(val), "test": len(test)},
                              args.limit)])


def _issue5(args, kinds) -> Spec:
    """forecast and classify come from their own modules; see `grukit.tasks.compare_apps`."""
    from grukit.tasks import compare_apps

    return compare_apps.spec(args, kinds)


SPECS = {"adding": _synthetic, "copy": _synthetic, "music": _music, "speech": _speech,
         "forecast": _issue5, "classify": _issue5}


# ----------------------------------------------------------------------------- the comparison

def run_one(spec: Spec, kind: str, seed: int, out: Path | None) -> dict:
    """Train the `kind` model of `spec` with `seed`; returns a row of the results."""
    from grukit.train import fit

    torch.manual_seed(seed)
    model = spec.build(kind, spec.hidden[kind])
    eval_seconds: list[float] = []

    def timed_evaluate(m, val):
        t = time.perf_counter()
        metrics = spec.evaluate(m, val)
        eval_seconds.append(time.perf_counter() - t)
        return metrics

    config = dataclasses.replace(spec.train_config, seed=seed)
    result = fit(model, spec.train, spec.val, step_loss=spec.step_loss, evaluate=timed_evaluate, config=config,
                 out=out, collate=spec.collate)
    train_seconds = [row["seconds"] - e for row, e in zip(result.history, eval_seconds)]
    model.eval()
    return {"kind": kind, "seed": seed, "hidden": spec.hidden[kind], "parameters": count_parameters(model),
            "seconds_per_epoch": float(np.median(train_seconds)), "best_epoch": result.best_epoch,
            "test": spec.test(model), "history": result.history}


def summarise(rows: list[dict], kinds) -> list[dict]:
    """One line per kind: parameters, s/epoch (median over seeds), test metric mean ± std."""
    lines = []
    for kind in kinds:
        mine = [r for r in rows if r["kind"] == kind]
        values = np.array([r["test"] for r in mine])
        lines.append({"kind": kind, "model": LABELS[kind], "hidden": mine[0]["hidden"],
                      "parameters": mine[0]["parameters"],
                      "seconds_per_epoch": float(np.median([r["seconds_per_epoch"] for r in mine])),
                      "mean": float(values.mean()), "std": float(values.std(ddof=1)) if len(values) > 1 else None,
                      "seeds": len(values)})
    return lines


def curves_figure(rows: list[dict], key: str, path: Path, title: str) -> Path:
    """Validation metric per epoch, one line per network (seed of the first run), log y when positive."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    seed = rows[0]["seed"]
    for row in rows:
        if row["seed"] != seed:
            continue
        epochs = [h["epoch"] for h in row["history"]]
        ax.plot(epochs, [h[key] for h in row["history"]], marker="o", ms=3,
                label=f"{LABELS[row['kind']]} ({row['parameters']:,} params)")
    values = [h[key] for row in rows for h in row["history"]]
    if min(values) > 0 and max(values) / min(values) > 20:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel(key)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def training_note(config) -> str:
    """The report's line on the budget every network trains with: epochs, batches, optimiser, stopping."""
    from grukit.report import plural

    steps = f"{config.steps_per_epoch} steps" if config.steps_per_epoch else "one pass over the training set"
    stop = f"stopping after {plural(config.patience, 'epoch')} without a better one; " if config.patience else ""
    return (f"every network: at most {plural(config.epochs, 'epoch')} of {steps} in batches of {config.batch_size}; "
            f"AdamW lr {config.lr:g}, weight decay {config.weight_decay:g}, {config.schedule} schedule"
            + (f" after {config.warmup_steps} warm-up steps" if config.warmup_steps else "")
            + f"; {stop}the epoch with the best {config.metric} is tested")


def _fmt(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1e-2 and value != 0 else f"{value:.4f}"


def compare(spec: Spec, kinds, seeds, out: Path, args: argparse.Namespace | None = None) -> dict:
    """Run every (seed, kind); write metrics.json (with `args`, the command's, when given), report.md, curves.png;
    return the result dict."""
    from grukit import report
    from grukit.distributed import is_main

    rows = []
    for seed in seeds:
        for kind in kinds:
            log.info("compare %s: %s (H=%d), seed %d", spec.task, kind, spec.hidden[kind], seed)
            rows.append(run_one(spec, kind, seed, out / f"{kind}-seed{seed}" if spec.checkpoints else None))
    if not is_main():  # under torchrun only rank 0 writes the report
        return {}
    lines = summarise(rows, kinds)
    key = spec.train_config.metric
    files = {"curves": curves_figure(rows, key, out / "curves.png", f"{spec.task}: {key} per epoch")}
    table_rows = [{"model": ln["model"], "hidden": ln["hidden"], "parameters": f"{ln['parameters']:,}",
                   "s/epoch": f"{ln['seconds_per_epoch']:.2f}",
                   spec.metric: f"{_fmt(ln['mean'])} ± {_fmt(ln['std'])}" if ln["seeds"] > 1 else _fmt(ln["mean"]),
                   **({"published": _fmt(spec.reference[ln["kind"]])} if spec.reference else {})}
                  for ln in lines]
    columns = ["model", "hidden", "parameters", "s/epoch", spec.metric] + (["published"] if spec.reference else [])
    table = report.table(table_rows, columns)
    metrics = {"task": spec.task, "metric": spec.metric, "lower_is_better": spec.lower_is_better,
               "torch_threads": torch.get_num_threads(),
               "seeds": list(seeds), "summary": lines,
               "runs": [{k: v for k, v in r.items() if k != "history"} for r in rows],
               "train_config": dataclasses.asdict(spec.train_config), "notes": spec.notes}
    if args is not None:
        from grukit.tasks.common import args_dict, environment

        metrics.update(args=args_dict(args), environment=environment())
    files["metrics"] = report.write_json(out / "metrics.json", metrics)
    (out / "table.md").write_text(table + "\n", encoding="utf-8")
    files["table"] = out / "table.md"
    files["report"] = report.write_report(out / "report.md", f"grukit compare --task {spec.task}", [
        ("Result", f"{spec.metric}: "
                   f"{'mean ± std over ' + str(len(seeds)) + ' seeds' if len(seeds) > 1 else 'seed ' + str(seeds[0])}; "
                   "s/epoch = median training seconds per epoch (evaluation excluded)\n\n" + table),
        ("Setup", "\n".join(f"- {n}" for n in [*spec.notes, training_note(spec.train_config)])),
        ("Learning curves", report.figure("curves", "curves.png")),
    ])
    best = (min if spec.lower_is_better else max)(lines, key=lambda ln: ln["mean"])
    summary = f"compare --task {spec.task} ({len(seeds)} seed(s)): best {best['model']}\n" + table
    return {"summary": summary, "files": files, "metrics": metrics}


# ----------------------------------------------------------------------------- command

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", choices=TASKS, required=True, help="which task to compare on")
    parser.add_argument("--seeds", type=int, default=1, help="runs per network, seeds seed..seed+N-1 (default 1)")
    parser.add_argument("--cells", default=",".join(KINDS),
                        help=f"comma-separated networks (default {','.join(KINDS)})")
    parser.add_argument("--hidden", type=int, default=None,
                        help="GRU hidden size; the others are matched to its parameter count (default: per task)")
    parser.add_argument("--length", type=int, default=None, help="adding: T (default 200); copy: blank length (100)")
    parser.add_argument("--train-size", type=int, default=None, help="adding/copy: training sequences (16000)")
    parser.add_argument("--steps", type=int, default=None, help="adding/copy: steps per epoch (default 100)")
    parser.add_argument("--lr", type=float, default=None, help="learning rate (default: per task)")
    parser.add_argument("--batch-size", type=int, default=None, help="batch size (default: per task)")
    parser.add_argument("--limit", type=int, default=None,
                        help="music, speech: at most N items per split; classify: a seeded subset of N sentences; "
                             "forecast: the first N rows")
    parser.add_argument("--mat", type=Path, default=None, help="music: a JSB_Chorales.mat-style file")
    parser.add_argument("--dir", type=Path, default=None, help="speech: a folder of FSDD-style wav files")


def build_parser_for_tests() -> argparse.ArgumentParser:
    """This command's parser with the CLI's common options (for tests and doctests)."""
    from grukit.cli import add_common_arguments

    parser = argparse.ArgumentParser(prog="grukit compare")
    add_arguments(parser)
    add_common_arguments(parser)
    return parser


def run(args) -> dict:
    from grukit.errors import UsageError
    from grukit.tasks.common import check_at_least, check_common

    kinds = tuple(k.strip() for k in args.cells.split(",") if k.strip())
    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds:
        raise UsageError(f"--cells: expected a comma-separated subset of {KINDS}, got {args.cells!r}")
    twice = sorted({k for k in kinds if kinds.count(k) > 1})
    if twice:
        raise UsageError(f"--cells: expected each network at most once, got {args.cells!r} "
                         f"({', '.join(twice)} more than once)")
    for name, tasks in TASK_FLAGS.items():
        if getattr(args, name, None) is not None and args.task not in tasks:
            raise UsageError(f"--{name.replace('_', '-')}: expected only with --task {' or '.join(tasks)}, "
                             f"got --task {args.task}")
    check_at_least(args, ("seeds", "hidden", "length", "train_size", "steps", "limit", "batch_size"))
    if args.task == "adding" and args.length is not None and args.length < 2:
        raise UsageError(f"--length: expected an integer >= 2 for --task adding, got {args.length}")
    if args.seed + args.seeds - 1 >= 2**63:  # each run's seed must be one --seed accepts
        raise UsageError(f"--seeds: expected --seed + --seeds - 1 < 2**63 (each run's seed), got --seed {args.seed} "
                         f"and --seeds {args.seeds}")
    check_common(args, threads=1)  # one torch thread for every network unless --threads: fair on a busy machine
    spec = SPECS[args.task](args, kinds)
    result = compare(spec, kinds, [args.seed + i for i in range(args.seeds)], Path(args.out), args)
    return result
