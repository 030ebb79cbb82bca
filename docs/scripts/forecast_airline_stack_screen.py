"""Screen for docs/applications.md: the ridge AR(156) of `grukit forecast` with the airline model's
K forecasts as K more inputs, fitted and scored on each backtest fold (not adopted).

Inputs of a window: the ridge's (the window's scaled deviations from its last value, an intercept)
and the airline model's forecasts of the K steps as scaled changes from the last value, (ŷ_k − y_t)/s.
The airline model is fitted on each fold's training part (`fit_airline`); one least-squares fit per
step k on the training windows whose target k was observed, α picked on the fold's validation.
Validation and test are printed together.

    .venv/bin/python docs/scripts/forecast_airline_stack_screen.py
"""
from __future__ import annotations

import numpy as np

from grukit.data.timeseries import load_co2
from grukit.tasks.forecast_arima import Airline, fit_airline
from grukit.tasks.forecast_baselines import ALPHAS
from grukit.tasks.forecast_data import Prepared, errors, prepare

K, L, M = 52, 156, 52  # horizon, lookback, season


def inputs(p: Prepared, airline: Airline, t: np.ndarray) -> np.ndarray:
    """(N, L + K + 1): the ridge's window inputs, the airline forecasts as scaled changes, an intercept."""
    window = p.inputs(t)[:, :, 0].astype(np.float64)  # (N, L) deviations from y_t, over s
    ahead = (airline.forecast(p.y, t, K) - p.y[t][:, None]) / p.scale  # (N, K)
    return np.concatenate([window, ahead, np.ones((len(t), 1))], axis=1)  # (N, L + K + 1)


def fit(X: np.ndarray, Y: np.ndarray, observed: np.ndarray, alpha: float) -> np.ndarray:
    """(P, K): per step k, ridge on the windows whose target k was observed (the intercept not penalised)."""
    penalty = alpha * np.eye(X.shape[1])  # (P, P)
    penalty[-1, -1] = 0.0
    W = np.empty((X.shape[1], K))  # (P, K)
    for k in range(K):
        seen = observed[:, k] > 0  # (N,)
        W[:, k] = np.linalg.solve(X[seen].T @ X[seen] + penalty, X[seen].T @ Y[seen, k])
    return W


def mase(p: Prepared, X: np.ndarray, W: np.ndarray, t: np.ndarray) -> float:
    target, observed = p.targets(t)  # (N, K) each
    return errors(p.unscale(t, X @ W), p.unscale(t, target), observed, p.mase_scale)["MASE"]


def main() -> None:
    series = load_co2()
    for transform in ("none", "log"):
        for back in range(4):
            p = prepare(series.values, lookback=L, horizon=K, season=M, back=back, transform=transform)
            airline = fit_airline(p.y, p.gap, p.bounds[0], M)
            t_train, t_val, t_test = (p.origins(part) for part in ("train", "val", "test"))
            X_train, X_val, X_test = (inputs(p, airline, t) for t in (t_train, t_val, t_test))
            Y, observed = p.targets(t_train)
            scores = []
            for alpha in ALPHAS:
                W = fit(X_train, Y.astype(np.float64), observed, alpha)
                scores.append((mase(p, X_val, W, t_val), mase(p, X_test, W, t_test), alpha))
            val, test, alpha = min(scores)
            print(f"transform {transform}, fold {back + 1}: validation {val:.4f}, test {test:.4f} (α {alpha:g})")


if __name__ == "__main__":
    main()
