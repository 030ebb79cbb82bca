"""Screen for docs/applications.md: the average of ridge AR(L) forecasts over several lookbacks L, against
the command's ridge AR(156) alone, on the four backtest folds (not adopted).

For every subset of L ∈ {104, 156, 208, 260}, each ridge is fitted as the command fits it (`ridge_ar`, α
picked on the fold's validation) and the subset's forecasts are averaged. The mean validation MASE over the
folds decides, as in the backtest protocol; the default split's test and the mean test of folds 2–4 are
printed beside it. Validation and test origins are the same for every L here (each part's first origin is
past the longest lookback).

    .venv/bin/python docs/scripts/forecast_lookback_average_screen.py
"""
from __future__ import annotations

import itertools

import numpy as np

from grukit.data.timeseries import load_co2
from grukit.tasks.forecast_baselines import ridge_ar, ridge_predict
from grukit.tasks.forecast_data import errors, prepare

LOOKBACKS = (104, 156, 208, 260)
PARTS = ("val", "test")


def fold_forecasts(values: np.ndarray, back: int, transform: str) -> tuple[dict, dict]:
    """({(L, part): (N, K) ridge forecasts}, {part: (truth (N, K), observed (N, K), MASE scale)}) of one fold."""
    forecasts, truths = {}, {}
    for L in LOOKBACKS:
        p = prepare(values, lookback=L, horizon=52, season=52, back=back, transform=transform)
        W, _ = ridge_ar(p)
        for part in PARTS:
            t = p.origins(part)
            target, observed = p.targets(t)  # (N, K) each
            forecasts[(L, part)] = ridge_predict(p, W, t)  # (N, K)
            truths[part] = (p.unscale(t, target), observed, p.mase_scale)
    return forecasts, truths


def main() -> None:
    values = load_co2().values
    for transform in ("none", "log"):
        scores: dict[tuple, dict[str, list[float]]] = {}
        for back in range(4):
            forecasts, truths = fold_forecasts(values, back, transform)
            for size in range(1, len(LOOKBACKS) + 1):
                for subset in itertools.combinations(LOOKBACKS, size):
                    for part in PARTS:
                        truth, observed, scale = truths[part]
                        mean = np.mean([forecasts[(L, part)] for L in subset], axis=0)  # (N, K)
                        scores.setdefault(subset, {}).setdefault(part, []).append(
                            errors(mean, truth, observed, scale)["MASE"])
        print(f"transform {transform}")
        for subset, s in sorted(scores.items(), key=lambda item: np.mean(item[1]["val"])):
            print(f"  L = {subset}: validation mean {np.mean(s['val']):.4f}; test fold 1 {s['test'][0]:.4f}, "
                  f"folds 2–4 {np.mean(s['test'][1:]):.4f}")


if __name__ == "__main__":
    main()
