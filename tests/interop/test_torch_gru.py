"""grukit ↔ torch.nn.GRU / GRUCell: same numbers as torch's own modules, exact round trips.

Tolerance 1e-5 in float32: the two compute the same function with the same
weights, so they differ only by float rounding (summation order of the GEMMs).
"""
from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from grukit import GRU, GRUCell
from grukit.interop import from_torch, to_torch

ATOL = 1e-5

CONFIGS = [  # (num_layers, bidirectional, batch_first, bias)
    (1, False, False, True),
    (2, True, False, True),
    (3, False, True, False),
    (2, True, True, False),
]


def _assert_same_params(a: nn.Module, b: nn.Module) -> None:
    pa, pb = dict(a.named_parameters()), dict(b.named_parameters())
    assert pa.keys() == pb.keys()
    for name in pa:
        assert pa[name].dtype == pb[name].dtype and torch.equal(pa[name], pb[name]), name


def _inputs(module, T=6, N=3, dtype=torch.float32, seed=1):
    g = torch.Generator().manual_seed(seed)
    D = 2 if module.bidirectional else 1
    shape = (N, T, module.input_size) if module.batch_first else (T, N, module.input_size)
    x = torch.randn(*shape, generator=g, dtype=dtype)
    h0 = torch.randn(module.num_layers * D, N, module.hidden_size, generator=g, dtype=dtype)
    return x, h0


@pytest.mark.parametrize("L, bi, bf, bias", CONFIGS)
def test_from_torch_matches_torch(L, bi, bf, bias):
    torch.manual_seed(0)
    theirs = nn.GRU(4, 5, L, bias=bias, batch_first=bf, bidirectional=bi)
    ours = from_torch(theirs)
    assert (ours.num_layers, ours.bidirectional, ours.batch_first, ours.reset) == (L, bi, bf, "after")
    assert (ours.bias_x_l0 is not None) == bias
    x, h0 = _inputs(theirs)
    with torch.no_grad():
        y_ref, h_ref = theirs(x, h0)
        y, h = ours(x, h0)
    assert y.shape == y_ref.shape and h.shape == h_ref.shape
    assert (y - y_ref).abs().max() <= ATOL
    assert (h - h_ref).abs().max() <= ATOL


@pytest.mark.parametrize("L, bi, bf, bias", CONFIGS)
def test_to_torch_matches_grukit(L, bi, bf, bias):
    torch.manual_seed(0)
    ours = GRU(4, 5, L, bias=bias, batch_first=bf, bidirectional=bi, reset="after")
    theirs = to_torch(ours)
    assert isinstance(theirs, nn.GRU)
    assert (theirs.num_layers, theirs.bidirectional, theirs.batch_first, theirs.bias) == (L, bi, bf, bias)
    x, h0 = _inputs(ours)
    with torch.no_grad():
        y_ref, h_ref = theirs(x, h0)
        y, h = ours(x, h0)
    assert (y - y_ref).abs().max() <= ATOL
    assert (h - h_ref).abs().max() <= ATOL


def test_lengths_match_torch_packed_sequences():
    torch.manual_seed(0)
    theirs = nn.GRU(4, 5, 2, bidirectional=True)
    ours = from_torch(theirs)
    x, h0 = _inputs(theirs, T=7, N=4)
    lengths = torch.tensor([7, 2, 5, 1])
    with torch.no_grad():
        packed, h_ref = theirs(pack_padded_sequence(x, lengths, enforce_sorted=False), h0)
        y_ref, _ = pad_packed_sequence(packed, total_length=7)
        y, h = ours(x, h0, lengths=lengths)
    assert (y - y_ref).abs().max() <= ATOL
    assert (h - h_ref).abs().max() <= ATOL


def test_float64_matches_torch_to_rounding():
    torch.manual_seed(0)
    theirs = nn.GRU(3, 4, 2, bidirectional=True, dtype=torch.float64)
    ours = from_torch(theirs)
    assert ours.weight_x_l0.dtype == torch.float64
    x, h0 = _inputs(theirs, dtype=torch.float64)
    with torch.no_grad():
        assert (ours(x, h0)[0] - theirs(x, h0)[0]).abs().max() <= 1e-12


@pytest.mark.parametrize("bias", [True, False])
def test_cell_both_ways(bias):
    torch.manual_seed(0)
    theirs = nn.GRUCell(4, 5, bias=bias)
    ours = from_torch(theirs)
    assert isinstance(ours, GRUCell) and ours.reset == "after"
    x, h = torch.randn(3, 4), torch.randn(3, 5)
    with torch.no_grad():
        assert (ours(x, h) - theirs(x, h)).abs().max() <= ATOL
        back = to_torch(ours)
        assert isinstance(back, nn.GRUCell) and back.bias == bias
        assert torch.equal(back(x, h), theirs(x, h))
    _assert_same_params(back, theirs)


@pytest.mark.parametrize("L, bi, bf, bias", CONFIGS)
def test_round_trips_are_bit_exact(L, bi, bf, bias):
    torch.manual_seed(0)
    theirs = nn.GRU(4, 5, L, bias=bias, batch_first=bf, bidirectional=bi, dropout=0.25 if L > 1 else 0.0)
    back = to_torch(from_torch(theirs))
    _assert_same_params(back, theirs)
    assert back.dropout == theirs.dropout
    ours = GRU(4, 5, L, bias=bias, batch_first=bf, bidirectional=bi, reset="after")
    twin = from_torch(to_torch(ours))
    _assert_same_params(twin, ours)
    assert twin.config == ours.config


def test_a_one_layer_dropout_is_carried_across_with_one_warning_where_it_was_set():
    with pytest.warns(UserWarning, match="dropout") as seen:
        theirs = nn.GRU(3, 4, dropout=0.2)  # torch warns here
        ours = from_torch(theirs)  # and not again
    assert len(seen) == 1 and ours.dropout == 0.2
    with pytest.warns(UserWarning, match="dropout=0.2 acts between stacked layers only") as seen:
        back = to_torch(GRU(3, 4, dropout=0.2, reset="after"))
    assert len(seen) == 1 and back.dropout == 0.2


def test_z_rows_are_negated_and_others_copied():
    torch.manual_seed(0)
    theirs = nn.GRU(2, 3)
    ours = from_torch(theirs)
    H = 3
    for ours_name, torch_name in [("weight_x_l0", "weight_ih_l0"), ("weight_h_l0", "weight_hh_l0"),
                                  ("bias_x_l0", "bias_ih_l0"), ("bias_h_l0", "bias_hh_l0")]:
        a, b = getattr(ours, ours_name), getattr(theirs, torch_name)
        assert torch.equal(a[:H], b[:H]) and torch.equal(a[2 * H:], b[2 * H:])  # r and n rows
        assert torch.equal(a[H:2 * H], -b[H:2 * H])  # z rows


def test_mode_and_dtype_are_kept():
    theirs = nn.GRU(2, 3, dtype=torch.float64).eval()
    ours = from_torch(theirs)
    assert not ours.training and ours.weight_h_l0.dtype == torch.float64
    back = to_torch(ours.train())
    assert back.training and all(p.dtype == torch.float64 for p in back.parameters())  # found by a review:
    # to_torch's dtype was never checked, so a float64 model turned into a float32 nn.GRU passed
    cell = to_torch(GRUCell(2, 3, reset="after", dtype=torch.float64))
    assert all(p.dtype == torch.float64 for p in cell.parameters())


def test_reset_before_cannot_go_to_torch():
    for model in (GRU(2, 3), GRUCell(2, 3)):
        with pytest.raises(ValueError, match=r"reset='after'.*torch.nn.GRU only computes the reset-after"):
            to_torch(model)


def test_wrong_types():
    with pytest.raises(TypeError, match="torch.nn.GRU or torch.nn.GRUCell"):
        from_torch(nn.LSTM(2, 3))
    with pytest.raises(TypeError, match="grukit.GRU or grukit.GRUCell"):
        to_torch(nn.GRU(2, 3))


def test_to_torch_keeps_eval_mode():
    """Guards to_torch's .train(model.training): an eval-mode model gives an eval-mode torch module (torch
    modules start in training mode, so the existing check, on a training model, passed without it)."""
    assert not to_torch(GRU(2, 3, 2, dropout=0.5, reset="after").eval()).training
    assert not to_torch(GRUCell(2, 3, reset="after").eval()).training


def test_a_parameter_of_the_wrong_shape_is_refused_not_broadcast():
    """An edited torch.nn.GRU whose weight_ih_l0 is (3H, 1) instead of (3H, I) is a ValueError naming it,
    never broadcast silently across the input columns."""
    module = nn.GRU(4, 5)
    module.weight_ih_l0 = nn.Parameter(torch.ones(15, 1))
    with pytest.raises(ValueError, match=r"weight_ih_l0: expected shape \(15, 4\), got \(15, 1\)"):
        from_torch(module)
