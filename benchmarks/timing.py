"""Timing and process helpers shared by the benchmark sections."""

from __future__ import annotations

import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import httpx
import numpy as np


def timed(call: Callable[[Any], Any], items: Sequence[Any]) -> list[float]:
    """Wall seconds of ``call(item)`` for each item, sequentially."""
    out = []
    for item in items:
        start = time.perf_counter()
        call(item)
        out.append(time.perf_counter() - start)
    return out


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    ms = np.asarray(seconds, dtype=np.float64) * 1000
    return {"p50_ms": float(np.median(ms)), "p99_ms": float(np.percentile(ms, 99)), "n": len(ms)}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serving(command: list[str], env: dict[str, str], ready_url: str, timeout_s: float) -> Iterator[None]:
    """Run a server process until ``ready_url`` answers 200; stop it on exit.

    Its stderr goes to a temporary file, not a pipe: a chatty server never blocks on a full
    pipe during a long run, and a server that fails to start is reported with its last words.
    """
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"{command[:4]} exited with {process.returncode}: {_tail(stderr)}")
                try:
                    if httpx.get(ready_url, timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"{ready_url} did not become ready in {timeout_s:.0f} s: {_tail(stderr)}"
                    )
                time.sleep(0.2)
            yield
        finally:
            process.terminate()
            process.wait(timeout=30)


def _tail(stream: Any, limit: int = 2000) -> str:
    stream.seek(0)
    return stream.read().decode(errors="replace")[-limit:]
