"""Screen for docs/applications.md (not adopted): intercept correction of the command's ridge AR(156).

Intercept correction (Clements & Hendry's device for a shift in level or growth): at origin t, step k's
forecast gets c times the mean error of the last W step-k forecasts whose targets are observed at t (the
forecasts from origins t−k−W+1 … t−k; errors at gap-filled targets left out), so that a run of under- or
over-forecasts moves the next forecasts with it. The ridge is the command's (`ridge_ar`, fitted once on the
training windows, α picked on validation). (W, c) is chosen on validation, on the default split and on the
mean over the four backtest folds; the default split's test and the mean test of folds 2–4 are printed
beside every cell.

    .venv/bin/python docs/scripts/forecast_intercept_correction_screen.py    (12 s)
"""
from __future__ import annotations

import numpy as np

from grukit.data.timeseries import load_co2
from grukit.tasks.forecast_baselines import ridge_ar, ridge_predict
from grukit.tasks.forecast_data import Prepared, errors, prepare

WINDOWS = (4, 13, 26, 52, 104)  # W: forecasts averaged
WEIGHTS = (0.25, 0.5, 0.75, 1.0)  # c
PARTS = ("val", "test")


def corrections(E: np.ndarray, first: int, t: np.ndarray, window: int) -> np.ndarray:
    """(N, K): the mean step-k error of the forecasts from origins t−k−W+1 … t−k, over those observed.
    E (M, K) holds the errors of the forecasts from origins first, first + 1, … (NaN where unobserved)."""
    K = E.shape[1]
    out = np.zeros((len(t), K))
    for n, o in enumerate(t):
        for k in range(1, K + 1):
            newest = o - k - first  # row of origin o − k: its step-k target is y_o
            e = E[max(newest - window + 1, 0):newest + 1, k - 1]  # (≤ W,)
            e = e[~np.isnan(e)]
            out[n, k - 1] = e.mean() if len(e) else 0.0
    return out


def fold(p: Prepared) -> dict:
    """{(W, c) or "ridge": {part: MASE}} of one split."""
    W, _ = ridge_ar(p)
    K = p.horizon
    every = np.arange(p.lookback - 1, len(p.y) - K)  # (M,) every origin with K targets
    idx = every[:, None] + np.arange(1, K + 1)[None, :]  # (M, K)
    F = ridge_predict(p, W, every)  # (M, K) forecasts of the level
    E = np.where(p.gap[idx], np.nan, p.level(p.y[idx]) - F)  # (M, K)
    scores: dict = {}
    for part in PARTS:
        t = p.origins(part)
        target, observed = p.targets(t)
        truth, base = p.unscale(t, target), F[t - every[0]]  # (N, K) each
        scores.setdefault("ridge", {})[part] = errors(base, truth, observed, p.mase_scale)["MASE"]
        for window in WINDOWS:
            corr = corrections(E, int(every[0]), t, window)  # (N, K)
            for c in WEIGHTS:
                mase = errors(base + c * corr, truth, observed, p.mase_scale)["MASE"]
                scores.setdefault((window, c), {})[part] = mase
    return scores


def line(name: str, s: list[dict]) -> str:
    return (f"{name}: validation {s[0]['val']:.4f}, test {s[0]['test']:.4f}; validation mean of 4 folds "
            f"{np.mean([f['val'] for f in s]):.4f}, test folds 2–4 {np.mean([f['test'] for f in s[1:]]):.4f}")


def main() -> None:
    values = load_co2().values
    for transform in ("none", "log"):
        folds = [fold(prepare(values, lookback=156, horizon=52, season=52, back=b, transform=transform))
                 for b in range(4)]
        per = {g: [f[g] for f in folds] for g in folds[0]}  # {(W, c): [fold scores]}
        print(f"transform {transform}")
        print("  " + line("fixed ridge", per.pop("ridge")))
        for rule, key in (("default split's validation", lambda s: s[0]["val"]),
                          ("mean validation of 4 folds", lambda s: np.mean([f["val"] for f in s]))):
            g = min(per, key=lambda cell: key(per[cell]))
            print(f"  chosen on the {rule}: " + line(f"W = {g[0]}, c = {g[1]}", per[g]))
        for g in sorted(per):
            print("    " + line(f"W = {g[0]:>3}, c = {g[1]:<4}", per[g]))


if __name__ == "__main__":
    main()
