"""Evaluation metrics for escalation-risk scores.

Everything here takes labels ``y`` (0/1; open tickets have no label and must be dropped
first) and calibrated probabilities ``p``. Routing means sending a ticket to the higher tier
and always uses the rule ``p >= threshold``, the same rule serving applies. Ranking and
probability metrics come from ``sklearn.metrics``; only what sklearn lacks (ECE, top-fraction
recall, the cost-minimising threshold, per-segment tables) is written here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    confusion_matrix_at_thresholds,
    log_loss,
    roc_auc_score,
)

ArrayLike = np.ndarray | pd.Series | Sequence[float]

#: Tenure bands, shortest first; "unknown" is for agents without a hire date.
TENURE_BANDS: tuple[str, ...] = ("<3m", "3-6m", "6-12m", "1-2y", "2y+", "unknown")
#: Left-closed band edges in days (3 months = 90 days, 6 months = 180 days, 1 year = 365 days):
#: 89 days is "<3m", 90 days is "3-6m", 729 days is "1-2y", 730 days is "2y+".
TENURE_EDGES_DAYS: tuple[int, ...] = (90, 180, 365, 730)

_MISSING_VALUE = "(missing)"
SEGMENT_COLUMNS: tuple[str, ...] = (
    "segment",
    "value",
    "n",
    "positives",
    "positive_rate",
    "mean_p",
    "roc_auc",
    "pr_auc",
    "recall_at_threshold",
)


def _check(y: ArrayLike, p: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert inputs once, so every metric fails the same clear way."""
    y_arr = np.asarray(y, dtype=float).ravel()
    p_arr = np.asarray(p, dtype=float).ravel()
    if y_arr.shape != p_arr.shape:
        raise ValueError(f"y and p differ in length: {y_arr.size} labels, {p_arr.size} scores")
    if y_arr.size == 0:
        raise ValueError("no rows to evaluate")
    if not np.isin(y_arr, (0.0, 1.0)).all():
        raise ValueError("y must be 0/1 labels without missing values (drop open tickets first)")
    if not (np.isfinite(p_arr) & (p_arr >= 0.0) & (p_arr <= 1.0)).all():
        raise ValueError("p must be probabilities in [0, 1] without missing values")
    return y_arr.astype(np.int64), p_arr


def _both_classes(y: np.ndarray) -> bool:
    return 0 < int(y.sum()) < y.size


def _recall_at(y: np.ndarray, p: np.ndarray, threshold: float) -> float:
    """Share of escalations that the threshold routes; NaN when there are none."""
    positives = int(y.sum())
    return float(np.sum(y[p >= threshold]) / positives) if positives else float("nan")


def _aucs(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """ROC AUC and average precision, NaN when undefined (one class) instead of raising."""
    if not _both_classes(y):
        return float("nan"), float("nan")
    return float(roc_auc_score(y, p)), float(average_precision_score(y, p))


def expected_calibration_error(y: ArrayLike, p: ArrayLike, n_bins: int = 15) -> float:
    """Mean |observed rate - mean p| over equal-width bins of p, weighted by bin count.

    Equal-width bins (not quantiles) because routing tiers are fixed probability cut-offs:
    miscalibration is what matters at those values, however few tickets sit there.
    """
    y_arr, p_arr = _check(y, p)
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    bins = np.minimum((p_arr * n_bins).astype(np.int64), n_bins - 1)  # p == 1 joins the top bin
    counts = np.bincount(bins, minlength=n_bins)
    gap = np.abs(
        np.bincount(bins, weights=y_arr, minlength=n_bins)
        - np.bincount(bins, weights=p_arr, minlength=n_bins)
    )
    return float(np.sum(gap[counts > 0]) / y_arr.size)


def recall_at_top_fraction(y: ArrayLike, p: ArrayLike, fraction: float = 0.1) -> float:
    """Share of all escalations found among the ``fraction`` highest-risk tickets.

    This is what a team that can only hand-check a fixed share of tickets gets. The top
    holds ``ceil(fraction * n)`` tickets; scores tied at the cut-off share the remaining
    slots in proportion (the expected recall under a random tie-break), so a constant
    score gets exactly ``fraction`` rather than an order-dependent number.
    NaN when there are no escalations.
    """
    y_arr, p_arr = _check(y, p)
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    positives = int(y_arr.sum())
    if positives == 0:
        return float("nan")
    k = int(np.ceil(fraction * y_arr.size - 1e-9))  # tolerate 0.1 * 1000 = 100.00000000000001
    cutoff = np.sort(p_arr)[::-1][k - 1]
    above = p_arr > cutoff
    tied = p_arr == cutoff
    slots = k - int(above.sum())
    found = y_arr[above].sum() + y_arr[tied].sum() * slots / int(tied.sum())
    return float(found / positives)


def cost_threshold(
    y: ArrayLike, p: ArrayLike, missed_cost: float, unnecessary_cost: float
) -> float:
    """Routing threshold minimising ``missed_cost * FN + unnecessary_cost * FP`` on (y, p).

    Candidates are the observed scores (route ``p >= t``) plus "route nothing", whose
    threshold is the smallest float above the highest score. Among equally cheap thresholds
    the lowest wins: at equal cost, routing more tickets errs towards catching escalations.
    """
    y_arr, p_arr = _check(y, p)
    if missed_cost < 0 or unnecessary_cost < 0:
        raise ValueError("costs must be non-negative")
    _, fps, fns, _, thresholds = confusion_matrix_at_thresholds(y_arr, p_arr, pos_label=1)
    # Prepend "route nothing": every escalation missed, no ticket routed needlessly.
    thresholds = np.concatenate([[np.nextafter(thresholds[0], np.inf)], thresholds])  # decreasing
    missed = np.concatenate([[y_arr.sum()], fns])
    needless = np.concatenate([[0.0], fps])
    cost = missed_cost * missed + unnecessary_cost * needless
    cheapest = np.flatnonzero(np.isclose(cost, cost.min(), rtol=1e-12, atol=0.0))
    return float(thresholds[cheapest[-1]])


def evaluate(y: ArrayLike, p: ArrayLike, threshold: float) -> dict[str, float]:
    """All headline metrics for one (y, p) sample, ready for ``mlflow.log_metrics``.

    Undefined values (AUCs with one class, precision when nothing is routed, recalls with
    no escalations) are NaN rather than exceptions, so a thin test window still logs a run.
    """
    y_arr, p_arr = _check(y, p)
    routed = p_arr >= threshold
    positives = int(y_arr.sum())
    roc_auc, pr_auc = _aucs(y_arr, p_arr)
    n_routed = int(routed.sum())
    return {
        "n": float(y_arr.size),
        "positives": float(positives),
        "positive_rate": positives / y_arr.size,
        "roc_auc": roc_auc,
        "pr_auc": pr_auc,
        "brier": float(brier_score_loss(y_arr, p_arr, pos_label=1)),
        "log_loss": float(log_loss(y_arr, p_arr, labels=[0, 1])),
        "ece": expected_calibration_error(y_arr, p_arr),
        "recall_top10": recall_at_top_fraction(y_arr, p_arr, 0.1),
        "precision_at_threshold": (
            float(y_arr[routed].sum() / n_routed) if n_routed else float("nan")
        ),
        "recall_at_threshold": _recall_at(y_arr, p_arr, threshold),
        "routed_rate": n_routed / y_arr.size,
    }


def tenure_band(days: pd.Series) -> pd.Series:
    """Bucket agent tenure in days into the ordered bands of ``TENURE_BANDS``.

    Bands are left-closed at ``TENURE_EDGES_DAYS``. Missing tenure is "unknown" (kept, not
    dropped). A negative tenure (hire date recorded after the ticket) counts as "<3m": the
    agent is new either way.
    """
    values = pd.to_numeric(days).astype(float)
    edges = [-np.inf, *TENURE_EDGES_DAYS, np.inf]
    bands = pd.cut(values, edges, right=False, labels=list(TENURE_BANDS[:-1]), ordered=True)
    return bands.cat.add_categories("unknown").fillna("unknown")


def _segment_row(
    segment: str, value: Any, y: np.ndarray, p: np.ndarray, threshold: float, min_count: int
) -> dict[str, Any]:
    positives = int(y.sum())
    roc_auc, pr_auc = _aucs(y, p) if y.size >= min_count else (float("nan"), float("nan"))
    return {
        "segment": segment,
        "value": _MISSING_VALUE if pd.isna(value) else str(value),
        "n": int(y.size),
        "positives": positives,
        "positive_rate": positives / y.size,
        "mean_p": float(p.mean()),
        "roc_auc": roc_auc,
        "pr_auc": pr_auc,
        "recall_at_threshold": _recall_at(y, p, threshold),
    }


def segment_metrics(
    y: ArrayLike,
    p: ArrayLike,
    segments: pd.DataFrame,
    threshold: float,
    min_count: int = 30,
) -> pd.DataFrame:
    """One row per (segment column, value), to spot groups the model serves badly.

    ``segments`` is row-aligned with y and p by position. Every value gets a row, missing
    values included as "(missing)", so counts always add up to n; AUCs are NaN for groups
    smaller than ``min_count`` (too noisy to read) or with one class. Values are strings,
    in each column's sort order (category order for categoricals).
    """
    y_arr, p_arr = _check(y, p)
    if len(segments) != y_arr.size:
        raise ValueError(f"segments has {len(segments)} rows, y has {y_arr.size}")
    positions = pd.Series(np.arange(y_arr.size))
    rows = [
        _segment_row(column, value, y_arr[idx], p_arr[idx], threshold, min_count)
        for column in segments.columns
        for value, idx in positions.groupby(
            segments[column].reset_index(drop=True), observed=True, dropna=False, sort=True
        )
    ]
    return pd.DataFrame(rows, columns=SEGMENT_COLUMNS)


#: Shares of open tickets a team reviews, highest risk first (ECrits' "analyst workload").
WORKLOADS: tuple[float, ...] = (0.05, 0.10, 0.20)


def workload_metrics(y: ArrayLike, p: ArrayLike) -> dict[str, float]:
    """ROC AUC, ECE and recall at each of WORKLOADS for one population; NaN when empty."""
    names = ["roc_auc", "ece", *(f"recall_at_{round(w * 100)}pct" for w in WORKLOADS)]
    if len(np.asarray(y)) == 0:
        return dict.fromkeys(names, float("nan"))
    y_arr, p_arr = _check(y, p)
    recalls = [recall_at_top_fraction(y_arr, p_arr, w) for w in WORKLOADS]
    auc = float(roc_auc_score(y_arr, p_arr)) if _both_classes(y_arr) else float("nan")
    return dict(zip(names, [auc, expected_calibration_error(y_arr, p_arr), *recalls],
                    strict=True))


def band_metrics(
    y: np.ndarray, p: np.ndarray, p_ref: np.ndarray, bands: np.ndarray, names: Sequence[str]
) -> pd.DataFrame:
    """Per age band (index = band number): tickets, later escalations, and
    `workload_metrics` of ``p`` beside those of a yardstick ``p_ref`` (``creation_*``)."""
    rows = []
    for band, name in enumerate(names):
        here = bands == band
        ours, ref = workload_metrics(y[here], p[here]), workload_metrics(y[here], p_ref[here])
        rows.append({"band": band, "age": name, "n": int(here.sum()),
                     "positives": int(y[here].sum()), **ours,
                     **{f"creation_{k}": v for k, v in ref.items()}})
    return pd.DataFrame(rows).set_index("band")


def auc_or_nan(y: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC of any score (a margin will do) as the Mann-Whitney statistic, ties counting
    half; NaN with one class. Cheap enough to run on hundreds of bootstrap resamples."""
    positives = int(y.sum())
    negatives = y.size - positives
    if not positives or not negatives:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def paired_auc_gain(
    y: ArrayLike, score: ArrayLike, reference: ArrayLike, resamples: int = 200, seed: int = 0
) -> tuple[float, float]:
    """ROC AUC of ``score`` minus that of ``reference`` on the same tickets, and the standard
    error of that difference over bootstrap resamples of the tickets (both scores resampled
    together, so what they share cancels). NaN when a class is missing."""
    y_arr = np.asarray(y, dtype=np.int64)
    ours, theirs = np.asarray(score, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    gain = auc_or_nan(y_arr, ours) - auc_or_nan(y_arr, theirs)
    if np.isnan(gain):
        return gain, float("nan")
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(resamples):
        pick = rng.integers(0, y_arr.size, y_arr.size)
        draws.append(auc_or_nan(y_arr[pick], ours[pick]) - auc_or_nan(y_arr[pick], theirs[pick]))
    return float(gain), float(np.nanstd(draws))


#: Workloads of a recall-at-workload curve: 5%, 10%, ..., 100% of the open tickets reviewed.
CURVE_WORKLOADS: tuple[float, ...] = tuple(k / 20 for k in range(1, 21))


def workload_curves(
    y: np.ndarray, p: np.ndarray, p_ref: np.ndarray, bands: np.ndarray, names: Sequence[str]
) -> pd.DataFrame:
    """Recall at each of CURVE_WORKLOADS, per band with escalations, of ``p`` (``recall``)
    and of a yardstick ``p_ref`` (``creation_recall``): what reviewing that share of the
    open tickets of that age, highest risk first, catches of those that escalate later."""
    rows = []
    for band, name in enumerate(names):
        here = bands == band
        if not y[here].sum():
            continue
        for w in CURVE_WORKLOADS:
            rows.append({"age": name, "workload": w,
                         "recall": recall_at_top_fraction(y[here], p[here], w),
                         "creation_recall": recall_at_top_fraction(y[here], p_ref[here], w)})
    return pd.DataFrame(rows, columns=["age", "workload", "recall", "creation_recall"])
