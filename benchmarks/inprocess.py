"""Sections 1 and 4: single-ticket scoring against the raw-booster floor, and batch throughput.

The floor is what LightGBM alone needs for the same answer on an already-built feature row:
the probability (``predict``) and the per-feature contributions (``predict(pred_contrib=
True)``). Everything ``score_record`` spends above it is escpredict's own overhead: history
lookup, feature building, calibration and formatting reasons. The two are timed in
alternating runs over the same tickets, so machine noise hits both alike.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.http_latency import tickets
from benchmarks.timing import latency_summary, timed
from escpredict.ingest.loaders import load_tickets
from escpredict.lifecycle.batch import score_frame
from escpredict.model.escalation import EscalationModel


def new_tickets(model: EscalationModel, n: int) -> list[dict[str, Any]]:
    """Request-shaped tickets created a day after the model's data (as a live ticket is)."""
    created: datetime = (model.snapshot.as_of + np.timedelta64(1, "D")).to_pydatetime()
    return [{**body, "created_at": created} for body in tickets(n, created.isoformat())]


def single_ticket(model: EscalationModel, n_tickets: int, runs: int) -> dict[str, Any]:
    """Median/p99 of `score_record` and of the booster floor, and their ratio per run."""
    records = new_tickets(model, n_tickets)
    # The row as LightGBM is fastest with it (dense; SHAP on a 1-row CSR is ~1.5x slower) and
    # one thread (a second only adds start-up cost for one row), so the floor is the best the
    # booster can do, not the form escpredict happens to build.
    rows = [model.builder.transform_record(model.complete_record(r)[0]).toarray() for r in records]
    booster = model.booster

    def floor(row: Any) -> None:
        booster.predict(row, num_threads=1)
        booster.predict(row, pred_contrib=True, num_threads=1)

    ours, raw, ratios = [], [], []
    timed(model.score_record, records[:50])  # warm-up: caches, lazy imports, branch predictors
    timed(floor, rows[:50])
    for _ in range(runs):
        run_raw, run_ours = timed(floor, rows), timed(model.score_record, records)
        raw += run_raw
        ours += run_ours
        ratios.append(float(np.median(run_ours) / np.median(run_raw)))
    return {
        "score_record": latency_summary(ours),
        "booster_floor": latency_summary(raw),
        "ratio_per_run": ratios,
        "ratio_median": float(np.median(ratios)),
        "runs": runs,
    }


def batch(model: EscalationModel, tickets_path: Path) -> dict[str, Any]:
    """Tickets/s of `score_frame` on an export already loaded, and of load + score together."""
    start = time.perf_counter()
    frame = load_tickets(tickets_path).tickets
    loaded = time.perf_counter()
    scores = score_frame(model, frame)
    scored = time.perf_counter()
    return {
        "n": len(scores),
        "load_s": loaded - start,
        "score_s": scored - loaded,
        "tickets_per_s": len(scores) / (scored - loaded),
        "end_to_end_tickets_per_s": len(scores) / (scored - start),
    }
