"""The scoring API as a triage bot sees it: answers, parity with batch scoring, limits, errors."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from escpredict.contract import HISTORY_NAMES
from escpredict.lifecycle.batch import score_frame
from escpredict.service.app import create_app
from tests.service_helpers import SCORING, returning_customers, settings, ticket_body

MAX_TEXT, MAX_BATCH, MAX_BODY = 2_000, 5, 20_000
SECRET_TEXT = "Zebra-quartz-7781 my account was hacked"


@pytest.fixture(scope="module")
def client(trained: Any) -> Iterator[TestClient]:
    app = create_app(
        settings(trained, max_text_chars=MAX_TEXT, max_batch=MAX_BATCH, max_body_bytes=MAX_BODY)
    )
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def window(trained: Any) -> pd.DataFrame:
    return trained.result.test_window


@pytest.fixture
def ticket(window: pd.DataFrame) -> dict[str, Any]:
    return ticket_body(window.iloc[0])


def _fresh_tickets(window: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """New tickets after the data ends: known agents/customers, strangers, and no agent at all."""
    fresh = window.head(12).copy()
    fresh["created_at"] = as_of + pd.Timedelta(days=1)
    fresh["ticket_id"] = [f"NEW-{i}" for i in range(len(fresh))]
    fresh.loc[fresh.index[:3], "customer_id"] = "never-seen-customer"
    fresh.loc[fresh.index[3:6], "agent_id"] = "never-seen-agent"
    fresh.loc[fresh.index[6:8], "agent_id"] = None
    return fresh.drop(columns=list(HISTORY_NAMES))


def test_score_answers_probability_tier_route_reasons_model_and_request_id(
    client: TestClient, ticket: dict[str, Any], trained: Any
) -> None:
    response = client.post("/v1/score", json=ticket, headers=SCORING)

    assert response.status_code == 200
    body = response.json()
    assert 0.0 < body["probability"] < 1.0
    assert body["risk_tier"] in trained.config.routing.tiers
    assert body["route"] in {
        trained.config.routing.route_queue,
        trained.config.routing.default_queue,
    }
    assert 1 <= len(body["reasons"]) <= 5
    magnitudes = [abs(r["contribution"]) for r in body["reasons"]]
    assert magnitudes == sorted(magnitudes, reverse=True)
    assert all(r["name"] and r["feature"] for r in body["reasons"])
    assert all(r["field"] and r["display_value"] and r["text"] for r in body["reasons"])
    assert body["model"] == {
        "name": trained.result.model_name,
        "version": trained.result.model_version,
    }
    assert body["ticket_id"] == ticket["ticket_id"]
    assert response.headers["X-Request-ID"] == body["request_id"]


def test_a_sane_caller_request_id_is_echoed_and_a_hostile_one_replaced(
    client: TestClient, ticket: dict[str, Any]
) -> None:
    kept = client.post("/v1/score", json=ticket, headers={**SCORING, "X-Request-ID": "bot-42.a"})
    replaced = client.post(
        "/v1/score", json=ticket, headers={**SCORING, "X-Request-ID": "a b\x7f" * 40}
    )

    assert kept.json()["request_id"] == "bot-42.a"
    assert replaced.json()["request_id"] != "a b\x7f" * 40


def test_probability_equals_the_training_pipeline_for_tickets_with_their_history(
    client: TestClient, window: pd.DataFrame
) -> None:
    complete = returning_customers(window).head(30)
    assert len(complete) >= 20

    def served(with_history: bool) -> list[float]:
        return [
            client.post("/v1/score", json=ticket_body(row, with_history), headers=SCORING).json()[
                "probability"
            ]
            for _, row in complete.iterrows()
        ]

    supplied = served(with_history=True)

    assert supplied == pytest.approx(complete["probability"].tolist(), abs=1e-9, rel=0)
    assert served(with_history=False) != supplied  # the supplied values were used, not looked up


def test_new_tickets_score_as_in_batch_scoring_with_cold_start_flags(
    client: TestClient, window: pd.DataFrame
) -> None:
    model = client.app.state.holder.current.model
    fresh = _fresh_tickets(window, model.snapshot.as_of)
    batch = score_frame(model, fresh)

    response = client.post(
        "/v1/score/batch",
        json={"tickets": [ticket_body(row) for _, row in fresh.head(MAX_BATCH).iterrows()]},
        headers=SCORING,
    )
    singles = [
        client.post("/v1/score", json=ticket_body(row), headers=SCORING).json()
        for _, row in fresh.iloc[MAX_BATCH:].iterrows()
    ]

    served = response.json()["scores"] + singles
    assert [s["ticket_id"] for s in served] == fresh["ticket_id"].tolist()
    for answer, expected in zip(served, batch["probability"], strict=True):
        assert answer["probability"] == pytest.approx(expected, abs=1e-9)
    assert "new_customer" in served[0]["flags"]
    assert "unknown_agent" in served[3]["flags"]
    assert "no_agent" in served[6]["flags"]
    assert not {"new_customer", "no_agent", "new_agent"} & set(served[-1]["flags"])


def test_naive_and_zoned_creation_times_mean_the_same_instant(
    client: TestClient, ticket: dict[str, Any]
) -> None:
    instant = pd.Timestamp(ticket["created_at"]).tz_convert("UTC")
    naive = {**ticket, "created_at": instant.tz_localize(None).isoformat()}
    zoned = {**ticket, "created_at": instant.tz_convert("America/New_York").isoformat()}

    a = client.post("/v1/score", json=naive, headers=SCORING).json()
    b = client.post("/v1/score", json=zoned, headers=SCORING).json()

    assert a["probability"] == b["probability"]


def test_batch_answers_each_ticket_in_order(client: TestClient, window: pd.DataFrame) -> None:
    bodies = [ticket_body(row) for _, row in window.head(MAX_BATCH).iterrows()]

    response = client.post("/v1/score/batch", json={"tickets": bodies}, headers=SCORING)

    assert response.status_code == 200
    scores = response.json()["scores"]
    assert [s["ticket_id"] for s in scores] == [b["ticket_id"] for b in bodies]
    single = client.post("/v1/score", json=bodies[2], headers=SCORING).json()
    assert scores[2]["probability"] == single["probability"]
    assert scores[2]["reasons"] == single["reasons"]


def test_a_batch_may_ask_for_fewer_reasons_or_none(client: TestClient, window: pd.DataFrame) -> None:
    bodies = [ticket_body(row) for _, row in window.head(3).iterrows()]
    full = client.post("/v1/score/batch", json={"tickets": bodies}, headers=SCORING).json()

    for n in (0, 2):
        answer = client.post(
            "/v1/score/batch", json={"tickets": bodies, "reasons": n}, headers=SCORING
        ).json()
        for mine, theirs in zip(answer["scores"], full["scores"], strict=True):
            assert mine["probability"] == theirs["probability"]
            assert mine["reasons"] == theirs["reasons"][:n]
    refused = client.post(
        "/v1/score/batch", json={"tickets": bodies, "reasons": -1}, headers=SCORING
    )
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "reasons"]


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"created_at": "1970-01-01T00:00:00"}, "created_at", "2000-01-01"),
        ({"created_at": "2999-01-01T00:00:00Z"}, "created_at", "one day from now"),
        ({"created_at": "yesterday-ish"}, "created_at", "datetime"),
        ({"description": "x" * (MAX_TEXT + 1)}, "description", str(MAX_TEXT)),
        ({"subject": "x" * (MAX_TEXT + 1)}, "subject", str(MAX_TEXT)),
        ({"customer_prior_tickets": -1}, "customer_prior_tickets", "greater than or equal to 0"),
        ({"agent_tenure_days": "NaN"}, "agent_tenure_days", "valid number"),
        ({"channel": ""}, "channel", "at least 1"),
        ({"custmer_id": "C-1"}, "custmer_id", "not permitted"),
    ],
)
def test_a_bad_ticket_gets_422_naming_field_and_limit_without_echoing_it(
    client: TestClient, ticket: dict[str, Any], change: dict[str, Any], field: str, words: str
) -> None:
    response = client.post("/v1/score", json={**ticket, **change}, headers=SCORING)

    assert response.status_code == 422
    errors = response.json()["detail"]
    assert errors[0]["loc"][-1] == field
    assert words in errors[0]["msg"]
    assert all(set(e) <= {"type", "loc", "msg"} for e in errors)


def test_missing_required_field_is_422(client: TestClient, ticket: dict[str, Any]) -> None:
    del ticket["customer_id"]

    response = client.post("/v1/score", json=ticket, headers=SCORING)

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "customer_id"]


def test_validation_errors_never_echo_ticket_text(
    client: TestClient, ticket: dict[str, Any]
) -> None:
    bad = {**ticket, "description": SECRET_TEXT * 100, "created_at": "not a time"}

    response = client.post("/v1/score", json=bad, headers=SCORING)

    assert response.status_code == 422
    assert "Zebra-quartz" not in response.text


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'{"channel": ', "application/json"),
        (b"[1, 2]", "application/json"),
        (b"hello", "text/plain"),
    ],
)
def test_malformed_bodies_are_client_errors(
    client: TestClient, content: bytes, content_type: str
) -> None:
    response = client.post(
        "/v1/score", content=content, headers={**SCORING, "Content-Type": content_type}
    )

    assert response.status_code == 422


def test_batch_limits_are_422_saying_the_limit(client: TestClient, ticket: dict[str, Any]) -> None:
    too_many = client.post(
        "/v1/score/batch", json={"tickets": [ticket] * (MAX_BATCH + 1)}, headers=SCORING
    )
    empty = client.post("/v1/score/batch", json={"tickets": []}, headers=SCORING)

    assert too_many.status_code == 422
    assert f"at most {MAX_BATCH} items" in too_many.json()["detail"][0]["msg"]
    assert empty.status_code == 422


def test_a_body_over_the_limit_is_413_before_parsing(client: TestClient) -> None:
    declared = client.post(
        "/v1/score",
        content=b"{" + b" " * MAX_BODY + b"}",
        headers={**SCORING, "Content-Type": "application/json"},
    )

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while streaming
        for _ in range(MAX_BODY // 1000 + 2):
            yield b" " * 1000

    streamed = client.post(
        "/v1/score", content=chunks(), headers={**SCORING, "Content-Type": "application/json"}
    )

    for response in (declared, streamed):
        assert response.status_code == 413
        assert f"limit of {MAX_BODY} bytes" in response.json()["detail"]


def test_a_model_failure_is_a_clean_500_that_leaks_no_ticket_text(
    client: TestClient,
    ticket: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    model = client.app.state.holder.current.model

    def explode(record: dict[str, Any], n_reasons: int = 5) -> None:
        raise ValueError(f"cannot featurise {record['description']!r}")

    monkeypatch.setattr(model, "score_record", explode)
    with caplog.at_level(logging.DEBUG):
        response = client.post(
            "/v1/score", json={**ticket, "description": SECRET_TEXT}, headers=SCORING
        )

    assert response.status_code == 500
    assert "Zebra-quartz" not in response.text
    assert "ValueError" in caplog.text
    assert "Zebra-quartz" not in caplog.text


def test_model_endpoint_says_what_is_loaded_since_when_and_its_metrics(
    client: TestClient, trained: Any
) -> None:
    body = client.get("/v1/model", headers=SCORING).json()

    assert body["loaded"] is True
    assert body["version"] == trained.result.model_version
    assert body["loaded_at"]
    assert body["threshold"] == pytest.approx(trained.result.threshold)
    assert body["tiers"] == trained.config.routing.tiers_at(trained.result.threshold)
    assert body["metrics"]["roc_auc"] == pytest.approx(trained.result.metrics["roc_auc"])
    assert body["last_error"] is None


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200


def test_metrics_count_requests_latency_scores_and_model_without_ticket_text(
    client: TestClient, ticket: dict[str, Any], trained: Any
) -> None:
    client.post("/v1/score", json={**ticket, "description": SECRET_TEXT}, headers=SCORING)
    client.get("/no/such/path")

    text = client.get("/metrics").text

    assert 'escpredict_http_requests_total{route="/v1/score",status="200"}' in text
    assert 'escpredict_http_requests_total{route="other",status="404"}' in text
    assert 'escpredict_http_request_duration_seconds_bucket{le="0.01",route="/v1/score"}' in text
    assert "escpredict_score_probability_count" in text
    assert "escpredict_scored_tickets_total{tier=" in text
    version = trained.result.model_version
    assert (
        f'escpredict_model_info{{name="{trained.result.model_name}",version="{version}"}} 1.0'
        in text
    )
    assert "Zebra-quartz" not in text
    assert "/no/such/path" not in text


def test_openapi_documents_every_endpoint_with_examples_and_limits(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()

    assert {
        "/v1/score",
        "/v1/score/batch",
        "/v1/model",
        "/admin/reload",
        "/healthz",
        "/readyz",
    } <= set(spec["paths"])
    ticket_schema = spec["components"]["schemas"]["Ticket"]
    assert ticket_schema["examples"]
    assert ticket_schema["properties"]["description"]["maxLength"] == MAX_TEXT
    assert (
        spec["components"]["schemas"]["BatchRequest"]["properties"]["tickets"]["maxItems"]
        == MAX_BATCH
    )
    reason = spec["components"]["schemas"]["ReasonOut"]["properties"]
    assert {"feature", "name", "value", "contribution", "field", "display_value", "text"} <= set(
        reason
    )
    assert all(reason[key].get("description") for key in ("field", "display_value", "text"))
    assert client.get("/docs").status_code == 200


def test_a_ticket_without_an_agent_is_told_so_in_its_reasons(
    client: TestClient, ticket: dict[str, Any]
) -> None:
    body = {k: v for k, v in ticket.items() if k != "agent_id"}
    body["priority"] = "high"

    reasons = client.post("/v1/score", json=body, headers=SCORING).json()["reasons"]
    texts = [r["text"] for r in reasons]

    assert not any("priority = low" in t for t in texts)
    assert not any(r["field"].startswith("agent_") and r["field"] != "agent_id" for r in reasons)
    for r in reasons:
        if r["field"] == "agent_id":
            assert r["text"] == "no agent known (agent: none given)"


def test_cors_is_off_unless_origins_are_configured(client: TestClient, trained: Any) -> None:
    preflight = {
        "Origin": "https://bot.example.com",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "X-API-Key",
    }
    allowed = create_app(settings(trained, cors_origins="https://bot.example.com"))

    off = client.options("/v1/score", headers=preflight)
    with TestClient(allowed) as other:
        on = other.options("/v1/score", headers=preflight)

    assert "access-control-allow-origin" not in off.headers
    assert on.headers["access-control-allow-origin"] == "https://bot.example.com"

