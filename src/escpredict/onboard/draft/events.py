"""The ``events:`` and ``derive:`` sections of a draft for exports with one row per update."""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

from escpredict.ingest.validation import text
from escpredict.onboard.draft import guess
from escpredict.onboard.draft.changelog import changelog_events
from escpredict.onboard.draft.layouts import Match
from escpredict.onboard.draft.roles import recognise
from escpredict.onboard.draft.state import Drafting, shared_ids

#: Canonical fields an event column derives (``docs/mappings.md``, "Event exports").
DERIVED_BY_EVENT: dict[str, tuple[str, ...]] = {
    "actor": ("first_responder_id", "first_responder_role"),
    "assignee": ("agent_id", "reassignment_count", "agents_involved"),
    "tier": ("initial_tier", "final_tier"),
    "queue": ("initial_queue", "final_queue"),
}
EVENT_KEYS = ("time", "status", "actor", "assignee", "queue", "tier")


def event_columns(state: Drafting, id_match: Match | None) -> dict[str, Any]:
    """The ``events:`` section when rows are updates (ids repeat), else empty."""
    tickets = state.tickets
    if id_match is None or tickets is None:
        return {}
    if log := changelog_events(state.sample, state.missing, state.used):
        state.used |= log.used
        state.changelog = True
        state.draft.notes.append(
            "Rows are changes (a changed-field column and its new value): each event column "
            "reads only the rows that changed it (when:)."
        )
        return log.events
    named = state.find("time", events=True)
    time = tickets.time or _timestamps(state, named)
    if time is None:
        state.draft.notes.append(
            f"Ticket ids in {id_match.column!r} repeat, but no update-time column was found: "
            "kept one row per ticket; set level: events and events.time if rows are updates."
        )
        return {}
    events: dict[str, Any] = {"time": time}
    state.used.add(time)
    if named is None or named.column != time:
        state.note(("events", "time"), "recognised by its values: a timestamp that changes "
                   "within tickets and never goes back; check")
    elif not named.exact:
        state.note(("events", "time"), f"guessed from {time!r}; check")
    for key in EVENT_KEYS[1:]:
        match = state.find(key, events=True)
        if match is None:
            continue
        events[key] = match.column
        state.used.add(match.column)
        if not match.exact:
            state.note(("events", key), f"guessed from {match.column!r}; check")
    recognise(state, tickets, events)
    if isinstance(events.get("tier"), str):
        _tier_values(state, events)
    return {key: events[key] for key in EVENT_KEYS if key in events}


def _timestamps(state: Drafting, match: Match | None) -> str | None:
    """The column named as the update time, if it holds timestamps (a sample with one row
    per ticket cannot show the time changing)."""
    if match is None or not guess.is_datetime(state.sample[match.column], state.missing):
        return None
    return match.column


def _tier_values(state: Drafting, events: dict[str, Any]) -> None:
    column = events["tier"]
    mapped, unknown = guess.tier_map(state.sample[column], state.missing)
    if mapped:
        events["tier"] = {"column": column, "values": mapped}
    if unknown:
        shown = ", ".join(repr(u) for u in unknown[:5])
        state.note(("events", "tier"), f"no tier number for {shown}: add them to values")


def derive_rules(state: Drafting) -> None:
    """``derive:`` rules from the status column: resolution time and resolver."""
    tree, events = state.draft.tree, state.draft.tree["events"]
    status = events.get("status")
    if status is None:
        return
    seen = guess.present(_event_values(state, status), state.missing).str.strip().unique()
    done = guess.resolving_statuses(list(seen))
    if not done:
        state.note(("events", "status"), "no resolved/closed status in the sample")
        return
    derive: dict[str, Any] = {}
    where = {"status": done}
    replaced = _unmap(state, "resolved_at")
    derive["resolved_at"] = {"time": "last", "where": where}
    closes = [s for s in seen if re.search(r"clos", s, re.IGNORECASE) and s not in done]
    what = "last update to a resolved status" + (
        f" ({', '.join(map(repr, sorted(closes)))} left out: a close follows the resolution, "
        "often days later)" if closes else "")
    state.note(("derive", "resolved_at"), _instead(what, replaced))
    if "assignee" in events or "actor" in events:
        _resolver(state, derive, where)
    tree["derive"] = derive
    if "queue" in events:
        state.draft.notes.append(
            "If moving a ticket to certain groups means escalation, add to derive: "
            "escalated: {moved_to: {queue: [<group>, ...]}}."
        )


def _unmap(state: Drafting, name: str) -> Any:
    """Take a field out of ``columns:`` (a derive rule replaces it); its column is unused again."""
    source = state.draft.tree["columns"].pop(name, None)
    if isinstance(source, str):
        state.used.discard(source)
    return source


def _event_values(state: Drafting, source: Any) -> pd.Series:
    """An event column's values on the rows its ``when:`` keeps (a changelog's status rows),
    after its value map."""
    if isinstance(source, str):
        return state.sample[source]
    values = state.sample[source["column"]]
    for column, wanted in source.get("when", {}).items():
        names = text(state.sample[column]).str.strip().str.lower()
        values = values[names.isin([w.lower() for w in wanted])]
    if table := source.get("values"):  # what derive's conditions compare: mapped values
        words = text(values).str.strip()
        values = words.map(table).fillna(words)
    return values


def _resolver(state: Drafting, derive: dict[str, Any], where: dict[str, Any]) -> None:
    """The resolver from the handler at resolution (assignee, else actor) unless the
    export's resolver column uses the same ids as that column (then it is kept)."""
    columns, events = state.draft.tree["columns"], state.draft.tree["events"]
    # a changelog row that sets the status names no assignee: its author resolved it
    key = "actor" if "actor" in events and (state.changelog or "assignee" not in events) \
        else "assignee"
    resolver = columns.get("resolver_id")
    handler = events[key]
    if isinstance(resolver, str) and isinstance(handler, str) and \
            shared_ids(state, resolver, handler):
        return
    _unmap(state, "resolver_id")
    derive["resolver_id"] = {"value": key, "at": "last", "where": where}
    why = f"same ids as the {key}"
    if isinstance(resolver, str) and isinstance(handler, str):
        why += f"; {resolver!r} shares no id with {handler!r} in the sample"
    state.note(("derive", "resolver_id"), why)


def _instead(what: str, replaced: Any) -> str:
    return f"{what}; the export's {replaced!r} column is not used" if replaced else what


def foreign_people(state: Drafting) -> None:
    """Drop people columns whose ids never meet the handler's (the assignee column).

    Label rules compare people across columns: in an export anonymised per column
    ('Updated by 21' vs 'Resolver 89') a first responder or resolver from another column
    differs from every handler, and ``resolver_differs`` would call every ticket escalated.
    """
    tree = state.draft.tree
    events, columns = tree.get("events", {}), tree["columns"]
    handler = events.get("assignee") or columns.get("agent_id")
    if not isinstance(handler, str):
        return
    for section, key in (("events", "actor"), ("columns", "first_responder_id"),
                         ("columns", "resolver_id")):
        entries = events if section == "events" else columns
        column = entries.get(key)
        if not isinstance(column, str) or column == handler:
            continue
        if shared_ids(state, column, handler):
            continue
        del entries[key]
        state.used.discard(column)
        state.draft.notes.append(
            f"{section}.{key} not mapped: {column!r} shares no id with {handler!r} in the "
            f"sample (ids anonymised per column?); add `{key}: {column}` if they name the "
            "same people."
        )
