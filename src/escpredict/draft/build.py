"""Assemble a draft mapping from an export's header and a sample of its rows.

The result is plain data in the mapping language of ``docs/mappings.md`` plus comments keyed
by the path of the entry they explain, so the YAML writer can put each doubt beside the line
it is about. Nothing here reads files: the caller passes the sample.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from escpredict.contract import HISTORY_NAMES, TICKET_FIELDS, TICKETS_BY_NAME
from escpredict.draft import guess
from escpredict.draft.changelog import changelog_events
from escpredict.draft.layouts import Layout, Match, detect, find, normalise, synonyms
from escpredict.mapping import mapping_dirs
from escpredict.validation import text

KeyPath = tuple[str, ...]  # where an entry sits in the YAML: ("columns", "channel")

#: Canonical fields an event column derives (``docs/mappings.md``, "Event exports").
DERIVED_BY_EVENT: dict[str, tuple[str, ...]] = {
    "actor": ("first_responder_id", "first_responder_role"),
    "assignee": ("agent_id", "reassignment_count", "agents_involved"),
    "tier": ("initial_tier", "final_tier"),
    "queue": ("initial_queue", "final_queue"),
}
EVENT_KEYS = ("time", "status", "actor", "assignee", "queue", "tier")

#: Required fields a draft may fill with a constant when the export lacks them (a missing
#: customer becomes the ticket itself: one constant customer would fake a history).
CONSTANT_FALLBACK = {"channel", "category", "priority"}

#: Column names that describe a ticket's later life, not its creation: never features.
_OUTCOME = re.compile(
    r"resol|clos|solved|updat|modif|mod_count|reopen|reassign|sla|state|status|satisf|csat|"
    r"survey|repl|wait|station|interaction|response|due|duration|tracked|active|escalat|"
    r"problem|caused|rfc|_at$|date|time|count",
)

#: Identifiers: a model would only memorise them.
_ID = re.compile(r"(?:^|_)(?:id|key|number|uuid|guid|email)$|^(?:id|key|number)_")

#: Most extra features a draft proposes; the rest are listed as unused.
MAX_FEATURES = 8


@dataclass
class Draft:
    """A draft mapping: YAML data, comments by key path, and notes for the file's top."""

    tree: dict[str, Any]
    comments: dict[KeyPath, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)
    layout: str = "unknown"


@dataclass
class _State:
    sample: pd.DataFrame
    layout: Layout | None
    missing: list[str]
    draft: Draft
    used: set[str] = field(default_factory=set)
    changelog: bool = False  # rows are changes: event columns are sparse

    @property
    def header(self) -> list[str]:
        return [str(c) for c in self.sample.columns]

    def note(self, path: KeyPath, message: str) -> None:
        self.draft.comments[path] = message

    def find(self, key: str, events: bool = False, avoid: set[str] = frozenset()) -> Match | None:
        """The column for a canonical field or event key; by similarity if no layout fits."""
        taken = self.used | set(avoid)
        names = synonyms(self.layout, key, events)
        return find(self.header, names, taken, fuzzy=self.layout is None)


def draft_mapping(sample: pd.DataFrame, name: str) -> Draft:
    """A draft mapping for the export ``sample`` was taken from."""
    layout, share = detect([str(c) for c in sample.columns])
    missing = guess.missing_markers(sample)
    draft = Draft(tree={"name": name}, layout=layout.name if layout else "unknown")
    state = _State(sample, layout, missing, draft)
    if layout:
        draft.notes.append(f"Recognised as a {layout.title} ({share:.0%} of its marker columns).")
    else:
        draft.notes.append("Layout not recognised: columns matched by name similarity; check all.")
    tree = draft.tree
    id_match = _ticket_id(state)
    events = _event_columns(state, id_match)
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
        state.note(("missing",), "seen as whole values in the sample")
    tree["columns"] = _columns(state, id_match, events)
    _defaults(state)
    _escalation_tag(state)
    if values := _value_maps(state):
        tree["values"] = values
    if events:
        tree["events"] = events
        _derive(state)
    _foreign_people(state)
    _datetime_formats(state)
    _features(state)
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


def _ticket_id(state: _State) -> Match | None:
    match = state.find("ticket_id")
    if match is None:
        state.draft.notes.append("No ticket id column found: add columns.ticket_id.")
        return None
    state.used.add(match.column)
    return match


def _event_columns(state: _State, id_match: Match | None) -> dict[str, Any]:
    """The ``events:`` section when rows are updates (ids repeat), else empty."""
    if id_match is None:
        return {}
    ids = text(state.sample[id_match.column]).dropna()
    repeats = ids.duplicated().any()
    if not repeats and not (state.layout and state.layout.always_events):
        return {}
    if log := changelog_events(state.sample, state.missing, state.used):
        state.used |= log.used
        state.changelog = True
        state.draft.notes.append(
            "Rows are changes (a changed-field column and its new value): each event column "
            "reads only the rows that changed it (when:)."
        )
        return log.events
    time = state.find("time", events=True)
    if time is None or not guess.is_datetime(state.sample[time.column], state.missing):
        state.draft.notes.append(
            f"Ticket ids in {id_match.column!r} repeat, but no update-time column was found: "
            "kept one row per ticket; set level: events and events.time if rows are updates."
        )
        return {}
    events: dict[str, Any] = {}
    for key in EVENT_KEYS:
        match = time if key == "time" else state.find(key, events=True)
        if match is None:
            continue
        events[key] = match.column
        state.used.add(match.column)
        if not match.exact:
            state.note(("events", key), f"guessed from {match.column!r}; check")
    if isinstance(events.get("tier"), str):
        _tier_values(state, events)
    return events


def _foreign_people(state: _State) -> None:
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
        if _shared_ids(state, column, handler):
            continue
        del entries[key]
        state.used.discard(column)
        state.draft.notes.append(
            f"{section}.{key} not mapped: {column!r} shares no id with {handler!r} in the "
            f"sample (ids anonymised per column?); add `{key}: {column}` if they name the "
            "same people."
        )


def _tier_values(state: _State, events: dict[str, Any]) -> None:
    column = events["tier"]
    mapped, unknown = guess.tier_map(state.sample[column], state.missing)
    if mapped:
        events["tier"] = {"column": column, "values": mapped}
    if unknown:
        shown = ", ".join(repr(u) for u in unknown[:5])
        state.note(("events", "tier"), f"no tier number for {shown}: add them to values")


def _columns(state: _State, id_match: Match | None, events: dict[str, Any]) -> dict[str, Any]:
    """``columns:``: each canonical field from its best column, constants for required gaps."""
    derived = {f for key in events for f in DERIVED_BY_EVENT.get(key, ())}
    columns: dict[str, Any] = {}
    if id_match:
        columns["ticket_id"] = id_match.column
        if not id_match.exact:
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


def _defaults(state: _State) -> None:
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
        filled = pd.concat([_filled(state, p) for p in parts], axis=1).any(axis=1)
        if filled.all():
            continue
        entry = dict(source) if isinstance(source, dict) else {"column": source}
        columns[name] = entry | {"default": "unknown"}
        state.note(("columns", name), f"empty on {1 - filled.mean():.0%} of sampled rows")


def _filled(state: _State, column: str) -> pd.Series:
    values = text(state.sample[column]).str.strip()
    return values.notna() & ~values.isin(state.missing)


def _column_of(source: Any) -> str | None:
    """The single export column behind a source, if it has one."""
    if isinstance(source, dict):
        source = source.get("column")
    return source if isinstance(source, str) else None


def _escalation_tag(state: _State) -> None:
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


def _source(state: _State, name: str) -> Any:
    """Where a canonical field comes from, or None; datetime fields must hold timestamps."""
    rejected: set[str] = set()
    while (match := state.find(name, avoid=rejected)) is not None:
        col = state.sample[match.column]
        if TICKETS_BY_NAME[name].kind == "datetime" and not guess.is_datetime(col, state.missing):
            rejected.add(match.column)
            continue
        state.used.add(match.column)
        if not match.exact:
            state.note(("columns", name), f"guessed from {match.column!r}; check")
        if name == "category":
            return _with_subcategory(state, match.column)
        if name == "customer_id":
            return _with_fallbacks(state, name, match.column)
        return match.column
    return None


def _with_fallbacks(state: _State, name: str, column: str) -> Any:
    """``{any_of: [...]}`` when other candidate columns fill rows the first leaves empty
    (a Salesforce case without a contact still has an account)."""
    chosen, filled = [column], _filled(state, column)
    while not filled.all() and len(chosen) < 3:
        match = state.find(name, avoid=set(chosen))
        if match is None:
            break
        more = _filled(state, match.column)
        if (more & ~filled).any():
            chosen.append(match.column)
            state.used.add(match.column)
            filled = filled | more
        else:
            break
    return {"any_of": chosen} if len(chosen) > 1 else column


def _with_subcategory(state: _State, column: str) -> Any:
    """``category`` joined with a sub-category column when the export splits the two."""
    wanted = {"sub" + normalise(column), "sub_" + normalise(column)}
    sub = next((c for c in state.header if normalise(c) in wanted and c not in state.used), None)
    if sub is None:
        return column
    state.used.add(sub)
    return {"join": [column, sub], "sep": " / "}


def _value_maps(state: _State) -> dict[str, Any]:
    """Priority and channel words mapped onto the contract's vocabulary, csat words to scores."""
    columns = state.draft.tree["columns"]
    values: dict[str, Any] = {}
    if csat := _column_of(columns.get("csat")):
        scores, unknown = guess.csat_map(state.sample[csat], state.missing)
        if scores:
            values["csat"] = scores
        if unknown:
            shown = ", ".join(repr(u) for u in unknown[:6])
            state.note(("columns", "csat"), f"no score for {shown}: map them under values.csat")
    for name in guess.VOCABULARY:
        source = _column_of(columns.get(name))
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


def _derive(state: _State) -> None:
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
    replaced = tree["columns"].pop("resolved_at", None)
    derive["resolved_at"] = {"time": "last", "where": where}
    state.note(("derive", "resolved_at"), _instead("last update to a resolved status", replaced))
    if "assignee" in events or "actor" in events:
        _resolver(state, derive, where)
    tree["derive"] = derive
    if "queue" in events:
        state.draft.notes.append(
            "If moving a ticket to certain groups means escalation, add to derive: "
            "escalated: {moved_to: {queue: [<group>, ...]}}."
        )


def _event_values(state: _State, source: Any) -> pd.Series:
    """An event column's values, on the rows its ``when:`` keeps (a changelog's status rows)."""
    if isinstance(source, str):
        return state.sample[source]
    values = state.sample[source["column"]]
    for column, wanted in source.get("when", {}).items():
        names = text(state.sample[column]).str.strip().str.lower()
        values = values[names.isin([w.lower() for w in wanted])]
    return values


def _resolver(state: _State, derive: dict[str, Any], where: dict[str, Any]) -> None:
    """The resolver from the handler at resolution (assignee, else actor) unless the
    export's resolver column uses the same ids as that column (then it is kept)."""
    columns, events = state.draft.tree["columns"], state.draft.tree["events"]
    # a changelog row that sets the status names no assignee: its author resolved it
    key = "actor" if "actor" in events and (state.changelog or "assignee" not in events) \
        else "assignee"
    resolver = columns.get("resolver_id")
    handler = events[key]
    if isinstance(resolver, str) and isinstance(handler, str) and \
            _shared_ids(state, resolver, handler):
        return
    columns.pop("resolver_id", None)
    derive["resolver_id"] = {"value": key, "at": "last", "where": where}
    why = f"same ids as the {key}"
    if isinstance(resolver, str) and isinstance(handler, str):
        why += f"; {resolver!r} shares no id with {handler!r} in the sample"
    state.note(("derive", "resolver_id"), why)


def _shared_ids(state: _State, a: str, b: str) -> bool:
    left = set(guess.present(state.sample[a], state.missing).str.strip())
    right = set(guess.present(state.sample[b], state.missing).str.strip())
    return bool(left & right)


def _instead(what: str, replaced: Any) -> str:
    return f"{what}; the export's {replaced!r} column is not used" if replaced else what


def _datetime_formats(state: _State) -> None:
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
        if found.also:
            where = ("datetime_format",) if found.format == main else path
            state.note(where, f"{column!r} also reads as {found.also[0]!r}: check day/month order")


def _features(state: _State) -> None:
    """Unused columns that look known at creation, proposed as extra model features."""
    reserved = {f.name for f in TICKET_FIELDS} | set(HISTORY_NAMES) | set(EVENT_KEYS)
    features: dict[str, Any] = {}
    for column in state.header:
        norm = normalise(column)
        if column in state.used or _OUTCOME.search(norm) or _ID.search(norm):
            continue
        if len(features) >= MAX_FEATURES:
            break
        kind = guess.feature_kind(state.sample[column], state.missing)
        if kind is None or guess.is_datetime(state.sample[column], state.missing):
            continue
        name = norm if norm not in reserved and not norm[0].isdigit() else f"x_{norm}"
        features[name] = {"column": column, "kind": kind}
        state.used.add(column)
    if features:
        state.draft.tree["features"] = features
        state.note(("features",), "unused columns that may be known at creation; keep only those that are")
