"""Specification of the score calibrator (escpredict.model.calibration)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from escpredict.model.calibration import P_MAX, P_MIN, PRIOR_TICKETS, Calibrator, choose
from escpredict.model.metrics import expected_calibration_error


def margin_sample(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """LightGBM-like margins whose true log-odds are 0.5 * margin - 1 (overconfident)."""
    rng = np.random.default_rng(seed)
    margin = rng.normal(0.0, 2.5, n)
    truth = 1 / (1 + np.exp(-(0.5 * margin - 1.0)))
    return margin, (rng.uniform(size=n) < truth).astype(int)


def probability_sample(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Raw probabilities p**3 whose true escalation rate is p: badly miscalibrated."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(size=n)
    return p**3, (rng.uniform(size=n) < p).astype(int)


def test_sigmoid_apply_matches_sklearn_within_the_windows_bound() -> None:
    raw, y = margin_sample(2_000, seed=0)
    new = np.concatenate([margin_sample(500, seed=1)[0], [-50.0, 50.0]])  # incl. out of range
    calibrator = Calibrator().fit(raw, y, "sigmoid")
    lr = LogisticRegression(C=np.inf).fit(raw.reshape(-1, 1), y)
    expected = np.clip(lr.predict_proba(new.reshape(-1, 1))[:, 1], calibrator.low, calibrator.high)
    np.testing.assert_allclose(calibrator.apply(new), expected, rtol=0, atol=1e-12)


def test_each_isotonic_step_is_its_rate_with_pseudo_tickets_at_the_base_rate() -> None:
    # Steps: scores 0-2 (3 tickets, none escalated) and 3-5 (3 tickets, all); base rate 1/2.
    calibrator = Calibrator().fit(np.arange(6.0), np.array([0, 0, 0, 1, 1, 1]), "isotonic")
    low, high = (
        PRIOR_TICKETS / 2 / (3 + PRIOR_TICKETS),
        (3 + PRIOR_TICKETS / 2) / (3 + PRIOR_TICKETS),
    )
    np.testing.assert_allclose(
        calibrator.apply(np.array([-9.0, 0.0, 5.0, 9.0])), [low, low, high, high]
    )


def test_isotonic_moves_plain_isotonic_only_where_a_step_holds_few_tickets() -> None:
    raw, y = margin_sample(20_000, seed=0)
    ours = Calibrator().fit(raw, y, "isotonic").apply(raw)
    plain = IsotonicRegression(out_of_bounds="clip").fit(raw, y).predict(raw)
    assert np.abs(ours - plain).mean() < 0.002
    assert plain.min() == 0.0 and plain.max() == 1.0  # what the shrinkage exists to avoid
    assert 0.0 < ours.min() and ours.max() < 1.0


@pytest.mark.parametrize("method", ["isotonic", "sigmoid"])
def test_no_probability_passes_what_the_calibration_window_supports(method: str) -> None:
    raw, y = margin_sample(1_000, seed=9)
    calibrator = Calibrator().fit(raw, y, method)
    base = y.mean()
    a = PRIOR_TICKETS
    assert calibrator.low == pytest.approx(a * base / (1_000 + a))
    assert calibrator.high == pytest.approx((1_000 + a * base) / (1_000 + a))
    out = calibrator.apply(np.array([-1e6, 1e6]))
    assert calibrator.low <= out[0] and out[1] <= calibrator.high


@pytest.mark.parametrize(
    ("sample", "method"),
    [(probability_sample, "isotonic"), (margin_sample, "isotonic"), (margin_sample, "sigmoid")],
)
def test_calibration_improves_ece_on_fresh_data(sample, method: str) -> None:
    fit_raw, fit_y = sample(5_000, seed=2)
    raw, y = sample(5_000, seed=3)
    calibrator = Calibrator().fit(fit_raw, fit_y, method)
    before = expected_calibration_error(
        y, 1 / (1 + np.exp(-raw)) if sample is margin_sample else raw
    )
    after = expected_calibration_error(y, calibrator.apply(raw))
    assert before > 0.15
    assert after < min(0.05, before / 4)  # 0.05: sampling noise of a 5,000-row ECE is ~0.02


@pytest.mark.parametrize("method", ["isotonic", "sigmoid"])
def test_apply_is_monotone_and_bounded(method: str) -> None:
    raw, y = margin_sample(2_000, seed=4)
    grid = np.linspace(-1e3, 1e3, 20_001)
    calibrator = Calibrator().fit(raw, y, method)
    out = calibrator.apply(grid)
    assert np.all(np.diff(out) >= 0)
    assert P_MIN < calibrator.low <= out.min() and out.max() <= calibrator.high < P_MAX


@pytest.mark.parametrize("method", ["isotonic", "sigmoid"])
def test_single_rows_get_exactly_the_batch_result(method: str) -> None:
    raw, y = margin_sample(1_000, seed=5)
    calibrator = Calibrator().fit(raw, y, method)
    batch = calibrator.apply(raw)
    one_by_one = np.concatenate([calibrator.apply(raw[i : i + 1]) for i in range(raw.size)])
    assert calibrator.apply(np.array([0.3])).shape == (1,)
    np.testing.assert_array_equal(batch, one_by_one)


@pytest.mark.parametrize("method", ["isotonic", "sigmoid"])
def test_a_calibrator_saved_as_json_maps_every_score_the_same(method: str) -> None:
    raw, y = margin_sample(500, seed=6)
    calibrator = Calibrator().fit(raw, y, method)
    restored = Calibrator.from_state(json.loads(json.dumps(calibrator.to_state())))
    assert restored.method == method
    wider = np.concatenate([raw, np.linspace(-30, 30, 601)])
    np.testing.assert_array_equal(restored.apply(wider), calibrator.apply(wider))


@pytest.mark.parametrize("method", ["isotonic", "sigmoid"])
def test_fit_on_a_single_class_raises(method: str) -> None:
    with pytest.raises(ValueError, match="single class"):
        Calibrator().fit(np.linspace(-1, 1, 50), np.zeros(50), method)


def test_sigmoid_refuses_scores_that_rank_backwards() -> None:
    raw, y = margin_sample(1_000, seed=7)
    with pytest.raises(ValueError, match="negative Platt slope"):
        Calibrator().fit(-raw, y, "sigmoid")


def test_bad_input_is_refused_clearly() -> None:
    raw, y = margin_sample(100, seed=8)
    with pytest.raises(ValueError, match="unknown calibration method"):
        Calibrator().fit(raw, y, "beta")
    with pytest.raises(ValueError, match="labels"):
        Calibrator().fit(raw, y[:-1])
    with pytest.raises(RuntimeError, match="before fit"):
        Calibrator().apply(raw)
    with pytest.raises(ValueError, match="finite"):
        Calibrator().fit(raw, y).apply(np.array([np.nan]))


def test_auto_chooses_platt_scaling_for_a_logistic_score_on_a_small_window() -> None:
    """A margin that is already log-odds, on a thousand tickets: two parameters fit it,
    while isotonic steps would tie tickets the score ranked apart."""
    rng = np.random.default_rng(3)
    raw = rng.normal(-1.0, 1.2, 1_000)
    y = (rng.random(raw.size) < 1 / (1 + np.exp(-raw))).astype(int)
    assert choose(raw, y) == "sigmoid"
    assert Calibrator().fit(raw, y).method == "sigmoid"  # auto is the default


def test_auto_chooses_isotonic_where_the_score_is_not_monotone_in_log_odds_linearly() -> None:
    """A step-shaped truth that no sigmoid of the score follows: isotonic's flexibility wins."""
    rng = np.random.default_rng(4)
    raw = rng.uniform(-3, 3, 20_000)
    truth = np.where(raw < 0, 0.05, np.where(raw < 1, 0.6, 0.62))
    y = (rng.random(raw.size) < truth).astype(int)
    assert choose(raw, y) == "isotonic"


def test_auto_on_two_escalations_still_folds_and_on_one_falls_back_to_isotonic() -> None:
    """Two escalations make two folds of one each, so the window's log loss chooses. Here
    they sit among the higher scores with calmer tickets above them: a smooth rise (Platt)
    fits better than isotonic steps, which claim almost nothing below each escalation. The
    fallback for a window too small to fold would answer isotonic."""
    raw = np.linspace(-2, 2, 40)
    y = np.zeros(40, dtype=int)
    y[[31, 33]] = 1
    assert choose(raw, y) == "sigmoid"
    y[33] = 0  # a single escalation cannot be split into two folds
    assert choose(raw, y) == "isotonic"


def test_an_unknown_method_is_named_in_the_error() -> None:
    with pytest.raises(ValueError, match="'beta'.*auto"):
        Calibrator().fit(np.array([0.0, 1.0]), np.array([0, 1]), "beta")
