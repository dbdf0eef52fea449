"""Section 2: the same registered model behind ``escpredict serve`` and ``mlflow models serve``.

Both servers run on 127.0.0.1 with one worker each, side by side, and get the same load in
alternating rounds:

* saturation: a closed loop of `connections` keep-alive connections sending one ticket per
  request for `seconds`; `wrk` (C, epoll) when installed, so the generator costs the two
  shared cores little, else the asyncio generator below with the same connection count;
* fixed rate: an open loop sending `rate` requests/s for `seconds`. Latency is measured from
  the moment each request was *due*, so a server that falls behind is charged for the queue
  it builds (no coordinated omission).

escpredict answers with probability, tier, route and five reasons; the MLflow pyfunc answers
probability, tier and route only, so the comparison flatters MLflow.

Latency percentiles are over answered requests, so the comparison holds only when nothing
failed: `failures` counts every failed request of both servers, and the targets require it
to be 0 and the probe ticket's |Δp| to be within PROBABILITY_TOLERANCE (benchmarks/run.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np

from benchmarks.http_latency import KEY, server, tickets
from benchmarks.timing import free_port, latency_summary, serving

_CONTENT_LENGTH = re.compile(rb"content-length:\s*(\d+)", re.IGNORECASE)
_TIMEOUT_S = 10.0
#: Both servers load the same registered model: their probabilities for one ticket may differ
#: by float rounding in JSON, nothing more.
PROBABILITY_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Target:
    """One server under test: where to POST and the request bodies in its own format."""

    name: str
    url: str
    headers: dict[str, str]
    bodies: list[bytes]


@contextmanager
def mlflow_server(model_uri: str, tracking_uri: str) -> Iterator[str]:
    """`mlflow models serve --env-manager local` on a free port, until /ping answers."""
    port = free_port()
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri,
               "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)]
    # MLflow execs `uvicorn` by name: the interpreter's own bin folder must come first on PATH.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri, "PATH": path}
    base = f"http://127.0.0.1:{port}"
    with serving(command, env, f"{base}/ping", 180):
        yield base


def targets(ours: str, theirs: str, created_at: str, n: int) -> tuple[Target, Target]:
    """The same tickets as an escpredict body and as MLflow `dataframe_records` (naive UTC)."""
    bodies = tickets(n, created_at)
    naive = created_at.replace("+00:00", "")
    json_headers = {"Content-Type": "application/json"}
    return (
        Target("escpredict serve", f"{ours}/v1/score", {**json_headers, "X-API-Key": KEY},
               [json.dumps(b).encode() for b in bodies]),
        Target("mlflow models serve", f"{theirs}/invocations", json_headers,
               [json.dumps({"dataframe_records": [{**b, "created_at": naive}]}).encode()
                for b in bodies]),
    )


class _Pool:
    """Keep-alive HTTP/1.1 connections to one server, speaking just enough HTTP to time it.

    A few bytes written and a Content-Length read per request: a fraction of httpx's
    per-request CPU, which on two shared cores would otherwise be measured as server latency.
    asyncio sets TCP_NODELAY on its sockets, so no write waits for a delayed ACK.
    """

    def __init__(self, target: Target) -> None:
        url = urlsplit(target.url)
        self.host, self.port = url.hostname or "127.0.0.1", url.port or 80
        head = "".join(f"{k}: {v}\r\n" for k, v in target.headers.items())
        self.requests = [
            f"POST {url.path} HTTP/1.1\r\nHost: {url.netloc}\r\n{head}"
            f"Content-Length: {len(body)}\r\n\r\n".encode() + body
            for body in target.bodies
        ]
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def post(self, i: int) -> bool:
        """Send request i (cycling through the bodies); True on a 200 answer."""
        try:
            reader, writer = self.idle.pop() if self.idle else await asyncio.open_connection(
                self.host, self.port)
        except OSError:
            return False
        try:
            async with asyncio.timeout(_TIMEOUT_S):
                writer.write(self.requests[i % len(self.requests)])
                head = await reader.readuntil(b"\r\n\r\n")
                length = _CONTENT_LENGTH.search(head)
                await reader.readexactly(int(length.group(1)) if length else 0)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            writer.close()
            return False
        self.idle.append((reader, writer))
        return head[9:12] == b"200"

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()


async def fixed_rate(target: Target, rate: float, seconds: float) -> dict[str, Any]:
    """Open loop at `rate`/s; latency from each request's due time, failures counted."""
    pool = _Pool(target)
    latencies: list[float] = []
    failures = 0

    async def one(i: int, due: float) -> None:
        nonlocal failures
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        if await pool.post(i):
            latencies.append(time.perf_counter() - due)
        else:
            failures += 1

    start = time.perf_counter() + 0.05
    await asyncio.gather(*(one(i, start + i / rate) for i in range(int(rate * seconds))))
    pool.close()
    return {**latency_summary(latencies), "rate": rate, "failures": failures}


async def _closed_loop(target: Target, connections: int, seconds: float) -> dict[str, Any]:
    pool = _Pool(target)
    done = failures = 0
    stop = time.perf_counter() + seconds

    async def worker(k: int) -> None:
        nonlocal done, failures
        i = k
        while time.perf_counter() < stop:
            ok = await pool.post(i)
            done, failures, i = done + ok, failures + (not ok), i + connections

    start = time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(connections)))
    elapsed = time.perf_counter() - start
    pool.close()
    return {"requests_per_s": done / elapsed, "failures": failures, "generator": "asyncio"}


_WRK_SCRIPT = """
bodies = {%s}
headers = {%s}
i = 0
request = function()
  i = i + 1
  return wrk.format("POST", nil, headers, bodies[(i %% #bodies) + 1])
end
"""


def _lua(text: str) -> str:
    return "[==[" + text + "]==]"


def _wrk(target: Target, connections: int, seconds: float) -> dict[str, Any]:
    """Saturation with wrk; non-2xx answers and socket errors are counted as failures."""
    script = _WRK_SCRIPT % (
        ", ".join(_lua(b.decode()) for b in target.bodies),
        ", ".join(f"[ {_lua(k)} ] = {_lua(v)}" for k, v in target.headers.items()),  # "[[" opens a string
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    try:
        out = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{seconds:.0f}s", f"--timeout={_TIMEOUT_S:.0f}s",
             "-s", handle.name, target.url],
            capture_output=True, text=True, check=True, timeout=seconds + 60,
        ).stdout
    finally:
        Path(handle.name).unlink()
    total = int(re.search(r"(\d+) requests in", out).group(1))
    # "Socket errors: connect 0, read 0, write 0, timeout 0" and "Non-2xx or 3xx responses: N"
    failed = sum(int(m) for m in re.findall(
        r"(?:Non-2xx or 3xx responses:|\bconnect|\bread|\bwrite|\btimeout) (\d+)", out))
    # wrk's Requests/sec counts failed answers too; only successful ones count here.
    rate = float(re.search(r"Requests/sec:\s*([\d.]+)", out).group(1)) * (total - failed) / max(total, 1)
    return {"requests_per_s": rate, "failures": failed, "generator": "wrk"}


def saturation(target: Target, connections: int, seconds: float) -> dict[str, Any]:
    if shutil.which("wrk"):
        return _wrk(target, connections, seconds)
    return asyncio.run(_closed_loop(target, connections, seconds))


def compare(
    model_uri: str, tracking_uri: str, created_at: str, rounds: int, saturation_s: float,
    rate: float, rate_s: float, connections: int,
) -> dict[str, Any]:
    """Both servers up at once; per round, each gets a saturation run then a fixed-rate run."""
    with server(model_uri, tracking_uri) as ours, mlflow_server(model_uri, tracking_uri) as theirs:
        pair = targets(ours, theirs, created_at, 200)
        same = _same_answer(pair, created_at)
        throughput: dict[str, list[float]] = {t.name: [] for t in pair}
        latencies: dict[str, list[dict[str, Any]]] = {t.name: [] for t in pair}
        for target in pair:
            asyncio.run(fixed_rate(target, rate, min(rate_s, 2.0)))  # warm-up
        for _ in range(rounds):
            for target in pair:
                throughput[target.name].append(saturation(target, connections, saturation_s))
                latencies[target.name].append(asyncio.run(fixed_rate(target, rate, rate_s)))
    summary = {name: _summarise(throughput[name], latencies[name]) for name in throughput}
    mine, other = (summary[t.name] for t in pair)
    return {
        "servers": summary,
        "probability_difference": same,
        "throughput_ratio": mine["requests_per_s"] / other["requests_per_s"],
        "p50_ratio": other["p50_ms"] / mine["p50_ms"],
        "p99_ratio": other["p99_ms"] / mine["p99_ms"],
        "rounds": rounds,
        "connections": connections,
        "rate": rate,
    }


def failures(result: dict[str, Any]) -> int:
    """Failed requests of every server in every saturation and fixed-rate run of `compare`."""
    return sum(s["saturation_failures"] + s["fixed_rate_failures"] for s in result["servers"].values())


def _summarise(saturated: list[dict[str, Any]], fixed: list[dict[str, Any]]) -> dict[str, Any]:
    """Median throughput over rounds; p50/p99 as the median of the rounds' values."""
    return {
        "requests_per_s": float(np.median([s["requests_per_s"] for s in saturated])),
        "requests_per_s_runs": [s["requests_per_s"] for s in saturated],
        "saturation_failures": sum(s["failures"] for s in saturated),
        "generator": saturated[0]["generator"],
        "p50_ms": float(np.median([f["p50_ms"] for f in fixed])),
        "p99_ms": float(np.median([f["p99_ms"] for f in fixed])),
        "p99_ms_runs": [f["p99_ms"] for f in fixed],
        "fixed_rate_failures": sum(f["failures"] for f in fixed),
    }


def _same_answer(pair: tuple[Target, Target], created_at: str) -> float:
    """|p_escpredict - p_mlflow| on one ticket: proof both serve the same model."""
    ours, theirs = (httpx.post(t.url, content=t.bodies[0], headers=t.headers, timeout=30).json()
                    for t in pair)
    return abs(ours["probability"] - theirs["predictions"][0]["probability"])
