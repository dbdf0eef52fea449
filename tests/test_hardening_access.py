"""Access control: key scopes over the whole route table, keys compared in constant time, the
body cap before auth and parsing, no ticket text anywhere but the answer, CORS closed by default.

Complements tests/test_service_auth.py and tests/test_service_api.py, which check the same
rules on single routes and single requests.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from escpredict.service.app import create_app
from escpredict.service.settings import ServiceSettings
from tests.service_helpers import ADMIN, ADMIN_KEY, SCORING, SCORING_KEY, settings, ticket_body

OTHER_SCORING_KEY = "second-bot-key-0123456789"
MAX_BODY = 5_000
SECRET = "Qx7-vermilion-walrus"  # ticket text that must never leave the request


@pytest.fixture(scope="module")
def client(trained: Any) -> Iterator[TestClient]:
    app = create_app(
        settings(trained, api_keys=(SCORING_KEY, OTHER_SCORING_KEY), max_body_bytes=MAX_BODY)
    )
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def ticket(trained: Any) -> dict[str, Any]:
    return ticket_body(trained.result.test_window.iloc[0])


def routes(client: TestClient, prefix: str) -> list[tuple[str, str]]:
    """(method, path) of every API route under ``prefix``, read from the app itself."""
    return [
        (method, route.path)
        for route in client.app.routes
        if isinstance(route, APIRoute) and route.path.startswith(prefix)
        for method in sorted(route.methods)
    ]


def test_no_scoring_key_opens_any_admin_route(client: TestClient) -> None:
    admin_routes = routes(client, "/admin")
    assert admin_routes  # the table is read, not empty

    for method, path in admin_routes:
        for key in (
            SCORING_KEY,
            OTHER_SCORING_KEY,
            f"{SCORING_KEY},{ADMIN_KEY}",
            ADMIN_KEY.upper(),
        ):
            assert client.request(method, path, headers={"X-API-Key": key}).status_code == 401


def test_every_v1_route_refuses_missing_and_invalid_keys(
    client: TestClient, ticket: dict[str, Any]
) -> None:
    for method, path in routes(client, "/v1"):
        for headers in (
            {},
            {"X-API-Key": ""},
            {"X-API-Key": SCORING_KEY[:-1]},
            {"x-api-key": "nope"},
        ):
            response = client.request(method, path, json=ticket, headers=headers)
            assert response.status_code == 401, (method, path, headers)


@pytest.fixture
def comparisons(monkeypatch: pytest.MonkeyPatch) -> list[tuple[bytes, bytes]]:
    """Every ``hmac.compare_digest`` call the service makes, passed through to the real one."""
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(given: bytes, key: bytes) -> bool:
        calls.append((given, key))
        return real(given, key)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    return calls


def test_every_key_check_compares_with_every_configured_key_in_constant_time(
    client: TestClient, comparisons: list[tuple[bytes, bytes]]
) -> None:
    """Constant time by construction, not by a stopwatch: each request's key goes through
    ``hmac.compare_digest`` against every configured key of its scope, with no early exit on
    a match or a mismatch, so how long a refusal takes says nothing about how close a guess
    came. (Timing 401s cannot tell ``==`` from ``compare_digest`` on a busy machine.)"""
    scoring_keys = [SCORING_KEY.encode(), OTHER_SCORING_KEY.encode()]
    guesses = [SCORING_KEY, OTHER_SCORING_KEY, SCORING_KEY[:-1] + "!", SCORING_KEY[:5],
               "x" * len(SCORING_KEY), SCORING_KEY * 20]
    for guess in guesses:
        comparisons.clear()
        status = client.get("/v1/model", headers={"X-API-Key": guess}).status_code
        assert status == (200 if guess in (SCORING_KEY, OTHER_SCORING_KEY) else 401), guess
        assert comparisons == [(guess.encode(), key) for key in scoring_keys], guess

    for guess in (ADMIN_KEY, ADMIN_KEY[:-1] + "!", SCORING_KEY):
        comparisons.clear()
        client.post("/admin/reload", headers={"X-API-Key": guess})
        assert comparisons == [(guess.encode(), ADMIN_KEY.encode())], guess


def test_the_body_cap_applies_before_auth_and_before_parsing(client: TestClient) -> None:
    not_json = b"\xff" * (MAX_BODY + 1)
    for method, path in routes(client, "/v1") + routes(client, "/admin"):
        for headers in ({}, SCORING, ADMIN):
            response = client.request(
                method,
                path,
                content=not_json,
                headers={**headers, "Content-Type": "application/json"},
            )
            assert response.status_code == 413, (method, path, headers)


def test_ticket_text_appears_in_no_log_metric_or_error_message(
    client: TestClient,
    ticket: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = {**ticket, "subject": SECRET, "description": f"{SECRET} " * 10}
    bad_values = {
        "created_at": "not a time",
        "channel": "",
        "agent_tenure_days": -1,
        "extra": SECRET,
    }
    with caplog.at_level(logging.DEBUG):
        answers = [
            client.post("/v1/score", json=secret, headers=SCORING),
            client.post("/v1/score/batch", json={"tickets": [secret]}, headers=SCORING),
            client.post("/v1/score", json=secret),
            client.post("/v1/score", json={**secret, "description": SECRET * 300}, headers=SCORING),
            *(
                client.post("/v1/score", json={**secret, k: v}, headers=SCORING)
                for k, v in bad_values.items()
            ),
            client.post("/v1/score/batch", json={"tickets": [secret] * 200}, headers=SCORING),
            client.post("/v1/score", json={"subject": SECRET}, headers=SCORING),
        ]
        model = client.app.state.holder.current.model
        monkeypatch.setattr(model, "score_record", lambda record, n=5: 1 / 0)
        answers.append(client.post("/v1/score", json=secret, headers=SCORING))
        metrics = client.get("/metrics").text

    assert [a.status_code for a in answers] == [200, 200, 401, 413, *[422] * 4, 413, 422, 500]
    for answer in answers:
        assert SECRET not in answer.text
    assert SECRET not in caplog.text
    assert SECRET not in metrics


def test_cors_is_off_unless_configured_and_then_admits_only_the_listed_origins(
    trained: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ESCPREDICT_CORS_ORIGINS", raising=False)
    monkeypatch.setenv("ESCPREDICT_API_KEYS", SCORING_KEY)
    assert ServiceSettings().cors_origins == ()
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "X-API-Key",
    }

    def allowed(app_settings: ServiceSettings, origin: str) -> set[str]:
        with TestClient(create_app(app_settings)) as browserish:
            answers = [
                browserish.options("/v1/score", headers={**preflight, "Origin": origin}),
                browserish.get("/healthz", headers={"Origin": origin}),
                browserish.get("/v1/model", headers={**SCORING, "Origin": origin}),
            ]
        return {a.headers.get("access-control-allow-origin", "") for a in answers}

    assert allowed(settings(trained), "https://evil.example") == {""}
    listed = settings(trained, cors_origins="https://bot.example.com")
    assert allowed(listed, "https://evil.example") == {""}
    assert allowed(listed, "https://bot.example.com") == {"https://bot.example.com"}
