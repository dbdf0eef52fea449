"""The realistic sample profile: an IT-support event log with the quirks of real exports."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from escpredict.cli import app
from escpredict.config import LabelConfig, load_config
from escpredict.contract import LABEL
from escpredict.ingest.loaders import load_agents, load_tickets, read_table
from escpredict.labels.rules import label_tickets
from escpredict.lifecycle.stages import Stages
from escpredict.lifecycle.train import prepare
from escpredict.samples import realistic as sr

N = 6000
START, DAYS = "2024-03-04", 91


@pytest.fixture(scope="module")
def sample() -> sr.RealisticSample:
    return sr.generate(N, seed=1, start=START, days=DAYS)


def _shares(values: pd.Series) -> pd.Series:
    return values.value_counts(normalize=True)


def test_products_and_groups_are_many_with_a_long_tail(sample: sr.RealisticSample) -> None:
    products = _shares(sample.tickets["product"])
    groups = _shares(sample.tickets["initial_queue"])
    assert len(products) >= 100
    assert products.iloc[0] > 20 * products.median()  # a few products carry the volume
    assert len(groups) >= 10
    assert groups.iloc[0] > 5 * groups.median()


def test_events_look_like_a_process_mining_log(sample: sr.RealisticSample) -> None:
    events = sample.events
    assert list(events.columns) == list(sr.EVENT_COLUMNS)
    assert len(events) > 4 * N  # one row per status change or assignment
    assert set(events["Support Level"]) == {"L1", "L2", "L3"}
    assert {"Queued", "Accepted", "Completed", "Closed"} <= set(events["Status"])
    assert not any("resol" in c.lower() for c in events.columns)  # resolution: a status only
    assert "channel" not in " ".join(events.columns).lower()
    for column in ("Assigned To", "Changed By", "Urgency", "Country", "Short Description"):
        assert (events[column] == sr.MISSING).any(), column
    per_ticket = events.drop_duplicates("Incident ID")
    assert (per_ticket["Description"] == "").mean() > 0.5  # most tickets have no description
    written = per_ticket["Short Description"][per_ticket["Short Description"] != sr.MISSING]
    assert written.str.split().str.len().max() <= 8  # subjects are short


def test_ids_are_anonymised_with_one_scheme_per_column(sample: sr.RealisticSample) -> None:
    events = sample.events
    assert events["Product"].str.fullmatch(r"PROD\d{4}").all()
    assert events["Support Group"].str.fullmatch(r"G\d{3}").all()
    people = events["Assigned To"][events["Assigned To"] != sr.MISSING]
    assert people.str.fullmatch(r"R\d{5}").all()
    # The user table names the same people by number alone.
    assert set(people.str[1:]) <= set(sample.agents["agent_id"])


def test_dispatchers_assign_but_are_never_the_first_handler(sample: sr.RealisticSample) -> None:
    roles = sample.agents.set_index("agent_id")["role"]
    tickets = sample.tickets
    dispatched = tickets["first_responder_role"] == "dispatcher"
    assert 0.2 < dispatched.mean() < 0.6
    assert tickets["agent_id"].dropna().map(roles).ne("dispatcher").all()
    first = sample.events.drop_duplicates("Incident ID")
    assert (first["Changed By"].str[1:].map(roles) == "dispatcher").any()


def test_labels_from_tiers_match_the_truth_for_resolved_tickets(sample: sr.RealisticSample) -> None:
    labels = label_tickets(sample.tickets, LabelConfig(rules=["tier_raised"]))
    resolved = sample.tickets["resolved_at"].notna()
    truth = sample.oracle[LABEL]
    assert labels[resolved].astype(bool).tolist() == truth[resolved].tolist()
    assert labels[~resolved].isna().all()
    assert 0.15 < truth.mean() < 0.35


def test_the_export_is_cut_while_recent_tickets_are_open(sample: sr.RealisticSample) -> None:
    cut = pd.Timestamp(START, tz="UTC") + pd.Timedelta(days=DAYS)
    times = pd.to_datetime(sample.events["Change Time"], format=sr.DATETIME_FORMAT, utc=True)
    assert times.max() < cut
    tickets = sample.tickets.assign(truth=sample.oracle[LABEL])
    is_open = tickets["resolved_at"].isna()
    assert 0.01 < is_open.mean() < 0.1
    recent = tickets["created_at"] > cut - pd.Timedelta(days=7)
    assert is_open[recent].mean() > 5 * is_open[~recent].mean()
    # Escalations still to come are in the truth but not in the export.
    unseen = is_open & tickets["truth"] & (tickets["final_tier"] == tickets["initial_tier"])
    assert unseen.any()


def test_base_rate_drifts_over_the_window(sample: sr.RealisticSample) -> None:
    third = np.array_split(sample.oracle["p_escalation"].to_numpy(), 3)
    assert third[2].mean() > third[0].mean() + 0.03


def test_window_length_is_configurable() -> None:
    short = sr.generate(800, seed=2, start=START, days=21)
    created = short.tickets["created_at"]
    assert created.min() >= pd.Timestamp(START, tz="UTC")
    assert created.max() < pd.Timestamp(START, tz="UTC") + pd.Timedelta(days=21)


def test_same_seed_gives_identical_exports_and_another_seed_does_not() -> None:
    first, again, other = (sr.generate(1500, seed=s, days=30) for s in (3, 3, 4))
    for name in ("events", "tickets", "agents", "oracle"):
        pd.testing.assert_frame_equal(getattr(first, name), getattr(again, name))
    assert not first.events.equals(other.events)


def test_written_exports_never_carry_the_oracle(tmp_path: Path) -> None:
    paths = sr.write(sr.generate(1000, seed=5, days=30), tmp_path, "csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "agents.csv",
        "events.csv",
        "oracle.parquet",
        "tickets.csv",
    ]
    for name in ("events", "tickets", "agents"):
        columns = set(read_table(paths[name]).columns)
        assert not columns & {"p_escalation", LABEL}, name
    assert "?" in read_table(paths["events"])["Assigned To"].tolist()  # markers kept as text


def test_cli_writes_the_realistic_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        app,
        [
            "sample-data",
            "--profile",
            "realistic",
            "--tickets",
            "400",
            "--days",
            "28",
            "--out",
            "out",
            "--format",
            "csv",
        ],
    )
    assert result.exit_code == 0, result.output
    assert read_table(tmp_path / "out" / "events.csv")["Incident ID"].nunique() == 400
    refused = CliRunner().invoke(app, ["sample-data", "--profile", "tidy"])
    assert refused.exit_code != 0 and "--profile" in refused.output


def test_event_log_round_trips_through_its_mapping_to_the_truth(tmp_path: Path) -> None:
    """The shipped realistic-events mapping turns the log back into the ticket-level view."""
    sample = sr.generate(2500, seed=6, start=START, days=60)
    paths = sr.write(sample, tmp_path, "csv")
    agents = load_agents(paths["agents"], "realistic-events")
    loaded = load_tickets(paths["events"], "realistic-events", agents=agents).tickets
    view = sample.tickets
    tickets = loaded.set_index("ticket_id").loc[view["ticket_id"]].reset_index()
    labels = label_tickets(tickets, LabelConfig(rules=["tier_raised"]), agents)

    # A ticket reopened and still open at the cut keeps its last Completed time in the log.
    resolved = tickets["resolved_at"].notna().to_numpy()
    assert resolved[view["resolved_at"].notna().to_numpy()].all()
    assert labels[resolved].astype(bool).tolist() == sample.oracle[LABEL][resolved].tolist()
    for field in ("agent_id", "priority", "product", "impact", "urgency", "initial_queue"):
        pd.testing.assert_series_equal(tickets[field], view[field], check_names=False)
    assert tickets["channel"].eq(sr.CHANNEL).all()
    assert tickets["business_unit"].notna().all()  # the mapping's extra feature


def test_training_reads_the_log_with_dispatchers_recognised_from_the_agents(tmp_path: Path) -> None:
    """The README's command: agent_id is the first handler, never the dispatcher who assigned."""
    sample = sr.generate(1500, seed=7, start=START, days=45)
    paths = sr.write(sample, tmp_path, "csv")
    cfg = load_config(
        None,
        {
            "data.tickets": str(paths["events"]),
            "data.agents": str(paths["agents"]),
            "data.mapping": "realistic-events",
            "labels.rules": ["tier_raised"],
        },
    )
    prepared = prepare(cfg, Stages(show=False))
    roles = sample.agents.set_index("agent_id")["role"]
    assert prepared.tickets["agent_id"].dropna().map(roles).ne("dispatcher").all()
    truth = sample.oracle.set_index("ticket_id")[LABEL]
    labelled = prepared.tickets["ticket_id"][prepared.labels.notna()]
    assert prepared.labels.dropna().astype(bool).tolist() == truth[labelled].tolist()
