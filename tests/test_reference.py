"""Tests for grukit.reference, the NumPy float64 GRU at the root of the chain of checks.

- gradients: central finite differences on every input and parameter (single layer in
  every configuration; the bidirectional 2-layer stack with lengths; the model's loss);
- semantics: the z convention on hand-computable cases, masked steps, reverse, stacks;
- independent oracles: torch.nn.GRU (reset="after", weights converted by the z sign)
  and torch autograd on the equations written in torch (reset="before");
- the from-scratch model learns a 3-step-delay task; reference.py never imports torch;
- bad input raises ValueError naming the argument.
"""
from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from grukit import reference as ref

T, N, I, H = 5, 3, 3, 4
EPS = 1e-6  # central-difference step; the truncation error is O(EPS²)
FD_TOL = 1e-7  # max |analytic − numeric| / max |numeric|, per array


def rel_err(a, b):
    """max |a − b| / max(|a|, |b|): one number per array, scale-free."""
    scale = max(np.abs(a).max(), np.abs(b).max(), 1e-300)
    return float(np.abs(a - b).max() / scale)


def finite_difference(loss, arrays):
    """d loss / d array for every array in the dict `arrays` (perturbed in place)."""
    grads = {}
    for name, a in arrays.items():
        g = np.zeros_like(a)
        for idx in np.ndindex(a.shape):
            old = a[idx]
            a[idx] = old + EPS
            up = loss()
            a[idx] = old - EPS
            down = loss()
            a[idx] = old
            g[idx] = (up - down) / (2 * EPS)
        grads[name] = g
    return grads


def layer_inputs(rng, *, bias=True, I_=I):
    """x, h0 and the four parameters of one layer as a dict of float64 arrays."""
    arrays = {
        "x": rng.normal(size=(T, N, I_)),
        "h0": rng.normal(size=(N, H)) * 0.5,
        "weight_x": rng.normal(size=(3 * H, I_)) * 0.6,
        "weight_h": rng.normal(size=(3 * H, H)) * 0.6,
    }
    if bias:
        arrays["bias_x"] = rng.normal(size=3 * H) * 0.3
        arrays["bias_h"] = rng.normal(size=3 * H) * 0.3
    return arrays


def holey_mask():
    """Lengths 5, 2, 3 plus an interior gap in sequence 0 (a general 0/1 mask)."""
    mask = ref.lengths_to_mask(np.array([5, 2, 3]), T)  # (T, N)
    mask[1, 0] = 0.0
    return mask


# ----------------------------------------------------------------------------------
# gradients against central finite differences
# ----------------------------------------------------------------------------------


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
@pytest.mark.parametrize("reset", ["before", "after"])
def test_gru_backward_matches_finite_differences(reset, masked, reverse, bias):
    rng = np.random.default_rng(7)
    arrays = layer_inputs(rng, bias=bias)
    mask = holey_mask() if masked else None
    d_out = rng.normal(size=(T, N, H))  # (T, N, H) random upstream gradient
    d_hn = rng.normal(size=(N, H))  # (N, H)

    def run():
        a = arrays
        return ref.gru_forward(
            a["x"], a["h0"], a["weight_x"], a["weight_h"], a.get("bias_x"), a.get("bias_h"),
            reset=reset, mask=mask, reverse=reverse,
        )  # fmt: skip

    def loss():
        out, h_n, _ = run()
        return float((d_out * out).sum() + (d_hn * h_n).sum())

    _, _, cache = run()
    analytic = ref.gru_backward(d_out, d_hn, cache)
    numeric = finite_difference(loss, arrays)
    assert set(analytic) == {"x", "h0", "weight_x", "weight_h", "bias_x", "bias_h"}
    if not bias:
        assert analytic["bias_x"] is None and analytic["bias_h"] is None
    for name, g in numeric.items():
        assert analytic[name].shape == g.shape, name
        assert np.abs(g).max() > 1e-3, f"{name}: the loss does not depend on it"
        assert rel_err(analytic[name], g) < FD_TOL, (name, rel_err(analytic[name], g))
    if masked:  # a masked step adds nothing to dx
        assert np.all(analytic["x"][mask == 0] == 0.0)


def stack_params(rng, *, layers=2, bidirectional=True, bias=True):
    D = 2 if bidirectional else 1
    params = {}
    for name in ref.param_names(layers, bidirectional=bidirectional, bias=bias):
        k = int(name.split("_l")[1].split("_")[0])
        I_k = I if k == 0 else D * H
        shape = {"weight_x": (3 * H, I_k), "weight_h": (3 * H, H)}.get(name.split("_l")[0], (3 * H,))
        params[name] = rng.normal(size=shape) * 0.5
    return params


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("reset", ["before", "after"])
def test_gru_stack_backward_matches_finite_differences(reset, bias):
    rng = np.random.default_rng(11)
    params = stack_params(rng, bias=bias)
    arrays = {"x": rng.normal(size=(T, N, I)), "h0": rng.normal(size=(4, N, H)) * 0.5, **params}
    lengths = np.array([5, 2, 3])
    d_out = rng.normal(size=(T, N, 2 * H))  # (T, N, D·H)
    d_hn = rng.normal(size=(4, N, H))  # (L·D, N, H)

    def run():
        p = {k: arrays[k] for k in params}
        return ref.gru_stack_forward(arrays["x"], arrays["h0"], p, reset=reset, lengths=lengths, bidirectional=True)

    def loss():
        out, h_n, _ = run()
        return float((d_out * out).sum() + (d_hn * h_n).sum())

    _, _, cache = run()
    analytic = ref.gru_stack_backward(d_out, d_hn, cache)
    numeric = finite_difference(loss, arrays)
    assert set(analytic) == set(arrays)
    for name, g in numeric.items():
        assert np.abs(g).max() > 1e-3, f"{name}: the loss does not depend on it"
        assert rel_err(analytic[name], g) < FD_TOL, (name, rel_err(analytic[name], g))


@pytest.mark.parametrize("reset", ["before", "after"])
def test_model_backward_matches_finite_differences(reset):
    rng = np.random.default_rng(3)
    model = ref.GRU(2, H, 3, seed=1, reset=reset)
    x = rng.normal(size=(T, N, 2))  # (T, N, I)
    targets = rng.integers(0, 3, size=(T, N))  # (T, N)
    targets[0] = -1  # no target at t = 0

    def loss():
        return model.loss(model.forward(x), targets)[0]

    _, d_logits = model.loss(model.forward(x), targets)
    analytic = model.backward(d_logits)
    numeric = finite_difference(loss, model.params)
    assert set(analytic) == set(model.params)
    for name, g in numeric.items():
        assert np.abs(g).max() > 1e-4, f"{name}: the loss does not depend on it"
        assert rel_err(analytic[name], g) < FD_TOL, (name, rel_err(analytic[name], g))


# ----------------------------------------------------------------------------------
# semantics
# ----------------------------------------------------------------------------------


@pytest.mark.parametrize("reset", ["before", "after"])
def test_update_gate_convention_on_hand_computed_steps(reset):
    """Zero weights: r = z = σ(bias); z → 1 takes the candidate, z → 0 keeps h_prev."""
    h0 = np.array([[0.3, -0.7]])  # (1, 2)
    x = np.zeros((1, 1, 1))  # (1, 1, 1)
    W_x, W_h = np.zeros((6, 1)), np.zeros((6, 2))
    c = 0.4  # candidate pre-activation, through b_xn
    for b_z, expected in ((0.0, 0.5 * np.tanh(c) + 0.5 * h0), (40.0, np.tanh(c) + 0 * h0), (-40.0, h0)):
        b_x = np.array([0, 0, b_z, b_z, c, c], dtype=float)
        out, h_n, _ = ref.gru_forward(x, h0, W_x, W_h, b_x, None, reset=reset)
        np.testing.assert_allclose(h_n, expected, rtol=0, atol=1e-15)
        np.testing.assert_allclose(out[0], expected, rtol=0, atol=1e-15)


def test_resets_differ_only_through_the_reset_gate():
    """before: U_n (r ⊙ h); after: r ⊙ (U_n h + b_hn). Equal when r = 1 and b_hn = 0."""
    rng = np.random.default_rng(0)
    a = layer_inputs(rng)
    args = (a["x"], a["h0"], a["weight_x"], a["weight_h"], a["bias_x"], a["bias_h"])
    out_b, _, _ = ref.gru_forward(*args, reset="before")
    out_a, _, _ = ref.gru_forward(*args, reset="after")
    assert np.abs(out_b - out_a).max() > 1e-3
    b_x, b_h = a["bias_x"].copy(), a["bias_h"].copy()
    b_x[:H], b_h[2 * H :] = 60.0, 0.0  # r = σ(60 + …) = 1 to float64 precision
    out_b, _, _ = ref.gru_forward(*args[:4], b_x, b_h, reset="before")
    out_a, _, _ = ref.gru_forward(*args[:4], b_x, b_h, reset="after")
    np.testing.assert_allclose(out_b, out_a, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("reset", ["before", "after"])
def test_masked_steps_carry_state_and_output_zero(reset):
    rng = np.random.default_rng(5)
    a = layer_inputs(rng)
    lengths = [5, 2, 3]
    mask = ref.lengths_to_mask(np.array(lengths), T)  # (T, N)
    params = (a["weight_x"], a["weight_h"], a["bias_x"], a["bias_h"])
    for reverse in (False, True):
        out, h_n, _ = ref.gru_forward(a["x"], a["h0"], *params, reset=reset, mask=mask, reverse=reverse)
        assert np.all(out[mask == 0] == 0.0)
        for n, L in enumerate(lengths):
            x_n, h0_n = a["x"][:L, n : n + 1], a["h0"][n : n + 1]  # the true-length sequence alone
            out_n, h_n_n, _ = ref.gru_forward(x_n, h0_n, *params, reset=reset, reverse=reverse)
            np.testing.assert_allclose(out[:L, n], out_n[:, 0], rtol=1e-12, atol=1e-14)
            np.testing.assert_allclose(h_n[n], h_n_n[0], rtol=1e-12, atol=1e-14)
            if reverse:  # = walking forward over the reversed true-length sequence
                out_f, h_n_f, _ = ref.gru_forward(x_n[::-1], h0_n, *params, reset=reset)
                np.testing.assert_allclose(h_n[n], h_n_f[0], rtol=1e-12, atol=1e-14)
                np.testing.assert_allclose(out[:L, n], out_f[::-1, 0], rtol=1e-12, atol=1e-14)
            else:  # h_n is the state at the sequence's own last step
                np.testing.assert_allclose(h_n[n], out[L - 1, n], rtol=0, atol=0)


def test_interior_masked_step_is_skipped():
    """A 0 in the middle of the mask: the state jumps over that step unchanged."""
    rng = np.random.default_rng(6)
    a = layer_inputs(rng)
    params = (a["weight_x"], a["weight_h"], a["bias_x"], a["bias_h"])
    mask = np.ones((T, N))
    mask[2, 1] = 0.0
    out, h_n, _ = ref.gru_forward(a["x"], a["h0"], *params, mask=mask)
    keep = [0, 1, 3, 4]
    out_k, h_n_k, _ = ref.gru_forward(a["x"][keep, 1:2], a["h0"][1:2], *params)
    np.testing.assert_allclose(out[keep, 1], out_k[:, 0], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(h_n[1], h_n_k[0], rtol=1e-12, atol=1e-14)
    assert np.all(out[2, 1] == 0.0)


@pytest.mark.parametrize("reset", ["before", "after"])
def test_stack_composes_layers_and_directions(reset):
    rng = np.random.default_rng(9)
    params = stack_params(rng)
    x, h0 = rng.normal(size=(T, N, I)), rng.normal(size=(4, N, H))
    lengths = np.array([4, 5, 1])
    mask = ref.lengths_to_mask(lengths, T)
    out, h_n, _ = ref.gru_stack_forward(x, h0, params, reset=reset, lengths=lengths, bidirectional=True)
    assert out.shape == (T, N, 2 * H) and h_n.shape == (4, N, H)
    layer_in = x
    for k in range(2):
        outs = []
        for d, s in enumerate(("", "_reverse")):
            p = [params[f"{kind}_l{k}{s}"] for kind in ("weight_x", "weight_h", "bias_x", "bias_h")]
            o, hn, _ = ref.gru_forward(layer_in, h0[2 * k + d], *p, reset=reset, mask=mask, reverse=d == 1)
            np.testing.assert_array_equal(h_n[2 * k + d], hn)
            outs.append(o)
        layer_in = np.concatenate(outs, axis=2)
    np.testing.assert_array_equal(out, layer_in)
    # h0=None means zeros; lengths=None means all T
    out0, _, _ = ref.gru_stack_forward(x, None, params, reset=reset, bidirectional=True)
    outz, _, _ = ref.gru_stack_forward(x, np.zeros((4, N, H)), params, reset=reset, lengths=[T] * N, bidirectional=True)
    np.testing.assert_array_equal(out0, outz)


def test_param_names():
    assert ref.param_names(2, bidirectional=True, bias=False) == [
        "weight_x_l0", "weight_h_l0", "weight_x_l0_reverse", "weight_h_l0_reverse",
        "weight_x_l1", "weight_h_l1", "weight_x_l1_reverse", "weight_h_l1_reverse",
    ]  # fmt: skip


# ----------------------------------------------------------------------------------
# independent oracles: torch (the test may import torch; reference.py may not)
# ----------------------------------------------------------------------------------


def torch_gru_before(x, h0, W_x, W_h, b_x, b_h, mask, reverse):
    """The DESIGN §1 equations for reset="before", written in torch, autograd for BPTT."""
    import torch

    Hh = W_h.shape[1]
    h, outs = h0, [None] * x.shape[0]
    for t in reversed(range(x.shape[0])) if reverse else range(x.shape[0]):
        gx = x[t] @ W_x.T + b_x  # (N, 3H)
        r = torch.sigmoid(gx[:, :Hh] + h @ W_h[:Hh].T + b_h[:Hh])
        z = torch.sigmoid(gx[:, Hh : 2 * Hh] + h @ W_h[Hh : 2 * Hh].T + b_h[Hh : 2 * Hh])
        n = torch.tanh(gx[:, 2 * Hh :] + (r * h) @ W_h[2 * Hh :].T + b_h[2 * Hh :])
        h_new = z * n + (1 - z) * h
        m = mask[t][:, None]
        outs[t] = m * h_new
        h = m * h_new + (1 - m) * h
    return torch.stack(outs), h


@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
def test_reset_before_matches_torch_autograd(reverse):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(21)
    a = layer_inputs(rng)
    mask = holey_mask()
    d_out, d_hn = rng.normal(size=(T, N, H)), rng.normal(size=(N, H))
    out, h_n, cache = ref.gru_forward(
        a["x"], a["h0"], a["weight_x"], a["weight_h"], a["bias_x"], a["bias_h"],
        reset="before", mask=mask, reverse=reverse,
    )  # fmt: skip
    grads = ref.gru_backward(d_out, d_hn, cache)
    ta = {k: torch.tensor(v, requires_grad=True) for k, v in a.items()}
    t_out, t_hn = torch_gru_before(
        ta["x"], ta["h0"], ta["weight_x"], ta["weight_h"], ta["bias_x"], ta["bias_h"], torch.tensor(mask), reverse
    )
    ((t_out * torch.tensor(d_out)).sum() + (t_hn * torch.tensor(d_hn)).sum()).backward()
    np.testing.assert_allclose(out, t_out.detach().numpy(), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(h_n, t_hn.detach().numpy(), rtol=1e-12, atol=1e-13)
    for k, v in ta.items():
        np.testing.assert_allclose(grads[k], v.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=k)


def to_torch_layout(w):
    """grukit (r, z, n; z_ours) → torch (r, z, n; z_torch = 1 − z_ours): negate the z rows."""
    w = np.array(w, copy=True)
    Hh = w.shape[0] // 3
    w[Hh : 2 * Hh] *= -1.0
    return w


def test_stack_matches_torch_nn_gru_reset_after():
    """torch.nn.GRU (2 layers, bidirectional, packed lengths) in float64, values and grads."""
    torch = pytest.importorskip("torch")
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    rng = np.random.default_rng(31)
    params = stack_params(rng)
    x, h0 = rng.normal(size=(T, N, I)), rng.normal(size=(4, N, H))
    lengths = np.array([3, 5, 1])
    d_out, d_hn = rng.normal(size=(T, N, 2 * H)), rng.normal(size=(4, N, H))
    out, h_n, cache = ref.gru_stack_forward(x, h0, params, reset="after", lengths=lengths, bidirectional=True)
    grads = ref.gru_stack_backward(d_out, d_hn, cache)

    gru = torch.nn.GRU(I, H, num_layers=2, bidirectional=True, dtype=torch.float64)
    ours = {"weight_ih": "weight_x", "weight_hh": "weight_h", "bias_ih": "bias_x", "bias_hh": "bias_h"}
    with torch.no_grad():
        for name, p in gru.named_parameters():
            kind, rest = name.rsplit("_l", 1)
            p.copy_(torch.tensor(to_torch_layout(params[f"{ours[kind]}_l{rest}"])))
    tx = torch.tensor(x, requires_grad=True)
    th0 = torch.tensor(h0, requires_grad=True)
    packed = pack_padded_sequence(tx, torch.tensor(lengths), enforce_sorted=False)
    t_packed, t_hn = gru(packed, th0)
    t_out, _ = pad_packed_sequence(t_packed, total_length=T)
    ((t_out * torch.tensor(d_out)).sum() + (t_hn * torch.tensor(d_hn)).sum()).backward()

    np.testing.assert_allclose(out, t_out.detach().numpy(), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(h_n, t_hn.detach().numpy(), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(grads["x"], tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grads["h0"], th0.grad.numpy(), rtol=1e-10, atol=1e-12)
    for name, p in gru.named_parameters():
        kind, rest = name.rsplit("_l", 1)
        ours_name = f"{ours[kind]}_l{rest}"
        # d loss / d w_torch = to_torch_layout(d loss / d w_ours): the z rows flip sign too
        np.testing.assert_allclose(to_torch_layout(grads[ours_name]), p.grad.numpy(), rtol=1e-10, atol=1e-12)


# ----------------------------------------------------------------------------------
# the from-scratch model learns
# ----------------------------------------------------------------------------------


def delay_batch(rng, k=3, T_=16, N_=64):
    """Random bits; the target at step t is the bit seen k steps earlier (none for t < k)."""
    bits = rng.integers(0, 2, size=(T_, N_))  # (T, N)
    targets = np.full((T_, N_), -1)  # (T, N) −1: no target
    targets[k:] = bits[:-k]
    return bits[:, :, None].astype(np.float64), targets  # (T, N, 1), (T, N)


@pytest.mark.parametrize("reset", ["before", "after"])
def test_model_learns_three_step_delay(reset):
    model = ref.GRU(1, 16, 2, seed=0, reset=reset)
    x_test, y_test = delay_batch(np.random.default_rng(1234), N_=256)  # held out
    has = y_test >= 0

    def evaluate():
        logits = model.forward(x_test)
        return model.loss(logits, y_test)[0], float((logits.argmax(axis=2) == y_test)[has].mean())

    loss0, acc0 = evaluate()
    assert loss0 > 0.6 and acc0 < 0.6  # chance: ln 2 ≈ 0.69, 50 %
    rng = np.random.default_rng(0)
    for _ in range(200):
        model.train_step(*delay_batch(rng), lr=0.03)
    loss, acc = evaluate()
    assert loss < 0.05, loss
    assert acc >= 0.98, acc
    np.testing.assert_array_equal(model.predict(x_test)[has], model.forward(x_test).argmax(axis=2)[has])


def test_softmax_cross_entropy_ignores_missing_targets():
    logits = np.random.default_rng(0).normal(size=(2, 1, 3))
    loss, d = ref.softmax_cross_entropy(logits, np.array([[-1], [2]]))
    p = np.exp(logits[1, 0]) / np.exp(logits[1, 0]).sum()
    assert loss == pytest.approx(-np.log(p[2]), rel=1e-12)
    np.testing.assert_allclose(d[1, 0], p - np.eye(3)[2], rtol=1e-12)
    assert np.all(d[0] == 0.0)


# ----------------------------------------------------------------------------------
# reference.py stands alone: no torch, no grukit
# ----------------------------------------------------------------------------------


def test_reference_never_imports_torch():
    """Load reference.py by path in a fresh interpreter where importing torch (or grukit) fails."""
    path = Path(ref.__file__).resolve()
    code = textwrap.dedent(
        f"""
        import importlib.abc, importlib.util, sys
        tried = []  # every blocked import attempted, even one whose ImportError is swallowed
        class BlockTorch(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == "torch" or name.startswith("torch.") or name.startswith("grukit"):
                    tried.append(name)
                    raise ImportError("blocked: " + name)
        sys.meta_path.insert(0, BlockTorch())
        spec = importlib.util.spec_from_file_location("reference", {str(path)!r})
        ref = sys.modules["reference"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(ref)
        import numpy as np
        x = np.ones((2, 1, 1))
        out, h_n, cache = ref.gru_forward(x, np.zeros((1, 1)), np.ones((3, 1)), np.ones((3, 1)), None, None)
        ref.gru_backward(out, h_n, cache)
        ref.GRU(1, 2, 2).train_step(x, np.array([[0], [1]]))
        assert not tried, "tried to import " + repr(tried)
        assert not any(m == "torch" or m.startswith("torch.") for m in sys.modules), "torch imported"
        print("ok")
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


# ----------------------------------------------------------------------------------
# bad input
# ----------------------------------------------------------------------------------


def _layer(**override):
    args = dict(
        x=np.zeros((T, N, I)), h0=np.zeros((N, H)), weight_x=np.zeros((3 * H, I)),
        weight_h=np.zeros((3 * H, H)), bias_x=np.zeros(3 * H), bias_h=np.zeros(3 * H),
    )  # fmt: skip
    kw = {k: override.pop(k) for k in ("reset", "mask", "reverse") if k in override}
    args.update(override)
    return lambda: ref.gru_forward(*args.values(), **kw)


def _stack(**override):
    params = stack_params(np.random.default_rng(0))
    args = dict(x=np.zeros((T, N, I)), h0=None, params=params, reset="after", lengths=None, bidirectional=True)
    args.update(override)
    x, h0, params = args.pop("x"), args.pop("h0"), args.pop("params")
    return lambda: ref.gru_stack_forward(x, h0, params, **args)


def _backward(d_output, d_h_n):
    _, _, cache = _layer()()
    return lambda: ref.gru_backward(d_output, d_h_n, cache)


BAD = {
    "x rank": (_layer(x=np.zeros((T, I))), "x"),
    "x not numeric": (_layer(x=[["a"]]), "x"),
    "h0 shape": (_layer(h0=np.zeros((N + 1, H))), "h0"),
    "weight_x shape": (_layer(weight_x=np.zeros((3 * H, I + 1))), "weight_x"),
    "weight_h not 3H x H": (_layer(weight_h=np.zeros((2 * H, H))), "weight_h"),
    "bias_x shape": (_layer(bias_x=np.zeros(2 * H)), "bias_x"),
    "bias_h shape": (_layer(bias_h=np.zeros((3 * H, 1))), "bias_h"),
    "unknown reset": (_layer(reset="middle"), "reset"),
    "mask shape": (_layer(mask=np.ones((T, N + 1))), "mask"),
    "mask values": (_layer(mask=np.full((T, N), 0.5)), "mask"),
    "d_output shape": (_backward(np.zeros((T, N, H + 1)), np.zeros((N, H))), "d_output"),
    "d_h_n shape": (_backward(np.zeros((T, N, H)), np.zeros((H,))), "d_h_n"),
    "cache type": (lambda: ref.gru_backward(np.zeros((T, N, H)), np.zeros((N, H)), {}), "cache"),
    "stack reset": (_stack(reset="sideways"), "reset"),
    "stack lengths 0": (_stack(lengths=[0, 1, 2]), "lengths"),
    "stack lengths > T": (_stack(lengths=[T + 1, 1, 2]), "lengths"),
    "stack lengths float": (_stack(lengths=[1.5, 1.0, 2.0]), "lengths"),
    "stack lengths count": (_stack(lengths=[1, 2]), "lengths"),
    "stack h0 shape": (_stack(h0=np.zeros((2, N, H))), "h0"),
    "stack params missing": (_stack(params={"weight_x_l0": np.zeros((3 * H, I))}), "params"),
    "stack params shape": (
        _stack(params={**stack_params(np.random.default_rng(0)), "weight_x_l1": np.zeros((3 * H, H))}),
        "params['weight_x_l1']"),
    "stack not bidirectional": (_stack(bidirectional=False), "params"),
    "model units": (lambda: ref.GRU(0, 4, 2), "input_units"),
    "model reset": (lambda: ref.GRU(1, 4, 2, reset="never"), "reset"),
    "targets shape": (lambda: ref.softmax_cross_entropy(np.zeros((T, N, 2)), np.zeros((T,), dtype=int)), "targets"),
    "targets range": (lambda: ref.softmax_cross_entropy(np.zeros((T, N, 2)), np.full((T, N), 2)), "targets"),
    "targets below -1": (lambda: ref.softmax_cross_entropy(np.zeros((T, N, 2)), np.full((T, N), -5)), "targets"),
    "model units bool": (lambda: ref.GRU(True, 4, 2), "input_units"),
    "complex x": (lambda: ref.softmax_cross_entropy(np.zeros((T, N, 2)) + 1j, np.zeros((T, N), dtype=int)),
                  "logits"),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_input_raises_value_error_naming_the_argument(case):
    """The message opens with the argument's name and says what was expected and what came (found by a review:
    match="x" matched the x of "expected" in any message, Python's own unpacking errors included)."""
    call, name = BAD[case]
    with pytest.raises(ValueError, match=rf"^{re.escape(name)}: expected .*got"):
        call()


def test_adam_step_equals_torch_adam_after_clipping():
    """The oracle's optimizer, step by step, against torch.optim.Adam after clip_grad_norm_, with gradient norms
    below and above the clip (a mutation audit: dropping the clip's min(1, ·) or Adam's bias correction passed,
    since the model still learned its task)."""
    import torch

    model = ref.GRU(2, 3, 2, seed=0)
    params = {k: torch.tensor(v.copy(), requires_grad=True) for k, v in model.params.items()}
    opt = torch.optim.Adam(params.values(), lr=0.01, betas=(0.9, 0.999), eps=1e-8)
    rng = np.random.default_rng(0)
    for scale in (0.1, 10.0, 0.5):  # global gradient norms below, above and below the clip of 1
        grads = {k: rng.normal(size=v.shape) * scale for k, v in model.params.items()}
        model.adam_step(grads, 0.01, clip=1.0)
        for k, p in params.items():
            p.grad = torch.tensor(grads[k])
        torch.nn.utils.clip_grad_norm_(params.values(), 1.0)
        opt.step()
    for k in params:
        np.testing.assert_allclose(model.params[k], params[k].detach().numpy(), rtol=1e-6, atol=1e-9)
