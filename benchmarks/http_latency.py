"""Single-ticket scoring latency: in-process (model call, and the whole app via ASGI) and over HTTP.

Starts ``escpredict serve`` on a free local port (or measures ``--url``), sends one ticket
per request from a keep-alive client, sequentially, and prints median and p99 per run.

    python -m benchmarks.http_latency --model models:/escalation-risk@champion --runs 5 --requests 500
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import httpx
import numpy as np
import pandas as pd
from fastapi.testclient import TestClient

from benchmarks.timing import free_port, latency_summary, serving, timed
from escpredict.contract import SCORING_FIELDS
from escpredict.samples import default as sample_data
from escpredict.service.app import create_app
from escpredict.service.settings import DEFAULT_MODEL_URI, ServiceSettings

KEY = "benchmark-key"


def tickets(n: int, created_at: str) -> list[dict[str, Any]]:
    """Realistic request bodies from the sample generator, created after the model's data."""
    frame = sample_data.generate(max(n, 200), seed=123).tickets.head(n)
    bodies = frame[list(SCORING_FIELDS)].astype({"created_at": str}).to_dict("records")
    # Fields the sample leaves empty (product, location, ...) are left out, as a bot would.
    return [
        {**{k: v for k, v in body.items() if not pd.isna(v)}, "created_at": created_at}
        for body in bodies
    ]


def percentiles(seconds: list[float]) -> str:
    summary = latency_summary(seconds)
    return f"median {summary['p50_ms']:6.2f} ms   p99 {summary['p99_ms']:6.2f} ms   n={summary['n']}"


@contextmanager
def server(model: str, tracking_uri: str | None) -> Iterator[str]:
    """``escpredict serve`` on a free local port, until the block ends."""
    port = free_port()
    command = [sys.executable, "-m", "escpredict", "serve", "--model", model, "--port", str(port)]
    command += ["--tracking-uri", tracking_uri] if tracking_uri else []
    base = f"http://127.0.0.1:{port}"
    with serving(command, {**os.environ, "ESCPREDICT_API_KEYS": KEY}, f"{base}/readyz", 120):
        yield base


def server_arguments(description: str) -> argparse.ArgumentParser:
    """The options every HTTP benchmark takes: which model to serve, or which server to
    measure, and how many alternating runs."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--model", default=DEFAULT_MODEL_URI)
    parser.add_argument("--tracking-uri", default=None)
    parser.add_argument("--url", default=None, help="measure a running server instead")
    parser.add_argument("--runs", type=int, default=5)
    return parser


def main() -> None:
    parser = server_arguments(__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args()

    settings = ServiceSettings(model_uri=args.model, tracking_uri=args.tracking_uri, api_keys=KEY)
    with TestClient(create_app(settings)) as app_client:
        loaded = app_client.app.state.holder.current
        if loaded is None:
            raise SystemExit(f"could not load {args.model}")
        created = (loaded.model.snapshot.as_of + np.timedelta64(1, "D")).to_pydatetime()
        bodies = tickets(args.requests, created.isoformat())
        model = loaded.model
        print(f"model {loaded.source}; {args.runs} runs x {args.requests} sequential requests")

        def direct(body: dict[str, Any]) -> Any:
            return model.score_record({**body, "created_at": created})

        def in_app(body: dict[str, Any]) -> Any:
            response = app_client.post("/v1/score", json=body, headers={"X-API-Key": KEY})
            assert response.status_code == 200, response.text

        for name, call in (("model.score_record", direct), ("app via TestClient", in_app)):
            timed(call, bodies[:50])  # warm-up
            for run in range(args.runs):
                print(f"{name:<22} run {run + 1}: {percentiles(timed(call, bodies))}")

    target = server(args.model, args.tracking_uri) if args.url is None else nullcontext(args.url)
    # TCP_NODELAY: httpx writes headers and body separately; with Nagle's algorithm the body
    # waits for the server's delayed ACK (~40 ms on Linux), and that is what would be measured.
    transport = httpx.HTTPTransport(socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
    with target as base, httpx.Client(
        base_url=base, headers={"X-API-Key": KEY}, timeout=10, transport=transport
    ) as http:

        def over_http(body: dict[str, Any]) -> Any:
            response = http.post("/v1/score", json=body)
            assert response.status_code == 200, response.text

        timed(over_http, bodies[:50])
        for run in range(args.runs):
            print(f"{'HTTP (uvicorn, 1 worker)':<22} run {run + 1}: {percentiles(timed(over_http, bodies))}")


if __name__ == "__main__":
    main()
