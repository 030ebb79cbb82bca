"""Screen for docs/applications.md: the recursive strategy, one one-step ridge AR(156) applied 52
times to its own forecasts, against the command's direct ridge (one model per step k), on the
four backtest folds. Validation decides (the recursive model's penalty α too); the test is
printed beside it.

    .venv/bin/python docs/scripts/forecast_recursive_screen.py
"""
from __future__ import annotations

import numpy as np

from grukit.data.timeseries import load_co2
from grukit.tasks.forecast_baselines import ridge_ar, ridge_predict
from grukit.tasks.forecast_data import Prepared, errors, prepare

ALPHAS = (0.1, 1.0, 10.0, 100.0, 1000.0, 1e4)


def one_step_ridge(p: Prepared, alpha: float) -> np.ndarray:
    """w (L+1,): (y_{t+1} − y_t)/s ≈ w · [(y_{t−L+1..t} − y_t)/s; 1], fitted on the training windows whose next
    value was observed."""
    L, y, s = p.lookback, p.y, p.scale
    t = p.origins("train")  # (N,)
    window = y[t[:, None] + np.arange(1 - L, 1)[None, :]]  # (N, L)
    X = np.concatenate([(window - y[t][:, None]) / s, np.ones((len(t), 1))], axis=1)  # (N, L+1)
    Y = (y[t + 1] - y[t]) / s  # (N,)
    keep = ~p.gap[t + 1]  # (N,)
    X, Y = X[keep], Y[keep]
    penalty = alpha * np.eye(L + 1)  # (L+1, L+1)
    penalty[-1, -1] = 0.0  # the intercept is not penalised
    return np.linalg.solve(X.T @ X + penalty, X.T @ Y)  # (L+1,)


def recursive(p: Prepared, w: np.ndarray, t: np.ndarray) -> np.ndarray:
    """(N, K) level forecasts at origins t: the one-step model applied K times, each step on its own outputs."""
    window = p.y[t[:, None] + np.arange(1 - p.lookback, 1)[None, :]].copy()  # (N, L)
    out = np.empty((len(t), p.horizon))  # (N, K)
    for k in range(p.horizon):
        x = np.concatenate([(window - window[:, -1:]) / p.scale, np.ones((len(t), 1))], axis=1)  # (N, L+1)
        out[:, k] = window[:, -1] + p.scale * (x @ w)  # (N,)
        window = np.concatenate([window[:, 1:], out[:, k:k + 1]], axis=1)  # (N, L)
    return p.level(out)


def mase(p: Prepared, t: np.ndarray, forecast: np.ndarray) -> float:
    """MASE of level forecasts (N, K) at origins t, observed targets only."""
    target, observed = p.targets(t)  # (N, K)
    return errors(forecast, p.unscale(t, target), observed, p.mase_scale)["MASE"]


def main() -> None:
    print("| transform | fold | direct: val | test | recursive: α | val | test |")
    for transform in ("none", "log"):
        for back in range(4):
            p = prepare(load_co2().values, lookback=156, horizon=52, season=52, back=back, transform=transform)
            W, _ = ridge_ar(p)
            fits = {alpha: one_step_ridge(p, alpha) for alpha in ALPHAS}
            score = {}
            for part in ("val", "test"):
                t = p.origins(part)
                forecasts = {alpha: recursive(p, w, t) for alpha, w in fits.items()}
                forecasts["direct"] = ridge_predict(p, W, t)
                score[part] = {name: mase(p, t, forecast) for name, forecast in forecasts.items()}
            best = min(ALPHAS, key=lambda alpha: score["val"][alpha])
            print(f"| {transform} | {back + 1} | {score['val']['direct']:.4f} | {score['test']['direct']:.4f} | "
                  f"{best:g} | {score['val'][best]:.4f} | {score['test'][best]:.4f} |")


if __name__ == "__main__":
    main()
