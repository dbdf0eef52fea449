"""Event exports (one row per update) → one row per ticket: collapse, then ``derive:`` rules."""

from __future__ import annotations

import numpy as np
import pandas as pd

from escpredict.contract import TICKET_FIELDS
from escpredict.contract import Field as ContractField
from escpredict.ingest.mapping.resolve import as_text, map_values
from escpredict.ingest.mapping.spec import (
    AnyEvent,
    Count,
    Events,
    MovedTo,
    TimeOf,
    ValueOf,
    Where,
)
from escpredict.ingest.validation import text


def roles_of(ids: pd.Series, given: pd.Series | None, agents: pd.DataFrame | None) -> pd.Series:
    """Role per id: the export's own role column first, else the agents table."""
    roles = given if given is not None else pd.Series(np.nan, index=ids.index, dtype="str")
    if agents is not None and {"agent_id", "role"} <= set(agents.columns):
        table = agents.drop_duplicates("agent_id").set_index("agent_id")["role"]
        roles = roles.fillna(ids.map(table))
    return roles


def is_coordinator(roles: pd.Series, coordinator_roles: list[str]) -> pd.Series:
    """Case-insensitive role test; an unknown role is not a coordinator."""
    return roles.astype("str").str.strip().str.lower().isin([r.lower() for r in coordinator_roles])


def sort_events(events: pd.DataFrame) -> pd.DataFrame:
    """Events grouped by ticket, in time order (ties keep the export's order)."""
    return events.sort_values(["ticket_id", "event_time"], kind="stable")


def collapse_events(
    events: pd.DataFrame,
    spec: Events,
    agents: pd.DataFrame | None = None,
    fields: tuple[ContractField, ...] = TICKET_FIELDS,
) -> pd.DataFrame:
    """One row per ticket from typed event rows (each carrying the ticket's state after it).

    Fields known at creation (``fields`` marked so, e.g. extra features) come from the first
    event, outcomes from the last (the final state). Derived: first responder = first known
    actor whose role is not a coordinator role (an update with no actor, e.g. ``?``, or a
    dispatcher's routing is no response); agent_id = the same for assignees;
    reassignment_count = assignee changes after the first assignment; agents_involved =
    distinct assignees; final_tier = highest tier seen; resolver = the resolver column,
    else the actor who set the final resolution time. The result's index is each
    ticket's first event row.
    """
    ev = sort_events(events)
    ticket = ev["ticket_id"]
    first = ev[~ticket.duplicated()]
    last = ev[~ticket.duplicated(keep="last")].set_index("ticket_id")
    out = pd.DataFrame({"ticket_id": first["ticket_id"]}, index=first.index)
    by_id = first.set_index("ticket_id")
    for f in fields:
        source = by_id if f.known_at_creation else last
        if f.name != "ticket_id" and f.name in source:
            out[f.name] = per_ticket(out, source[f.name])
    start = per_ticket(out, by_id["event_time"])
    out["created_at"] = out["created_at"].fillna(start) if "created_at" in out else start
    return out.assign(**_derived(ev, by_id, last, spec, agents, out))


def per_ticket(out: pd.DataFrame, values: pd.Series) -> pd.Series:
    """Align a ticket-indexed series with ``out`` (indexed by first event row).

    The dtype is the values', so a column's type never depends on which tickets the frame
    holds (a text column of a frame whose tickets all lack it stays text, not object).
    """
    return values.reindex(out["ticket_id"]).set_axis(out.index)


def _derived(
    ev: pd.DataFrame,
    by_id: pd.DataFrame,
    last: pd.DataFrame,
    spec: Events,
    agents: pd.DataFrame | None,
    out: pd.DataFrame,
) -> dict[str, pd.Series]:
    derived: dict[str, pd.Series] = {}
    groups = ev.groupby("ticket_id", sort=False)
    if "event_actor" in ev:
        responder = _first_handlers(ev, "event_actor", spec, agents)
        derived["first_responder_id"] = per_ticket(out, responder["event_actor"])
        derived["first_responder_role"] = per_ticket(out, responder["role"])
        if "resolved_at" in ev:
            final = ev["ticket_id"].map(last["resolved_at"])
            setter = ev[ev["resolved_at"].notna() & (ev["resolved_at"] == final)]
            resolver = setter.drop_duplicates("ticket_id").set_index("ticket_id")["event_actor"]
            current = out.get("resolver_id", pd.Series(np.nan, index=out.index, dtype="str"))
            derived["resolver_id"] = current.fillna(per_ticket(out, resolver))
    if "event_assignee" in ev:
        derived.update(_assignments(ev, spec, agents, out))
    if "event_tier" in ev:
        derived["initial_tier"] = per_ticket(out, by_id["event_tier"])
        derived["final_tier"] = per_ticket(out, groups["event_tier"].max())
    if "event_queue" in ev:
        derived["initial_queue"] = per_ticket(out, by_id["event_queue"])
        derived["final_queue"] = per_ticket(out, last["event_queue"])
    return derived


def _first_handlers(
    ev: pd.DataFrame, person: str, spec: Events, agents: pd.DataFrame | None
) -> pd.DataFrame:
    """Per ticket id, the first event whose ``person`` column (actor or assignee) names
    someone who is not a coordinator: that person and their role (``role``).

    Roles come from the export's ``<person>_role`` column, else the agents table; without
    either a coordinator cannot be told apart and counts as a handler.
    """
    named = ev[ev[person].notna()]
    role = roles_of(named[person], named.get(f"{person}_role"), agents)
    handlers = named.assign(role=role)[~is_coordinator(role, spec.coordinator_roles)]
    return handlers.drop_duplicates("ticket_id").set_index("ticket_id")[[person, "role"]]


def _assignments(
    ev: pd.DataFrame, spec: Events, agents: pd.DataFrame | None, out: pd.DataFrame
) -> dict[str, pd.Series]:
    assigned = ev[ev["event_assignee"].notna()]
    who = assigned["event_assignee"]
    handlers = _first_handlers(ev, "event_assignee", spec, agents)
    previous = assigned.groupby("ticket_id", sort=False)["event_assignee"].shift()
    changed = (previous.notna() & (who != previous)).groupby(assigned["ticket_id"]).sum()
    distinct = who.groupby(assigned["ticket_id"]).nunique()
    return {
        "agent_id": per_ticket(out, handlers["event_assignee"]),
        "reassignment_count": per_ticket(out, changed).fillna(0).astype("Int64"),
        "agents_involved": per_ticket(out, distinct).fillna(0).astype("Int64"),
    }


# --- derive: per-ticket fields from ``derive:`` rules -------------------------------------


def derive_fields(events: pd.DataFrame, rules: dict, out: pd.DataFrame) -> pd.DataFrame:
    """Each ``derive:`` rule's value per ticket, aligned with ``out`` (collapsed tickets).

    Values are returned before typing (``validation.coerce`` types them), so a value a
    rule's value map turns into something of the wrong kind is reported, not lost.
    """
    ev = sort_events(events)
    derived = {}
    for name, rule in rules.items():
        value = per_ticket(out, _apply(ev, rule))
        derived[name] = map_values(value, rule.values) if rule.values is not None else value
    return pd.DataFrame(derived, index=out.index)


def _apply(ev: pd.DataFrame, rule: object) -> pd.Series:
    """One rule's value per ticket id."""
    ticket, hits = ev["ticket_id"], _hits(ev, rule)
    if isinstance(rule, MovedTo):
        return hits.groupby(ticket, sort=False).any()
    if isinstance(rule, AnyEvent):
        return hits.groupby(ticket, sort=False).any()
    if isinstance(rule, Count):
        return hits.groupby(ticket, sort=False).sum().astype("Int64")
    if isinstance(rule, TimeOf):
        column, at = "event_time", rule.time
    else:
        assert isinstance(rule, ValueOf)
        column, at = f"event_{rule.value}", rule.at
    chosen = ev[hits & ev[column].notna()].groupby("ticket_id", sort=False)[column]
    return chosen.first() if at == "first" else chosen.last()


def first_time(events: pd.DataFrame, rule: object) -> pd.Series:
    """Per ticket id, the time of the first event at which a rule's condition holds: when a
    ``moved_to``, ``any`` or ``count`` flag became true, or a ``time`` rule's event happened.

    What a checkpoint needs to know whether it came before or after; tickets whose events
    never meet the condition are absent.
    """
    ev = sort_events(events)
    hits = _hits(ev, rule)
    return ev["event_time"][hits].groupby(ev["ticket_id"][hits], sort=False).first()


def _hits(ev: pd.DataFrame, rule: object) -> pd.Series:
    """Per event, whether it meets the rule: moved into its queue, or meets its condition."""
    return _moved(ev, rule) if isinstance(rule, MovedTo) else matches(ev, rule.condition())


def _lowered(col: pd.Series) -> pd.Series:
    return text(col).str.strip().str.lower()


def matches(ev: pd.DataFrame, where: Where) -> pd.Series:
    """Events meeting every part of a condition (values compared case-insensitively)."""
    hits = pd.Series(True, index=ev.index)
    for key, wanted in where.items():
        col = ev[f"event_{key}"]
        if isinstance(wanted, bool):
            hits &= col.notna() if wanted else col.isna()
        else:
            hits &= _lowered(col).isin([as_text(v).strip().lower() for v in wanted])
    return hits


def _moved(ev: pd.DataFrame, rule: MovedTo) -> pd.Series:
    """Events after a ticket's first that changed the column into one of the values."""
    ((key, wanted),) = rule.moved_to.items()
    now = _lowered(ev[f"event_{key}"]).fillna("")
    before = now.groupby(ev["ticket_id"], sort=False).shift()
    later = ev["ticket_id"].duplicated()
    into = now.isin([as_text(v).strip().lower() for v in wanted])
    return later & into & (now != before.fillna(""))
