"""The weights of the epochs around the best one, for a snapshot average.

    window(b) = {e : b − k ≤ e ≤ b + k, epoch e ran}          b the best epoch, k = `around`

`fit` (TrainConfig.snapshots = k) records every epoch's weights here and returns those of
window(b) in `FitResult.snapshots`; a task may then average its predictions over them
(classify: the mean probability of the ensembles of epochs b−1, b, b+1). The best epoch is
only known as epochs go by, so `Snapshots` holds the last k epochs (any of them may precede
a later best) and the current best's window (it grows while the k epochs after b run).
Its tensors and JSON go into the training state file, so a resumed run ends with the same
window as an unbroken one.

Example:
    >>> import torch
    >>> from grukit.snapshots import Snapshots
    >>> s = Snapshots(1)
    >>> for epoch, best in [(1, True), (2, True), (3, False), (4, False)]:
    ...     s.record(epoch, {"w": torch.tensor([float(epoch)])}, best)
    >>> [e for e, _ in s.around_best()]
    [1, 2, 3]
"""
from __future__ import annotations

import torch

Weights = dict[str, torch.Tensor]


class Snapshots:
    """window(b) = {e : b − k ≤ e ≤ b + k, e ran}, k = `around`: the weights of those epochs, and of the
    last k epochs (any may precede a later best). See the module docstring for an example."""

    def __init__(self, around: int):
        if around < 0:
            raise ValueError(f"around: expected an integer >= 0, got {around}")
        self.around = around
        self.weights: dict[int, Weights] = {}  # epoch -> weights (CPU), each held once
        self.recent: list[int] = []  # the last `around` epochs, oldest first
        self.window: list[int] = []  # the current best epoch's window so far, in order
        self.best = 0

    def record(self, epoch: int, weights: Weights, is_best: bool) -> None:
        """Note epoch `epoch`'s weights (already copied to the CPU); `is_best`: it is the new best epoch."""
        if not self.around:
            return
        self.weights[epoch] = weights
        if is_best:
            self.best = epoch
            self.window = [e for e in self.recent if e >= epoch - self.around] + [epoch]
        elif self.best and epoch <= self.best + self.around:
            self.window.append(epoch)
        self.recent = (self.recent + [epoch])[-self.around:]
        keep = set(self.recent) | set(self.window)
        self.weights = {e: w for e, w in self.weights.items() if e in keep}

    def around_best(self) -> list[tuple[int, Weights]]:
        """(epoch, weights) of the best epoch's window, in epoch order; [] when `around` is 0."""
        return [(e, self.weights[e]) for e in self.window]

    def tensors(self) -> dict[str, torch.Tensor]:
        """The held weights as flat tensors for a state file: "snapshot.<epoch>.<name>"."""
        return {f"snapshot.{e}.{k}": v for e, w in self.weights.items() for k, v in w.items()}

    def meta(self) -> dict:
        """The JSON part for a state file (`restore` reads it back)."""
        return {"around": self.around, "recent": self.recent, "window": self.window, "best": self.best}

    @classmethod
    def restore(cls, around: int, tensors: dict[str, torch.Tensor], meta: dict | None, path: object = "the state"
                ) -> Snapshots:
        """The `Snapshots` a state file `path` holds (`tensors`, `meta`); empty when it holds none (`meta`
        None). ValueError naming `path` when an epoch its JSON lists has no tensors."""
        snaps = cls(around)
        if not meta or not around:
            return snaps
        snaps.recent, snaps.window, snaps.best = list(meta["recent"]), list(meta["window"]), int(meta["best"])
        for e in set(snaps.recent) | set(snaps.window):
            prefix = f"snapshot.{e}."
            snaps.weights[e] = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
            if not snaps.weights[e]:
                raise ValueError(f"snapshots: expected the weights of epoch {e} in {path}, got none")
        return snaps
