"""The forecaster: a GRU encoder over the lookback window, a linear head for all K steps at once.

    x (N, L, F)  →  patches of P steps: u (L/P, N, P·F)          u_τ = [x_{τP+1}; …; x_{τP+P}]
    h_τ = GRU(u_τ, h_{τ−1})                                       (L/P, N, H), grukit.GRU
    ŷ = W_o · dropout(h_last) + b_o  [+ A · a(x)]                (N, K), scaled changes (y_{t+k} − y_t)/s

Feeding P consecutive steps as one GRU input (a "patch") shortens the recurrence from L
to L/P steps; the oldest L mod P steps of the window are dropped. With `lookback` = L > 0
the model also has a linear autoregressive path A · a(x), a(x) = the window's deviations
from its last value and its covariates, flattened (N, L·(1+C)); `set_linear` starts A at a
ridge fit and training adjusts it together with the GRU (the GRU learns what the linear
path misses). `ForecastEnsemble` averages M such members, trained side by side.

Example:
    >>> import torch
    >>> from grukit.tasks.forecast_model import Forecaster
    >>> model = Forecaster(n_features=5, horizon=52, hidden_size=32, patch=4)
    >>> model(torch.randn(8, 156, 5)).shape
    torch.Size([8, 52])
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import ClassVar

import torch
from torch import Tensor, nn

from grukit.checkpoint import register
from grukit.tasks.arch import make_rnn
from grukit.tasks.forecast_data import TRANSFORMS


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
    lookback: int = 0  # L of the linear autoregressive path (0 = no such path)


def linear_inputs(x: Tensor) -> Tensor:
    """a(x): channel 0 (deviations from the last value) and the covariates (channels 5..), (N, L·(1+C))."""
    keep = [0] + list(range(5, x.shape[2]))
    return x[:, :, keep].flatten(1)  # (N, L·(1+C)), step-major like the ridge baseline's features


@register
class Forecaster(nn.Module):
    __doc__ = __doc__

    def __init__(self, n_features: int, horizon: int, hidden_size: int = 64, num_layers: int = 1, patch: int = 4,
                 dropout: float = 0.0, reset: str = "before", backend: str = "auto", lookback: int = 0):
        super().__init__()
        self.config = ForecasterConfig(n_features, horizon, hidden_size, num_layers, patch, dropout, reset, backend,
                                       lookback)
        self.gru = make_rnn("gru", patch * n_features, hidden_size, num_layers=num_layers, dropout=dropout,
                            reset=reset, backend=backend)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, horizon)
        self.linear = nn.Linear(lookback * (n_features - 4), horizon, bias=False) if lookback > 0 else None

    @torch.no_grad()
    def set_linear(self, W: Tensor) -> None:
        """Start the linear path at W (L·(1+C)+1, K) (weights, then the intercept row); zero the GRU head."""
        if self.linear is None:
            raise ValueError("set_linear: expected a Forecaster built with lookback > 0, got lookback 0")
        self.linear.weight.copy_(W[:-1].T)  # (K, L·(1+C))
        self.head.bias.copy_(W[-1])  # (K,)
        self.head.weight.zero_()  # (K, H)

    def patches(self, x: Tensor) -> Tensor:
        """(N, L, F) → (L // P, N, P·F), time-major."""
        N, L, F = x.shape
        P = self.config.patch
        x = x[:, L % P:]  # (N, P·⌊L/P⌋, F)
        return x.reshape(N, L // P, P * F).transpose(0, 1)  # (L/P, N, P·F)

    def forward(self, x: Tensor) -> Tensor:
        """x (N, L, F) → (N, K) scaled forecasts."""
        _, h_n = self.gru(self.patches(x))  # (layers, N, H)
        y = self.head(self.drop(h_n[-1]))  # (N, K)
        if self.linear is not None:
            if x.shape[1] != self.config.lookback:
                raise ValueError(f"x: expected windows of lookback {self.config.lookback} steps, got {x.shape[1]}")
            y = y + self.linear(linear_inputs(x))  # (N, K)
        return y

    @torch.no_grad()
    def gates(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Update and reset gates of the last layer for one window x (L, F): z, r each (L/P, H)."""
        _, _, g = self.gru(self.patches(x[None]), return_gates=True)  # g.z (layers, 1, T, 1, H)
        return g.z[-1, 0, :, 0], g.r[-1, 0, :, 0]


@dataclass(frozen=True)
class EnsembleConfig(ForecasterConfig):
    members: int = 5  # M, Forecasters averaged, each built from the fields above
    # how the ensemble reads a series (`grukit.tasks.forecast.forecast_from`); window 0: not recorded
    window: int = 0  # L, the steps of each input window
    season: int = 1  # m, the period of the season channels (1: none)
    scale: float = 1.0  # s, inputs and outputs are changes / s, in modelled units
    transform: str = "none"  # "none": the model reads the target; "log": its logarithm
    covariate_mean: tuple[float, ...] = ()  # per covariate, its training part's mean ...
    covariate_std: tuple[float, ...] = ()  # ... and standard deviation (0: read as 1)
    FROM_DATA: ClassVar[tuple[str, ...]] = ("scale", "covariate_mean", "covariate_std")  # set by the training data
    FLAGS: ClassVar[dict[str, str]] = {  # the `grukit forecast` flag behind each field, for resume messages
        "n_features": "--covariates", "horizon": "--horizon", "hidden_size": "--hidden", "patch": "--patch",
        "dropout": "--dropout", "members": "--members", "lookback": "--lookback, or --no-linear, which makes it 0",
        "window": "--lookback", "season": "--season", "transform": "--transform"}


@register
class ForecastEnsemble(nn.Module):
    """ŷ = (1/M) Σ_m Forecaster_m(x): M members from different initialisations, each trained on its own loss.

    Example:
        >>> import torch
        >>> from grukit.tasks.forecast_model import ForecastEnsemble
        >>> model = ForecastEnsemble(n_features=5, horizon=8, members=3, hidden_size=4, lookback=16)
        >>> model(torch.randn(2, 16, 5)).shape, model(torch.randn(2, 16, 5), members=True).shape
        (torch.Size([2, 8]), torch.Size([3, 2, 8]))
    """

    def __init__(self, n_features: int, horizon: int, members: int = 5, hidden_size: int = 64, num_layers: int = 1,
                 patch: int = 4, dropout: float = 0.0, reset: str = "before", backend: str = "auto",
                 lookback: int = 0, window: int = 0, season: int = 1, scale: float = 1.0, transform: str = "none",
                 covariate_mean: Sequence[float] = (), covariate_std: Sequence[float] = ()):
        super().__init__()
        if members < 1:
            raise ValueError(f"members: expected an integer >= 1, got {members}")
        covariates = n_features - 5
        recorded = window or len(covariate_mean) or len(covariate_std)  # a model saved before: none of them
        if recorded and (len(covariate_mean) != covariates or len(covariate_std) != covariates):
            raise ValueError(f"covariate_mean/covariate_std: expected {covariates} values each (n_features - 5), "
                             f"got {len(covariate_mean)} and {len(covariate_std)}")
        if not (scale > 0 and math.isfinite(scale)):
            raise ValueError(f"scale: expected a finite number > 0, got {scale}")
        if transform not in TRANSFORMS:
            raise ValueError(f"transform: expected {' or '.join(map(repr, TRANSFORMS))}, got {transform!r}")
        self.config = EnsembleConfig(n_features, horizon, hidden_size, num_layers, patch, dropout, reset, backend,
                                     lookback, members, window, season, float(scale), transform,
                                     tuple(map(float, covariate_mean)), tuple(map(float, covariate_std)))
        member = {f.name: getattr(self.config, f.name) for f in fields(ForecasterConfig)}
        self.members = nn.ModuleList(Forecaster(**member) for _ in range(members))

    def forward(self, x: Tensor, members: bool = False) -> Tensor:
        """x (N, L, F) → (N, K) mean forecast, or (M, N, K) every member's with members=True."""
        y = torch.stack([m(x) for m in self.members])  # (M, N, K)
        return y if members else y.mean(0)  # (N, K)

    @torch.no_grad()
    def gates(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The first member's gates for one window x (L, F): z, r each (L/P, H)."""
        return self.members[0].gates(x)
