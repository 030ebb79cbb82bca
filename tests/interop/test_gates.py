"""grukit.interop.gates: the gate reorderings and z flips are exact and inverse to each other."""
import pytest
import torch

from grukit.interop.gates import flip_z, from_zrn, layer_names, to_zrn


def test_blocks_move_and_z_is_negated():
    H = 2
    r, z, n = torch.randn(H, 3), torch.randn(H, 3), torch.randn(H, 3)
    w = torch.cat([r, z, n])  # (3H, 3) rows r, z, n
    assert torch.equal(flip_z(w), torch.cat([r, -z, n]))
    assert torch.equal(to_zrn(w), torch.cat([-z, r, n]))
    assert torch.equal(from_zrn(torch.cat([-z, r, n])), w)


def test_inverses_are_bit_exact():
    w = torch.randn(12, 5, dtype=torch.float64)
    assert torch.equal(flip_z(flip_z(w)), w)
    assert torch.equal(from_zrn(to_zrn(w)), w)
    assert torch.equal(to_zrn(from_zrn(w)), w)


def test_rows_not_a_multiple_of_three():
    with pytest.raises(ValueError, match="3·H"):
        to_zrn(torch.zeros(4, 2))


def test_layer_names_follow_torch_order():
    from grukit import GRU, GRUCell

    assert layer_names(GRU(2, 3, 2, bidirectional=True)) == [
        (0, False, "_l0"), (0, True, "_l0_reverse"), (1, False, "_l1"), (1, True, "_l1_reverse")]
    assert layer_names(GRUCell(2, 3)) == [(0, False, "")]
