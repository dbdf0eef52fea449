"""Prometheus metrics: request counts and latency per route, score distribution, loaded model.

prometheus-client supplies the exposition format, histogram maths and gunicorn multi-process
aggregation (``PROMETHEUS_MULTIPROC_DIR``). Labels are route templates, status codes, tiers and
model versions only: never ticket text, ids or raw paths, so cardinality stays bounded.
"""

from __future__ import annotations

import os
import time

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_PROBABILITY_BUCKETS = tuple(round(0.05 * i, 2) for i in range(1, 20)) + (1.0,)


class Telemetry:
    """The service's metrics, on a registry of its own (one per app, so tests never collide)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "escpredict_http_requests", "HTTP requests by route and status.",
            ["route", "status"], registry=self.registry,
        )
        self.latency = Histogram(
            "escpredict_http_request_duration_seconds", "Time to answer, by route.",
            ["route"], buckets=_LATENCY_BUCKETS, registry=self.registry,
        )
        self.probability = Histogram(
            "escpredict_score_probability", "Calibrated escalation probabilities served.",
            buckets=_PROBABILITY_BUCKETS, registry=self.registry,
        )
        self.tiers = Counter(
            "escpredict_scored_tickets", "Tickets scored, by risk tier.", ["tier"],
            registry=self.registry,
        )
        self._tier_counters: dict[str, Counter] = {}
        self.model = Gauge(
            "escpredict_model_info", "1 for the model version being served.",
            ["name", "version"], registry=self.registry, multiprocess_mode="liveall",
        )
        self._served: set[tuple[str, str]] = set()
        self.reloads = Counter(
            "escpredict_model_reloads", "Model (re)load attempts by outcome.", ["outcome"],
            registry=self.registry,
        )

    def observe_score(self, probability: float, tier: str) -> None:
        self.probability.observe(probability)
        counter = self._tier_counters.get(tier)
        if counter is None:  # bound once per tier: ``.labels()`` locks and builds a key
            counter = self._tier_counters[tier] = self.tiers.labels(tier)
        counter.inc()

    def set_model(self, name: str, version: str) -> None:
        # Zero before removing: under multi-process mode a removed series lingers in its file.
        for labels in list(self._served):
            self.model.labels(*labels).set(0)
            self.model.remove(*labels)
        self.model.labels(name, version).set(1)
        self._served = {(name, version)}

    def exposition(self) -> tuple[bytes, str]:
        """Text format for /metrics; merges all workers' files under gunicorn multi-process."""
        if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
            merged = CollectorRegistry()
            multiprocess.MultiProcessCollector(merged)
            return generate_latest(merged), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class RequestMetricsMiddleware:
    """Counts and times every HTTP request under its route template (``other`` if unrouted)."""

    def __init__(self, app: ASGIApp, telemetry: Telemetry) -> None:
        self.app = app
        self.telemetry = telemetry
        self._bound: dict[tuple[str, int], tuple[Counter, Histogram]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            name = route.path if isinstance(route, Route) else "other"
            count, latency = self._series(name, status)
            count.inc()
            latency.observe(time.perf_counter() - start)

    def _series(self, route: str, status: int) -> tuple[Counter, Histogram]:
        """The labelled counter and histogram of a route and status, bound once, then reused.

        ``.labels()`` takes a lock and builds a key on every call; the label sets are bounded
        (route templates x status codes), so the bound children are kept.
        """
        key = (route, status)
        found = self._bound.get(key)
        if found is None:
            found = self._bound[key] = (
                self.telemetry.requests.labels(route, str(status)),
                self.telemetry.latency.labels(route),
            )
        return found
