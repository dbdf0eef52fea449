"""`escpredict serve` in a real uvicorn process answers a scoring request over HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.service_helpers import SCORING, SCORING_KEY, pinned_uri, returning_customers, ticket_body


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_ready(base: str, process: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the server exited during start-up"
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    raise AssertionError(f"not ready within {timeout} s")


def test_serve_scores_over_http(trained: Any, tmp_path: Path) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    row = returning_customers(trained.result.test_window).iloc[0]
    ticket = ticket_body(row, with_history=True)
    env = {**os.environ, "ESCPREDICT_API_KEYS": SCORING_KEY}
    command = [
        sys.executable, "-m", "escpredict", "serve", "--model", pinned_uri(trained),
        "--tracking-uri", trained.tracking_uri, "--port", str(port),
    ]
    log = (tmp_path / "server.log").open("wb")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_ready(base, process)
        response = httpx.post(f"{base}/v1/score", json=ticket, headers=SCORING, timeout=10)
        refused = httpx.post(f"{base}/v1/score", json=ticket, timeout=10)
    finally:
        process.terminate()
        process.wait(timeout=20)

    server_log = (tmp_path / "server.log").read_text()
    assert response.status_code == 200, server_log
    assert abs(response.json()["probability"] - row["probability"]) < 1e-9
    assert refused.status_code == 401
    assert "POST /v1/score" in server_log
    assert ticket["description"] and ticket["description"] not in server_log
