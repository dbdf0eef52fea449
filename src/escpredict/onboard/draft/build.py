"""Assemble a draft mapping from an export's header and a sample of its rows.

The result is plain data in the mapping language of ``docs/mappings.md`` plus comments keyed
by the path of the entry they explain, so the YAML writer can put each doubt beside the line
it is about. Nothing here reads files but the shipped mappings: the caller passes the sample.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from escpredict.ingest.mapping import mapping_dirs
from escpredict.onboard.draft import guess
from escpredict.onboard.draft.cases import Tickets, find_tickets
from escpredict.onboard.draft.columns import (
    add_defaults,
    datetime_formats,
    escalation_tag,
    map_columns,
    propose_features,
    value_maps,
)
from escpredict.onboard.draft.events import (
    DERIVED_BY_EVENT,
    derive_rules,
    event_columns,
    foreign_people,
)
from escpredict.onboard.draft.layouts import Layout, Match, detect, find, synonyms
from escpredict.onboard.draft.state import Draft, Drafting


def draft_mapping(sample: pd.DataFrame, name: str) -> Draft:
    """A draft mapping for the export ``sample`` was taken from."""
    layout, share = detect([str(c) for c in sample.columns])
    markers = guess.missing_markers(sample)
    missing = list(markers)
    draft = Draft(tree={"name": name}, layout=layout.name if layout else "unknown")
    state = Drafting(sample, layout, missing, draft)
    if layout:
        draft.notes.append(f"Recognised as a {layout.title} ({share:.0%} of its marker columns).")
    else:
        draft.notes.append("Layout not recognised: columns matched by name similarity; check all.")
    tree = draft.tree
    id_match, state.tickets = ticket_rows(sample, layout, missing)
    _ticket_id(state, id_match)
    events = event_columns(state, id_match)
    tree["level"] = "events" if events else "tickets"
    if layout and (shipped := shipped_mapping(layout, tree["level"])):
        draft.notes.append(
            f"A shipped mapping exists for this layout: try `--mapping {shipped}` first; "
            "this draft is for an export that differs from it."
        )
    tree["timezone"] = "UTC"
    state.note(("timezone",), "zone of naive timestamps: set it to the export's zone")
    tree["datetime_format"] = guess.ISO
    if missing:
        tree["missing"] = missing
        state.note(("missing",), "seen as whole values: " + "; ".join(
            f"{m!r} in {_columns_text(cols)}" for m, cols in markers.items()))
    tree["columns"] = map_columns(state, id_match, events)
    add_defaults(state)
    escalation_tag(state)
    if values := value_maps(state):
        tree["values"] = values
    if events:
        tree["events"] = events
        derive_rules(state)
    foreign_people(state)
    _label_inputs(state)
    datetime_formats(state)
    propose_features(state)
    draft.unused = [c for c in state.header if c not in state.used]
    return draft


def shipped_mapping(layout: Layout, level: str) -> str | None:
    """The shipped mapping for this layout and level (``servicenow-events``), if any."""
    names = [layout.name] if layout.always_events else [layout.name, f"{layout.name}-{level}"]
    for name in names:
        for folder in mapping_dirs():
            path = folder / f"{name}.yaml"
            if path.is_file() and _level_of(path) == level:
                return name
    return None


def _level_of(path: Path) -> str | None:
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    return spec.get("level", "tickets") if isinstance(spec, dict) else None


#: Ticket-id synonyms that name any row: an event log's row id as well as a ticket's.
GENERIC_IDS = {"id", "number", "key"}


def ticket_rows(sample: pd.DataFrame, layout: Layout | None,
                missing: list[str]) -> tuple[Match | None, Tickets | None]:
    """The ticket id column, and the rows' tickets when rows are events.

    The header's name for the id wins when its values repeat (or are one per row); without
    one, the id is the column whose values behave as a ticket's (``cases``).
    """
    header = [str(c) for c in sample.columns]
    fuzzy = layout is None
    named = find(header, synonyms(layout, "ticket_id"), set(), fuzzy)
    named_time = find(header, synonyms(layout, "time", events=True), set(), fuzzy)
    tickets = find_tickets(sample, missing, named.column if named else None,
                           generic=named is not None and named.via in GENERIC_IDS,
                           named_time=named_time.column if named_time else None,
                           events=bool(layout and layout.always_events))
    if tickets is not None and (named is None or named.column != tickets.column):
        named = Match(tickets.column, "values", exact=False)
    return named, tickets


def _ticket_id(state: Drafting, match: Match | None) -> None:
    if match is None:
        state.draft.notes.append("No ticket id column found: add columns.ticket_id.")
        return
    state.used.add(match.column)
    if match.via == "values":
        state.note(("columns", "ticket_id"), "recognised by its values: repeated over a "
                   "ticket's rows, whose timestamps change; check")


#: What each label rule reads (``labels.py``); a draft feeding none cannot train.
LABEL_INPUTS = ("escalated", "initial_tier", "final_tier", "resolver_id", "reassignment_count")


def _label_inputs(state: Drafting) -> None:
    """Say so when no label rule has its data: `check` would refuse every ticket."""
    tree = state.draft.tree
    fed = set(tree["columns"]) | set(tree.get("derive", {}))
    for key in tree.get("events", {}):
        fed |= set(DERIVED_BY_EVENT.get(key, ()))
    if not fed & set(LABEL_INPUTS):
        state.draft.notes.append(
            "No column feeds a label rule (escalated, initial/final tier, resolver_id, "
            "reassignment_count): map one, or no ticket can be labelled."
        )


def _columns_text(columns: list[str]) -> str:
    """'region', or '23 columns' (a marker used everywhere needs no list)."""
    return repr(columns[0]) if len(columns) == 1 else f"{len(columns)} columns"
