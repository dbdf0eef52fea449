"""Specification of the evaluation metrics (escpredict.model.metrics)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from escpredict.model.metrics import (
    TENURE_BANDS,
    cost_threshold,
    evaluate,
    expected_calibration_error,
    recall_at_top_fraction,
    segment_metrics,
    tenure_band,
)


def calibrated_sample(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from the very probabilities returned: calibrated by construction."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(size=n)
    return (rng.uniform(size=n) < p).astype(int), p


def total_cost(y: np.ndarray, p: np.ndarray, t: float, missed: float, unnecessary: float) -> float:
    routed = p >= t
    return missed * np.sum((y == 1) & ~routed) + unnecessary * np.sum((y == 0) & routed)


# --- expected calibration error ---------------------------------------------------------


def test_ece_is_small_for_calibrated_probabilities() -> None:
    y, p = calibrated_sample(20_000)
    assert expected_calibration_error(y, p) < 0.02


def test_ece_is_large_for_distorted_probabilities() -> None:
    y, p = calibrated_sample(20_000)
    # E|p - p**3| = 1/4 for uniform p.
    assert expected_calibration_error(y, p**3) > 0.2


def test_ece_weights_equal_width_bins_by_count() -> None:
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.1, 0.1, 0.9])
    # bin [0.1, 0.2): |1/3 - 0.1| * 3/4; bin [0.9, 1.0]: |1.0 - 0.9| * 1/4
    assert expected_calibration_error(y, p, n_bins=10) == pytest.approx(0.2)


def test_ece_puts_probability_one_in_the_top_bin() -> None:
    assert expected_calibration_error([1, 1], [1.0, 1.0]) == pytest.approx(0.0)


# --- recall among the top fraction ---------------------------------------------------------


@pytest.mark.parametrize("positives", [50, 100, 300])
def test_recall_top10_of_a_perfect_ranking(positives: int) -> None:
    n = 1000
    y = np.zeros(n, dtype=int)
    y[:positives] = 1
    p = np.where(y == 1, 0.9, 0.1) + np.random.default_rng(1).uniform(0, 0.05, n)
    assert recall_at_top_fraction(y, p, 0.1) == pytest.approx(min(1.0, 0.1 * n / positives))


def test_recall_top_fraction_shares_tied_cutoff_slots() -> None:
    # A constant score cannot rank: its recall is the fraction inspected, whatever the order.
    y = np.array([1, 1, 0, 0, 0, 0, 0, 0, 0, 0] * 10)
    assert recall_at_top_fraction(y, np.full(y.size, 0.3), 0.1) == pytest.approx(0.1)
    assert recall_at_top_fraction(y[::-1], np.full(y.size, 0.3), 0.25) == pytest.approx(0.25)


def test_recall_top_fraction_is_nan_without_escalations() -> None:
    assert math.isnan(recall_at_top_fraction(np.zeros(20), np.linspace(0, 1, 20)))


# --- cost-minimising threshold -------------------------------------------------------------


def test_cost_threshold_is_no_worse_than_half_or_any_other_candidate() -> None:
    y, p = calibrated_sample(3_000, seed=2)
    t = cost_threshold(y, p, missed_cost=5.0, unnecessary_cost=1.0)
    best = total_cost(y, p, t, 5.0, 1.0)
    assert 0.0 <= t <= 1.0
    assert best <= total_cost(y, p, 0.5, 5.0, 1.0)
    candidates = np.concatenate([np.unique(p), [0.0, 0.5, 1.0, np.nextafter(p.max(), 2.0)]])
    assert all(best <= total_cost(y, p, c, 5.0, 1.0) for c in candidates)


def test_cost_threshold_moves_down_as_missed_escalations_cost_more() -> None:
    y, p = calibrated_sample(3_000, seed=3)
    thresholds = [cost_threshold(y, p, missed, 1.0) for missed in (0.5, 1, 2, 5, 10, 50)]
    assert thresholds == sorted(thresholds, reverse=True)
    assert thresholds[0] > thresholds[-1]


def test_cost_threshold_on_calibrated_scores_is_near_the_bayes_threshold() -> None:
    # Route when p * missed > (1 - p) * unnecessary, i.e. p > 1 / (1 + 5) for costs 5:1.
    y, p = calibrated_sample(20_000, seed=4)
    assert cost_threshold(y, p, 5.0, 1.0) == pytest.approx(1 / 6, abs=0.05)


def test_cost_threshold_breaks_ties_towards_the_lowest_threshold() -> None:
    y = np.array([1, 0, 1])
    p = np.array([0.3, 0.5, 0.7])
    # t=0.7 misses one (cost 1); t=0.3 routes one needlessly (cost 1): both cheapest.
    assert cost_threshold(y, p, 1.0, 1.0) == 0.3


def test_cost_threshold_routes_nothing_when_nothing_escalates() -> None:
    p = np.array([0.1, 0.4, 0.8])
    t = cost_threshold(np.zeros(3), p, 5.0, 1.0)
    assert not np.any(p >= t)
    assert t == pytest.approx(0.8)


# --- evaluate ------------------------------------------------------------------------------

EVALUATE_KEYS = {
    "n",
    "positives",
    "positive_rate",
    "roc_auc",
    "pr_auc",
    "brier",
    "log_loss",
    "ece",
    "recall_top10",
    "precision_at_threshold",
    "recall_at_threshold",
    "routed_rate",
}


def test_evaluate_reports_every_metric_on_a_worked_example() -> None:
    y = np.array([1, 0, 1, 0])
    p = np.array([0.9, 0.8, 0.2, 0.1])
    m = evaluate(y, p, threshold=0.5)
    assert set(m) == EVALUATE_KEYS
    assert (m["n"], m["positives"], m["positive_rate"]) == (4, 2, 0.5)
    assert m["roc_auc"] == pytest.approx(0.75)  # 3 of 4 positive/negative pairs ordered right
    assert m["brier"] == pytest.approx((0.01 + 0.64 + 0.64 + 0.01) / 4)
    assert m["precision_at_threshold"] == 0.5
    assert m["recall_at_threshold"] == 0.5
    assert m["routed_rate"] == 0.5
    assert all(isinstance(v, float) for v in m.values())


@pytest.mark.parametrize("label", [0, 1])
def test_evaluate_gives_nan_aucs_for_a_single_class(label: int) -> None:
    y = np.full(10, label)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = evaluate(y, np.linspace(0.05, 0.95, 10), threshold=0.5)
    assert math.isnan(m["roc_auc"]) and math.isnan(m["pr_auc"])
    assert m["n"] == 10 and math.isfinite(m["log_loss"])


def test_evaluate_precision_is_nan_when_nothing_is_routed() -> None:
    m = evaluate([0, 1], [0.1, 0.2], threshold=0.9)
    assert m["routed_rate"] == 0.0
    assert math.isnan(m["precision_at_threshold"])
    assert m["recall_at_threshold"] == 0.0


def test_evaluate_refuses_missing_labels_and_mismatched_lengths() -> None:
    open_ticket = pd.Series([True, pd.NA, False], dtype="boolean")
    with pytest.raises(ValueError, match="open tickets"):
        evaluate(open_ticket, [0.2, 0.3, 0.4], 0.5)
    with pytest.raises(ValueError, match="differ in length"):
        evaluate([0, 1], [0.2, 0.3, 0.4], 0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        evaluate([0, 1], [0.2, 1.3], 0.5)


# --- tenure bands --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("days", "band"),
    [
        (0, "<3m"),
        (89, "<3m"),
        (89.9, "<3m"),
        (90, "3-6m"),
        (179, "3-6m"),
        (180, "6-12m"),
        (364, "6-12m"),
        (365, "1-2y"),
        (729, "1-2y"),
        (730, "2y+"),
        (5000, "2y+"),
        (-3, "<3m"),
        (None, "unknown"),
    ],
)
def test_tenure_band_edges(days: float | None, band: str) -> None:
    assert tenure_band(pd.Series([days], dtype="Float64")).iloc[0] == band


def test_tenure_band_is_ordered_and_keeps_the_index() -> None:
    days = pd.Series([800.0, np.nan, 10.0], index=[7, 8, 9], name="agent_tenure_days")
    bands = tenure_band(days)
    assert list(bands.cat.categories) == list(TENURE_BANDS)
    assert bands.cat.ordered
    assert bands.index.tolist() == [7, 8, 9]
    assert bands.tolist() == ["2y+", "unknown", "<3m"]
    assert bands.sort_values().tolist() == ["<3m", "2y+", "unknown"]


# --- segment metrics -----------------------------------------------------------------------


def segment_sample() -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    y, p = calibrated_sample(400, seed=5)
    channel = np.array(["email"] * 200 + ["chat"] * 180 + ["fax"] * 10 + [None] * 10, dtype=object)
    segments = pd.DataFrame(
        {"channel": channel, "tenure_band": tenure_band(pd.Series([30.0] * 400))}
    )
    return y, p, segments


def test_segment_metrics_has_one_row_per_segment_value_and_counts_add_up() -> None:
    y, p, segments = segment_sample()
    table = segment_metrics(y, p, segments, threshold=0.5)
    assert list(table.columns) == [
        "segment",
        "value",
        "n",
        "positives",
        "positive_rate",
        "mean_p",
        "roc_auc",
        "pr_auc",
        "recall_at_threshold",
    ]
    by_segment = table.groupby("segment")["n"].sum()
    assert by_segment.to_dict() == {"channel": 400, "tenure_band": 400}
    assert set(table.loc[table.segment == "channel", "value"]) == {
        "email",
        "chat",
        "fax",
        "(missing)",
    }
    assert table.loc[table.segment == "tenure_band", "value"].tolist() == ["<3m"]


def test_segment_metrics_marks_small_segments_nan_but_keeps_their_counts() -> None:
    y, p, segments = segment_sample()
    table = segment_metrics(y, p, segments, threshold=0.5, min_count=30).set_index("value")
    fax = table.loc["fax"]
    assert fax["n"] == 10 and fax["positives"] == y[380:390].sum()
    assert math.isnan(fax["roc_auc"]) and math.isnan(fax["pr_auc"])
    assert fax["mean_p"] == pytest.approx(p[380:390].mean())
    email = table.loc["email"]
    assert email["roc_auc"] == pytest.approx(evaluate(y[:200], p[:200], 0.5)["roc_auc"])
    assert email["recall_at_threshold"] == pytest.approx(
        evaluate(y[:200], p[:200], 0.5)["recall_at_threshold"]
    )


def test_segment_metrics_gives_nan_aucs_for_a_one_class_segment() -> None:
    y = np.array([0] * 40 + [0, 1] * 20)
    p = np.linspace(0.01, 0.99, 80)
    segments = pd.DataFrame({"queue": ["a"] * 40 + ["b"] * 40}, index=np.arange(100, 180))
    table = segment_metrics(y, p, segments, threshold=0.5).set_index("value")
    assert math.isnan(table.loc["a", "roc_auc"]) and table.loc["a", "n"] == 40
    assert math.isfinite(table.loc["b", "roc_auc"])


def test_segment_metrics_refuses_misaligned_segments() -> None:
    with pytest.raises(ValueError, match="rows"):
        segment_metrics([0, 1], [0.1, 0.9], pd.DataFrame({"c": ["a"]}), threshold=0.5)
