"""Forecast baselines, computed in the same run on the same origins as the GRU.

For origin t, step k = 1..K, season m, j = ⌈k/m⌉ (seasons back to the last same-season value):

    naive                 ŷ_{t+k} = y_t
    seasonal-naive        ŷ_{t+k} = y_{t+k−jm}
    seasonal-naive+drift  ŷ_{t+k} = y_{t+k−jm} + j·m·c,   c = (mean y_{t−m+1..t} − mean y_{t−2m+1..t−m}) / m
                          (c: the average change per step over the last season, from the history only)
    ridge AR(L)           ŷ_{t+k} = y_t + s·(b_k + Σ_i w_{k,i} x_i),  x = the lookback window of (y_i − y_t)/s
                          (+ covariates), one linear model per k fitted on the training windows
                          whose target k was observed, ridge penalty α picked on the validation windows
    airline SARIMA        the seasonal ARIMA(0,1,1)(0,1,1)_m of Box & Jenkins, fitted by conditional least
                          squares on the training part (`forecast_arima`)

`all_baselines` computes each on the modelled series y (the log of the level after
`prepare(transform="log")`, where the drift becomes a growth rate) and returns forecasts of
the level. The seasonal baselines need a season (m > 1); the airline model also needs a training
step from t = m + 2 on whose seasonal difference reads no gap (`fit_airline`; with none from t = 2m + 1
on, its Θ is fixed at 0).

Example:
    >>> import numpy as np
    >>> from grukit.tasks.forecast_baselines import seasonal_naive
    >>> y = np.arange(10.0)
    >>> seasonal_naive(y, np.array([5]), horizon=3, season=2)
    array([[4., 5., 4.]])
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from grukit.errors import UsageError
from grukit.tasks.forecast_arima import Airline, fit_airline
from grukit.tasks.forecast_data import Prepared, errors

ALPHAS = (0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0)  # ridge penalties tried, the best on validation kept
AIRLINE = "airline SARIMA"  # the airline model's name in tables


def naive(y: np.ndarray, t: np.ndarray, horizon: int) -> np.ndarray:
    """(N, K): the last value repeated."""
    return np.repeat(y[t][:, None], horizon, axis=1)


def _seasons_back(horizon: int, season: int) -> np.ndarray:
    k = np.arange(1, horizon + 1)  # (K,)
    return np.ceil(k / season).astype(int)  # (K,) j


def seasonal_naive(y: np.ndarray, t: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """(N, K): the value one (or j) seasons before each target step."""
    k = np.arange(1, horizon + 1)  # (K,)
    j = _seasons_back(horizon, season)  # (K,)
    return y[t[:, None] + (k - j * season)[None, :]]  # (N, K)


def seasonal_naive_drift(y: np.ndarray, t: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """(N, K): seasonal-naive plus the last season's average change per step times j·m."""
    m = season
    lo = np.maximum(t - 2 * m + 1, 0)  # (N,)
    c = np.array([(y[b - m + 1:b + 1].mean() - y[a:b - m + 1].mean()) / m if b - m + 1 > a else 0.0
                  for a, b in zip(lo, t)])  # (N,)
    j = _seasons_back(horizon, season)  # (K,)
    return seasonal_naive(y, t, horizon, season) + c[:, None] * (j * m)[None, :]


def _ar_features(p: Prepared, t: np.ndarray) -> np.ndarray:
    x = p.inputs(t)  # (N, L, F)
    keep = [0] + list(range(5, x.shape[2]))  # deviations from y_t, and covariates
    flat = x[:, :, keep].reshape(len(t), -1).astype(np.float64)  # (N, L·F')
    return np.concatenate([flat, np.ones((len(t), 1))], axis=1)  # (N, L·F' + 1) with intercept


def ridge_fits(p: Prepared, alphas: Sequence[float]) -> list[tuple[float, np.ndarray]]:
    """[(α, W)] for each α: the direct ridge AR(L) fitted on the training windows, W (L·F'+1, K).

    Target k of a window counts only where it was observed (a gap's filled value is never a
    target, as in the GRU's loss):
    W_k = (Xᵀ D_k X + α I')⁻¹ Xᵀ D_k Y_k, D_k = diag(observed_k), I' without the intercept.
    Steps with the same observed windows share one Gram matrix, computed as XᵀX less the
    missing windows' part (one group, one solve, for a series without gaps).
    """
    t_train = p.origins("train")
    X = _ar_features(p, t_train)  # (N, P)
    Y, M = p.targets(t_train)  # (N, K), (N, K)
    Y, M = Y.astype(np.float64), M.astype(np.float64)
    gram = X.T @ X  # (P, P)
    rhs = X.T @ (M * Y)  # (P, K)
    eye = np.eye(X.shape[1])  # (P, P)
    eye[-1, -1] = 0.0  # the intercept is not penalised
    masks, group = np.unique(M.T, axis=0, return_inverse=True)  # (U, N) distinct observed patterns, (K,)
    group = group.reshape(-1)
    W = {alpha: np.empty_like(rhs) for alpha in alphas}  # α -> (P, K)
    for u, mask in enumerate(masks):
        if not mask.any():
            raise UsageError(f"--csv: no training window has an observed target {int(np.argmax(group == u)) + 1} "
                             "steps ahead (the gaps cover them all); use a shorter --horizon or fewer gaps")
        missing = X[mask == 0]  # (N_u, P)
        gram_u = gram - missing.T @ missing  # (P, P)
        steps = group == u
        for alpha in alphas:
            W[alpha][:, steps] = _solve(gram_u + alpha * eye, rhs[:, steps])  # (P, K_u)
    return list(W.items())


def _solve(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """X with A X = B (A (P, P) symmetric, B (P, K)); the least-norm least-squares X when A is singular in
    floating point (a series that repeats itself every season up to noise far below its size)."""
    try:
        return np.linalg.solve(A, B)  # (P, K)
    except np.linalg.LinAlgError:
        return np.linalg.lstsq(A, B, rcond=None)[0]  # (P, K)


def ridge_ar(p: Prepared, alphas: Sequence[float] = ALPHAS) -> tuple[np.ndarray, float]:
    """Fit the direct ridge AR(L) on train windows (`ridge_fits`), pick α on val MASE; return (W, α),
    W (L·F'+1, K)."""
    t_val = p.origins("val")
    Xv = _ar_features(p, t_val)  # (N_val, P)
    Yv, Mv = p.targets(t_val)  # (N_val, K)
    best = None
    for alpha, W in ridge_fits(p, alphas):
        score = errors(Xv @ W, Yv, Mv, 1.0)["MAE"]
        if best is None or score < best[0]:
            best = (score, W, alpha)
    return best[1], best[2]


def ridge_predict(p: Prepared, W: np.ndarray, t: np.ndarray) -> np.ndarray:
    """(N, K) ridge AR forecasts in data units."""
    return p.unscale(t, _ar_features(p, t) @ W)


@dataclass(frozen=True)
class Fits:
    """The fitted baselines of one split: fitted once, then applied at any origins (`all_baselines`)."""

    W: np.ndarray  # (L·F'+1, K) the ridge AR(L) (`ridge_ar`)
    alpha: float  # its penalty, picked on validation
    airline: Airline | None  # the airline model of the training part; None where it has none (`fit_airline`)


def fit_baselines(p: Prepared) -> Fits:
    """The ridge AR and the airline model of `p`'s split."""
    W, alpha = ridge_ar(p)
    return Fits(W, alpha, fit_airline(p.y, p.gap, p.bounds[0], p.season))


def all_baselines(p: Prepared, t: np.ndarray, fits: Fits | None = None) -> dict[str, np.ndarray]:
    """name -> (N, K) forecasts in data units at origins t; fits: `fit_baselines(p)` when the caller has it."""
    fits = fit_baselines(p) if fits is None else fits
    out = {"naive": p.level(naive(p.y, t, p.horizon))}
    if p.season > 1:
        out["seasonal-naive"] = p.level(seasonal_naive(p.y, t, p.horizon, p.season))
        out["seasonal-naive+drift"] = p.level(seasonal_naive_drift(p.y, t, p.horizon, p.season))
    if fits.airline is not None:
        out[AIRLINE] = p.level(fits.airline.forecast(p.y, t, p.horizon))
    out[f"ridge AR({p.lookback})"] = ridge_predict(p, fits.W, t)
    return out
