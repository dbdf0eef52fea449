"""Point-in-time state of an open ticket: what its events up to a moment say, nothing later.

An open ticket is scored again at checkpoints (training) and whenever a triage bot asks
(serving). Its state at ``as_of`` (``contract.STATE_FIELDS``) reads only events at or before
``as_of``: appending later events never changes it. Two paths share the definitions:

- ``EventStream.build`` + ``EventStream.at``: many tickets and moments at once (training
  checkpoints, the watch list), vectorised over per-event running values;
- ``state_of``: one ticket's events as plain dicts, for the scoring API (no DataFrame).

Both read the same canonical event columns (``ingest.mapping.EVENT_FIELDS``: ``event_time``,
``event_status``, ``event_tier``, ``event_queue``, ``event_assignee``); tests hold them equal.
A column an export leaves out gives NaN / missing for the fields it feeds. Values are the
latest one given at or before ``as_of`` (changelog exports give a column only on the rows
where it changed).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from escpredict.contract import STATE_NAMES
from escpredict.labels.values import NAT_NS, epoch_ns, missing

_NS_PER_HOUR = 3_600 * 10**9
#: Event columns the state reads, with the state key each is given under in ``state_of``.
EVENT_KEYS: dict[str, str] = {
    "event_time": "time",
    "event_status": "status",
    "event_tier": "tier",
    "event_queue": "queue",
    "event_assignee": "assignee",
}


class WaitStatuses:
    """Statuses in which the ticket waits on someone else (the customer, a vendor): a status
    is wait-like when it contains one of the configured words, case-insensitively."""

    def __init__(self, words: Iterable[str]) -> None:
        self.words = tuple(w.strip().lower() for w in words if w.strip())

    def __call__(self, status: Any) -> bool:
        if missing(status):
            return False
        lowered = str(status).lower()
        return any(word in lowered for word in self.words)

    def column(self, statuses: pd.Series) -> np.ndarray:
        """``self`` over a column (missing: not waiting)."""
        if not self.words:
            return np.zeros(len(statuses), dtype=bool)
        lowered = statuses.astype("str").str.lower()
        hits = np.zeros(len(statuses), dtype=bool)
        for word in self.words:
            hits |= lowered.str.contains(word, regex=False).fillna(False).to_numpy(dtype=bool)
        return hits & statuses.notna().to_numpy()


def _hours(delta_ns: np.ndarray | int) -> np.ndarray | float:
    return np.asarray(delta_ns, dtype=np.float64) / _NS_PER_HOUR


@dataclass(frozen=True)
class EventStream:
    """Every event of some tickets in (ticket, time) order, with the running state after it.

    ``code`` numbers the tickets of ``ids``; arrays are per event.
    """

    ids: pd.Index
    code: np.ndarray
    order: np.ndarray  # row positions of the events, as given, in this order
    time: np.ndarray  # int64 ns
    position: np.ndarray  # 0 for a ticket's first event
    status: np.ndarray  # object, latest given
    tier: np.ndarray  # float64, latest given
    queue: np.ndarray  # object, latest given
    assigned: np.ndarray  # bool: someone assigned (latest given assignee)
    assignee_changes: np.ndarray  # int64, running
    queue_changes: np.ndarray  # int64, running
    queue_changed_at: np.ndarray  # int64 ns of the latest queue change, NAT_NS if none
    waited_ns: np.ndarray  # int64 ns spent waiting before this event
    waiting: np.ndarray  # bool: wait-like status after this event

    @classmethod
    def build(cls, events: pd.DataFrame, waits: WaitStatuses) -> EventStream:
        """From typed event rows (``ticket_id``, ``event_time`` and any of ``EVENT_KEYS``)."""
        ev = events.reset_index(drop=True).sort_values(["ticket_id", "event_time"], kind="stable")
        code, ids = pd.factorize(ev["ticket_id"], sort=True)
        code = code.astype(np.int64)
        time = epoch_ns(ev["event_time"])
        first = np.r_[True, code[1:] != code[:-1]] if len(code) else np.zeros(0, dtype=bool)
        start = np.maximum.accumulate(np.where(first, np.arange(len(code)), 0))
        group = pd.Series(code)

        def latest(name: str, dtype: str) -> pd.Series:
            if name not in ev:
                return pd.Series(pd.NA, index=range(len(ev)), dtype=dtype)
            return pd.Series(ev[name].to_numpy(), dtype=dtype).groupby(group).ffill()

        def running_changes(name: str) -> tuple[np.ndarray, np.ndarray]:
            """Per event: changes of a column's given value so far (the collapse's rule: a
            value differing from the previous given one), and whether this event changed it."""
            if name not in ev:
                return np.zeros(len(ev), dtype=np.int64), np.zeros(len(ev), dtype=bool)
            given = pd.Series(ev[name].to_numpy(), dtype="str")
            previous = given.groupby(group).ffill().groupby(group).shift()
            changed = (given.notna() & previous.notna() & (given != previous)).to_numpy(bool)
            return pd.Series(changed).groupby(group).cumsum().to_numpy(np.int64), changed

        status = latest("event_status", "str")
        assignee_changes, _ = running_changes("event_assignee")
        queue_changes, queue_moved = running_changes("event_queue")
        changed_at = pd.Series(time, dtype="Int64").where(queue_moved)
        changed_at = changed_at.groupby(group).ffill().fillna(NAT_NS)
        waiting = waits.column(status)
        # Time waited before event i: the gaps after the ticket's earlier wait-like events.
        gap = np.zeros(len(time), dtype=np.int64)
        if len(time) > 1:
            gap[:-1] = np.where(first[1:], 0, time[1:] - time[:-1])
        spent = np.where(waiting, gap, 0)
        before = np.cumsum(spent) - spent  # over all earlier events, other tickets' too
        return cls(
            ids=pd.Index(ids),
            code=code,
            order=ev.index.to_numpy(),
            time=time,
            position=np.arange(len(code)) - start,
            status=_objects(status),
            tier=latest("event_tier", "Float64").to_numpy(dtype=np.float64, na_value=np.nan),
            queue=_objects(latest("event_queue", "str")),
            assigned=latest("event_assignee", "str").notna().to_numpy(),
            assignee_changes=assignee_changes,
            queue_changes=queue_changes,
            queue_changed_at=changed_at.to_numpy(dtype=np.int64),
            waited_ns=before - before[start] if len(time) else before,
            waiting=waiting,
        )

    def latest_before(self, code: np.ndarray, time: np.ndarray) -> np.ndarray:
        """Per query (ticket code, time): index of its last event at or before time, or -1.

        Times become ranks among all event and query times, so (code, rank) packs into one
        int64 key and one binary search per query finds its last event.
        """
        if len(self.time) == 0:
            return np.full(len(time), -1, dtype=np.int64)
        ranks = np.unique(np.concatenate([self.time, time]), return_inverse=True)[1]
        span = np.int64(ranks.max() + 1)
        event_keys = self.code * span + ranks[: len(self.time)]
        query_keys = code * span + ranks[len(self.time):]
        order = np.argsort(query_keys, kind="stable")
        found = np.empty(len(time), dtype=np.int64)
        found[order] = np.searchsorted(event_keys, query_keys[order], side="right") - 1
        mine = (found >= 0) & (self.code[np.maximum(found, 0)] == code)
        return np.where(mine & (code >= 0), found, -1)

    def at(self, code: np.ndarray, time: np.ndarray, created: np.ndarray) -> pd.DataFrame:
        """``STATE_NAMES`` per query: ticket ``code`` (-1: no events known), moment ``time``
        and its creation time ``created`` (int64 ns)."""
        i = self.latest_before(code, time)
        seen = i >= 0
        j = np.maximum(i, 0)

        def pick(values: np.ndarray, empty: Any) -> np.ndarray:
            return np.where(seen, values[j], empty) if len(values) else np.full(len(i), empty)

        last = np.where(seen, self.time[j] if len(self.time) else 0, created)
        waited = pick(self.waited_ns, 0) + np.where(
            seen & pick(self.waiting, False), time - last, 0
        )
        changed_at = pick(self.queue_changed_at, NAT_NS)
        return pd.DataFrame(
            {
                "age_hours": _hours(time - created),
                "events_so_far": np.where(seen, pick(self.position, 0) + 1, 0).astype(np.float64),
                "hours_since_update": _hours(time - last),
                "assignee_changes": pick(self.assignee_changes, 0).astype(np.float64),
                "queue_changes": pick(self.queue_changes, 0).astype(np.float64),
                "hours_since_queue_change": np.where(
                    changed_at == NAT_NS, np.nan, _hours(time - changed_at)
                ),
                "waiting_hours": _hours(waited),
                "tier_now": pick(self.tier, np.nan).astype(np.float64),
                "assigned_now": pick(self.assigned, False).astype(np.float64),
                "status_now": pd.Series(pick(self.status, None), dtype="str"),
                "queue_now": pd.Series(pick(self.queue, None), dtype="str"),
            },
            columns=list(STATE_NAMES),
        )


def _objects(values: pd.Series) -> np.ndarray:
    return values.astype(object).where(values.notna(), None).to_numpy()


def state_of(
    created_ns: int, events: Sequence[Mapping[str, Any]], as_of_ns: int, waits: WaitStatuses
) -> dict[str, Any]:
    """``STATE_NAMES`` of one ticket at ``as_of_ns`` from its events (dicts with ``time`` in
    int64 ns and any of ``status``, ``tier``, ``queue``, ``assignee``), in any order; the
    same values ``EventStream.at`` gives."""
    ordered = sorted((e for e in events if e["time"] <= as_of_ns), key=lambda e: e["time"])
    status = tier = queue = assignee = None
    assignee_changes = queue_changes = 0
    changed_at: int | None = None
    waited = 0
    last = created_ns
    for n, event in enumerate(ordered):
        if n and waits(status):
            waited += event["time"] - last
        last = event["time"]
        given = event.get("assignee")
        if not missing(given):
            assignee_changes += assignee is not None and given != assignee
            assignee = given
        given = event.get("queue")
        if not missing(given):
            if queue is not None and given != queue:
                queue_changes += 1
                changed_at = last
            queue = given
        if not missing(event.get("status")):
            status = event["status"]
        if not missing(event.get("tier")):
            tier = float(event["tier"])
    if waits(status) and ordered:
        waited += as_of_ns - last
    return {
        "age_hours": _hours(as_of_ns - created_ns).item(),
        "events_so_far": float(len(ordered)),
        "hours_since_update": _hours(as_of_ns - last).item(),
        "assignee_changes": float(assignee_changes),
        "queue_changes": float(queue_changes),
        "hours_since_queue_change": math.nan if changed_at is None
        else _hours(as_of_ns - changed_at).item(),
        "waiting_hours": _hours(waited).item(),
        "tier_now": math.nan if tier is None else tier,
        "assigned_now": float(assignee is not None),
        "status_now": status,
        "queue_now": queue,
    }
