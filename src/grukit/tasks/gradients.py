"""The vanishing-gradient picture: how much the loss still feels an input k steps back.

For the adding problem of length T (grukit.tasks.synthetic), a batch of n sequences
and a network with parameters θ:

    g(k) = (1/n) Σ_i ‖∂L_i/∂x_{i, T−k}‖₂        k = 0 .. T−1  (the lag before the last step)

A plain tanh-RNN multiplies T−t Jacobians diag(1 − h²) U, whose norm is mostly below
1, so g(k) decays geometrically with k; the GRU's path h_t = (1 − z) ⊙ h_{t−1} + …
(the LSTM's c_t = f ⊙ c_{t−1} + …) can carry it with a factor near 1. We measure g at
initialisation and after training each network (at matched parameter counts) on the
adding problem, and draw both on one log-scale figure.

Example:
    >>> import torch
    >>> from grukit.tasks.synthetic import SyntheticModel, adding_problem
    >>> from grukit.tasks.gradients import gradient_by_lag
    >>> x, y = adding_problem(8, 30, torch.Generator().manual_seed(0))
    >>> gradient_by_lag(SyntheticModel("adding", 16, cell="rnn"), x, y).shape
    (30,)
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import time
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import TensorDataset

from grukit.tasks.arch import LABELS, count_parameters, matched_sizes

log = logging.getLogger(__name__)
KINDS = ("gru", "lstm", "rnn")
COLOURS = {"gru": "tab:blue", "lstm": "tab:orange", "rnn": "tab:red"}


def gradient_by_lag(model: nn.Module, x: Tensor, y: Tensor) -> np.ndarray:
    """g(k) for k = 0..T−1 (index k = lag before the last step), averaged over the batch."""
    model.eval()
    device = next(model.parameters()).device
    x = x.to(device).clone().requires_grad_(True)  # (n, T, 2)
    y_hat = model(x)  # (n,)
    # sequences do not interact, so ∂(Σ_i L_i)/∂x_i = ∂L_i/∂x_i: one backward gives every sequence's own gradient
    ((y_hat - y.to(device)) ** 2).sum().backward()
    g = x.grad.norm(dim=-1).mean(dim=0)  # (T,) norm over features, mean over the batch
    return g.flip(0).detach().cpu().double().numpy()  # (T,) index = lag k = T−1−t


def figure(lags: np.ndarray, curves: dict[str, dict[str, np.ndarray]], labels: dict[str, str], path: Path,
           title: str) -> Path:
    """Two panels (initialisation, trained), g(k) against k on a log y axis, one line per network."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), dpi=100, sharey=True)
    for ax, stage, name in zip(axes, ("init", "trained"), ("at initialisation", "after training")):
        for kind, by_stage in curves.items():
            ax.semilogy(lags, np.maximum(by_stage[stage], 1e-30), color=COLOURS.get(kind), label=labels[kind])
        ax.set_title(name)
        ax.set_xlabel("lag k = T − t (steps before the loss)")
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel("mean ‖∂L/∂x_t‖")
    axes[1].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--length", type=int, default=100, help="adding-problem length T (default 100)")
    parser.add_argument("--hidden", type=int, default=64,
                        help="GRU hidden units; LSTM and RNN matched to its parameter count (default 64)")
    parser.add_argument("--steps", type=int, default=100, help="training steps per epoch (default 100)")
    parser.add_argument("--batch-size", type=int, default=32, help="training batch size (default 32)")
    parser.add_argument("--lr", type=float, default=3e-3, help="learning rate (default 3e-3)")
    parser.add_argument("--probe", type=int, default=64, help="sequences averaged in g(k) (default 64)")


def run(args) -> dict:
    from grukit import report
    from grukit.distributed import is_main
    from grukit.tasks import synthetic as S
    from grukit.tasks.common import check_at_least, check_common
    from grukit.train import TrainConfig, fit

    check_at_least(args, ("length",), least=2)  # the adding problem needs two steps to mark
    check_at_least(args, ("hidden", "steps", "batch_size", "probe"))
    check_common(args, threads=1)  # small models run faster on one thread of a busy machine
    t0 = time.perf_counter()
    out = Path(args.out)
    T = args.length
    build = lambda kind, H: S.SyntheticModel("adding", H, cell=kind, backend=args.backend)  # noqa: E731
    hidden = matched_sizes(KINDS, args.hidden, build)
    train = TensorDataset(*S.make_data("adding", max(1000, args.steps * args.batch_size), T, 10_000 + args.seed))
    val = S.make_data("adding", 500, T, 20_000 + args.seed)
    probe = S.make_data("adding", args.probe, T, 40_000 + args.seed)
    config = TrainConfig(epochs=args.epochs or 10, steps_per_epoch=args.steps, batch_size=args.batch_size, lr=args.lr,
                         schedule="constant", weight_decay=0.0, seed=args.seed, device=args.device, progress=False)
    curves, rows, labels = {}, [], {}
    for kind in KINDS:
        torch.manual_seed(args.seed)
        model = build(kind, hidden[kind])
        init = gradient_by_lag(model, *probe)
        result = fit(model, train, val, step_loss=S.step_loss, evaluate=S.evaluate, config=config,
                     out=out / kind)
        trained = gradient_by_lag(model, *probe)
        curves[kind] = {"init": init, "trained": trained}
        mse = result.best["val_loss"]
        labels[kind] = f"{LABELS[kind]}, {count_parameters(model):,} params, val MSE {mse:.3g}"
        rows.append({"model": LABELS[kind], "hidden": hidden[kind], "parameters": count_parameters(model),
                     "val MSE": mse, "init g(T-1)/g(0)": init[-1] / init[0],
                     "trained g(T-1)/g(0)": trained[-1] / trained[0]})
    if not is_main():  # under torchrun only rank 0 writes the report
        return {}
    lags = np.arange(T)
    files = {"figure": figure(lags, curves, labels, out / "gradients.png",
                              f"adding problem, T = {T}: gradient reaching x_t from the loss at step T")}
    metrics = {"task": "gradients", "length": T, "rows": rows, "seconds": time.perf_counter() - t0,
               "train_config": dataclasses.asdict(config),
               "curves": {k: {s: v.tolist() for s, v in c.items()} for k, c in curves.items()}}
    files["metrics"] = report.write_json(out / "metrics.json", metrics)
    columns = ["model", "hidden", "parameters", "val MSE", "init g(T-1)/g(0)", "trained g(T-1)/g(0)"]
    table = report.table([{**r, **{c: f"{r[c]:.3g}" for c in columns[3:]}} for r in rows], columns)
    files["report"] = report.write_report(out / "report.md", "grukit gradients", [
        ("Setup", f"adding problem, T = {T}; each network trained {report.plural(config.epochs, 'epoch')} x "
                  f"{config.steps_per_epoch} steps of batch {config.batch_size} (AdamW, lr {config.lr}), validated on "
                  f"{len(val[1])} sequences; "
                  f"gradients probed on {args.probe} others; hidden sizes matched to the GRU's parameter count"),
        ("Result", f"g(k) = mean over {args.probe} sequences of ||dL/dx_t||, k = T - t; "
                   f"val MSE of predicting 1 = {S.memoryless_loss('adding', val[1]):.3f} (1/6 in expectation)\n\n"
                   + table),
        ("Figure", report.figure("gradients", "gradients.png")),
    ])
    summary = f"vanishing gradients on the adding problem, T = {T} ({report.seconds(metrics['seconds'])})\n" + table
    return {"summary": summary, "files": files, "metrics": metrics}
