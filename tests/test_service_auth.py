"""API keys: scoring and admin keys are separate, from env or file; auth is off only on request."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from escpredict.service.app import create_app
from escpredict.service.auth import _matches
from escpredict.service.settings import ServiceSettings
from tests.service_helpers import ADMIN, ADMIN_KEY, SCORING, SCORING_KEY, settings, ticket_body


@pytest.fixture(scope="module")
def client(trained: Any) -> Iterator[TestClient]:
    with TestClient(create_app(settings(trained))) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def ticket(trained: Any) -> dict[str, Any]:
    return ticket_body(trained.result.test_window.iloc[0])


@pytest.mark.parametrize(
    "headers", [{}, {"X-API-Key": ""}, {"X-API-Key": "wrong"}, {"X-API-Key": SCORING_KEY + "x"}, ADMIN]
)
def test_scoring_needs_a_valid_scoring_key(
    client: TestClient, ticket: dict[str, Any], headers: dict[str, str]
) -> None:
    for response in (
        client.post("/v1/score", json=ticket, headers=headers),
        client.post("/v1/score/batch", json={"tickets": [ticket]}, headers=headers),
        client.get("/v1/model", headers=headers),
    ):
        assert response.status_code == 401
        assert "X-API-Key" in response.json()["detail"]
        assert response.headers["WWW-Authenticate"] == "ApiKey"


def test_the_key_is_checked_before_the_body(client: TestClient) -> None:
    assert client.post("/v1/score", json={"nonsense": 1}).status_code == 401


def test_reload_needs_the_admin_key_not_a_scoring_key(client: TestClient) -> None:
    assert client.post("/admin/reload").status_code == 401
    assert client.post("/admin/reload", headers=SCORING).status_code == 401
    assert client.post("/admin/reload", headers=ADMIN).status_code == 200


def test_health_readiness_and_metrics_need_no_key(client: TestClient) -> None:
    for path in ("/healthz", "/readyz", "/metrics"):
        assert client.get(path).status_code == 200


def test_keys_come_from_a_comma_separated_variable_or_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys_file = tmp_path / "keys"
    keys_file.write_text("# bots\nfile-key-1\n\nfile-key-2\n")
    admin_file = tmp_path / "admin"
    admin_file.write_text("file-admin\n")
    monkeypatch.setenv("ESCPREDICT_API_KEYS", "env-key-1, env-key-2")
    monkeypatch.setenv("ESCPREDICT_API_KEYS_FILE", str(keys_file))
    monkeypatch.setenv("ESCPREDICT_ADMIN_KEY_FILE", str(admin_file))

    loaded = ServiceSettings()

    assert loaded.scoring_keys() == ("env-key-1", "env-key-2", "file-key-1", "file-key-2")
    assert loaded.admin_keys() == ("file-admin",)
    assert "env-key-1" not in repr(loaded)


def test_without_keys_the_service_refuses_to_start_unless_auth_is_explicitly_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("API_KEYS", "API_KEYS_FILE", "AUTH_DISABLED"):
        monkeypatch.delenv(f"ESCPREDICT_{name}", raising=False)

    with pytest.raises(ValidationError, match="no API keys"):
        ServiceSettings()
    assert ServiceSettings(auth_disabled=True).auth_disabled


def test_an_admin_key_that_is_also_a_scoring_key_is_refused() -> None:
    with pytest.raises(ValidationError, match="must differ"):
        ServiceSettings(api_keys="a,b", admin_key="b")


def test_with_auth_off_every_endpoint_is_open(trained: Any, ticket: dict[str, Any]) -> None:
    app = create_app(settings(trained, api_keys=(), admin_key=None, auth_disabled=True))

    with TestClient(app) as open_client:
        assert open_client.post("/v1/score", json=ticket).status_code == 200
        assert open_client.post("/admin/reload").status_code == 200


def test_key_matching_is_exact() -> None:
    keys = (SCORING_KEY.encode(), ADMIN_KEY.encode())

    assert _matches(SCORING_KEY, keys)
    assert not _matches(SCORING_KEY[:-1], keys)
    assert not _matches("", keys)
    assert _matches("ключ", ("ключ".encode(),))
