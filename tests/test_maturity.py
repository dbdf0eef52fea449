"""Label maturity: tickets too recent to have had a fair chance to escalate neither train nor test."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from escpredict.cli import _overrides
from escpredict.config import ConfigError, load_config
from escpredict.contract import LABEL
from escpredict.labels.maturity import AUTO_QUANTILE, Maturity, export_end, maturity
from escpredict.lifecycle.stages import Stages
from escpredict.lifecycle.train import prepare
from tests.conftest import small_config

START = pd.Timestamp("2025-01-01", tz="UTC")
DAY = pd.Timedelta(days=1)


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
    escalated = [(0.0, float(d), True) for d in range(1, 101)]  # 1..100 days to resolve
    quick_negatives = [(float(c), c + 0.5, False) for c in range(0, 300, 3)]
    # Created in the export's second half: its long wait is censored there, so not measured.
    late_escalation = [(250.0, 399.0, True)]
    tickets, labels = export(escalated + quick_negatives + late_escalation + [(400.0, None, None)])

    cut = maturity(tickets, labels, "auto")

    assert cut.end == START + 400 * DAY
    assert cut.horizon_days == pytest.approx(np.quantile(np.arange(1, 101), AUTO_QUANTILE))
    assert cut.cutoff == cut.end - cut.horizon_days * DAY


def test_export_end_is_the_latest_creation_or_resolution() -> None:
    tickets, _ = export([(0.0, 30.0, False), (10.0, None, None)])
    assert export_end(tickets) == START + 30 * DAY
    tickets, _ = export([(0.0, 5.0, False), (10.0, None, None)])
    assert export_end(tickets) == START + 10 * DAY


def test_without_any_measured_escalation_nothing_is_immature() -> None:
    tickets, labels = export([(0.0, 1.0, False), (5.0, 6.0, False), (9.0, None, None)])
    assert maturity(tickets, labels, "auto").horizon_days == 0.0


def test_a_configured_horizon_is_used_as_given() -> None:
    tickets, labels = export([(0.0, 50.0, True), (60.0, 61.0, False)])
    assert maturity(tickets, labels, 3).horizon_days == 3.0
    assert maturity(tickets, labels, 0).horizon_days == 0.0


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
