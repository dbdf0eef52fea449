"""Batch scoring of event exports reads agents as training does, so both agree on each agent."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from escpredict.cli import app
from escpredict.contract import SCORING_FIELDS
from escpredict.ingest.loaders import load_agents, load_tickets
from escpredict.lifecycle.batch import needs_agent_roles, score_file
from tests.conftest import Trained

#: An event export in canonical column names: one row per assignment.
EVENTS_MAPPING = """
level: events
timezone: UTC
events:
  time: event_time
  assignee: assignee
"""


def _uri(trained: Trained) -> str:
    return f"models:/{trained.result.model_name}/{trained.result.model_version}"


@pytest.fixture(scope="module")
def exports(trained: Trained, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same test-window tickets twice: ticket-level, and as events in which a
    dispatcher takes each ticket into triage before assigning it to its real agent."""
    folder = tmp_path_factory.mktemp("exports")
    tickets = trained.result.test_window[list(SCORING_FIELDS)]
    tickets = tickets[tickets["agent_id"].notna()].head(12).reset_index(drop=True)
    agents = load_agents(trained.data_dir / "agents.parquet")
    dispatcher = agents.loc[agents["role"] == "coordinator", "agent_id"].iloc[0]
    at_creation = tickets.drop(columns="agent_id")
    triage = at_creation.assign(event_time=tickets["created_at"], assignee=dispatcher)
    assigned = at_creation.assign(
        event_time=tickets["created_at"] + pd.Timedelta(minutes=5), assignee=tickets["agent_id"]
    )
    paths = {
        "tickets": folder / "tickets.parquet",
        "events": folder / "events.parquet",
        "mapping": folder / "events.yaml",
        "agents": trained.data_dir / "agents.parquet",
    }
    tickets.to_parquet(paths["tickets"])
    pd.concat([triage, assigned]).to_parquet(paths["events"])
    paths["mapping"].write_text(EVENTS_MAPPING, encoding="utf-8")
    return paths


def _scores(trained: Trained, export: Path, out: Path, mapping: str = "generic",
            agents: Path | None = None) -> pd.DataFrame:
    score_file(export, out, _uri(trained), mapping, trained.tracking_uri, agents=agents)
    return pd.read_parquet(out).set_index("ticket_id")


def test_with_agents_an_event_export_scores_as_its_ticket_level_equivalent(
    trained: Trained, exports: dict[str, Path], tmp_path: Path
) -> None:
    mapping = str(exports["mapping"])
    expected = _scores(trained, exports["tickets"], tmp_path / "tickets.parquet")

    scored = _scores(trained, exports["events"], tmp_path / "events.parquet", mapping,
                     exports["agents"])

    pd.testing.assert_frame_equal(scored.loc[expected.index], expected)


def test_without_agents_the_dispatcher_becomes_the_agent_and_scores_move(
    trained: Trained, exports: dict[str, Path], tmp_path: Path
) -> None:
    mapping = str(exports["mapping"])
    collapsed = load_tickets(exports["events"], mapping).tickets
    expected = _scores(trained, exports["tickets"], tmp_path / "tickets.parquet")

    scored = _scores(trained, exports["events"], tmp_path / "events.parquet", mapping)

    assert collapsed["agent_id"].nunique() == 1  # the dispatcher, for every ticket
    assert not scored.loc[expected.index, "probability"].equals(expected["probability"])


def test_only_an_event_export_without_assignee_roles_needs_an_agents_table(tmp_path: Path) -> None:
    with_roles = tmp_path / "roles.yaml"
    with_roles.write_text(EVENTS_MAPPING + "  assignee_role: assignee_role\n", encoding="utf-8")
    without = tmp_path / "plain.yaml"
    without.write_text(EVENTS_MAPPING, encoding="utf-8")

    assert needs_agent_roles(str(without))
    assert not needs_agent_roles(str(with_roles))
    assert not needs_agent_roles("generic")


def test_the_score_command_warns_without_agents_and_reads_them_from_the_config(
    trained: Trained, exports: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no pipelines/train.yaml here: built-in defaults
    config = tmp_path / "train.yaml"
    config.write_text(
        f"data:\n  mapping: {exports['mapping']}\n  agents: {exports['agents']}\n",
        encoding="utf-8",
    )
    model = ["--model", _uri(trained), "--tracking-uri", trained.tracking_uri]
    events = str(exports["events"])

    bare = CliRunner().invoke(
        app, ["score", events, "bare.parquet", *model, "--mapping", str(exports["mapping"])]
    )
    configured = CliRunner().invoke(
        app, ["score", events, "configured.parquet", *model, "--config", str(config)]
    )

    assert bare.exit_code == 0, bare.output
    assert "warning" in bare.output and "--agents" in bare.output
    assert "agents.parquet" in bare.output  # names the table the model was trained with
    assert configured.exit_code == 0, configured.output
    assert "warning" not in configured.output
    expected = _scores(trained, exports["tickets"], tmp_path / "tickets.parquet")
    scored = pd.read_parquet(tmp_path / "configured.parquet").set_index("ticket_id")
    pd.testing.assert_frame_equal(scored.loc[expected.index], expected)
