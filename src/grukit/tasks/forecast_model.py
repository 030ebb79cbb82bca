"""The forecaster: a GRU encoder over the lookback window, a linear head for all K steps at once.

    x (N, L, F)  →  patches of P steps: u (L/P, N, P·F)          u_τ = [x_{τP+1}; …; x_{τP+P}]
    h_τ = GRU(u_τ, h_{τ−1})                                       (L/P, N, H), grukit.GRU
    ŷ = W_o · dropout(h_last) + b_o                              (N, K), scaled changes (y_{t+k} − y_t)/s

Feeding P consecutive steps as one GRU input (a "patch") shortens the recurrence from L
to L/P steps; the oldest L mod P steps of the window are dropped.

Example:
    >>> import torch
    >>> from grukit.tasks.forecast_model import Forecaster
    >>> model = Forecaster(n_features=5, horizon=52, hidden_size=32, patch=4)
    >>> model(torch.randn(8, 156, 5)).shape
    torch.Size([8, 52])
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

import grukit
from grukit.checkpoint import register


@dataclass(frozen=True)
class ForecasterConfig:
    n_features: int  # F, features per time step of the window
    horizon: int  # K, steps forecast at once
    hidden_size: int = 64  # H, GRU units
    num_layers: int = 1  # stacked GRU layers
    patch: int = 4  # P, consecutive steps fed as one GRU input
    dropout: float = 0.0  # dropout before the head (and between GRU layers)
    reset: str = "before"  # GRU reset placement (DESIGN §1)
    backend: str = "auto"  # GRU kernel backend


@register
class Forecaster(nn.Module):
    __doc__ = __doc__

    def __init__(self, n_features: int, horizon: int, hidden_size: int = 64, num_layers: int = 1, patch: int = 4,
                 dropout: float = 0.0, reset: str = "before", backend: str = "auto"):
        super().__init__()
        self.config = ForecasterConfig(n_features, horizon, hidden_size, num_layers, patch, dropout, reset, backend)
        self.gru = grukit.GRU(patch * n_features, hidden_size, num_layers, dropout=dropout, reset=reset,
                              backend=backend)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, horizon)

    def patches(self, x: Tensor) -> Tensor:
        """(N, L, F) → (L // P, N, P·F), time-major."""
        N, L, F = x.shape
        P = self.config.patch
        x = x[:, L % P:]  # (N, P·⌊L/P⌋, F)
        return x.reshape(N, L // P, P * F).transpose(0, 1)  # (L/P, N, P·F)

    def forward(self, x: Tensor) -> Tensor:
        """x (N, L, F) → (N, K) scaled forecasts."""
        _, h_n = self.gru(self.patches(x))  # (layers, N, H)
        return self.head(self.drop(h_n[-1]))  # (N, K)

    @torch.no_grad()
    def gates(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Update and reset gates of the last layer for one window x (L, F): z, r each (L/P, H)."""
        _, _, g = self.gru(self.patches(x[None]), return_gates=True)  # g.z (layers, 1, T, 1, H)
        return g.z[-1, 0, :, 0], g.r[-1, 0, :, 0]
