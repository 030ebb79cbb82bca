"""Gate blocks shared by every converter: reorder (r, z, n) and flip the z convention.

grukit stacks the three gates of a weight or bias as rows (r, z, n) and updates
h = z ⊙ n + (1 − z) ⊙ h_prev. torch, Keras and ONNX update h = (1 − z') ⊙ n + z' ⊙ h_prev,
so z' = 1 − z = σ(−a_z): their z pre-activation is ours negated. Negating the z rows
of both weights and both biases is therefore exact (no rounding), and so is a
permutation of the blocks.

    torch  rows (r, z', n)     = flip_z(ours)
    Keras  columns (z', r, n), ONNX rows (z', r, n) = to_zrn(ours)

Example:
    >>> import torch
    >>> w = torch.arange(6.0)                      # rows r = [0, 1], z = [2, 3], n = [4, 5]
    >>> flip_z(w).tolist()
    [0.0, 1.0, -2.0, -3.0, 4.0, 5.0]
    >>> to_zrn(w).tolist()
    [-2.0, -3.0, 0.0, 1.0, 4.0, 5.0]
    >>> torch.equal(from_zrn(to_zrn(w)), w)
    True
"""
from __future__ import annotations

import torch
from torch import Tensor


def _blocks(w: Tensor, what: str) -> tuple[Tensor, Tensor, Tensor]:
    if w.shape[0] % 3:
        raise ValueError(f"{what}: expected a first dimension of 3·H (three gates), got shape {tuple(w.shape)}")
    a, b, c = w.chunk(3, dim=0)  # 3 × (H, ·)
    return a, b, c


def flip_z(w: Tensor) -> Tensor:
    """(r, z, n) ↔ (r, −z, n) along dim 0: grukit ↔ torch. Its own inverse."""
    r, z, n = _blocks(w, "flip_z")
    return torch.cat([r, -z, n])  # (3H, ·)


def to_zrn(w: Tensor) -> Tensor:
    """grukit rows (r, z, n) -> peer rows (−z, r, n) along dim 0 (Keras, ONNX)."""
    r, z, n = _blocks(w, "to_zrn")
    return torch.cat([-z, r, n])  # (3H, ·)


def from_zrn(w: Tensor) -> Tensor:
    """peer rows (z', r, n) -> grukit rows (r, −z', n) along dim 0 (Keras, ONNX)."""
    z, r, n = _blocks(w, "from_zrn")
    return torch.cat([r, -z, n])  # (3H, ·)


def layer_names(model) -> list[tuple[int, bool, str]]:
    """(layer k, reverse?, parameter suffix) for every layer and direction of a grukit
    GRU, in torch's order (l0, l0_reverse, l1, ...); a GRUCell is [(0, False, "")]."""
    if not hasattr(model, "num_layers"):
        return [(0, False, "")]
    D = 2 if model.bidirectional else 1
    return [(k, d == 1, f"_l{k}" + ("_reverse" if d else "")) for k in range(model.num_layers) for d in range(D)]
