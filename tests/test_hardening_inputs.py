"""Input edge cases a triage bot will eventually send: each gets a score or a 4xx naming the field.

Complements tests/test_service_api.py (limits, bad values, missing/extra fields) with odd
text, wrong JSON types, non-finite numbers, unseen categories and time-zone/future edge cases,
plus a property test over arbitrary unicode.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from escpredict.service.app import create_app
from tests.service_helpers import SCORING, settings, ticket_body

MAX_TEXT = 1_000
LABELS = ("ticket_id", "channel", "category", "priority", "customer_id", "agent_id")


@pytest.fixture(scope="module")
def client(trained: Any) -> Iterator[TestClient]:
    with TestClient(create_app(settings(trained, max_text_chars=MAX_TEXT))) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def ticket(trained: Any) -> dict[str, Any]:
    return ticket_body(trained.result.test_window.iloc[0])


def post(client: TestClient, body: dict[str, Any] | bytes, path: str = "/v1/score") -> Any:
    """POST JSON as a careless client would write it: ASCII-escaped, lone surrogates included."""
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(
        path, content=content, headers={**SCORING, "Content-Type": "application/json"}
    )


def assert_scored(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert 0.0 <= body["probability"] <= 1.0
    return body


def assert_refused(response: Any, *loc: str | int) -> None:
    """422 whose first error points at exactly ``loc`` (after ``body``)."""
    assert response.status_code == 422, response.text
    assert tuple(response.json()["detail"][0]["loc"]) == ("body", *loc)


def _iso(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).isoformat()


@pytest.mark.parametrize(
    "text",
    [
        "",
        "x" * MAX_TEXT,
        "Rückerstattung bitte 🙏 — 返金してください — استرداد",
        "tab\there\r\nnew line\x00nul\x07bell\x1b[31m ansi",
        "\u202eright-to-left override\u200b zero width\ufeff bom",
        "e\u0301\u0301\u0301 combining marks " * 20,
    ],
    ids=["empty", "at-limit", "scripts-emoji", "control-chars", "invisible", "combining"],
)
def test_any_text_within_the_limit_is_scored(
    client: TestClient, ticket: dict[str, Any], text: str
) -> None:
    assert_scored(post(client, {**ticket, "subject": text, "description": text}))


def test_texts_may_be_left_out(client: TestClient, ticket: dict[str, Any]) -> None:
    without = {k: v for k, v in ticket.items() if k not in ("subject", "description")}

    assert_scored(post(client, without))


def test_a_lone_surrogate_is_refused_naming_the_field(
    client: TestClient, ticket: dict[str, Any]
) -> None:
    assert_refused(post(client, {**ticket, "description": "ok \ud800 ok"}), "description")
    assert_refused(post(client, {**ticket, "ticket_id": "\udfff"}), "ticket_id")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("channel", 123),
        ("category", ["billing"]),
        ("customer_id", {"id": "C-1"}),
        ("created_at", {"when": "now"}),
        ("created_at", 1_700_000_000),
        ("created_at", "2025-13-45T99:00:00"),
        ("agent_tenure_days", "many"),
        ("customer_prior_tickets", [1]),
        ("customer_prior_tickets", "5"),
        ("agent_tenure_days", True),
        ("agent_id", False),
    ],
)
def test_a_wrong_json_type_is_refused_naming_the_field(
    client: TestClient, ticket: dict[str, Any], field: str, value: Any
) -> None:
    assert_refused(post(client, {**ticket, field: value}), field)


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_numbers_are_refused_naming_the_field(
    client: TestClient, ticket: dict[str, Any], token: str
) -> None:
    body = json.dumps({**ticket, "agent_recent_tickets": 0}).replace(
        '"agent_recent_tickets": 0', f'"agent_recent_tickets": {token}'
    )

    assert_refused(post(client, body.encode()), "agent_recent_tickets")


def test_an_absurd_history_count_is_refused_naming_the_field_and_limit(
    client: TestClient, ticket: dict[str, Any]
) -> None:
    response = post(client, {**ticket, "agent_recent_tickets": 1e300})
    assert_refused(response, "agent_recent_tickets")
    assert "1000000000" in response.text or "1e+09" in response.text
    assert post(client, {**ticket, "agent_recent_tickets": 1e9}).status_code == 200


def test_wrong_shapes_of_a_batch_name_the_ticket_and_field(
    client: TestClient, ticket: dict[str, Any]
) -> None:
    missing = {k: v for k, v in ticket.items() if k != "channel"}
    extra = {**ticket, "priorty": "now"}

    assert_refused(
        post(client, {"tickets": [ticket, missing]}, "/v1/score/batch"), "tickets", 1, "channel"
    )
    assert_refused(post(client, {"tickets": [extra]}, "/v1/score/batch"), "tickets", 0, "priorty")
    assert_refused(post(client, {"tickets": ticket}, "/v1/score/batch"), "tickets")
    assert_refused(post(client, {"ticket": [ticket]}, "/v1/score/batch"), "tickets")


def test_unseen_channel_category_priority_customer_and_agent_still_score(
    client: TestClient, ticket: dict[str, Any]
) -> None:
    strangers = {
        **ticket,
        "channel": "carrier pigeon",
        "category": "never-seen/category",
        "priority": "whenever",
        "customer_id": "customer-from-the-future",
        "agent_id": "agent-nobody-knows",
    }

    body = assert_scored(post(client, strangers))

    assert {"new_customer", "unknown_agent"} <= set(body["flags"])


def test_labels_are_trimmed_and_a_blank_label_is_refused(
    client: TestClient, ticket: dict[str, Any]
) -> None:
    padded = assert_scored(post(client, {**ticket, "category": f"  {ticket['category']}\t"}))

    assert padded["probability"] == assert_scored(post(client, ticket))["probability"]
    assert_refused(post(client, {**ticket, "category": " \t "}), "category")


@pytest.mark.parametrize(
    "created_at",
    [
        "2025-06-02T09:15:00",
        "2025-06-02T09:15:00Z",
        "2025-06-02T11:15:00+02:00",
        "2025-06-02T04:15:00.000000-05:00",
        "2025-06-02 09:15:00Z",
        "2025-06-02",
    ],
)
def test_timestamps_with_and_without_zones_are_scored(
    client: TestClient, ticket: dict[str, Any], created_at: str
) -> None:
    assert_scored(post(client, {**ticket, "created_at": created_at}))


def test_the_same_instant_in_any_zone_gets_the_same_score(
    client: TestClient, ticket: dict[str, Any]
) -> None:
    spellings = ["2025-06-02T09:15:00", "2025-06-02T09:15:00Z", "2025-06-02T18:45:00+09:30"]

    scores = {
        assert_scored(post(client, {**ticket, "created_at": s}))["probability"] for s in spellings
    }

    assert len(scores) == 1


def test_future_timestamps_within_a_day_score_and_later_ones_are_refused(
    client: TestClient, ticket: dict[str, Any]
) -> None:
    assert_scored(post(client, {**ticket, "created_at": _iso(timedelta(hours=23))}))
    assert_refused(post(client, {**ticket, "created_at": _iso(timedelta(hours=25))}), "created_at")
    assert_refused(post(client, {**ticket, "created_at": "9999-12-31T23:59:59Z"}), "created_at")


@hypothesis_settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    field=st.sampled_from(("subject", "description", *LABELS)),
    value=st.text(max_size=MAX_TEXT + 50)
    | st.text(st.characters(codec="ascii"), min_size=190, max_size=260),
)
def test_arbitrary_unicode_in_any_text_field_gets_a_score_or_a_422_naming_it(
    client: TestClient, ticket: dict[str, Any], field: str, value: str
) -> None:
    response = post(client, {**ticket, field: value})

    assert response.status_code in (200, 422), response.text
    if response.status_code == 422:
        assert_refused(response, field)
