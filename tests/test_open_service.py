"""Open tickets over HTTP and on the command line: ``state`` in the API, ``escpredict watch``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from escpredict.cli import app as cli
from escpredict.service.app import create_app
from tests.service_helpers import SCORING, pinned_uri, settings, ticket_body

MAX_EVENTS = 5


@pytest.fixture(scope="module")
def client(trained_open: Any) -> Iterator[TestClient]:
    with TestClient(create_app(settings(trained_open, max_state_events=MAX_EVENTS))) as test:
        yield test


@pytest.fixture(scope="module")
def ticket(trained_open: Any) -> dict[str, Any]:
    return ticket_body(trained_open.result.test_window.iloc[0])


def after(ticket: dict[str, Any], hours: float) -> str:
    return (pd.Timestamp(ticket["created_at"]) + pd.Timedelta(hours=hours)).isoformat()


def state(ticket: dict[str, Any], hours: float, n_events: int = 2) -> dict[str, Any]:
    updates = [{"time": after(ticket, 0.1 * k), "status": "Accepted", "queue": "G9", "tier": 1,
                "assignee": "R7"} for k in range(n_events)]
    return {"as_of": after(ticket, hours), "events": updates}


def test_a_state_gets_the_risk_from_now_on_for_the_ticket_s_age(
    client: TestClient, ticket: dict[str, Any]
) -> None:
    fresh = client.post("/v1/score", json=ticket, headers=SCORING).json()
    aged = client.post("/v1/score", json={**ticket, "state": state(ticket, 30)}, headers=SCORING)
    assert aged.status_code == 200
    body = aged.json()
    assert body["age_band"] == "1d" and fresh["age_band"] is None
    assert 0 < body["probability"] < 1 and body["probability"] != fresh["probability"]
    batch = client.post("/v1/score/batch", headers=SCORING,
                        json={"tickets": [ticket, {**ticket, "state": state(ticket, 30)}]})
    assert [s["probability"] for s in batch.json()["scores"]] == [
        fresh["probability"], body["probability"]]


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (lambda t: {"as_of": after(t, -1), "events": []}, "body"),  # before creation
        (lambda t: {**state(t, 5), "status": "Active"}, "state"),  # events and fields
        (lambda t: state(t, 5, MAX_EVENTS + 1), "events"),  # too many events
        (lambda t: {"events": []}, "as_of"),  # no as_of
        (lambda t: {"as_of": after(t, 5), "waiting_hours": -2}, "waiting_hours"),
        (lambda t: {"as_of": after(t, 5), "events": [{"time": 1.5e9}]}, "time"),
        (lambda t: {"as_of": after(t, 5), "mood": "grim"}, "mood"),
    ],
)
def test_a_bad_state_is_422_naming_the_field(
    client: TestClient, ticket: dict[str, Any], change: Any, where: str
) -> None:
    response = client.post("/v1/score", json={**ticket, "state": change(ticket)}, headers=SCORING)
    assert response.status_code == 422
    assert any(where in map(str, e["loc"]) for e in response.json()["detail"]), response.json()


def test_a_state_for_a_model_trained_without_events_is_422_saying_why(trained: Any) -> None:
    body = ticket_body(trained.result.test_window.iloc[0])
    with TestClient(create_app(settings(trained))) as plain:
        response = plain.post("/v1/score", json={**body, "state": state(body, 3)}, headers=SCORING)
    assert response.status_code == 422
    assert "trained on an event export" in response.json()["detail"]


def test_the_model_endpoint_says_which_ages_a_state_is_scored_for(client: TestClient) -> None:
    status = client.get("/v1/model", headers=SCORING).json()
    assert status["open_tickets"]["ages"] == ["creation", "1h", "4h", "1d", "3d", "7d"]
    assert {"roc_auc", "creation_roc_auc"} <= set(status["open_tickets"]["test_bands"][1])


def test_openapi_documents_the_state(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    ticket_state = schemas["TicketState"]
    assert {"as_of", "events", "status", "last_update_at"} <= set(ticket_state["properties"])
    assert ticket_state["required"] == ["as_of"]
    assert ticket_state["properties"]["events"]["anyOf"][0]["maxItems"] == MAX_EVENTS
    assert "age_band" in schemas["TicketScore"]["properties"]


runner = CliRunner()


def test_watch_ranks_the_tickets_open_at_that_moment(trained_open: Any, tmp_path: Path) -> None:
    export = trained_open.data_dir / "events.csv"
    out = tmp_path / "watch.parquet"
    moment = "2024-04-20T08:00"
    result = runner.invoke(cli, [
        "watch", "--tickets", str(export), "--mapping", "realistic-events",
        "--agents", str(trained_open.data_dir / "agents.csv"), "--as-of", moment,
        "--model", pinned_uri(trained_open), "--tracking-uri", trained_open.tracking_uri,
        "--out", str(out), "--top", "3",
    ])
    assert result.exit_code == 0, result.output
    listed = pd.read_parquet(out)
    assert listed["probability"].is_monotonic_decreasing
    assert listed["rank"].tolist() == list(range(1, len(listed) + 1))
    assert (listed["age_hours"] >= 0).all() and len(listed) > 10
    truth = pd.read_csv(trained_open.data_dir / "tickets.csv", parse_dates=["created_at",
                                                                            "resolved_at"])
    at = pd.Timestamp(moment, tz="UTC")
    later = truth[(truth["created_at"] > at) | (truth["resolved_at"] <= at)]["ticket_id"]
    assert not set(listed["ticket_id"]) & set(later)  # none created later or resolved before
    assert "open tickets ranked" in result.output


def test_watch_on_a_ticket_level_export_says_it_needs_events(trained_open: Any) -> None:
    result = runner.invoke(cli, [
        "watch", "--tickets", str(trained_open.data_dir / "tickets.csv"), "--mapping", "generic",
        "--model", pinned_uri(trained_open), "--tracking-uri", trained_open.tracking_uri,
    ])
    assert result.exit_code == 2
    assert "open-ticket scoring needs events" in result.output
