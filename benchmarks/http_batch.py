"""Tickets/s of one `/v1/score/batch` call of 100 tickets against 100 `/v1/score` calls, over HTTP.

Starts ``escpredict serve`` on a free local port (or measures ``--url``) and alternates the
ways of scoring the same tickets run by run, so machine noise hits all alike. The batch
route scores its tickets as one matrix (one booster and one SHAP call); single calls pay
HTTP, validation and a booster call per ticket. Exact SHAP values cost the same per ticket
either way, so the batch is also timed without reasons (``"reasons": 0`` in the body).

    python -m benchmarks.http_batch --model models:/escalation-risk@champion --runs 5
"""

from __future__ import annotations

import socket
import time
from contextlib import nullcontext
from typing import Any

import httpx
import numpy as np
import pandas as pd

from benchmarks.http_latency import KEY, server, server_arguments, tickets


def measure(http: httpx.Client, bodies: list[dict[str, Any]], runs: int) -> dict[str, Any]:
    """Tickets/s per run of single calls, one batch call, and one batch without reasons."""

    def singles() -> None:
        for body in bodies:
            assert http.post("/v1/score", json=body).status_code == 200

    def batch(options: dict[str, int]) -> None:
        response = http.post("/v1/score/batch", json={"tickets": bodies, **options})
        assert response.status_code == 200

    calls = {
        "single": singles,
        "batch": lambda: batch({}),
        "batch_no_reasons": lambda: batch({"reasons": 0}),
    }
    rates: dict[str, list[float]] = {name: [] for name in calls}
    for call in calls.values():  # warm-up
        call()
    for _ in range(runs):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            rates[name].append(len(bodies) / (time.perf_counter() - start))
    out: dict[str, Any] = {"tickets": len(bodies), "tickets_per_s": rates}
    for name in ("batch", "batch_no_reasons"):
        ratios = [b / s for b, s in zip(rates[name], rates["single"], strict=True)]
        out[f"{name}_ratio_per_run"] = ratios
        out[f"{name}_ratio_median"] = float(np.median(ratios))
    return out


def compare(model: str, tracking_uri: str | None, batch: int, runs: int) -> dict[str, Any]:
    """Start ``escpredict serve`` on `model` and measure a batch against single calls."""
    with server(model, tracking_uri) as base, client(base) as http:
        return measure(http, tickets(batch, _after_history(http)), runs)


def client(base: str) -> httpx.Client:
    """A keep-alive client with Nagle off, as a triage bot would hold one."""
    transport = httpx.HTTPTransport(socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
    return httpx.Client(base_url=base, headers={"X-API-Key": KEY}, timeout=60, transport=transport)


def _after_history(http: httpx.Client) -> str:
    """A creation time one day after the model's history ends: new tickets, as in production."""
    as_of = http.get("/v1/model").json()["history_as_of"]
    return (pd.Timestamp(as_of) + pd.Timedelta(days=1)).isoformat()


def main() -> None:
    parser = server_arguments(__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()

    target = server(args.model, args.tracking_uri) if args.url is None else nullcontext(args.url)
    with target as base, client(base) as http:
        result = measure(http, tickets(args.batch, _after_history(http)), args.runs)
    rates = result["tickets_per_s"]
    for run in range(args.runs):
        print(
            f"run {run + 1}: {args.batch} single calls {rates['single'][run]:6.0f} tickets/s   "
            f"one batch {rates['batch'][run]:6.0f}   without reasons "
            f"{rates['batch_no_reasons'][run]:6.0f}"
        )
    print(
        f"batch / single, median of {args.runs} runs: {result['batch_ratio_median']:.1f}x "
        f"(without reasons {result['batch_no_reasons_ratio_median']:.1f}x)"
    )


if __name__ == "__main__":
    main()
