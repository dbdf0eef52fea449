"""A real ServiceNow event export (tests/data, see its README) loads, labels and trains as it is."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from escpredict.cli import app
from escpredict.config import LabelConfig
from escpredict.ingest.loaders import load_tickets
from escpredict.labels.rules import label_tickets

SAMPLE = Path(__file__).parent / "data" / "servicenow-incident-events-sample.csv"


@pytest.fixture(scope="module")
def tickets() -> pd.DataFrame:
    return load_tickets(SAMPLE, "servicenow-events").tickets


def test_the_real_event_export_loads_with_no_preprocessing_and_no_problem(tickets):
    result = load_tickets(SAMPLE, "servicenow-events")
    assert (len(result.tickets), result.problems) == (890, [])
    assert tickets["ticket_id"].is_unique


def test_day_first_dates_and_question_marks_are_read_as_the_export_means_them(tickets):
    first = tickets.set_index("ticket_id").loc["INC0000045"]
    assert first["created_at"] == pd.Timestamp("2016-02-29 01:16", tz="UTC")
    assert first["resolved_at"] == pd.Timestamp("2016-02-29 11:29", tz="UTC")
    assert pd.isna(first["agent_id"])  # '?' in every assigned_to of this incident
    assert not tickets.isin(["?"]).any().any()


def test_a_copy_resaved_by_a_spreadsheet_reads_the_same(tickets, tmp_path):
    """29-02-2016 01:16 becomes 29/2/2016 01:16 and TRUE becomes true; a caller goes missing."""
    raw = pd.read_csv(SAMPLE, dtype=str, keep_default_na=False)
    for column in ("opened_at", "sys_created_at", "sys_updated_at", "resolved_at", "closed_at"):
        when = pd.to_datetime(raw[column], format="%d-%m-%Y %H:%M", errors="coerce")
        raw[column] = when.map(lambda t: f"{t.day}/{t.month}/{t.year} {t:%H:%M}", na_action="ignore")
        raw[column] = raw[column].fillna("?")
    raw = raw.replace({"TRUE": "true", "FALSE": "false"})
    raw.loc[raw["number"] == "INC0000045", "caller_id"] = "?"
    resaved = tmp_path / "resaved.csv"
    raw.to_csv(resaved, index=False)
    result = load_tickets(resaved, "servicenow-events")
    assert result.problems == []
    again = result.tickets.set_index("ticket_id")
    expected = tickets.set_index("ticket_id")
    pd.testing.assert_series_equal(again["created_at"], expected["created_at"])
    pd.testing.assert_series_equal(again["resolved_at"], expected["resolved_at"])
    assert again.loc["INC0000045", "customer_id"] == "unknown"  # kept, not refused


def test_people_compared_by_the_labels_come_from_one_anonymised_column(tickets):
    for column in ("agent_id", "resolver_id"):
        ids = tickets[column].dropna()
        assert len(ids) > 500 and ids.str.startswith("Resolver ").all(), column


def test_default_label_rules_give_a_plausible_minority_of_escalations(tickets):
    labels = label_tickets(tickets, LabelConfig())
    assert labels.notna().all()  # every resolved incident is judged
    assert 0.02 < labels.astype(bool).mean() < 0.3


def test_extra_features_are_carried_after_the_contract_columns(tickets):
    assert list(tickets.columns[-2:]) == ["symptom", "opened_by"]
    assert tickets["symptom"].notna().mean() > 0.5


def test_the_export_alone_trains_from_the_command_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no pipelines/train.yaml here: the built-in defaults apply
    monkeypatch.setenv("ESCPREDICT_HOME", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    args = ["train", "--tickets", str(SAMPLE), "--mapping", "servicenow-events"]
    store = ["--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"]
    args += [*store, "--set", "model.num_boost_round=40", "--set", "features.min_df=2"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "labelled" in result.output and "890" in result.output

    score = ["score", str(SAMPLE), "scores.csv", "--mapping", "servicenow-events"]
    score += ["--model", "models:/escalation-risk@candidate", *store]
    scored = CliRunner().invoke(app, score)
    assert scored.exit_code == 0, scored.output
    assert "scored 890 tickets" in scored.output
    # Trained without an agents table too: training and scoring agree on every agent.
    assert "warning" not in scored.output
