"""grukit.tasks.forecast_data: windows, scaling and the checks of `prepare` and `prepared_for`.

More is checked through the forecast command (test_forecast.py); these came from a mutation audit."""
import numpy as np
import pytest

from grukit.errors import UsageError
from grukit.tasks.forecast_data import prepare, prepared_for


def test_no_training_window_reads_the_validation_or_test_part():
    """A mutation audit: the first step's difference feature (y_0 − y_{−1}) wrapping round to the series' last
    value, the test part's, passed every test; another future after the training part must leave every
    training input as it was."""
    rng = np.random.default_rng(4)
    y = np.sin(np.arange(300) * 2 * np.pi / 12) + rng.normal(0, 0.1, 300)  # (300,)
    p = prepare(y[:, None], lookback=24, horizon=6, season=12)
    later = y.copy()
    later[p.bounds[0]:] += 10.0  # (300,) another validation and test part
    q = prepare(later[:, None], lookback=24, horizon=6, season=12)
    t = p.origins("train")
    assert t[0] == 23 and np.array_equal(q.inputs(t), p.inputs(t))
    assert p.inputs(t[:1])[0, 0, 1] == 0.0  # step 0 has no step before it: no change


def test_a_training_part_that_repeats_to_rounding_is_refused():
    """A mutation audit: refusing only a seasonal-naive MAE of exactly 0 passed every test; a series of 10⁶
    whose seasons differ by 10⁻⁸ (10⁻¹⁴ of its size) has a MASE scale that is rounding noise."""
    rng = np.random.default_rng(5)
    y = 1e6 + np.sin(np.arange(300) * 2 * np.pi / 12) + rng.normal(0, 1e-8, 300)  # (300,)
    with pytest.raises(UsageError, match="repeats itself exactly every 12 steps"):
        prepare(y[:, None], lookback=24, horizon=6, season=12)
    assert prepare(y[:, None] + rng.normal(0, 1e-3, (300, 1)), lookback=24, horizon=6, season=12).scale > 1e-4


def test_prepared_for_needs_a_full_window_and_keeps_a_constant_covariate_finite():
    """A mutation audit: accepting one step fewer than the model's window, and dividing a covariate by a training
    std of 0 (not 1), passed every test."""
    values = np.stack([np.arange(30.0), np.full(30, 5.0)], axis=1)  # (30, 2): target, a constant covariate
    kwargs = dict(horizon=2, season=1, scale=1.0, transform="none", covariate_mean=[4.0], covariate_std=[0.0])
    p = prepared_for(values, window=8, **kwargs)
    assert np.array_equal(p.covariates[:, 0], np.ones(30))  # (5 − 4) / 1
    assert np.isfinite(p.inputs(np.array([29]))).all()
    with pytest.raises(UsageError, match="expected at least the model's window of 8 steps, got 7"):
        prepared_for(values[:7], window=8, **kwargs)


def test_prepared_for_refuses_a_log_model_of_a_target_that_reaches_zero():
    """A mutation audit: accepting a smallest target of 0 for a model of the log (log 0 = −inf) passed every
    test."""
    values = np.arange(10.0)  # (10,) starts at 0
    kwargs = dict(window=4, horizon=2, season=1, scale=1.0, transform="log", covariate_mean=[], covariate_std=[])
    with pytest.raises(UsageError, match="positive wherever observed"):
        prepared_for(values, **kwargs)
    assert np.allclose(prepared_for(values + 1.0, **kwargs).y, np.log(values + 1.0))
