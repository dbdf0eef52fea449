"""Issue 17: building open-ticket checkpoints at scale (time, peak RSS, growth against n log n).

    python -m benchmarks.checkpoint_scale --sizes 100000,300000,1000000 --workdir /tmp/ck

A synthetic event log, generated vectorised (the realistic profile's generator, which writes
text exports, would take longer than what is measured): about ten events per ticket, with
statuses, waits, tier rises, queue moves and reassignments, typed as ``load_tickets`` types
events. Each size is written to Parquet once; a fresh process then reads it and times
``labels.checkpoints.build_checkpoints`` alone, with the default label rules and ages, and
reports the process's peak RSS (reading included).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from escpredict.config import LabelConfig, OpenTicketConfig
from escpredict.ingest.mapping import Mapping
from escpredict.labels.rules import label_tickets

MEAN_EVENTS = 10
STATUSES = np.array(["Active", "Awaiting User Info", "In Progress", "On Hold"], dtype=object)
MAPPING = Mapping.model_validate({
    "level": "events",
    "events": {"time": "t", "status": "s", "tier": "l", "queue": "q", "assignee": "a"},
    "derive": {"resolved_at": {"time": "last", "where": {"status": ["Resolved"]}}},
})


def generate(n: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(tickets, events) of `n` tickets: events typed, tickets with what the rules read."""
    rng = np.random.default_rng(seed)
    count = 1 + rng.poisson(MEAN_EVENTS - 1, n)
    ticket = np.repeat(np.arange(n), count)
    first = np.r_[0, np.cumsum(count)[:-1]]
    position = np.arange(len(ticket)) - first[ticket]
    last = position == count[ticket] - 1
    created = rng.integers(0, 365 * 86_400, n).astype(np.int64)
    gap = np.where(position == 0, 0, rng.lognormal(np.log(2 * 3600), 1.2, len(ticket)))
    time_s = created[ticket] + np.cumsum(gap).astype(np.int64) - np.cumsum(gap).astype(
        np.int64)[first][ticket]
    rises = rng.random(n) < 0.25
    rise_at = rng.integers(1, np.maximum(count, 2))
    tier = 1 + (rises[ticket] & (position >= rise_at[ticket]))
    resolved = rng.random(n) < 0.9
    status = STATUSES[rng.integers(0, len(STATUSES), len(ticket))]
    status = np.where(position == 0, "New", status)
    status = np.where(last & resolved[ticket], "Resolved", status)
    group = rng.integers(0, 300, n)
    moved = rng.random(len(ticket)) < 0.05
    queue_code = group[ticket] + 300 * (tier - 1) + np.cumsum(moved) - np.cumsum(moved)[first][ticket]
    people = rng.integers(0, 20_000, (n, 3))
    handover = np.minimum(position // 4, 2)
    assignee = people[ticket, handover]
    ids = np.char.add("T", np.char.zfill(np.arange(n).astype(str), 7)).astype(object)
    stamp = pd.Timestamp("2024-01-01", tz="UTC").value
    events = pd.DataFrame({
        "ticket_id": pd.Series(ids[ticket], dtype="str"),
        "event_time": pd.to_datetime(stamp + time_s * 10**9, utc=True),
        "event_status": pd.Series(status, dtype="str"),
        "event_tier": pd.array(tier, dtype="Int64"),
        "event_queue": pd.Series(np.char.add("G", queue_code.astype(str)).astype(object), dtype="str"),
        "event_assignee": pd.Series(np.char.add("R", assignee.astype(str)).astype(object), dtype="str"),
    })
    end = time_s[last]
    changes = np.minimum((count - 1) // 4, 2)
    tickets = pd.DataFrame({
        "ticket_id": pd.Series(ids, dtype="str"),
        "created_at": pd.to_datetime(stamp + created * 10**9, utc=True),
        "agent_id": pd.Series(np.char.add("R", people[:, 0].astype(str)).astype(object), dtype="str"),
        "resolver_id": pd.Series(np.char.add("R", people[np.arange(n), changes].astype(str))
                                 .astype(object), dtype="str"),
        "initial_tier": pd.array(np.ones(n, dtype=np.int64), dtype="Int64"),
        "final_tier": pd.array(1 + (rises & (rise_at < count)), dtype="Int64"),
        "reassignment_count": pd.array(changes, dtype="Int64"),
        "resolved_at": pd.to_datetime(stamp + end * 10**9, utc=True).where(resolved),
    })
    return tickets, events


def write(n: int, folder: Path) -> dict[str, Any]:
    out = folder / f"n{n}"
    if (out / "events.parquet").exists():
        return {"n": n, "generate_s": None}
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    tickets, events = generate(n)
    tickets.to_parquet(out / "tickets.parquet")
    events.to_parquet(out / "events.parquet")
    return {"n": n, "events": len(events), "generate_s": time.perf_counter() - start}


def measure(n: int, folder: Path) -> dict[str, Any]:
    """In this process: read the log, then time ``build_checkpoints`` on it."""
    from escpredict.labels.checkpoints import Timing, build_checkpoints

    out = folder / f"n{n}"
    tickets = pd.read_parquet(out / "tickets.parquet")
    events = pd.read_parquet(out / "events.parquet")
    labels = label_tickets(tickets, LabelConfig())
    done = labels.notna()
    timing = Timing.of(LabelConfig(), MAPPING)
    start = time.perf_counter()
    snaps = build_checkpoints(tickets[done], events, labels[done], timing, OpenTicketConfig())
    seconds = time.perf_counter() - start
    return {
        "n": n,
        "events": len(events),
        "snapshots": len(snaps),
        "build_s": seconds,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }


def in_subprocess(n: int, folder: Path) -> dict[str, Any]:
    """`measure` in a fresh process, so its peak RSS is this size's own."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.checkpoint_scale", "--measure", str(n),
         "--workdir", str(folder)],
        capture_output=True, text=True, check=False, cwd=Path(__file__).parents[1],
    )
    if done.returncode != 0:
        raise RuntimeError(f"checkpoints at n={n} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(sizes: list[int], folder: Path) -> list[dict[str, Any]]:
    runs = []
    for n in sorted(sizes):
        write(n, folder)
        runs.append(in_subprocess(n, folder))
        print(f"checkpoints for {n:,} tickets ({runs[-1]['events']:,} events): "
              f"{runs[-1]['build_s']:.1f} s, peak RSS {runs[-1]['peak_rss_bytes'] / 2**30:.2f} GiB",
              flush=True)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,300000,1000000")
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--measure", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure is not None:
        print(json.dumps(measure(args.measure, args.workdir)))
        return
    runs = run([int(s) for s in args.sizes.split(",")], args.workdir)
    print(json.dumps(runs, indent=2))


if __name__ == "__main__":
    main()
