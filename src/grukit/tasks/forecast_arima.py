"""The airline model: seasonal ARIMA(0,1,1)(0,1,1)_m (Box & Jenkins), a forecast baseline.

    w_t = (1 − B)(1 − Bᵐ) y_t = y_t − y_{t−1} − y_{t−m} + y_{t−m−1}
    w_t = e_t + θ e_{t−1} + Θ e_{t−m} + θΘ e_{t−m−1}                 e: the one-step errors

Fit (conditional sum of squares): e_t = w_t − θ e_{t−1} − Θ e_{t−m} − θΘ e_{t−m−1} for t > m, with
e = 0 before; (θ, Θ) in the invertible square |θ|, |Θ| < 1 minimise Σ e_t² over the training steps
whose w_t reads no gap-filled value. Forecast from origin t: the same equation for y with every
error after t set to its mean, 0:

    ŷ_{t+k} = ŷ_{t+k−1} + ŷ_{t+k−m} − ŷ_{t+k−m−1} + θ e_{t+k−1} + Θ e_{t+k−m} + θΘ e_{t+k−m−1}

with ŷ_i = y_i and e_i the recursion's error for i ≤ t, e_i = 0 for i > t. The parameters are fitted
once, on the training part; the errors then run over the whole series with them, and e_i reads only
y_0 … y_i, so a forecast from t reads nothing after t.

Example:
    >>> import numpy as np
    >>> from grukit.tasks.forecast_arima import Airline
    >>> y = np.tile([0.0, 1.0, 0.0, -1.0], 6) + 0.5 * np.arange(24)   # season 4, trend 0.5 a step
    >>> Airline(theta=0.0, Theta=0.0, season=4).forecast(y, np.array([23]), horizon=4).round(2)
    array([[12. , 13.5, 13. , 12.5]])
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.signal import lfilter

BOUND = 0.999  # |θ|, |Θ| ≤ BOUND: inside the invertible region
STARTS = (-0.6, 0.0, 0.6)  # each of θ and Θ starts the search from these (9 starts), the lowest sum kept


@dataclass(frozen=True)
class Airline:
    """A fitted airline model: its two moving-average coefficients and the season m."""

    theta: float  # θ, the non-seasonal MA(1) coefficient
    Theta: float  # Θ, the seasonal MA(1) coefficient
    season: int  # m ≥ 2
    Theta_fitted: bool = True  # False where the training part was too short to fit Θ, which is then 0

    def __post_init__(self):
        if isinstance(self.season, bool) or not isinstance(self.season, int) or self.season < 2:
            raise ValueError(f"season: expected an integer >= 2 (m = 1 folds θ and Θ into one lag), "
                             f"got {self.season!r}")
        for name in ("theta", "Theta"):
            if not abs(getattr(self, name)) < 1:  # also refuses nan
                raise ValueError(f"{name}: expected a number in (-1, 1), where the model is invertible, got "
                                 f"{getattr(self, name)!r}")

    def errors(self, y: np.ndarray) -> np.ndarray:
        """(T,) e_t of the recursion over y (T,); 0 for t ≤ m."""
        return _errors(y, self.theta, self.Theta, self.season)

    def forecast(self, y: np.ndarray, t: np.ndarray, horizon: int) -> np.ndarray:
        """(N, K) forecasts of y_{t+1} … y_{t+K} from each origin t (N,), which needs t ≥ m."""
        m, K = self.season, horizon
        t = np.asarray(t)
        if t.size and t.min() < m:
            raise ValueError(f"t: expected origins >= the season {m} (a season and a step of history), got {t.min()}")
        e = self.errors(y)  # (T,)
        back = t[:, None] + np.arange(-m, 1)[None, :]  # (N, m+1): steps t−m … t
        Y = np.concatenate([y[back], np.zeros((len(t), K))], axis=1)  # (N, m+1+K): history, then forecasts
        E = np.concatenate([e[back], np.zeros((len(t), K))], axis=1)  # (N, m+1+K): errors, 0 after t
        th, TH = self.theta, self.Theta
        for j in range(m + 1, m + 1 + K):  # column j holds step t + (j − m)
            Y[:, j] = (Y[:, j - 1] + Y[:, j - m] - Y[:, j - m - 1]
                       + th * E[:, j - 1] + TH * E[:, j - m] + th * TH * E[:, j - m - 1])  # (N,)
        return Y[:, m + 1:]  # (N, K)


def _errors(y: np.ndarray, theta: float, Theta: float, m: int) -> np.ndarray:
    """(T,) e: w filtered by 1 / ((1 + θB)(1 + ΘBᵐ)), started at rest at t = m + 1."""
    w = y[m + 1:] - y[m:-1] - y[1:-m] + y[:-m - 1]  # (T−m−1,) w_{m+1} …
    a = np.zeros(m + 2)  # (m+2,) (1 + θB)(1 + ΘBᵐ) = 1 + θB + ΘBᵐ + θΘBᵐ⁺¹
    a[0], a[1], a[m], a[m + 1] = 1.0, theta, Theta, theta * Theta
    return np.concatenate([np.zeros(m + 1), lfilter([1.0], a, w)])  # (T,)


def fit_airline(y: np.ndarray, gap: np.ndarray, n_train: int, season: int) -> Airline | None:
    """The airline model of y[:n_train] (gap-filled, `gap` (T,) marks filled steps) by conditional least
    squares, or None where θ has nothing to fit: no w_t of the training part from t = m + 2 on reads only
    observed values (or m < 2). Θ acts on the sum only through e_{t−m}, which is non-zero from t = 2m + 1
    on; where no such w_t is clean (a training part shorter than 2m + 2 steps), Θ stays 0, `Theta_fitted`
    False, and θ is fitted alone."""
    m = season
    if m < 2 or n_train < m + 3:
        return None
    y, gap = np.asarray(y[:n_train], dtype=np.float64), np.asarray(gap[:n_train], dtype=bool)
    clean = np.zeros(n_train, dtype=bool)  # (n,) w_t reads y_t, y_{t−1}, y_{t−m}, y_{t−m−1}, none filled
    clean[m + 1:] = ~(gap[m + 1:] | gap[m:-1] | gap[1:-m] | gap[:-m - 1])
    if not clean[m + 2:].any():  # θ acts through e_{t−1}, non-zero from t = m + 2 on
        return None
    seasonal = bool(clean[2 * m + 1:].any())

    def css(par: np.ndarray) -> float:
        e = _errors(y, par[0], par[1] if seasonal else 0.0, m)[clean]  # (n_clean,)
        return float(e @ e)

    starts = [np.array([a, b]) for a in STARTS for b in STARTS] if seasonal else [np.array([a]) for a in STARTS]
    bounds = [(-BOUND, BOUND)] * len(starts[0])
    best = min((minimize(css, x0, method="L-BFGS-B", bounds=bounds) for x0 in starts), key=lambda r: r.fun)
    return Airline(theta=float(best.x[0]), Theta=float(best.x[1]) if seasonal else 0.0, season=m,
                   Theta_fitted=seasonal)
