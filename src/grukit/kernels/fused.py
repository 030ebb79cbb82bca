"""The `fused` backend: one autograd node for a whole sequence, with hand-written BPTT.

Forward (per step t, in walking order; a = pre-activation, m = mask):

    gx       = x W_xᵀ + b_x                        all steps in one GEMM    (T, N, 3H)
    r, z     = σ(gx_r + U_r h_prev + b_hr), σ(gx_z + U_z h_prev + b_hz)
    after:   g_n = U_n h_prev + b_hn;  n = tanh(gx_n + r ⊙ g_n)
    before:  q = r ⊙ h_prev;           n = tanh(gx_n + U_n q + b_hn)
    h        = m ⊙ (z ⊙ n + (1 − z) ⊙ h_prev) + (1 − m) ⊙ h_prev;   out_t = m ⊙ h

Cache (saved for backward, indexed by time t): h_prev, r, z, n and, for
reset="after", g_n: (4 or 5)·N·H values per step. No per-step autograd graph.

Backward (walking the steps in the opposite order; only dh is serial):

    dh      += m ⊙ d_out_t                  (output gradient enters the state)
    dĥ       = m ⊙ dh;  dh ← (1 − m) ⊙ dh   (through the mask)
    dn       = dĥ ⊙ z;   dz = dĥ ⊙ (n − h_prev);   dh += dĥ ⊙ (1 − z)
    da_n     = dn ⊙ (1 − n²);   da_z = dz ⊙ z ⊙ (1 − z)
    after:   dr = da_n ⊙ g_n;  dg = [da_r, da_z, da_n ⊙ r]       dh += dg U
    before:  dq = da_n U_n;    dr = dq ⊙ h_prev;  dh += dq ⊙ r + [da_r, da_z] U_rz
    da_r     = dr ⊙ r ⊙ (1 − r)

After the loop, with da = [da_r, da_z, da_n] over all steps (T, N, 3H):

    dx = da W_x;  dW_x = daᵀ x;  db_x = Σ da
    after:   dW_h = dgᵀ h_prev;  db_h = Σ dg
    before:  dW_h = [da_r, da_z]ᵀ h_prev ; da_nᵀ q;   db_h = Σ da
    dh0 = dh

Example:
    >>> import torch
    >>> from grukit.kernels import fused
    >>> T, N, I, H = 5, 2, 3, 4
    >>> W_x = torch.randn(3 * H, I, requires_grad=True)
    >>> out, h_n = fused.sequence(torch.randn(T, N, I), torch.zeros(N, H), W_x,
    ...     torch.randn(3 * H, H), None, None, reset="before", mask=None, reverse=False)
    >>> (out.sum() + h_n.sum()).backward(); W_x.grad.shape
    torch.Size([12, 3])
"""
from __future__ import annotations

import torch
from torch import Tensor

from grukit import functional
from grukit.kernels._first_order import first_order_only, reverse_mode_only

name = "fused"


def available() -> bool:
    return True


def _forward(x, h0, weight_x, weight_h, bias_x, bias_h, reset, mask, reverse):
    """The forward pass; returns output, h_n and the cache of the docstring."""
    T, N, _ = x.shape
    H = h0.shape[-1]
    gx = functional.project_input(x, weight_x, bias_x)  # (T, N, 3H)
    U_rz, U_n = weight_h[: 2 * H], weight_h[2 * H :]  # (2H, H), (H, H)
    b_rz = None if bias_h is None else bias_h[: 2 * H]  # (2H,)
    b_n = None if bias_h is None else bias_h[2 * H :]  # (H,)
    output = x.new_empty(T, N, H)  # (T, N, H)
    h_prevs = x.new_empty(T, N, H)  # (T, N, H)
    rzn = x.new_empty(T, N, 3 * H)  # (T, N, 3H) r, z, n per step
    g_ns = x.new_empty(T, N, H) if reset == "after" else None  # (T, N, H) U_n h_prev + b_hn
    h = h0  # (N, H)
    for t in range(T - 1, -1, -1) if reverse else range(T):
        h_prevs[t] = h
        gx_r, gx_z, gx_n = gx[t].split(H, dim=-1)  # 3 × (N, H)
        if reset == "after":
            g = h @ weight_h.T if bias_h is None else torch.addmm(bias_h, h, weight_h.T)  # (N, 3H)
            g_r, g_z, g_n = g.split(H, dim=-1)  # 3 × (N, H)
            r = torch.sigmoid(gx_r + g_r)  # (N, H)
            z = torch.sigmoid(gx_z + g_z)  # (N, H)
            n = torch.tanh(gx_n + r * g_n)  # (N, H)
            g_ns[t] = g_n
        else:
            g = h @ U_rz.T if b_rz is None else torch.addmm(b_rz, h, U_rz.T)  # (N, 2H)
            g_r, g_z = g.split(H, dim=-1)  # 2 × (N, H)
            r = torch.sigmoid(gx_r + g_r)  # (N, H)
            z = torch.sigmoid(gx_z + g_z)  # (N, H)
            a_n = gx_n + (r * h) @ U_n.T  # (N, H)
            n = torch.tanh(a_n if b_n is None else a_n + b_n)  # (N, H)
        h_new = torch.lerp(h, n, z)  # (N, H)  = z ⊙ n + (1 − z) ⊙ h
        if mask is None:
            h = h_new  # (N, H)
            output[t] = h_new
        else:
            m = mask[t].unsqueeze(-1)  # (N, 1)
            h = torch.lerp(h, h_new, m)  # (N, H)
            output[t] = m * h_new
        rzn[t] = torch.cat((r, z, n), dim=-1)
    if T == 0:  # no step: h_n is a copy, so an edit of it in place leaves the caller's h0 alone
        h = h0.clone()  # (N, H)
    return output, h, (h_prevs, rzn, g_ns)


def _backward(d_output, d_h_n, x, weight_x, weight_h, has_bias, reset, mask, reverse, cache):
    """The backward pass of the docstring; returns dx, dh0, dW_x, dW_h, db_x, db_h."""
    h_prevs, rzn, g_ns = cache
    T, N, H = h_prevs.shape
    U_rz, U_n = weight_h[: 2 * H], weight_h[2 * H :]  # (2H, H), (H, H)
    da = torch.empty_like(rzn)  # (T, N, 3H)  [da_r, da_z, da_n]
    dh = d_h_n.clone()  # (N, H)
    for t in range(T) if reverse else range(T - 1, -1, -1):
        h_prev = h_prevs[t]  # (N, H)
        r, z, n = rzn[t].split(H, dim=-1)  # 3 × (N, H)
        if mask is None:
            dh_hat = dh + d_output[t]  # (N, H)
            dh = dh_hat * (1 - z)  # (N, H)
        else:
            m = mask[t].unsqueeze(-1)  # (N, 1)
            dh_hat = m * (dh + d_output[t])  # (N, H)
            dh = (1 - m) * dh + dh_hat * (1 - z)  # (N, H)
        da_n = dh_hat * z * (1 - n * n)  # (N, H)
        da_z = dh_hat * (n - h_prev) * z * (1 - z)  # (N, H)
        if reset == "after":
            da_r = da_n * g_ns[t] * r * (1 - r)  # (N, H)
            dg = torch.cat((da_r, da_z, da_n * r), dim=-1)  # (N, 3H)
            dh = torch.addmm(dh, dg, weight_h)  # (N, H)
        else:
            dq = da_n @ U_n  # (N, H)
            da_r = dq * h_prev * r * (1 - r)  # (N, H)
            dh = torch.addmm(dh + dq * r, torch.cat((da_r, da_z), dim=-1), U_rz)  # (N, H)
        da[t, :, :H] = da_r
        da[t, :, H : 2 * H] = da_z
        da[t, :, 2 * H :] = da_n
    da_2d = da.reshape(T * N, 3 * H)  # (T·N, 3H)
    dx = (da_2d @ weight_x).reshape(T, N, x.shape[2])  # (T, N, I)
    dW_x = da_2d.T @ x.reshape(T * N, x.shape[2])  # (3H, I)
    hp_2d = h_prevs.reshape(T * N, H)  # (T·N, H)
    if reset == "after":
        dg_2d = da_2d.clone()  # (T·N, 3H)
        dg_2d[:, 2 * H :] *= rzn.reshape(T * N, 3 * H)[:, :H]  # da_n ⊙ r
        dW_h = dg_2d.T @ hp_2d  # (3H, H)
        db_h = dg_2d.sum(0) if has_bias else None  # (3H,)
    else:
        q_2d = rzn.reshape(T * N, 3 * H)[:, :H] * hp_2d  # (T·N, H)  q = r ⊙ h_prev
        dW_h = torch.cat((da_2d[:, : 2 * H].T @ hp_2d, da_2d[:, 2 * H :].T @ q_2d))  # (3H, H)
        db_h = da_2d.sum(0) if has_bias else None  # (3H,)
    db_x = da_2d.sum(0) if has_bias else None  # (3H,)
    return dx, dh, dW_x, dW_h, db_x, db_h


class _Sequence(torch.autograd.Function):
    """One layer, one direction, whole sequence; see the module docstring."""

    @staticmethod
    def forward(ctx, x, h0, weight_x, weight_h, bias_x, bias_h, reset, mask, reverse):
        output, h_n, cache = _forward(x, h0, weight_x, weight_h, bias_x, bias_h, reset, mask, reverse)
        h_prevs, rzn, g_ns = cache
        ctx.save_for_backward(x, weight_x, weight_h, mask, h_prevs, rzn, g_ns)
        ctx.reset, ctx.reverse, ctx.has_bias = reset, reverse, bias_x is not None
        return output, h_n

    @staticmethod
    @first_order_only("fused")
    def backward(ctx, d_output, d_h_n):
        x, weight_x, weight_h, mask, h_prevs, rzn, g_ns = ctx.saved_tensors
        if d_output is None:
            d_output = torch.zeros_like(h_prevs)  # (T, N, H)
        if d_h_n is None:
            d_h_n = h_prevs.new_zeros(h_prevs.shape[1:])  # (N, H); h_prevs[0] would not exist when T = 0
        grads = _backward(
            d_output.contiguous(), d_h_n, x, weight_x, weight_h, ctx.has_bias, ctx.reset, mask, ctx.reverse,
            (h_prevs, rzn, g_ns),
        )
        return (*grads, None, None, None)


def sequence(x: Tensor, h0: Tensor, weight_x, weight_h, bias_x, bias_h, *, reset, mask=None, reverse=False):
    """See `grukit.kernels`: (T, N, I), (N, H) -> (T, N, H), (N, H)."""
    if (bias_x is None) != (bias_h is None):
        raise ValueError("bias_x, bias_h: expected both tensors or both None, got one of each")
    functional.check_reset(reset)  # any other string would silently be read as "before"
    functional.check_dims(x, h0)
    reverse_mode_only("fused", x, h0, weight_x, weight_h, bias_x, bias_h)
    return _Sequence.apply(x, h0, weight_x, weight_h, bias_x, bias_h, reset, mask, reverse)


def step(x_t, h_prev, weight_x, weight_h, bias_x, bias_h, *, reset):
    """See `grukit.kernels`: (N, I), (N, H) -> (N, H); inference, so plain ops suffice."""
    return functional.cell(x_t, h_prev, weight_x, weight_h, bias_x, bias_h, reset=reset)
