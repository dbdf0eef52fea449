"""Checkpoints: every ticket as it stood at set ages, while still open and not yet escalated.

The open-ticket model learns from snapshots: a ticket at creation, at 1 h, 4 h, 1 d, ...
(``open_tickets.ages``), each with its state so far (``labels/state.py``) and the label
"escalates later". A snapshot exists only while the ticket is open and not yet escalated at
that instant, so the population at each age is the one a team lead sees in their queue.

Both instants come from the events, never from outcome columns:

- **escalated**: the first event at which a configured label rule that events can time
  fires: the tier rises above the first event's (``tier_raised``), assignee changes pass
  ``labels.max_reassignments`` (``reassignments``), someone who is no coordinator and not the
  first handler holds the ticket (``resolver_differs``: the ticket has been passed on; it
  leaves the population then even if it comes back, because at that instant nobody can know),
  or a ``derive: escalated`` rule's event condition first holds (``explicit_flag``).
  A rule events cannot time (tiers or the flag given as ticket columns) is reported by
  ``Timing.untimed``; a ticket escalated by such a rule, and by no timed rule, joins only the
  creation checkpoint, conservatively: it might already have escalated at any later one.
- **resolved**: the first event meeting the ``derive: resolved_at`` condition (the first
  resolution; a reopened ticket has left the population by then), else ``resolved_at``.

``build_checkpoints`` is a pure function of a group of whole tickets (their rows, events and
labels): an engine may run it per partition after shuffling tickets and events by ticket id.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from escpredict.config import LabelConfig, OpenTicketConfig
from escpredict.contract import LABEL
from escpredict.ingest.mapping import Mapping, first_time, is_coordinator, roles_of
from escpredict.ingest.mapping.spec import AnyEvent, Count, MovedTo, TimeOf
from escpredict.labels.rules import first_handler, rule_votes
from escpredict.labels.state import EventStream, WaitStatuses
from escpredict.labels.values import NAT_NS, epoch_ns

_NEVER = np.iinfo(np.int64).max
_NS_PER_HOUR = 3_600 * 10**9


@dataclass(frozen=True)
class Timing:
    """How the configured label rules and the resolution are timed from an export's events."""

    labels: LabelConfig
    event_columns: frozenset[str]
    #: ``derive: resolved_at`` when it is a time rule; None: the ticket's resolved_at.
    resolution: TimeOf | None
    #: ``derive: escalated`` when events can time it (moved_to, any, count).
    flag: MovedTo | AnyEvent | Count | None
    #: ``reassignment_count`` is derived from events.assignee (not by a derive rule).
    counts_assignees: bool

    @classmethod
    def of(cls, labels: LabelConfig, mapping: Mapping) -> Timing:
        columns = frozenset(f.name for f in mapping.event_fields())
        resolution = mapping.derive.get("resolved_at")
        flag = mapping.derive.get("escalated")
        return cls(
            labels=labels,
            event_columns=columns,
            resolution=resolution if isinstance(resolution, TimeOf) else None,
            flag=flag if isinstance(flag, MovedTo | AnyEvent | Count) else None,
            counts_assignees="reassignment_count" not in mapping.derive,
        )

    def untimed(self) -> dict[str, str]:
        """Configured rules the events cannot time, each with why."""
        assignees = "event_assignee" in self.event_columns
        why = {
            "explicit_flag": (self.flag is None,
                              "the escalated flag is a ticket column, not a derive: rule"),
            "tier_raised": ("event_tier" not in self.event_columns,
                            "tiers are ticket columns, not events.tier"),
            "reassignments": (not (assignees and self.counts_assignees),
                              "the reassignment count is not counted from events.assignee"),
            "resolver_differs": (not assignees, "the mapping has no events.assignee"),
        }
        return {rule: text for rule, (untimeable, text) in why.items()
                if rule in self.labels.rules and untimeable}


@dataclass(frozen=True)
class Instants:
    """Per ticket (rows of the tickets frame), int64 ns."""

    escalated: np.ndarray  # first escalation a timed rule sees; _NEVER if none
    resolved: np.ndarray  # first resolution; _NEVER while open
    untimed: np.ndarray  # bool: escalated by rules events cannot time only


def instants(
    tickets: pd.DataFrame,
    events: pd.DataFrame,
    stream: EventStream,
    timing: Timing,
    labels: pd.Series | None = None,
    agents: pd.DataFrame | None = None,
) -> Instants:
    """When each ticket escalated and was first resolved, from its events (see module doc).

    ``labels`` (aligned with ``tickets``) are needed only to flag untimed escalations.
    """
    code = stream.ids.get_indexer(tickets["ticket_id"])
    stops = _stop_times(tickets, events, stream, timing, agents)
    escalated = np.where(code >= 0, stops[np.maximum(code, 0)], _NEVER)
    if timing.resolution is not None:
        first = first_time(events, timing.resolution)
        resolved = _or_never(epoch_ns(tickets["ticket_id"].map(first)))
    else:
        resolved = _or_never(epoch_ns(tickets["resolved_at"]))
    untimed = np.zeros(len(tickets), dtype=bool)
    if labels is not None and (rules := list(timing.untimed())):
        votes = rule_votes(tickets, timing.labels, agents)[rules]
        fired_untimed = votes.fillna(False).to_numpy(dtype=bool).any(axis=1)
        untimed = labels.fillna(False).to_numpy(dtype=bool) & fired_untimed & (escalated == _NEVER)
    return Instants(escalated, resolved, untimed)


def _or_never(ns: np.ndarray) -> np.ndarray:
    return np.where(ns == NAT_NS, _NEVER, ns)


def _stop_times(
    tickets: pd.DataFrame, events: pd.DataFrame, stream: EventStream, timing: Timing,
    agents: pd.DataFrame | None,
) -> np.ndarray:
    """Per stream ticket code, the first instant a timed rule finds it escalated (or passed
    on), _NEVER if none does."""
    rules, untimed = timing.labels.rules, timing.untimed()
    by_code = tickets.set_index("ticket_id").reindex(stream.ids)  # one row per stream ticket
    hits = np.zeros(len(stream.time), dtype=bool)
    if "tier_raised" in rules and "tier_raised" not in untimed:
        initial = by_code["initial_tier"].astype("Float64").to_numpy(np.float64, na_value=np.nan)
        hits |= stream.tier > initial[stream.code]
    if "reassignments" in rules and "reassignments" not in untimed:
        hits |= stream.assignee_changes > timing.labels.max_reassignments
    if "resolver_differs" in rules and "resolver_differs" not in untimed:
        handler = first_handler(by_code.reset_index(), timing.labels, agents).to_numpy()
        given = events["event_assignee"].iloc[stream.order].reset_index(drop=True)
        roles = events.get("event_assignee_role")
        role = roles_of(events["event_assignee"], roles, agents).iloc[stream.order]
        coordinator = is_coordinator(role, timing.labels.coordinator_roles).to_numpy()
        other = (given != pd.Series(handler[stream.code], dtype="str")).fillna(True)
        hits |= given.notna().to_numpy() & ~coordinator & other.to_numpy(dtype=bool)
    first = pd.Series(stream.time[hits]).groupby(stream.code[hits]).min()
    stops = np.full(len(stream.ids), _NEVER, dtype=np.int64)
    stops[first.index.to_numpy(np.int64)] = first.to_numpy(np.int64)
    if "explicit_flag" in rules and timing.flag is not None:
        flagged = first_time(events, timing.flag)
        stops = np.minimum(stops, _or_never(epoch_ns(pd.Series(stream.ids).map(flagged))))
    return stops


def checkpoints(
    tickets: pd.DataFrame,
    stream: EventStream,
    when: Instants,
    ages_hours: list[float],
    after_updates: bool = False,
) -> pd.DataFrame:
    """Snapshot rows: ``ticket`` (index label in ``tickets``), ``band`` (index into
    ``ages_hours``), ``as_of`` (int64 ns) and the state then (``STATE_NAMES``).

    Every ticket has its creation snapshot; a later one only while the ticket is open and
    not escalated at that instant (and not escalated by an untimed rule at all).
    """
    created = epoch_ns(tickets["created_at"])
    ages = (np.asarray(ages_hours) * _NS_PER_HOUR).astype(np.int64)
    rows = np.repeat(np.arange(len(tickets)), len(ages))
    at = created[rows] + np.tile(ages, len(tickets))
    band = np.tile(np.arange(len(ages)), len(tickets))
    code = stream.ids.get_indexer(tickets["ticket_id"])  # each ticket's place in the stream
    if after_updates:
        row_of = pd.Series(-1, index=np.arange(len(stream.ids)))
        row_of[code[code >= 0]] = np.flatnonzero(code >= 0)
        update_rows = row_of.to_numpy()[stream.code]
        later = (update_rows >= 0) & (stream.position > 0)
        update_rows = update_rows[later]
        update_at = stream.time[later]
        update_band = np.searchsorted(ages, update_at - created[update_rows], side="right") - 1
        keep = update_band > 0
        rows = np.r_[rows, update_rows[keep]]
        at = np.r_[at, update_at[keep]]
        band = np.r_[band, update_band[keep]]
    end = np.minimum(when.escalated, when.resolved)[rows]
    alive = (band == 0) | ((at < end) & ~when.untimed[rows] & (at >= created[rows]))
    snaps = pd.DataFrame({"row": rows[alive], "as_of": at[alive], "band": band[alive]})
    snaps = snaps.drop_duplicates(["row", "as_of"], keep="first").sort_values(["row", "as_of"])
    state = stream.at(code[snaps["row"]], snaps["as_of"].to_numpy(), created[snaps["row"]])
    return pd.concat(
        [
            pd.DataFrame({
                "ticket": tickets.index.to_numpy()[snaps["row"]],
                "band": snaps["band"].to_numpy(np.int64),
                "as_of": snaps["as_of"].to_numpy(),
            }),
            state,
        ],
        axis=1,
    )


def build_checkpoints(
    tickets: pd.DataFrame,
    events: pd.DataFrame,
    labels: pd.Series,
    timing: Timing,
    cfg: OpenTicketConfig,
    agents: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Snapshots of labelled tickets (``checkpoints`` plus their ``LABEL``: escalates later).

    A pure function of whole tickets: rows of ``tickets`` (canonical, with ``labels``
    aligned), all their ``events`` (typed, as ``load_tickets`` keeps them), the ``timing``
    of this export and config, and the agents table (roles) if any.
    """
    stream = EventStream.build(events, WaitStatuses(cfg.wait_statuses))
    when = instants(tickets, events, stream, timing, labels, agents)
    snaps = checkpoints(tickets, stream, when, cfg.age_hours(), cfg.after_updates)
    snaps[LABEL] = labels.reindex(snaps["ticket"]).to_numpy()
    known = pd.Series(agent_known_at(tickets, events), index=tickets.index)
    snaps["agent_known"] = known.reindex(snaps["ticket"]).to_numpy() <= snaps["as_of"].to_numpy()
    return snaps


def agent_known_at(tickets: pd.DataFrame, events: pd.DataFrame) -> np.ndarray:
    """Per ticket (int64 ns), when its ``agent_id`` became known: the first event assigning
    it to that agent (an event export derives agent_id as its first handler, who may come
    hours after creation); at creation when no event names the assignee (a ticket column,
    known at creation by the contract); never without an agent."""
    created = epoch_ns(tickets["created_at"])
    agent = tickets["agent_id"].astype("str")
    if "event_assignee" not in events:
        return np.where(agent.notna().to_numpy(), created, _NEVER)
    handler = events["ticket_id"].map(pd.Series(agent.to_numpy(), index=tickets["ticket_id"]))
    assigned = events[(events["event_assignee"] == handler).fillna(False).to_numpy(bool)]
    first = assigned.groupby("ticket_id")["event_time"].min()
    at = _or_never(epoch_ns(tickets["ticket_id"].map(first)))
    return np.where(agent.isna().to_numpy(), _NEVER, at)


def open_at(
    tickets: pd.DataFrame,
    events: pd.DataFrame,
    timing: Timing,
    as_of: pd.Timestamp,
    waits: WaitStatuses,
    agents: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Tickets created by ``as_of`` and still open and unescalated then, with their state:
    the watch list's population (``tickets`` index labels in ``ticket``)."""
    stream = EventStream.build(events, waits)
    when = instants(tickets, events, stream, timing, None, agents)
    created = epoch_ns(tickets["created_at"])
    t = int(pd.Timestamp(as_of).value)
    live = (created <= t) & (t < np.minimum(when.escalated, when.resolved))
    chosen = tickets[live]
    code = stream.ids.get_indexer(chosen["ticket_id"])
    state = stream.at(code, np.full(len(chosen), t, dtype=np.int64), created[live])
    return pd.concat([pd.DataFrame({"ticket": chosen.index.to_numpy()}), state], axis=1)
