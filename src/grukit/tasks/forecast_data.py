"""Forecasting windows: a chronological split, train-only scaling, rolling origins, masked metrics.

For an origin t (the last observed step), lookback L and horizon K:

    input    steps t-L+1 .. t, per step the features
               (y_i − y_t)/s, (y_i − y_{i−1})/s, gap_i, sin(2πi/m), cos(2πi/m), (c_i − μ_c)/σ_c
    target   (y_{t+k} − y_t)/s,  k = 1 .. K       (direct multi-step: one output per k)
    mask     1 where y_{t+k} was observed, 0 where the file had a gap

with y the gap-filled target (`fill_gaps`: linear interpolation in the training part, the
last observed value carried forward from the validation part on, so that no validation or
test window reads a value observed after its origin), gap_i = 1 where y_i was
filled, m the seasonal period, c the covariates. With transform="log" the model works
on y = log(level) (for series that grow in proportion to their level); `unscale` maps
its forecasts back, ŷ_level = exp(ŷ), and every metric is taken in the data's own units.

The scale s is the in-sample seasonal-naive MAE of the training part,
s = mean_t |y_t − y_{t−m}|, the same number that scales MASE, so a loss of 0.4 in these
units is a MASE of 0.4 (with the log transform s is taken on log y, and MASE uses s_level,
the same MAE of the level). Every statistic (s, s_level, μ_c, σ_c) comes from the
training part only.

Split: the first `train` fraction of the steps trains, the next `val` fraction picks the
epoch, the rest is the test. A window belongs to a part when all its targets lie in it
(its inputs may reach back into earlier parts: that is the history a forecaster has).
Test origins roll over every step of the test part: t = start−1 .. T−K−1.

Example:
    >>> import numpy as np
    >>> from grukit.tasks.forecast_data import prepare
    >>> y = np.sin(np.arange(400) * 2 * np.pi / 12)[:, None] + np.arange(400)[:, None] * 0.01
    >>> p = prepare(y, lookback=24, horizon=6, season=12)
    >>> p.inputs(p.origins("train")).shape, p.targets(p.origins("test"))[0].shape
    ((251, 24, 5), (55, 6))
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from grukit.data.timeseries import fill_gaps
from grukit.errors import UsageError

TRANSFORMS = ("none", "log")  # what the model sees of the target: the level, or its logarithm


@dataclass
class Prepared:
    """A gap-filled series with its split, scaling and window builders."""

    y: np.ndarray  # (T,) gap-filled target
    gap: np.ndarray  # (T,) bool: target was missing in the file
    covariates: np.ndarray  # (T, C) gap-filled, standardised with train statistics
    lookback: int  # L
    horizon: int  # K
    season: int  # m (1 = no seasonality)
    scale: float  # s, in-sample seasonal-naive MAE on the training part
    bounds: tuple[int, int]  # (n_train, n_train + n_val): first step of val, first step of test
    transform: str  # "none" (y is the level) or "log" (y = log level)
    mase_scale: float  # s_level, the seasonal-naive MAE of the level on the training part (MASE's unit)
    covariate_mean: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (C,) the training part's
    covariate_std: np.ndarray = field(default_factory=lambda: np.ones(0))  # (C,) (0 read as 1)
    start: int = 0  # the step number of y[0] (the season channels' phase counts from the training series' start)

    @property
    def n_features(self) -> int:
        return 5 + self.covariates.shape[1]

    def origins(self, part: str) -> np.ndarray:
        """Origins t whose K targets all lie in `part` ("train", "val", "test") and whose L inputs exist."""
        a, b = self.bounds
        first, stop = {"train": (0, a), "val": (a, b), "test": (b, len(self.y))}[part]
        lo = max(first - 1, self.lookback - 1)
        hi = stop - self.horizon - 1
        return np.arange(lo, hi + 1) if hi >= lo else np.arange(0)

    def inputs(self, t: np.ndarray) -> np.ndarray:
        """(N, L, F) float32 input windows ending at origins `t`."""
        idx = t[:, None] + np.arange(1 - self.lookback, 1)[None, :]  # (N, L)
        y, s, m = self.y, self.scale, max(self.season, 1)
        prev = np.concatenate([y[:1], y[:-1]])  # (T,)
        phase = 2 * np.pi * (idx + self.start) / m  # (N, L)
        parts = [(y[idx] - y[t][:, None]) / s, (y[idx] - prev[idx]) / s, self.gap[idx].astype(np.float64),
                 np.sin(phase) if self.season > 1 else np.zeros_like(phase),
                 np.cos(phase) if self.season > 1 else np.zeros_like(phase)]
        x = np.stack(parts, axis=-1)  # (N, L, 5)
        if self.covariates.shape[1]:
            x = np.concatenate([x, self.covariates[idx]], axis=-1)  # (N, L, 5 + C)
        return x.astype(np.float32)

    def targets(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """((N, K) scaled targets, (N, K) float mask of observed targets)."""
        idx = t[:, None] + np.arange(1, self.horizon + 1)[None, :]  # (N, K)
        target = (self.y[idx] - self.y[t][:, None]) / self.scale  # (N, K)
        return target.astype(np.float32), (~self.gap[idx]).astype(np.float32)

    def unscale(self, t: np.ndarray, scaled: np.ndarray) -> np.ndarray:
        """(N, K) forecasts in data units from scaled outputs."""
        return self.level(self.y[t][:, None] + scaled * self.scale)  # (N, K)

    def level(self, y: np.ndarray) -> np.ndarray:
        """Values of the modelled series y back in data units: exp(y) with the log transform, else y."""
        return np.exp(y) if self.transform == "log" else y


def seasonal_mae(y: np.ndarray, observed: np.ndarray, season: int) -> float:
    """In-sample seasonal-naive MAE: mean |y_t − y_{t−m}| over t where both were observed."""
    m = max(season, 1)
    both = observed[m:] & observed[:-m]
    if not both.any():
        raise UsageError(f"--csv: the training part has no pair of observed values {m} steps apart (season)")
    return float(np.abs(y[m:] - y[:-m])[both].mean())


def prepare(values: np.ndarray, *, lookback: int, horizon: int, season: int,
            fractions: tuple[float, float] = (0.7, 0.15), back: int = 0, transform: str = "none",
            names: Sequence[str] | None = None, cut: str = "") -> Prepared:
    """Split, fill and scale `values` (T, F) (column 0 the target, NaN = gap); see the module docstring.

    transform = "log" models log(target); the target must then be positive wherever observed.
    names: the F column names, for error messages; cut: what a too-short series' message says after its
    length (" (the first 100 of its 2,284 steps, by --limit)").

    back = j > 0 moves the whole split j test-part lengths into the past (a backtest fold): the
    series ends j·n_test steps earlier, validation and test keep the lengths they have for the
    full series, and training is what remains before them.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    if transform not in TRANSFORMS:
        raise UsageError(f"--transform: expected one of {', '.join(TRANSFORMS)}, got {transform!r}")
    if transform == "log" and not (low := np.nanmin(values[:, 0])) > 0:
        raise UsageError(f"--transform: log needs a target that is positive wherever observed, got a smallest "
                         f"value of {low:g}")
    n_val = int(round(values.shape[0] * fractions[1]))
    n_test = values.shape[0] - int(round(values.shape[0] * fractions[0])) - n_val
    values = values[: values.shape[0] - back * n_test]
    T = values.shape[0]
    n_train = T - n_val - n_test
    need_train = lookback + horizon + 1
    if n_train < need_train + max(season, 1) or n_test < horizon + 1 or n_val < horizon + 1:
        if back:  # the full series fits (fold 1 is checked first): this fold moved too far back
            raise UsageError(f"--backtest: fold {back + 1} would leave {max(n_train, 0)} training steps before its "
                             f"validation and test parts; lookback {lookback} + horizon {horizon} + season "
                             f"{season} needs {need_train + max(season, 1)}: use fewer folds")
        flags, what = ("--lookback/--horizon/--season", f" + season {season}") if season > 1 else \
            ("--lookback/--horizon", "")
        raise UsageError(
            f"{flags}: the series has {T} steps{cut}; lookback {lookback} + horizon {horizon}{what} "
            f"needs at least {min_rows(lookback, horizon, season, fractions)} "
            f"(70% train, 15% validation, 15% test)")
    filled, missing = fill_gaps(values, causal_from=n_train, names=names)  # no val/test origin reads its future
    for part, lo, hi in (("validation", n_train, n_train + n_val), ("test", n_train + n_val, T)):
        if missing[lo:hi, 0].all():
            raise UsageError(f"--column: expected observed target values in the {part} part (steps {lo + 1}–{hi} "
                             f"of {T}), got none (all gaps)")
    observed = ~missing[:n_train, 0]
    mase_scale = seasonal_mae(values[:n_train, 0], observed, season)
    low, high = np.nanmin(values[:n_train, 0]), np.nanmax(values[:n_train, 0])
    size = max(abs(low), abs(high))  # the values' magnitude: a MAE below its rounding is 0
    if not mase_scale > 1e-12 * max(size, np.finfo(float).tiny):
        what = "is constant" if low == high else f"repeats itself exactly every {season} steps"
        raise UsageError(f"--column: the training part {what} (seasonal-naive MAE {mase_scale:.3g}, 0 to rounding): "
                         f"MASE's scale is 0, and seasonal-naive is exact")
    scale = mase_scale
    if transform == "log":
        filled[:, 0] = np.log(filled[:, 0])  # (T,) the modelled series
        scale = seasonal_mae(filled[:n_train, 0], observed, season)
    cov = filled[:, 1:]  # (T, C)
    mu, sd = cov[:n_train].mean(axis=0), cov[:n_train].std(axis=0)
    cov = (cov - mu) / np.where(sd > 0, sd, 1.0)  # (T, C)
    return Prepared(y=filled[:, 0], gap=missing[:, 0], covariates=cov, lookback=lookback, horizon=horizon,
                    season=season, scale=scale, bounds=(n_train, n_train + n_val), transform=transform,
                    mase_scale=mase_scale, covariate_mean=mu, covariate_std=sd)


def prepared_for(values: np.ndarray, *, window: int, horizon: int, season: int, scale: float, transform: str,
                 covariate_mean: Sequence[float], covariate_std: Sequence[float], start: int = 0) -> Prepared:
    """A `Prepared` of `values` (T, 1 + C) with scaling known from training (a saved model's), for forecasting
    from its last step: gaps interpolated in time, trailing ones carried forward (every step is before the
    origin), the target's log taken with transform "log", covariates standardised with the given statistics.
    It has no split: `bounds` = (T, T); `window` is its lookback L."""
    values = np.asarray(values, dtype=np.float64)
    values = values[:, None] if values.ndim == 1 else values
    T = values.shape[0]
    if T < window:
        raise UsageError(f"values: expected at least the model's window of {window} steps, got {T}")
    empty = np.flatnonzero(np.isnan(values).all(axis=0))  # (columns with no value,)
    if len(empty):
        raise UsageError(f"values: expected some values in every column, got none in column {int(empty[0])} "
                         f"({'the target' if empty[0] == 0 else 'covariate ' + str(int(empty[0]))})")
    if transform == "log" and not (np.nanmin(values[:, 0]) > 0):
        raise UsageError("values: a model of the log needs a target that is positive wherever observed")
    filled, missing = fill_gaps(values)
    if transform == "log":
        filled[:, 0] = np.log(filled[:, 0])  # (T,)
    mu, sd = np.asarray(covariate_mean, dtype=np.float64), np.asarray(covariate_std, dtype=np.float64)
    cov = (filled[:, 1:] - mu) / np.where(sd > 0, sd, 1.0)  # (T, C)
    return Prepared(y=filled[:, 0], gap=missing[:, 0], covariates=cov, lookback=window, horizon=horizon,
                    season=season, scale=scale, bounds=(T, T), transform=transform, mase_scale=float("nan"),
                    covariate_mean=mu, covariate_std=sd, start=start)


def min_rows(lookback: int, horizon: int, season: int, fractions: tuple[float, float] = (0.7, 0.15)) -> int:
    """The fewest rows `prepare` accepts: its split (70% train, 15% validation, 15% test)
    must leave lookback + horizon + 1 + season training steps and horizon + 1 in validation and in test."""
    need_train = lookback + horizon + 1 + max(season, 1)
    f_test = 1.0 - fractions[0] - fractions[1]
    # each part holds its fraction of the rows within one row, so no count below this bound can do (a start
    # near the answer: stepping from need_train took minutes for a lookback of 10⁹)
    bound = max((need_train - 0.5) / fractions[0], (horizon + 0.5) / fractions[1], horizon / f_test)
    rows = max(need_train, int(bound) - 3)
    while True:
        n_val = int(round(rows * fractions[1]))
        n_test = rows - int(round(rows * fractions[0])) - n_val
        if rows - n_val - n_test >= need_train and min(n_val, n_test) >= horizon + 1:
            return rows
        rows += 1


def errors(y_hat: np.ndarray, y_true: np.ndarray, observed: np.ndarray, scale: float) -> dict[str, float]:
    """MAE, RMSE and MASE (= MAE / scale) over the observed entries of (N, K) forecasts."""
    err = (y_hat - y_true)[observed.astype(bool)]
    mae = float(np.abs(err).mean())
    return {"MAE": mae, "RMSE": float(np.sqrt((err ** 2).mean())), "MASE": mae / scale}
