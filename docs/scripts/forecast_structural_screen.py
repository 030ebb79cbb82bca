"""Screen for docs/applications.md: structural trend + season models, refitted at every forecast origin on
the observed weeks before it (the classical CO2 decomposition: a polynomial trend of degree d over the last
Y years, 3 annual harmonics, and the origin's residual carried forward with a decay of 0.9 a week), alone
and averaged with the command's ridge AR(156), w·ridge + (1 − w)·structural. Four backtest folds;
validation decides (the mean over the folds picks the weight w, as the backtest protocol does); the test
is printed beside it.

    .venv/bin/python docs/scripts/forecast_structural_screen.py
"""
from __future__ import annotations

import numpy as np

from grukit.data.timeseries import load_co2
from grukit.tasks.forecast_baselines import ridge_ar, ridge_predict
from grukit.tasks.forecast_data import Prepared, errors, prepare

YEAR = 52.1775  # weeks
DESIGNS = ((5, 1), (10, 2), (20, 2))  # (Y years of history, trend degree d)
WEIGHTS = np.linspace(0.0, 1.0, 11)  # w, the ridge's share of the average


def design(tau: np.ndarray, degree: int, harmonics: int = 3) -> np.ndarray:
    """(n, d + 1 + 2·harmonics) columns at weeks τ from the origin: (τ/522)^j, sin and cos of h·2πτ/year."""
    cols = [(tau / 522.0) ** j for j in range(degree + 1)]  # each (n,)
    phase = 2 * np.pi * tau / YEAR  # (n,)
    for h in range(1, harmonics + 1):
        cols += [np.sin(h * phase), np.cos(h * phase)]
    return np.stack(cols, axis=1)  # (n, d + 1 + 2·harmonics)


def structural(p: Prepared, t: np.ndarray, years: int, degree: int) -> np.ndarray:
    """(N, K) level forecasts at origins t from a trend + season fit on each origin's last `years` years."""
    ahead = np.arange(1, p.horizon + 1)  # (K,)
    out = np.empty((len(t), p.horizon))  # (N, K)
    for i, origin in enumerate(t):
        idx = np.arange(max(0, origin + 1 - int(years * YEAR)), origin + 1)  # (n,) weeks up to the origin
        idx = idx[~p.gap[idx]]  # observed ones only
        beta, *_ = np.linalg.lstsq(design(idx - origin, degree), p.y[idx], rcond=None)  # (d + 7,)
        residual = p.y[origin] - design(np.zeros(1), degree)[0] @ beta  # the origin's departure from the fit
        out[i] = design(ahead, degree) @ beta + residual * 0.9 ** ahead  # (K,)
    return p.level(out)


def mase(p: Prepared, t: np.ndarray, forecast: np.ndarray) -> float:
    target, observed = p.targets(t)  # (N, K)
    return errors(forecast, p.unscale(t, target), observed, p.mase_scale)["MASE"]


def _folds(values: np.ndarray) -> str:
    """'0.123 / 0.456 / ...': one figure per fold."""
    return " / ".join(f"{v:.3f}" for v in values)


def main() -> None:
    print("| transform | Y, d | structural alone: val folds 1-4 | test folds 1-4 | w (val mean) | "
          "blend: val mean | blend: test folds 1-4 | best fold-1 test over w |")
    for transform in ("none", "log"):
        folds = [prepare(load_co2().values, lookback=156, horizon=52, season=52, back=back, transform=transform)
                 for back in range(4)]
        ridge = [ridge_ar(p)[0] for p in folds]
        for years, degree in DESIGNS:
            score = {part: np.empty((4, len(WEIGHTS))) for part in ("val", "test")}  # [fold, w]
            for f, (p, W) in enumerate(zip(folds, ridge)):
                for part in score:
                    t = p.origins(part)
                    r, s = ridge_predict(p, W, t), structural(p, t, years, degree)  # (N, K) each
                    score[part][f] = [mase(p, t, w * r + (1 - w) * s) for w in WEIGHTS]
            best = int(np.argmin(score["val"].mean(axis=0)))
            print(f"| {transform} | {years}, {degree} | {_folds(score['val'][:, 0])} | {_folds(score['test'][:, 0])} | "
                  f"{WEIGHTS[best]:.1f} | {score['val'][:, best].mean():.3f} | {_folds(score['test'][:, best])} | "
                  f"{score['test'][0].min():.4f} |")


if __name__ == "__main__":
    main()
