"""The fused backend's hand-written BPTT passes torch.autograd.gradcheck."""
import pytest
import torch

from grukit.kernels import fused


@pytest.mark.parametrize("reset", ("before", "after"))
@pytest.mark.parametrize("reverse", (False, True))
@pytest.mark.parametrize("masked", (False, True))
@pytest.mark.parametrize("bias", (True, False))
def test_fused_gradcheck(reset, reverse, masked, bias):
    torch.manual_seed(0)
    T, N, I, H = 4, 3, 2, 3
    f64 = dict(dtype=torch.float64, requires_grad=True)
    inputs = [torch.randn(T, N, I, **f64), torch.randn(N, H, **f64),
              torch.randn(3 * H, I, **f64), torch.randn(3 * H, H, **f64)]
    inputs += [torch.randn(3 * H, **f64), torch.randn(3 * H, **f64)] if bias else [None, None]
    mask = (torch.arange(T)[:, None] < torch.tensor([4, 1, 3])[None]).double() if masked else None  # (T, N)

    def run(*args):
        return fused.sequence(*args, reset=reset, mask=mask, reverse=reverse)

    assert torch.autograd.gradcheck(run, tuple(inputs))


def test_fused_rejects_half_bias():
    x, h0 = torch.randn(2, 1, 2), torch.zeros(1, 3)
    with pytest.raises(ValueError, match="bias_x, bias_h"):
        fused.sequence(x, h0, torch.randn(9, 2), torch.randn(9, 3), torch.randn(9), None, reset="after")
