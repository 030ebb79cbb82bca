"""matplotlib figures for the task reports: loss curves, forecasts, gate heatmaps.

Every figure is written at a fixed pixel size, `SIZE` = (width, height) = (1200, 600)
for curves and forecasts and (1200, 800) for the two-panel gate heatmap, with the Agg
backend (no display needed). Each function returns the path it wrote.

    gates.png   z_t[j] and r_t[j] for one input: rows j = hidden units, columns t = time.
                z → 1 (bright) takes the new candidate ñ_t, z → 0 keeps h_{t-1};
                r → 0 lets the candidate ignore h_{t-1}.

Example:
    >>> import tempfile, os, numpy as np
    >>> from grukit.plots import loss_curves
    >>> path = loss_curves([{"epoch": 1, "train_loss": 1.0, "val_loss": 1.2},
    ...                     {"epoch": 2, "train_loss": 0.8, "val_loss": 1.0}],
    ...                    os.path.join(tempfile.mkdtemp(), "loss.png"))
    >>> path.name
    'loss.png'
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

DPI = 100
SIZE = (1200, 600)  # pixels of loss.png and forecast.png
GATES_SIZE = (1200, 800)  # pixels of gates.png


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _literal(draw: Callable[..., Path]) -> Callable[..., Path]:
    """Draw every text as written: a file's column, label or folder name with two "$" in it is no math (before,
    matplotlib parsed it as such and the run failed after training; found by a review)."""
    @functools.wraps(draw)
    def literal(*args, **kwargs) -> Path:
        import matplotlib

        with matplotlib.rc_context({"text.parse_math": False}):
            return draw(*args, **kwargs)

    return literal


def _integer_ticks(axis) -> None:
    """Ticks of `axis` at whole numbers only (epochs, time steps)."""
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)  # no bbox_inches="tight": the size stays exactly SIZE
    _pyplot().close(fig)
    return path


def curve(history: Sequence[dict], key: str, members: int = 1) -> tuple[str, list[float]]:
    """(label, per-epoch values) of `key`; an ensemble's summed train_loss divided by its M members.

    Example:
        >>> curve([{"train_loss": 3.0}, {"train_loss": 1.5}], "train_loss", members=3)
        ('train_loss / 3 (member mean)', [1.0, 0.5])
    """
    if key == "train_loss" and members > 1:
        return f"train_loss / {members} (member mean)", [row.get(key, np.nan) / members for row in history]
    return key, [row.get(key, np.nan) for row in history]


@_literal
def loss_curves(history: Sequence[dict], path: str | Path, *, keys: Sequence[str] | None = None,
                title: str = "training curves", members: int = 1) -> Path:
    """Per-epoch curves of `keys` (default: train_loss and every val_* key) from fit()'s history.

    members = M > 1: train_loss is an ensemble's sum of its M members' losses (each member trains
    on its own), drawn divided by M so that it shares a scale with the validation loss."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(SIZE[0] / DPI, SIZE[1] / DPI), dpi=DPI)
    epochs = [row["epoch"] for row in history]
    if keys is None:
        keys = ["train_loss"] + sorted({k for row in history for k in row if k.startswith("val_")})
    for key in keys:
        label, values = curve(history, key, members)
        ax.plot(epochs, values, marker="o", ms=3, label=label)
    _integer_ticks(ax.xaxis)  # epochs 1, 2, not 1.0, 1.2, …
    ax.set_xlabel("epoch")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return _save(fig, path)


@_literal
def forecast(t_history: np.ndarray, y_history: np.ndarray, t_future: np.ndarray, y_true: np.ndarray | None,
             predictions: dict[str, np.ndarray], path: str | Path, *, title: str = "forecast",
             ylabel: str = "") -> Path:
    """History, truth (None: a forecast past the data, no truth yet) and one line per forecaster over the
    horizon (one forecast origin); NaN (a gap) breaks a line."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(SIZE[0] / DPI, SIZE[1] / DPI), dpi=DPI)
    marker = "o" if len(t_future) <= 12 else None  # a forecast of one step is a point, not a line
    ax.plot(t_history, y_history, color="0.3", lw=1.2, label="history")
    if y_true is not None:
        ax.plot(t_future, y_true, color="black", lw=2, marker=marker, label="truth")
    for (name, y_hat), style in zip(predictions.items(), ["-", "--", ":", "-.", (0, (5, 1)), (0, (1, 1))]):
        ax.plot(t_future, y_hat, ls=style, lw=2 if name == "GRU" else 1.3, marker=marker, ms=4, label=name)
    ax.axvline(t_history[-1], color="0.6", lw=0.8)
    ax.set_title(title)
    ax.set_xlabel("time step")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(ncol=2)
    fig.tight_layout()
    return _save(fig, path)


@_literal
def gates(z: np.ndarray, r: np.ndarray, path: str | Path, *, title: str = "GRU gates for one input",
          xlabel: str = "time step t", xticklabels: Sequence[str] | None = None) -> Path:
    """Heatmaps of the update gate z and reset gate r, each (T, H), hidden units as rows."""
    plt = _pyplot()
    fig, axes = plt.subplots(2, 1, figsize=(GATES_SIZE[0] / DPI, GATES_SIZE[1] / DPI), dpi=DPI, sharex=True)
    for ax, values, name in zip(axes, (z, r), ("update gate z  (1: take candidate ñ, 0: keep h_prev)",
                                             "reset gate r  (0: candidate ignores h_prev)")):
        image = ax.imshow(np.asarray(values).T, aspect="auto", origin="lower", cmap="viridis",
                          vmin=0.0, vmax=1.0, interpolation="nearest")
        ax.set_ylabel("hidden unit j")
        ax.set_title(name)
        fig.colorbar(image, ax=ax, fraction=0.025, pad=0.01)
    axes[-1].set_xlabel(xlabel)
    _integer_ticks(axes[-1].xaxis)  # steps 0, 2, 4, not 0.0, 2.5, …
    if xticklabels is not None:
        T = len(xticklabels)
        ticks = np.linspace(0, T - 1, min(T, 100)).round().astype(int)  # a label per character of a textgen probe
        axes[-1].set_xticks(ticks)
        axes[-1].set_xticklabels([xticklabels[i] for i in ticks], fontsize=7, family="monospace")
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


CONFUSION_LABELS = 20  # classes up to which every cell shows its count and every class its label


@_literal
def confusion(matrix: np.ndarray, labels: Sequence[str], path: str | Path, *, title: str = "confusion") -> Path:
    """A confusion matrix (rows: truth, columns: prediction) with counts in the cells; with more than
    CONFUSION_LABELS classes, a colour bar instead of counts and the labels of every k-th class only (a
    text per cell made 150 classes take 24 s and a black square)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(SIZE[1] / DPI, SIZE[1] / DPI), dpi=DPI)
    image = ax.imshow(matrix, cmap="Blues", interpolation="nearest")
    C = len(labels)
    if C <= CONFUSION_LABELS:
        for (i, j), v in np.ndenumerate(matrix):  # the upper half of the colour scale is dark blue: white there
            ax.text(j, i, str(int(v)), ha="center", va="center", fontsize=8,
                    color="white" if image.norm(v) > 0.5 else "black")
    else:
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ticks = range(0, C, max(1, -(-C // CONFUSION_LABELS)))  # at most CONFUSION_LABELS labels per axis
    ax.set_xticks(ticks, [labels[k] for k in ticks], rotation=90 if C > 6 else 0, fontsize=8 if C > 6 else None)
    ax.set_yticks(ticks, [labels[k] for k in ticks], fontsize=8 if C > 6 else None)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    return _save(fig, path)


@_literal
def fold_scores(scores: dict[str, Sequence[float]], path: str | Path, *, title: str = "score per fold",
                xlabel: str = "test accuracy") -> Path:
    """One row of dots per model (its score on each cross-validation fold) with the mean as a bar."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(SIZE[0] / DPI, SIZE[1] / DPI), dpi=DPI)
    for row, values in enumerate(scores.values()):
        values = np.asarray(values, dtype=float)  # (K,)
        ax.scatter(values, np.full(len(values), row), s=18, alpha=0.7)
        ax.plot([values.mean()] * 2, [row - 0.3, row + 0.3], color="black", linewidth=2)
    ax.set_yticks(range(len(scores)), list(scores))
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)
