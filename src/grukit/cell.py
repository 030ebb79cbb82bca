"""GRUCell: one step of the GRU, owning its parameters.

    r = σ(W_r x + b_xr + U_r h_prev + b_hr)                  reset gate
    z = σ(W_z x + b_xz + U_z h_prev + b_hz)                  update gate
    n = tanh(W_n x + b_xn + U_n (r ⊙ h_prev) + b_hn)         reset="before" (Cho et al. 2014)
    n = tanh(W_n x + b_xn + r ⊙ (U_n h_prev + b_hn))         reset="after" (cuDNN, torch)
    h = z ⊙ n + (1 − z) ⊙ h_prev                             z → 1 takes the candidate

Parameters (gate order r, z, n): `weight_x` (3H, I) = [W_r; W_z; W_n],
`weight_h` (3H, H) = [U_r; U_z; U_n], `bias_x` and `bias_h` (3H,).
Initialised U(−1/√H, 1/√H) like torch; `reset_parameters(weight_h="orthogonal")`
makes each gate's U orthogonal instead.

Example:
    >>> import torch, grukit
    >>> cell = grukit.GRUCell(3, 4)
    >>> h = cell(torch.randn(2, 3))          # h_prev defaults to zeros
    >>> cell(torch.randn(2, 3), h).shape
    torch.Size([2, 4])
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from grukit import _checks, functional
from grukit._autocast import in_parameter_dtype
from grukit._config_field import ConfigField
from grukit.checkpoint import register


def make_parameters(module: nn.Module, suffix: str, input_size: int, hidden_size: int, bias: bool, factory: dict):
    """Register weight_x{suffix}, weight_h{suffix} and (if bias) bias_x{suffix}, bias_h{suffix}."""
    _checks.floating_dtype("dtype", factory.get("dtype"))
    H = hidden_size
    module.register_parameter(f"weight_x{suffix}", nn.Parameter(torch.empty(3 * H, input_size, **factory)))
    module.register_parameter(f"weight_h{suffix}", nn.Parameter(torch.empty(3 * H, H, **factory)))
    for kind in ("x", "h"):
        value = nn.Parameter(torch.empty(3 * H, **factory)) if bias else None
        module.register_parameter(f"bias_{kind}{suffix}", value)


def init_parameters(module: nn.Module, hidden_size: int, weight_h: str = "uniform") -> None:
    """U(−1/√H, 1/√H) for every parameter; weight_h="orthogonal" makes each gate block of U orthogonal."""
    if weight_h not in ("uniform", "orthogonal"):
        raise ValueError(f"weight_h: expected 'uniform' or 'orthogonal', got {weight_h!r}")
    bound = 1.0 / math.sqrt(hidden_size)
    with torch.no_grad():
        for name, p in module.named_parameters(recurse=False):
            if weight_h == "orthogonal" and name.startswith("weight_h"):
                for block in p.split(hidden_size):  # U_r, U_z, U_n: (H, H) each
                    nn.init.orthogonal_(block)
            else:
                p.uniform_(-bound, bound)


@dataclass(frozen=True)
class GRUCellConfig:
    input_size: int  # I, features of x
    hidden_size: int  # H, units of h
    bias: bool = True  # create bias_x and bias_h
    reset: str = "before"  # where r applies: "before" or "after" the U_n product


@register
class GRUCell(nn.Module):
    checkpoint_name = "grukit.GRUCell"  # stable name in saved files
    __doc__ = __doc__
    input_size, hidden_size, bias = ConfigField(), ConfigField(), ConfigField()  # read from self.config (saved)
    reset = ConfigField(functional.check_reset)

    def __init__(self, input_size: int, hidden_size: int, *, bias: bool = True, reset: str = "before",
                 device=None, dtype=None):
        super().__init__()
        functional.check_reset(reset)
        self.config = GRUCellConfig(_checks.positive_int("input_size", input_size),
                                    _checks.positive_int("hidden_size", hidden_size), _checks.switch("bias", bias),
                                    reset)
        make_parameters(self, "", self.input_size, self.hidden_size, bias, {"device": device, "dtype": dtype})
        self.reset_parameters()

    def reset_parameters(self, weight_h: str = "uniform") -> None:
        init_parameters(self, self.hidden_size, weight_h)

    @in_parameter_dtype
    def forward(self, x: Tensor, h: Tensor | None = None) -> Tensor:
        """x (N, I) or (I,), h (N, H) or (H,) -> h (N, H) or (H,)."""
        _checks.tensor("x", x, dims=(1, 2), dtype=self.weight_x.dtype, device=self.weight_x.device)
        _checks.size("x", x.shape[-1], self.input_size, "last dimension (input_size)")
        unbatched = x.dim() == 1
        x = x.unsqueeze(0) if unbatched else x  # (N, I)
        if h is None:
            h = x.new_zeros(x.shape[0], self.hidden_size)  # (N, H)
        else:
            _checks.tensor("h", h, dims=(1,) if unbatched else (2,), dtype=x.dtype, device=x.device)
            want = (self.hidden_size,) if unbatched else (x.shape[0], self.hidden_size)  # as the caller shapes it
            if tuple(h.shape) != want:
                raise ValueError(f"h: expected shape {want}, got {tuple(h.shape)}")
            h = h.unsqueeze(0) if unbatched else h  # (N, H)
        h = functional.cell(x, h, self.weight_x, self.weight_h, self.bias_x, self.bias_h, reset=self.reset)  # (N, H)
        return h.squeeze(0) if unbatched else h

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, bias={self.bias_x is not None}, reset={self.reset!r}"
