"""Load on a real uvicorn process (``-m slow``): a fixed request rate for 60 s with zero errors
and flat memory, and a promotion under that load that fails no request.

The rate is open-loop (request i leaves at start + i/rate whatever the answers do), so a slow
server shows up as errors or latency instead of quietly lowering the load.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from mlflow.tracking import MlflowClient

from escpredict.lifecycle.promotion import promote
from escpredict.lifecycle.registry import CANDIDATE, CHAMPION, use_store
from tests.hardening_helpers import Server, serve
from tests.service_helpers import SCORING, register_copy, ticket_body

pytestmark = pytest.mark.slow

NAME = "hardening-load"
RATE = 25  # requests per second: a busy triage bot, well inside one worker's capacity
SECONDS = 60
#: Growth allowed over the run: allocator noise, not a leak (a leak of even 1 KiB per request
#: would add ~1.5 MiB, one of 10 KiB ~15 MiB).
RSS_SLACK_MIB = 8.0


@dataclass
class Outcome:
    answers: Counter[str] = field(default_factory=Counter)  # "200 v3", "503", "ConnectError"
    latencies: list[float] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return sum(n for what, n in self.answers.items() if not what.startswith("200 "))


def drive(
    server: Server,
    bodies: list[dict[str, Any]],
    seconds: float,
    at: tuple[float, Callable[[], None]] | None = None,
) -> Outcome:
    """POST /v1/score at ``RATE``/s for ``seconds``; ``at`` = (second, action) runs mid-way."""
    outcome, lock = Outcome(), threading.Lock()
    transport = httpx.HTTPTransport(socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
    start = time.monotonic() + 0.5

    with httpx.Client(base_url=server.base, transport=transport, timeout=10) as client:

        def one(i: int) -> None:
            time.sleep(max(0.0, start + i / RATE - time.monotonic()))
            sent = time.perf_counter()
            try:
                response = client.post("/v1/score", json=bodies[i % len(bodies)], headers=SCORING)
                what = f"{response.status_code}"
                if response.status_code == 200:
                    what += f" v{response.json()['model']['version']}"
            except httpx.HTTPError as exc:
                what = type(exc).__name__
            with lock:
                outcome.answers[what] += 1
                outcome.latencies.append(time.perf_counter() - sent)

        with ThreadPoolExecutor(max_workers=8) as pool:
            for i in range(int(seconds * RATE)):
                pool.submit(one, i)
            if at is not None:
                time.sleep(max(0.0, start + at[0] - time.monotonic()))
                at[1]()
    return outcome


def report(
    capsys: pytest.CaptureFixture[str], title: str, outcome: Outcome, **extra: object
) -> None:
    """Straight to the terminal, so the CI log of a plain ``pytest -q`` shows the numbers."""
    latencies = sorted(outcome.latencies)
    p50, p99 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99)]
    details = " ".join(f"{k}={v}" for k, v in extra.items())
    with capsys.disabled():
        print(
            f"\n{title}: {len(latencies)} requests, errors={outcome.errors}, "
            f"answers={dict(outcome.answers)}, p50={p50 * 1000:.1f} ms, p99={p99 * 1000:.1f} ms "
            f"{details}"
        )


@pytest.fixture(scope="module")
def versions(trained: Any) -> tuple[str, str]:
    client = MlflowClient(use_store(trained.tracking_uri))
    first, second = register_copy(trained, NAME), register_copy(trained, NAME)
    client.set_registered_model_alias(NAME, CHAMPION, first)
    return first, second


@pytest.fixture(scope="module")
def server(
    trained: Any, versions: tuple[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("load") / "server.log"
    with serve(
        f"models:/{NAME}@{CHAMPION}", trained.tracking_uri, log, ESCPREDICT_RELOAD_INTERVAL_S="1"
    ) as running:
        yield running


@pytest.fixture(scope="module")
def bodies(trained: Any) -> list[dict[str, Any]]:
    return [ticket_body(row) for _, row in trained.result.test_window.head(200).iterrows()]


def test_a_minute_at_a_fixed_rate_has_no_errors_and_flat_memory(
    server: Server, bodies: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    drive(server, bodies, seconds=4)  # warm-up: caches, pools and arenas reach steady state
    rss_before = server.rss_mib()

    outcome = drive(server, bodies, seconds=SECONDS)

    rss_after = server.rss_mib()
    report(
        capsys,
        f"load {RATE}/s for {SECONDS} s",
        outcome,
        rss_before_mib=f"{rss_before:.1f}",
        rss_after_mib=f"{rss_after:.1f}",
    )
    assert outcome.errors == 0
    assert sum(outcome.answers.values()) == SECONDS * RATE
    assert rss_after - rss_before < RSS_SLACK_MIB
    server_log = server.log.read_text()
    assert all(b["description"] not in server_log for b in bodies if b.get("description"))


def test_promotion_under_load_fails_no_request(
    server: Server,
    bodies: list[dict[str, Any]],
    trained: Any,
    versions: tuple[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    first, second = versions
    registry = MlflowClient(trained.tracking_uri)
    registry.set_registered_model_alias(NAME, CANDIDATE, second)

    def promote_second() -> None:
        assert promote(NAME, force=True, tracking_uri=trained.tracking_uri).promoted

    outcome = drive(server, bodies, seconds=15, at=(3.0, promote_second))

    report(capsys, "promotion under load", outcome)
    assert outcome.errors == 0
    assert outcome.answers[f"200 v{first}"] > 0
    assert outcome.answers[f"200 v{second}"] > 0
