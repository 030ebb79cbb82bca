"""grukit.tasks.forecast_baselines: the drift, the ridge's penalty choice and intercept.

The baselines are also checked inside the forecast command (test_forecast.py); these came from a mutation audit."""
import numpy as np

from grukit.tasks.forecast_baselines import (
    ALPHAS,
    _ar_features,
    ridge_ar,
    ridge_fits,
    ridge_predict,
    seasonal_naive,
    seasonal_naive_drift,
)
from grukit.tasks.forecast_data import errors, prepare


def test_drift_with_one_season_of_history_is_zero():
    """A mutation audit: at an origin with one season of history (t = m − 1) there is no season before the last
    to take a drift from; reading it as the mean of nothing (nan) passed every test."""
    y = np.arange(10.0) ** 2  # (10,)
    t = np.array([2, 3])  # season 3: t = 2 has one season of history, t = 3 part of a second
    drift = seasonal_naive_drift(y, t, 4, season=3)
    assert np.array_equal(drift[0], seasonal_naive(y, t[:1], 4, season=3)[0])  # c = 0
    c = ((1 + 4 + 9) / 3 - 0) / 3  # the last season's mean less the (one-step) season before it, per step
    assert np.allclose(drift[1], seasonal_naive(y, t[1:], 4, season=3)[0] + c * np.array([3, 3, 3, 6]))


def test_ridge_picks_its_penalty_on_observed_validation_targets_only():
    """A mutation audit: scoring the validation windows on every target, gaps' filled values included, passed
    every test; here the two choices differ."""
    rng = np.random.default_rng(0)
    y = np.sin(np.arange(200) * 2 * np.pi / 12) + np.cumsum(rng.normal(0, 0.3, 200))  # (200,)
    y[145:165] = np.nan  # a long gap inside validation (steps 140–169)
    p = prepare(y[:, None], lookback=12, horizon=4, season=12)
    t = p.origins("val")
    X, (Y, observed) = _ar_features(p, t), p.targets(t)
    fits = dict(ridge_fits(p, ALPHAS))

    def best(mask):
        return min(ALPHAS, key=lambda a: errors(X @ fits[a], Y, mask, 1.0)["MAE"])

    assert best(observed) != best(np.ones_like(observed))  # the gap's fills would pick another α
    assert ridge_ar(p)[1] == best(observed)


def test_the_ridge_has_an_unpenalised_intercept():
    """A mutation audit: an intercept column of zeros (no intercept at all) passed every test; under a heavy
    penalty only the intercept can carry a trend's mean change, k·0.5 per step ahead."""
    rng = np.random.default_rng(1)
    y = 0.5 * np.arange(200) + rng.normal(0, 0.5, 200)  # (200,) a trend with noise, no season
    p = prepare(y[:, None], lookback=8, horizon=3, season=1)
    t = p.origins("test")
    assert np.array_equal(_ar_features(p, t)[:, -1], np.ones(len(t)))
    ((_, W),) = ridge_fits(p, [1e6])
    ahead = ridge_predict(p, W, t) - p.y[t][:, None]  # (N, 3) the forecast change
    np.testing.assert_allclose(ahead.mean(axis=0), [0.5, 1.0, 1.5], atol=0.05)
