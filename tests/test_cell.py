"""GRUCell against the NumPy reference (one step) and its input checks."""
import math

import numpy as np
import pytest
import torch

import grukit
from grukit import reference


@pytest.mark.parametrize("reset", ("before", "after"))
@pytest.mark.parametrize("bias", (True, False))
def test_cell_matches_reference_step(reset, bias):
    torch.manual_seed(0)
    cell = grukit.GRUCell(3, 5, bias=bias, reset=reset, dtype=torch.float64)
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    h = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    d_h = torch.randn(4, 5, dtype=torch.float64)
    got = cell(x, h)
    (got * d_h).sum().backward()
    p = {name: v.detach().numpy() for name, v in cell.named_parameters()}
    out, h_n, cache = reference.gru_forward(x.detach().numpy()[None], h.detach().numpy(), p["weight_x"], p["weight_h"],
                                            p.get("bias_x"), p.get("bias_h"), reset=reset)
    grads = reference.gru_backward(np.zeros_like(out), d_h.numpy(), cache)
    assert np.abs(got.detach().numpy() - h_n).max() <= 1e-12
    assert np.abs(x.grad.numpy() - grads["x"][0]).max() <= 1e-10
    assert np.abs(h.grad.numpy() - grads["h0"]).max() <= 1e-10
    for name, v in cell.named_parameters():
        assert np.abs(v.grad.numpy() - grads[name]).max() <= 1e-10, name


def test_cell_defaults_and_unbatched():
    cell = grukit.GRUCell(3, 4)
    x = torch.randn(2, 3)  # (N, I)
    assert cell(x).shape == (2, 4)
    assert torch.equal(cell(x), cell(x, torch.zeros(2, 4)))  # h defaults to 0 (found by a review: unchecked)
    assert torch.equal(cell(x[0]), cell(x[0], torch.zeros(4)))
    assert cell(torch.randn(3), torch.zeros(4)).shape == (4,)
    assert grukit.GRUCell(3, 4, bias=False).bias_x is None


@pytest.mark.parametrize("call,error,message", [
    (lambda c: c(torch.randn(2, 5)), ValueError, r"x: expected last dimension \(input_size\) 3, got 5"),
    (lambda c: c(torch.randn(2, 3), torch.zeros(3, 4)), ValueError, r"h: expected shape \(2, 4\), got \(3, 4\)"),
    (lambda c: c(torch.randn(3), torch.zeros(5)), ValueError, r"^h: expected shape \(4,\), got \(5,\)$"),  # as given
    (lambda c: c(torch.randn(2, 3), torch.zeros(2, 4, dtype=torch.float64)), TypeError, "h: expected dtype"),
    (lambda c: c(torch.randn(1, 2, 3)), ValueError, "x: expected a tensor of rank 1 or 2"),
])
def test_cell_bad_input(call, error, message):
    with pytest.raises(error, match=message):
        call(grukit.GRUCell(3, 4))


def test_cell_bad_reset():
    with pytest.raises(ValueError, match="reset: expected one of"):
        grukit.GRUCell(3, 4, reset="sometimes")
    with pytest.raises(ValueError, match="dtype: expected a floating-point torch dtype"):
        grukit.GRUCell(3, 4, dtype=torch.int32)


def test_init_is_uniform_in_plus_minus_one_over_sqrt_h():
    """Guards the documented init U(−1/√H, 1/√H): every parameter inside the bound, and filling it (both signs,
    reaching near ±bound) — a wrong bound (1/H) or a one-sided range would pass every other test."""
    torch.manual_seed(0)
    H = 16
    cell = grukit.GRUCell(8, H)
    bound = 1 / math.sqrt(H)
    for name, p in cell.named_parameters():
        assert p.abs().max() <= bound, name
        assert p.max() > 0.7 * bound and p.min() < -0.7 * bound, name  # seeded; 48+ draws of U(−b, b) miss by 0.85^48


def test_orthogonal_init_touches_only_weight_h():
    """Guards reset_parameters(weight_h="orthogonal"): each gate block of U orthogonal, while weight_x and the
    biases keep the uniform init (a mutant making every weight orthogonal passed the layer test)."""
    torch.manual_seed(0)
    H, I = 16, 8
    cell = grukit.GRUCell(I, H)
    cell.reset_parameters(weight_h="orthogonal")
    for U in cell.weight_h.detach().split(H):
        assert torch.allclose(U @ U.T, torch.eye(H), atol=1e-5)
    bound = 1 / math.sqrt(H)
    for name in ("weight_x", "bias_x", "bias_h"):
        assert getattr(cell, name).abs().max() <= bound, name
    W = cell.weight_x.detach()
    assert not torch.allclose(W.T @ W, torch.eye(I), atol=1e-3)  # not orthonormal columns


def test_cell_repr_shows_its_settings():
    """Guards extra_repr: sizes, bias and reset all shown."""
    assert repr(grukit.GRUCell(3, 4, reset="after")) == "GRUCell(3, 4, bias=True, reset='after')"
    assert repr(grukit.GRUCell(3, 4, bias=False)) == "GRUCell(3, 4, bias=False, reset='before')"
