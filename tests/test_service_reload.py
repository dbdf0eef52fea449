"""Hot reload: a moved alias is picked up, a broken model never replaces a working one, and
requests in flight during a reload all succeed."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from mlflow.tracking import MlflowClient

from escpredict.service.app import create_app
from tests.conftest import store_client
from tests.service_helpers import ADMIN, SCORING, register_copy, settings, ticket_body

NAME = "svc-reload-test"


@pytest.fixture(scope="module")
def registry(trained: Any) -> MlflowClient:
    """A model name of our own in the fixture's store, so moving its alias disturbs no one."""
    return store_client(trained.tracking_uri)


@pytest.fixture(scope="module")
def versions(trained: Any, registry: MlflowClient) -> dict[str, str]:
    good = [register_copy(trained, NAME) for _ in range(2)]
    broken = registry.create_model_version(NAME, "file:///nonexistent/escpredict-model").version
    return {"first": good[0], "second": good[1], "broken": broken}


@pytest.fixture
def champion(registry: MlflowClient, versions: dict[str, str]) -> Iterator[Any]:
    def point(which: str) -> None:
        registry.set_registered_model_alias(NAME, "champion", versions[which])

    point("first")
    yield point


@pytest.fixture(scope="module")
def ticket(trained: Any) -> dict[str, Any]:
    return ticket_body(trained.result.test_window.iloc[0])


def _client(trained: Any, **overrides: Any) -> TestClient:
    return TestClient(create_app(settings(trained, model_uri=f"models:/{NAME}@champion", **overrides)))


def test_reload_follows_the_alias(trained: Any, champion: Any, versions: dict[str, str]) -> None:
    with _client(trained) as client:
        before = client.get("/v1/model", headers=SCORING).json()
        champion("second")

        after = client.post("/admin/reload", headers=ADMIN).json()

    assert before["version"] == versions["first"]
    assert after["version"] == versions["second"]
    assert after["source"] == f"models:/{NAME}/{versions['second']}"
    assert after["loaded_at"] > before["loaded_at"]


def test_a_broken_model_leaves_the_old_one_serving_and_the_error_visible(
    trained: Any, champion: Any, versions: dict[str, str], ticket: dict[str, Any]
) -> None:
    with _client(trained) as client:
        champion("broken")
        failed = client.post("/admin/reload", headers=ADMIN)
        status = client.get("/v1/model", headers=SCORING).json()
        scored = client.post("/v1/score", json=ticket, headers=SCORING)
        champion("second")
        recovered = client.post("/admin/reload", headers=ADMIN).json()
        metrics = client.get("/metrics").text

    assert failed.status_code == 502
    assert "could not load" in failed.json()["detail"]
    assert status["version"] == versions["first"]
    assert status["last_error"]["source"] == f"models:/{NAME}/{versions['broken']}"
    assert scored.status_code == 200
    assert scored.json()["model"]["version"] == versions["first"]
    assert recovered["version"] == versions["second"]
    assert recovered["last_error"] is None
    assert 'escpredict_model_reloads_total{outcome="failed"} 1.0' in metrics
    assert f'version="{versions["first"]}"}} 1.0' not in metrics
    assert f'version="{versions["second"]}"}} 1.0' in metrics


def test_without_a_loadable_model_the_service_is_alive_but_not_ready(
    trained: Any, champion: Any, ticket: dict[str, Any]
) -> None:
    champion("broken")
    with _client(trained) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 503
        assert client.post("/v1/score", json=ticket, headers=SCORING).status_code == 503
        status = client.get("/v1/model", headers=SCORING).json()

    assert status["loaded"] is False
    assert status["last_error"]["message"]


def test_requests_in_flight_during_reloads_all_succeed(
    trained: Any, champion: Any, versions: dict[str, str], ticket: dict[str, Any]
) -> None:
    answers: list[tuple[int, str | None]] = []
    stop = threading.Event()

    with _client(trained) as client:

        def keep_scoring() -> None:
            while not stop.is_set():
                response = client.post("/v1/score", json=ticket, headers=SCORING)
                answers.append((response.status_code, response.json().get("model", {}).get("version")))

        def answered_after(count: int) -> None:
            """Wait until workers got more answers than ``count``: the new model serves."""
            deadline = time.monotonic() + 30
            while len(answers) < count + 5 and time.monotonic() < deadline:
                time.sleep(0.01)

        workers = [threading.Thread(target=keep_scoring) for _ in range(3)]
        for worker in workers:
            worker.start()
        try:
            answered_after(0)
            for which in ("second", "first", "second"):
                champion(which)
                assert client.post("/admin/reload", headers=ADMIN).status_code == 200
                answered_after(len(answers))
        finally:  # a failed reload must not leave the workers scoring forever
            stop.set()
            for worker in workers:
                worker.join()

    assert len(answers) > 10
    assert {code for code, _ in answers} == {200}
    served = Counter(version for _, version in answers)
    assert set(served) == {versions["first"], versions["second"]}, served  # the reloads switched


def test_the_periodic_check_picks_up_a_moved_alias(
    trained: Any, champion: Any, versions: dict[str, str]
) -> None:
    with _client(trained, reload_interval_s=0.2) as client:
        champion("second")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if client.get("/v1/model", headers=SCORING).json()["version"] == versions["second"]:
                break
            time.sleep(0.1)

        assert client.get("/v1/model", headers=SCORING).json()["version"] == versions["second"]
