"""Screen for docs/applications.md (not adopted): the command's ridge AR(156) with one more input that lets the
growth it forecasts change over the years.

CO2 grew about 0.9 ppm a year in the 1960s and 1.5-2 in the 1990s, and the ridge AR learns one growth per step k
(its intercept) from the training years. Two forms of a drifting growth, each one more column of the ridge:
- "time": γ·t/520, the origin's step t in decades (growth that rises linearly with time);
- "level": γ·(y_t − y_0)/(52 s), the origin's level above the series' first value (growth in proportion to the
  level, as `--transform log` has it).
γ scales the column, so a larger γ penalises its coefficient less (γ = 0 is the command's ridge). (γ, α) is chosen
on validation, on the default split and on the mean over the four backtest folds (one α for all folds, where the
command picks α on each fold's validation); the default split's test and the mean test of folds 2-4 are printed
beside every cell.

    .venv/bin/python docs/scripts/forecast_time_trend_screen.py    (16 s)
"""
from __future__ import annotations

from unittest import mock

import numpy as np

from grukit.data.timeseries import load_co2
from grukit.tasks import forecast_baselines
from grukit.tasks.forecast_data import Prepared, errors, prepare

ALPHAS = (1.0, 10.0, 100.0, 1e3, 1e4)
GAMMAS = (0.0, 0.3, 1.0, 3.0, 10.0)
PARTS = ("val", "test")
_plain = forecast_baselines._ar_features


def drift_column(p: Prepared, t: np.ndarray, form: str) -> np.ndarray:
    """(N,): the extra input at origins t, before γ."""
    return t / 520.0 if form == "time" else (p.y[t] - p.y[0]) / (p.scale * 52)


def fold(p: Prepared, form: str) -> dict:
    """{(γ, α): {part: MASE}} of one split."""
    scores: dict = {}
    for gamma in GAMMAS:
        def features(pp: Prepared, t: np.ndarray, gamma=gamma) -> np.ndarray:
            X = _plain(pp, t)  # (N, P) with the intercept last
            return np.concatenate([X[:, :-1], gamma * drift_column(pp, t, form)[:, None], X[:, -1:]], axis=1)

        with mock.patch.object(forecast_baselines, "_ar_features", features):
            for alpha, W in forecast_baselines.ridge_fits(p, ALPHAS):
                for part in PARTS:
                    t = p.origins(part)
                    target, observed = p.targets(t)  # (N, K) each
                    forecast = forecast_baselines.ridge_predict(p, W, t)  # (N, K)
                    mase = errors(forecast, p.unscale(t, target), observed, p.mase_scale)["MASE"]
                    scores.setdefault((gamma, alpha), {})[part] = mase
    return scores


def line(cell: tuple, s: list[dict]) -> str:
    return (f"γ = {cell[0]:<4} α = {cell[1]:<6g}: validation {s[0]['val']:.4f}, test {s[0]['test']:.4f}; "
            f"validation mean of 4 folds {np.mean([f['val'] for f in s]):.4f}, "
            f"test folds 2–4 {np.mean([f['test'] for f in s[1:]]):.4f}")


def main() -> None:
    values = load_co2().values
    for transform in ("none", "log"):
        splits = [prepare(values, lookback=156, horizon=52, season=52, back=b, transform=transform) for b in range(4)]
        for form in ("time", "level"):
            folds = [fold(p, form) for p in splits]
            per = {cell: [f[cell] for f in folds] for cell in folds[0]}  # {(γ, α): [fold scores]}
            print(f"transform {transform}, form {form}")
            for rule, key in (("default split's validation", lambda s: s[0]["val"]),
                              ("mean validation of 4 folds", lambda s: np.mean([f["val"] for f in s]))):
                cell = min(per, key=lambda c: key(per[c]))
                print(f"  chosen on the {rule}: " + line(cell, per[cell]))
            print(f"  lowest test on the default split (a diagnostic): {min(s[0]['test'] for s in per.values()):.4f}")


if __name__ == "__main__":
    main()
