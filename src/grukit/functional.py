"""The GRU equations as pure functions on tensors.

With gate order (r, z, n) in every (3H, ·) matrix and the seed notes' update convention:

    r_t = σ(W_r x_t + b_xr + U_r h_{t-1} + b_hr)                    reset gate
    z_t = σ(W_z x_t + b_xz + U_z h_{t-1} + b_hz)                    update gate
    n_t = tanh(W_n x_t + b_xn + U_n (r_t ⊙ h_{t-1}) + b_hn)         reset="before"
    n_t = tanh(W_n x_t + b_xn + r_t ⊙ (U_n h_{t-1} + b_hn))         reset="after"
    h_t = z_t ⊙ n_t + (1 − z_t) ⊙ h_{t-1}

`gates` is the cell (it knows nothing about time); `sequence` is the time loop (it
knows nothing about gates: it calls `gates` and `update`). Everything here is plain
autograd-differentiable torch; `grukit.kernels.eager` runs it as a backend.

Example:
    >>> import torch
    >>> from grukit import functional as F
    >>> H, I = 4, 3
    >>> W_x, W_h = torch.randn(3 * H, I), torch.randn(3 * H, H)
    >>> h = F.cell(torch.randn(2, I), torch.zeros(2, H), W_x, W_h, None, None, reset="before")
    >>> h.shape
    torch.Size([2, 4])
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

RESETS = ("before", "after")


class Gates(NamedTuple):
    """Gate activations r, z and the candidate n (each (..., H))."""

    r: Tensor
    z: Tensor
    n: Tensor


def check_reset(reset: str) -> str:
    """`reset`, or ValueError unless it is "before" or "after"."""
    if reset not in RESETS:
        raise ValueError(f"reset: expected one of {RESETS}, got {reset!r}")
    return reset


def check_dims(x: Tensor, h0: Tensor) -> None:
    """ValueError naming the argument unless x is (T, N, I) and h0 is (N, H): what every backend's sequence indexes."""
    if x.dim() != 3:
        raise ValueError(f"x: expected a (T, N, I) tensor, got shape {tuple(x.shape)}")
    if h0.dim() != 2:
        raise ValueError(f"h0: expected an (N, H) tensor, got shape {tuple(h0.shape)}")


def project_input(x: Tensor, weight_x: Tensor, bias_x: Tensor | None) -> Tensor:
    """gx = W_x x + b_x for every step at once: (..., I) -> (..., 3H)."""
    gx = x @ weight_x.T  # (..., 3H)
    return gx if bias_x is None else gx + bias_x  # (..., 3H)


def gates(gx: Tensor, h_prev: Tensor, weight_h: Tensor, bias_h: Tensor | None, *, reset: str) -> Gates:
    """r, z, n of one step from the projected input gx (N, 3H) and the state h_prev (N, H)."""
    check_reset(reset)  # any other string would silently be read as "before"
    H = h_prev.shape[-1]
    gx_r, gx_z, gx_n = gx.split(H, dim=-1)  # 3 × (N, H)
    if reset == "after":
        gh = h_prev @ weight_h.T  # (N, 3H)
        if bias_h is not None:
            gh = gh + bias_h  # (N, 3H)
        gh_r, gh_z, gh_n = gh.split(H, dim=-1)  # 3 × (N, H)
        r = torch.sigmoid(gx_r + gh_r)  # (N, H)
        z = torch.sigmoid(gx_z + gh_z)  # (N, H)
        n = torch.tanh(gx_n + r * gh_n)  # (N, H)
        return Gates(r, z, n)
    U_rz, U_n = weight_h[: 2 * H], weight_h[2 * H :]  # (2H, H), (H, H)
    gh_rz = h_prev @ U_rz.T  # (N, 2H)
    if bias_h is not None:
        gh_rz = gh_rz + bias_h[: 2 * H]  # (N, 2H)
    gh_r, gh_z = gh_rz.split(H, dim=-1)  # 2 × (N, H)
    r = torch.sigmoid(gx_r + gh_r)  # (N, H)
    z = torch.sigmoid(gx_z + gh_z)  # (N, H)
    a_n = gx_n + (r * h_prev) @ U_n.T  # (N, H)
    if bias_h is not None:
        a_n = a_n + bias_h[2 * H :]  # (N, H)
    n = torch.tanh(a_n)  # (N, H)
    return Gates(r, z, n)


def update(z: Tensor, n: Tensor, h_prev: Tensor) -> Tensor:
    """h = z ⊙ n + (1 − z) ⊙ h_prev  (N, H)."""
    return z * n + (1 - z) * h_prev  # (N, H)


def cell(
    x_t: Tensor,
    h_prev: Tensor,
    weight_x: Tensor,
    weight_h: Tensor,
    bias_x: Tensor | None,
    bias_h: Tensor | None,
    *,
    reset: str,
) -> Tensor:
    """One GRU step: x_t (N, I), h_prev (N, H) -> h (N, H)."""
    gx = project_input(x_t, weight_x, bias_x)  # (N, 3H)
    r, z, n = gates(gx, h_prev, weight_h, bias_h, reset=reset)  # 3 × (N, H)
    return update(z, n, h_prev)  # (N, H)


def sequence(
    x: Tensor,
    h0: Tensor,
    weight_x: Tensor,
    weight_h: Tensor,
    bias_x: Tensor | None,
    bias_h: Tensor | None,
    *,
    reset: str,
    mask: Tensor | None = None,
    reverse: bool = False,
    return_gates: bool = False,
):
    """Run the cell over time: x (T, N, I), h0 (N, H) -> output (T, N, H), h_n (N, H).

    `mask` (T, N) is 1 on real steps and 0 on padding: a padded step carries the
    state unchanged and outputs 0 (padded steps of x must be finite: a NaN there still
    reaches the state through 0·NaN; grukit.GRU zeroes them). `reverse` walks
    t = T-1 .. 0 (output stays in time order). With `return_gates`, also returns Gates
    of (T, N, H) tensors (zeros on padded steps).
    """
    check_reset(reset)  # also where no step reads it (T = 0)
    check_dims(x, h0)
    gx = project_input(x, weight_x, bias_x)  # (T, N, 3H), one GEMM for all steps
    T = x.shape[0]
    if T == 0:  # no step: the state passes through, as a tensor of its own like every backend's h_n
        empty = gx[..., : h0.shape[-1]]  # (0, N, H), in the graph of x and W_x like the other backends' output
        return (empty, h0.clone()) if not return_gates else (empty, h0.clone(), Gates(empty, empty, empty))
    order = range(T - 1, -1, -1) if reverse else range(T)
    h = h0  # (N, H)
    outputs: list[Tensor | None] = [None] * T
    seen: list[Gates | None] = [None] * T
    for t in order:
        g = gates(gx[t], h, weight_h, bias_h, reset=reset)  # 3 × (N, H)
        h_new = update(g.z, g.n, h)  # (N, H)
        if mask is None:
            h, out = h_new, h_new  # (N, H)
        else:
            m = mask[t].unsqueeze(-1)  # (N, 1)
            h = m * h_new + (1 - m) * h  # (N, H)
            out = m * h_new  # (N, H)
            g = Gates(*(m * a for a in g))  # 3 × (N, H)
        outputs[t] = out
        seen[t] = g
    output = torch.stack(outputs)  # (T, N, H)
    if not return_gates:
        return output, h
    stacked = Gates(*(torch.stack(parts) for parts in zip(*seen)))  # 3 × (T, N, H)
    return output, h, stacked
