"""Exports of millions of tickets for the Dask benchmark, written a desk at a time.

A sample profile's generator holds its whole sample in memory (an event log of 2M tickets is
about 16M rows, over 4 GiB as a frame, more while it is drawn). So the export is written as
several help desks merged: desk ``i`` is the profile's sample of ``chunk`` tickets drawn with
seed ``seed + i``, and every id it holds (tickets, customers, agents, products, groups) is
prefixed with the desk, so desks share no entity, as regional desks of one company would
not. Only one desk is in memory at a time; the export is what a user has:

- ``events``: the realistic profile's event log as ONE CSV file (``events.csv``, the format
  the README trains) plus ``agents.csv``;
- ``tickets``: the default profile's ticket-level export as a folder of Parquet files (one
  per desk) plus ``agents.parquet``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pandas as pd

from escpredict.samples import default, realistic

CHUNK = 250_000
KINDS = ("tickets", "events")
#: Event-log columns holding an entity of the desk (people are "R<number>", below).
_DESK_COLUMNS = ("Incident ID", "Requester", "Product", "Support Group")
_PEOPLE_COLUMNS = ("Assigned To", "Changed By")


def _desk(i: int) -> str:
    return f"D{i:02d}-"


def _desk_events(events: pd.DataFrame, i: int) -> pd.DataFrame:
    out = events.copy()
    for column in _DESK_COLUMNS:
        out[column] = _desk(i) + out[column]
    for column in _PEOPLE_COLUMNS:  # "R<number>", extracted by the mapping as the number
        named = out[column] != realistic.MISSING
        out.loc[named, column] = f"R{i:02d}" + out.loc[named, column].str[1:]
    return out


def _desk_agents(agents: pd.DataFrame, i: int, numeric_ids: bool) -> pd.DataFrame:
    prefix = f"{i:02d}" if numeric_ids else _desk(i)
    out = agents.assign(agent_id=prefix + agents["agent_id"])
    return out.assign(team=_desk(i) + out["team"]) if numeric_ids else out


def _desk_tickets(tickets: pd.DataFrame, i: int) -> pd.DataFrame:
    ids = [c for c in tickets.columns if c.endswith("_id")]
    return tickets.assign(**{c: _desk(i) + tickets[c] for c in ids})


def write(kind: str, n: int, out: Path, chunk: int = CHUNK, seed: int = 0) -> dict[str, Any]:
    """Write the export once (``out/written.json`` says it is complete); what was written:
    tickets, source rows, the frame's size in memory (as the local reader holds it, summed
    over desks) and on disk."""
    done = out / "written.json"
    if done.exists():
        return json.loads(done.read_text())
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    rows = frame_bytes = 0
    agents = []
    for i, start in enumerate(range(0, n, chunk)):
        size = min(chunk, n - start)
        if kind == "events":
            sample = realistic.generate(size, seed=seed + i)
            frame = _desk_events(sample.events, i)
            frame.to_csv(out / "events.csv", mode="a" if i else "w", header=not i, index=False)
            agents.append(_desk_agents(sample.agents, i, numeric_ids=True))
        else:
            sample = default.generate(size, seed=seed + i)
            frame = _desk_tickets(sample.tickets, i)
            (out / "tickets").mkdir(exist_ok=True)
            frame.to_parquet(out / "tickets" / f"part-{i:03d}.parquet", index=False)
            agents.append(_desk_agents(sample.agents, i, numeric_ids=False))
        rows += len(frame)
        frame_bytes += int(frame.memory_usage(deep=True).sum())
        del sample, frame
    every = pd.concat(agents, ignore_index=True)
    if kind == "events":
        every.to_csv(out / "agents.csv", index=False)
    else:
        every.to_parquet(out / "agents.parquet", index=False)
    export = paths(kind, out)["tickets"]
    disk = sum(f.stat().st_size for f in export.iterdir()) if export.is_dir() else export.stat().st_size
    info = {"kind": kind, "n": n, "rows": rows, "frame_bytes": frame_bytes, "disk_bytes": disk,
            "desks": -(-n // chunk), "write_s": time.perf_counter() - started}
    done.write_text(json.dumps(info))
    return info


def paths(kind: str, out: Path) -> dict[str, Path]:
    if kind == "events":
        return {"tickets": out / "events.csv", "agents": out / "agents.csv"}
    return {"tickets": out / "tickets", "agents": out / "agents.parquet"}


def overrides(kind: str, out: Path) -> dict[str, Any]:
    """Config keys that train on the export, as the README says for each profile."""
    found = paths(kind, out)
    keys = {"data.tickets": str(found["tickets"]), "data.agents": str(found["agents"])}
    if kind == "events":
        keys |= {"data.mapping": "realistic-events", "labels.rules": ["tier_raised"]}
    return keys
