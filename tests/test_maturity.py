"""Label maturity: tickets too recent to have had a fair chance to escalate neither train nor test."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from escpredict.cli import _overrides
from escpredict.config import ConfigError, LabelConfig, SplitConfig, load_config
from escpredict.contract import LABEL
from escpredict.labels.density import dense_span
from escpredict.labels.maturity import (
    AUTO_QUANTILE,
    Maturity,
    export_end,
    maturity,
    window_counts,
)
from escpredict.labels.rules import label_tickets
from escpredict.lifecycle.stages import Stages
from escpredict.lifecycle.train import prepare, run
from escpredict.samples import default as sample_data
from tests.conftest import small_config

START = pd.Timestamp("2025-01-01", tz="UTC")
DAY = pd.Timedelta(days=1)
FRACTIONS = SplitConfig().fractions


def export(rows: list[tuple[float, float | None, bool | None]]) -> tuple[pd.DataFrame, pd.Series]:
    """Tickets from (created day, resolved day or None, escalated or None) and their labels."""
    created = [START + c * DAY for c, _, _ in rows]
    resolved = [pd.NaT if r is None else START + r * DAY for _, r, _ in rows]
    tickets = pd.DataFrame(
        {"created_at": pd.DatetimeIndex(created), "resolved_at": pd.DatetimeIndex(resolved)}
    )
    labels = pd.Series([e for _, _, e in rows], dtype="boolean", name=LABEL)
    return tickets, labels


def test_auto_horizon_is_the_95th_percentile_of_days_to_resolve_an_escalation() -> None:
    escalated = [(i / 10, i / 10 + i + 1, True) for i in range(100)]  # 1..100 days to resolve
    quick_negatives = [(i / 10, i / 10 + 0.5, False) for i in range(3000)]  # days 0..300
    # Created after the median creation time: its long wait is censored there, so not measured.
    late_escalation = [(250.0, 399.0, True)]
    tickets, labels = export(escalated + quick_negatives + late_escalation + [(400.0, None, None)])

    cut = maturity(tickets, labels, "auto", FRACTIONS)

    assert cut.end == START + 400 * DAY
    assert cut.horizon_days == pytest.approx(np.quantile(np.arange(1, 101), AUTO_QUANTILE))
    assert cut.cutoff == cut.end - cut.horizon_days * DAY
    assert "95% quantile" in cut.how and "the 100 escalated tickets" in cut.how
    assert not cut.fallback


def test_a_sparse_old_tail_of_long_running_tickets_does_not_set_the_horizon() -> None:
    """Two years of a few survivors that took months, then the dense bulk: the horizon is the
    bulk's, not the survivors' (measured over the span, it once kept a single ticket)."""
    bulk = [(i / 20, i / 20 + (3.0 if i % 4 == 0 else 0.2), i % 4 == 0) for i in range(1400)]
    tail = [(-730.0 + 12 * k, -730.0 + 12 * k + 200, True) for k in range(60)]
    tickets, labels = export(bulk + tail)
    alone = maturity(*export(bulk), "auto", FRACTIONS)

    cut = maturity(tickets, labels, "auto", FRACTIONS)

    assert cut.horizon_days == pytest.approx(3.0) == alone.horizon_days
    assert "60 created before it" in cut.how  # says what it did not measure on
    kept = cut.labels(labels, tickets["created_at"]).notna().sum()
    assert kept > 0.8 * len(tickets)


def test_a_horizon_that_would_empty_a_window_falls_back_and_says_so_with_the_numbers() -> None:
    """Escalations take 45 of the export's 50 days: the cut would leave ~100 tickets."""
    rows = [(i / 20, i / 20 + (45.0 if i % 3 == 0 else 0.1), i % 3 == 0) for i in range(200)]
    rows += [(i / 20, i / 20 + (1.0 if i % 3 == 0 else 0.1), i % 3 == 0) for i in range(200, 900)]
    tickets, labels = export(rows)
    created = tickets["created_at"]

    cut = maturity(tickets, labels, "auto", FRACTIONS)

    assert cut.horizon_days == pytest.approx(45 * 0.25)
    counts = window_counts(created, labels, cut, FRACTIONS)
    assert all(w.viable for w in counts.values())
    assert cut.fallback.startswith("The 45.0-day horizon would leave too little")
    assert "test 30 tickets, 10 escalated" in cut.fallback  # what the 45 days would leave
    assert "so 11.2 days is used instead" in cut.fallback
    assert cut.fallback in cut.describe() and cut.params()["maturity_fallback"] == cut.fallback


def test_a_configured_horizon_falls_back_too_and_none_at_worst() -> None:
    rows = [(i / 20, i / 20 + 0.1, i % 3 == 0) for i in range(900)]
    tickets, labels = export(rows)
    cut = maturity(tickets, labels, 400, FRACTIONS)  # longer than the export
    assert cut.horizon_days == 0.0 and "labels.maturity_days = 400" in cut.how
    assert "so no horizon is used instead" in cut.fallback


def test_data_too_small_for_any_horizon_keeps_the_measured_one() -> None:
    """No horizon gives 100 tickets a window: falling back would only lose the guard."""
    tickets, labels = export([(float(i), i + (5.0 if i % 3 == 0 else 0.1), i % 3 == 0)
                              for i in range(60)])
    cut = maturity(tickets, labels, "auto", FRACTIONS)
    assert cut.horizon_days == 5.0 and not cut.fallback


def test_the_dense_span_leaves_out_a_sparse_head_and_tail_only() -> None:
    bulk = START + pd.to_timedelta(np.arange(0, 60, 0.05), unit="D")
    quiet_week = bulk[(bulk < START + 30 * DAY) | (bulk > START + 37 * DAY) | (np.arange(len(bulk)) % 4 == 0)]
    head = START - pd.to_timedelta(np.arange(30, 700, 20), unit="D")
    tail = START + pd.to_timedelta(np.arange(90, 300, 30), unit="D")
    created = pd.Series(quiet_week.append(head).append(tail))

    span = dense_span(created)

    assert (span.n_before, span.n_after) == (len(head), len(tail))
    assert span.start < START + DAY and span.end > START + 59 * DAY  # the quiet week stays in
    assert span.contains(created).sum() == len(quiet_week)
    assert span.usual_per_day == pytest.approx(20, rel=0.1)
    assert dense_span(pd.Series(quiet_week)).n_sparse == 0


def test_export_end_is_the_latest_creation_or_resolution() -> None:
    tickets, _ = export([(0.0, 30.0, False), (10.0, None, None)])
    assert export_end(tickets) == START + 30 * DAY
    tickets, _ = export([(0.0, 5.0, False), (10.0, None, None)])
    assert export_end(tickets) == START + 10 * DAY


def test_without_any_measured_escalation_nothing_is_immature() -> None:
    tickets, labels = export([(0.0, 1.0, False), (5.0, 6.0, False), (9.0, None, None)])
    assert maturity(tickets, labels, "auto", FRACTIONS).horizon_days == 0.0


def test_a_configured_horizon_is_used_as_given() -> None:
    tickets, labels = export([(0.0, 50.0, True), (60.0, 61.0, False)])
    assert maturity(tickets, labels, 3, FRACTIONS).horizon_days == 3.0
    assert maturity(tickets, labels, 0, FRACTIONS).horizon_days == 0.0


def test_immature_tickets_lose_their_label_whatever_their_class() -> None:
    cut = Maturity(end=START + 100 * DAY, horizon_days=10)
    tickets, labels = export([(10.0, 11.0, False), (90.0, 91.0, True), (95.0, 96.0, False),
                              (99.0, 99.5, True), (99.9, None, None)])
    kept = cut.labels(labels, tickets["created_at"])
    assert kept.tolist()[:2] == [False, True]  # created at or before the cutoff (day 90)
    assert kept.iloc[2:].isna().all()  # an escalation already seen is dropped too: no upward bias
    assert Maturity(cut.end, 0).mature(tickets["created_at"]).all()


def test_training_leaves_out_and_counts_the_immature_window(sample_dir: Path) -> None:
    config = small_config(sample_dir, "sqlite:///unused.db", **{"labels.maturity_days": 30})
    prepared = prepare(config, Stages(show=False))

    cut, tickets, labels = prepared.maturity, prepared.tickets, prepared.labels
    assert cut.horizon_days == 30
    immature = labels.notna() & (tickets["created_at"] > cut.cutoff)
    assert prepared.counts["n_immature_excluded"] == int(immature.sum()) > 0
    assert labels[immature].any() and not labels[immature].all()  # both classes left out
    assert prepared.frame["created_at"].max() <= cut.cutoff
    assert prepared.counts["n_labelled"] == len(prepared.frame) == int(
        (labels.notna() & ~immature).sum()
    )


def test_zero_days_disables_maturity(sample_dir: Path) -> None:
    config = small_config(sample_dir, "sqlite:///unused.db", **{"labels.maturity_days": 0})
    prepared = prepare(config, Stages(show=False))
    assert prepared.counts["n_immature_excluded"] == 0
    assert len(prepared.frame) == int(prepared.labels.notna().sum())


def test_maturity_days_is_a_config_key_auto_by_default() -> None:
    assert load_config(None).labels.maturity_days == "auto"
    overridden = load_config(None, _overrides(["labels.maturity_days=3"]))
    assert overridden.labels.maturity_days == 3.0
    with pytest.raises(ConfigError, match="labels.maturity_days"):
        load_config(None, {"labels.maturity_days": -1})
    with pytest.raises(ConfigError, match="labels.maturity_days"):
        load_config(None, {"labels.maturity_days": "soon"})


def sparse_tail_export(out: Path, n_old: int = 60) -> None:
    """Two months of the default sample, and before them two years of a few escalated
    survivors that took months to close: an export cut by a filter on recent activity."""
    sample = sample_data.generate(3000, seed=3, months=2)
    tickets = sample.tickets
    labels = label_tickets(tickets, LabelConfig(), sample.agents)
    rng = np.random.default_rng(0)
    old = tickets[labels.fillna(False).to_numpy(dtype=bool)].sample(n_old, random_state=0).copy()
    start = tickets["created_at"].min()
    old["ticket_id"] = [f"OLD{i}" for i in range(n_old)]
    old["created_at"] = start - pd.to_timedelta(rng.uniform(20, 730, n_old), unit="D")
    old["resolved_at"] = start + pd.to_timedelta(rng.uniform(0, 50, n_old), unit="D")
    pd.concat([old, tickets], ignore_index=True).to_parquet(out / "tickets.parquet")
    sample.agents.to_parquet(out / "agents.parquet")


def test_defaults_train_on_a_sparse_old_tail_with_the_bulk_s_horizon(tmp_path: Path) -> None:
    sparse_tail_export(tmp_path)
    cfg = small_config(tmp_path, f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert cfg.labels.maturity_days == "auto"

    result = run(cfg)  # measured over the span, the horizon kept one ticket and this failed

    cut = result.maturity
    assert 1 < cut.horizon_days < 5  # the bulk's escalations take about a day, a few take 8
    assert "60 created before it" in cut.how and not cut.fallback
    assert result.counts["n_immature_excluded"] < 0.1 * result.counts["n_rows"]
    assert result.metrics["roc_auc"] > 0.7
    params = MlflowClient(cfg.registry.tracking_uri).get_run(result.run_id).data.params
    assert params["maturity_how"] == cut.how and params["maturity_fallback"] == "none"
