"""The ``columns:``, ``values:`` and ``features:`` sections of a draft, and its datetime formats."""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

from escpredict.contract import HISTORY_NAMES, TICKET_FIELDS, TICKETS_BY_NAME
from escpredict.onboard.draft import creation, guess
from escpredict.onboard.draft.events import DERIVED_BY_EVENT, EVENT_KEYS
from escpredict.onboard.draft.layouts import Match, bare, normalise
from escpredict.onboard.draft.state import Drafting, KeyPath, column_of, filled

#: Required fields a draft may fill with a constant when the export lacks them (a missing
#: customer becomes the ticket itself: one constant customer would fake a history).
CONSTANT_FALLBACK = {"channel", "category", "priority"}

#: Column names that describe a ticket's later life, not its creation, or one change of a
#: changelog (old/new value, Jira's item.* and history.*): never features.
_OUTCOME = re.compile(
    r"resol|clos|solved|updat|modif|mod_count|reopen|reassign|sla|state|status|satisf|csat|"
    r"survey|repl|wait|station|interaction|response|due|duration|tracked|active|escalat|"
    r"problem|caused|rfc|_at$|date|time|count|old_?value|new_?value|checkpoint|^item_|^history_",
)

#: Identifiers: a model would only memorise them.
_ID = re.compile(r"(?:^|_)(?:id|key|number|uuid|guid|email)$|^(?:id|key|number)_")

#: Most extra features a draft proposes; the rest are listed as unused.
MAX_FEATURES = 8


def map_columns(state: Drafting, id_match: Match | None, events: dict[str, Any]) -> dict[str, Any]:
    """``columns:``: each canonical field from its best column, constants for required gaps."""
    derived = {f for key in events for f in DERIVED_BY_EVENT.get(key, ())}
    columns: dict[str, Any] = {}
    if id_match:
        columns["ticket_id"] = id_match.column
        if not id_match.exact and id_match.via != "values":
            state.note(("columns", "ticket_id"), f"guessed from {id_match.column!r}; check")
    for f in TICKET_FIELDS[1:]:
        if f.name in derived:
            continue
        source = _source(state, f.name)
        if source is not None:
            columns[f.name] = source
            if f.name == "agent_id" and not events:
                state.note(("columns", f.name), "the assignee at export time: the first one "
                           "only for tickets never reassigned; check")
        elif f.name == "customer_id" and id_match:
            columns[f.name] = id_match.column
            state.note(("columns", f.name), "no customer column: each ticket is its own "
                       "customer (no customer history); check")
        elif f.required and f.name in CONSTANT_FALLBACK:
            columns[f.name] = {"constant": "unknown"}
            state.note(("columns", f.name), f"the export has no {f.name} column; check")
        elif f.required and not (f.name == "created_at" and events):
            state.draft.notes.append(f"No column found for required field {f.name}: add it.")
    return columns


def add_defaults(state: Drafting) -> None:
    """``default: unknown`` for a required label-like field some sampled rows leave empty.

    Without it those rows are refused or quarantined, though "no category" is a fact a
    model can use; a missing id or creation time is different and gets no default.
    """
    columns = state.draft.tree["columns"]
    for name in ("channel", "category", "priority"):
        source = columns.get(name)
        parts = source["join"] if isinstance(source, dict) and "join" in source else [source]
        if not all(isinstance(p, str) for p in parts):
            continue
        covered = pd.concat([filled(state, p) for p in parts], axis=1).any(axis=1)
        if covered.all():
            continue
        entry = dict(source) if isinstance(source, dict) else {"column": source}
        columns[name] = entry | {"default": "unknown"}
        state.note(("columns", name), f"empty on {1 - covered.mean():.0%} of sampled rows")


def escalation_tag(state: Drafting) -> None:
    """``escalated`` from a tags column when some ticket in the sample is tagged so."""
    columns = state.draft.tree["columns"]
    tags = state.find("tags")
    if "escalated" in columns or tags is None:
        return
    for token in ("escalated", "escalation"):
        if guess.has_token(state.sample[tags.column], token):
            columns["escalated"] = {"column": tags.column, "contains": token}
            state.used.add(tags.column)
            state.note(("columns", "escalated"), f"some tickets are tagged {token!r}; check")
            return


def _source(state: Drafting, name: str) -> Any:
    """Where a canonical field comes from, or None; datetime fields must hold timestamps."""
    rejected: set[str] = set()
    while (match := state.find(name, avoid=rejected)) is not None:
        col = state.sample[match.column]
        if TICKETS_BY_NAME[name].kind == "datetime" and not guess.is_datetime(col, state.missing):
            rejected.add(match.column)
            continue
        why = creation.not_at_creation(state, match.column) \
            if TICKETS_BY_NAME[name].known_at_creation else None
        if why and (not match.exact or why == "process variant"):
            rejected.add(match.column)  # a guessed name for an event column: not this field
            continue
        state.used.add(match.column)
        if not match.exact:
            state.note(("columns", name), f"guessed from {match.column!r}; check")
        elif why:
            state.note(("columns", name), f"{why}: the first event's value is used; check "
                       "that it is the value at creation")
        if name == "category":
            return _with_subcategory(state, match.column)
        if name == "customer_id":
            return _with_fallbacks(state, name, match.column)
        return match.column
    return None


def _with_fallbacks(state: Drafting, name: str, column: str) -> Any:
    """``{any_of: [...]}`` when other candidate columns fill rows the first leaves empty
    (a Salesforce case without a contact still has an account)."""
    chosen, covered = [column], filled(state, column)
    while not covered.all() and len(chosen) < 3:
        match = state.find(name, avoid=set(chosen))
        if match is None:
            break
        more = filled(state, match.column)
        if not (more & ~covered).any():
            break
        chosen.append(match.column)
        state.used.add(match.column)
        covered = covered | more
    return {"any_of": chosen} if len(chosen) > 1 else column


def _with_subcategory(state: Drafting, column: str) -> Any:
    """``category`` joined with a sub-category column when the export splits the two."""
    wanted = {"sub" + normalise(column), "sub_" + normalise(column)}
    sub = next((c for c in state.header if normalise(c) in wanted and c not in state.used), None)
    if sub is None:
        return column
    state.used.add(sub)
    return {"join": [column, sub], "sep": " / "}


def value_maps(state: Drafting) -> dict[str, Any]:
    """Priority and channel words onto the contract's vocabulary; csat words to scores; tier
    names (L2, Tier 3) to numbers."""
    columns = state.draft.tree["columns"]
    values: dict[str, Any] = {}
    if csat := column_of(columns.get("csat")):
        scores, unknown = guess.csat_map(state.sample[csat], state.missing)
        if scores:
            values["csat"] = scores
        if unknown:
            shown = ", ".join(repr(u) for u in unknown[:6])
            state.note(("columns", "csat"), f"no score for {shown}: map them under values.csat")
    for name in ("initial_tier", "final_tier"):
        if tier := column_of(columns.get(name)):
            numbers, unknown = guess.tier_map(state.sample[tier], state.missing)
            if numbers:
                values[name] = numbers
            if unknown:
                shown = ", ".join(repr(u) for u in unknown[:5])
                state.note(("columns", name), f"no tier number for {shown}: map them under values")
    for name in guess.VOCABULARY:
        source = column_of(columns.get(name))
        if source is None:
            continue
        mapped, kept = guess.value_map(name, state.sample[source], state.missing)
        if mapped:
            values[name] = mapped
        if kept:
            shown = ", ".join(repr(k) for k in kept[:6])
            path = ("values", name) if mapped else ("columns", name)
            state.note(path, f"kept as they are: {shown}")
    return values


def datetime_formats(state: Drafting) -> None:
    """One mapping-wide format (of the main time column), per-column ones where they differ."""
    tree = state.draft.tree
    timed: list[tuple[KeyPath, dict[str, Any], str]] = []
    if "events" in tree:
        timed.append((("events", "time"), tree["events"], "time"))
    for name in ("created_at", "resolved_at"):
        if isinstance(tree["columns"].get(name), str):
            timed.append((("columns", name), tree["columns"], name))
    main: str | None = None
    for path, section, key in timed:
        source = section[key]
        column = source["any_of"][0] if isinstance(source, dict) else source
        found = guess.datetime_format(state.sample[column], state.missing)
        if found is None:
            state.note(path, "no known datetime format reads every value; check")
            continue
        if main is None:
            main = found.format
            tree["datetime_format"] = main
        elif found.format != main and isinstance(source, str):
            section[key] = {"column": column, "datetime_format": found.format}
        if found.format == guess.MIXED:
            state.note(path, f"{column!r} mixes formats: 'mixed' reads each value as it can "
                       "(slower; a day-first date may be read month-first); check")
        if found.also:
            where = ("datetime_format",) if found.format == main else path
            state.note(where, f"{column!r} also reads as {found.also[0]!r}: check day/month order")


def propose_features(state: Drafting) -> None:
    """Unused columns that look known at creation, proposed as extra model features."""
    reserved = {f.name for f in TICKET_FIELDS} | set(HISTORY_NAMES) | set(EVENT_KEYS)
    features: dict[str, Any] = {}
    left_out: dict[str, str] = {}
    for column in state.header:
        norm = normalise(column)
        if column in state.used or _OUTCOME.search(norm) or _ID.search(norm):
            continue
        if why := creation.not_at_creation(state, column):
            left_out[column] = why
            continue
        if len(features) >= MAX_FEATURES:
            continue
        kind = guess.feature_kind(state.sample[column], state.missing)
        if kind is None or guess.is_datetime(state.sample[column], state.missing):
            continue
        short = bare(norm)  # u_symptom -> symptom
        name = short if short not in reserved and not short[0].isdigit() else f"x_{short}"
        features[name] = {"column": column, "kind": kind}
        state.used.add(column)
    creation.explain(state, left_out)
    if features:
        state.draft.tree["features"] = features
        state.note(("features",), "unused columns that may be known at creation; keep only those that are")
