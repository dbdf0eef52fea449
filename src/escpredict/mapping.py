"""Declarative export mappings: one YAML file per export format (``pipelines/mappings/``).

A mapping turns a customer's export into the canonical frames of ``contract.py``, so a new
ticketing system is supported by writing YAML, not code. Format (every key optional except
where noted)::

    name: servicenow
    level: tickets          # or ``events``: one row per update, collapsed to one row per ticket
    timezone: UTC           # zone of naive timestamps; aware ones are converted to UTC
    datetime_format: ISO8601
    columns:                # canonical name: source; unlisted canonical names pass through
      ticket_id: number
      category: {join: [category, subcategory], sep: " / "}   # non-empty parts, in order
      channel: {any_of: [via.channel, via]}                   # first column the file has
      escalated: {column: tags, contains: escalated}          # token present -> true
    values:                 # canonical name: {source value (case-insensitive): canonical}
      priority: {"1 - Critical": urgent, "2 - High": high}
    events:                 # required when level is events (see ``collapse_events``)
      time: sys_updated_on  # required: orders the events
      actor: sys_updated_by
      assignee: assigned_to
      tier: tier
      queue: assignment_group
      actor_role: null      # role columns; otherwise roles come from the agents table
      assignee_role: null
      coordinator_roles: [coordinator, dispatcher]
    agents:                 # the same columns/values/timezone keys, for the agents export
      columns: {agent_id: user_name}

Applying a mapping happens in three pure steps, kept separate so validation can see raw
values before they are typed: ``select`` (names and values) → ``validation.coerce``
(contract types) → ``collapse_events`` (event exports only). ``apply_mapping`` runs all
three; ``loaders.load_tickets`` runs them with validation in between.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from escpredict.contract import AGENTS_BY_NAME, TICKET_FIELDS, TICKETS_BY_NAME, required
from escpredict.contract import Field as ContractField
from escpredict.validation import (
    DataValidationError,
    coerce,
    complete,
    missing,
    row_index,
    text,
)
from escpredict.yamlfile import read_yaml_mapping, validate


class MappingError(ValueError):
    """A mapping file is missing or invalid; the message names the file and key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Join(_Strict):
    """Several source columns joined into one value (e.g. category + subcategory)."""

    join: list[str] = Field(min_length=1)
    sep: str = " / "


class AnyOf(_Strict):
    """The first of several alternative source columns that the file has."""

    any_of: list[str] = Field(min_length=1)


class Contains(_Strict):
    """True when a list-like column (tags) holds a token."""

    column: str
    contains: str


Source = str | Join | AnyOf | Contains


class TableMapping(_Strict):
    timezone: str = "UTC"
    datetime_format: str = "ISO8601"
    columns: dict[str, Source] = {}
    values: dict[str, dict[Any, Any]] = {}

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, tz: str) -> str:
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {tz!r}") from exc
        return tz


def _label(spec: Source) -> str:
    """How a canonical column is read from the export, for error messages."""
    if isinstance(spec, Join):
        return " + ".join(spec.join)
    if isinstance(spec, AnyOf):
        return " or ".join(spec.any_of)
    if isinstance(spec, Contains):
        return f"{spec.column} contains {spec.contains!r}"
    return spec


class Events(_Strict):
    time: str
    actor: str | None = None
    actor_role: str | None = None
    assignee: str | None = None
    assignee_role: str | None = None
    tier: str | None = None
    queue: str | None = None
    coordinator_roles: list[str] = ["coordinator", "dispatcher"]


#: Event columns → the canonical fields they derive; a mapping may not map those directly.
_DERIVED = {
    "actor": ("first_responder_id", "first_responder_role"),
    "assignee": ("agent_id", "reassignment_count", "agents_involved"),
    "tier": ("initial_tier", "final_tier"),
    "queue": ("initial_queue", "final_queue"),
}

#: Per-event columns, typed like contract fields so ``coerce`` and validation treat them alike.
EVENT_FIELDS: tuple[ContractField, ...] = (
    ContractField("event_time", "datetime", True, False, "When the update happened."),
    ContractField("event_actor", "str", False, False, "Who made the update."),
    ContractField("event_actor_role", "str", False, False, "Role of the actor."),
    ContractField("event_assignee", "str", False, False, "Assignee after the update."),
    ContractField("event_assignee_role", "str", False, False, "Role of the assignee."),
    ContractField("event_tier", "int", False, False, "Support tier after the update."),
    ContractField("event_queue", "str", False, False, "Queue after the update."),
)


class Mapping(TableMapping):
    name: str = ""
    level: Literal["tickets", "events"] = "tickets"
    events: Events | None = None
    agents: TableMapping = TableMapping()

    @model_validator(mode="after")
    def _consistent(self) -> Mapping:
        _known_names(self.columns, self.values, TICKETS_BY_NAME, "")
        _known_names(self.agents.columns, self.agents.values, AGENTS_BY_NAME, "agents.")
        if self.level == "events" and self.events is None:
            raise ValueError("level 'events' needs an 'events' section naming the time column")
        if self.events is not None:
            for key, derived in _DERIVED.items():
                clash = [n for n in derived if n in self.columns]
                if getattr(self.events, key) is not None and clash:
                    raise ValueError(f"columns {clash} are derived from events.{key}; drop them")
        return self

    def event_columns(self) -> dict[str, str]:
        """Internal event field → source column, for the event columns this mapping names."""
        if self.events is None:
            return {}
        named = self.events.model_dump(exclude={"time", "coordinator_roles"})
        found = {f"event_{k}": v for k, v in named.items() if v is not None}
        return {"event_time": self.events.time, **found}


def _known_names(columns: dict, values: dict, known: dict, prefix: str) -> None:
    for section, keys in (("columns", columns), ("values", values)):
        unknown = sorted(set(keys) - set(known))
        if unknown:
            raise ValueError(f"{prefix}{section}: {unknown} are not canonical column names")


def mapping_dirs() -> list[Path]:
    """Where mapping names are looked up, in order."""
    dirs = [Path.cwd() / "pipelines/mappings", Path(__file__).parents[2] / "pipelines/mappings"]
    if home := os.environ.get("ESCPREDICT_HOME"):
        dirs.insert(0, Path(home) / "pipelines/mappings")
    return dirs


def load_mapping(name_or_path: str) -> Mapping:
    """Read a mapping by name (``pipelines/mappings/<name>.yaml``) or by path to a YAML file."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml") and len(path.parts) == 1:
        candidates = [d / f"{name_or_path}.yaml" for d in mapping_dirs()]
        path = next((c for c in candidates if c.is_file()), candidates[0])
        if not path.is_file():
            where = ", ".join(str(c.parent) for c in candidates)
            raise MappingError(f"no mapping named {name_or_path!r} in {where}")
    raw = read_yaml_mapping(path, MappingError, "mapping file")
    return validate(Mapping, {"name": path.stem, **raw}, path, MappingError)


# --- select: canonical names and values, still untyped -------------------------------------


def resolve(raw: pd.DataFrame, spec: Source) -> pd.Series | None:
    """One canonical column from the export, or None when the export lacks it."""
    if isinstance(spec, str):
        return raw.get(spec)
    if isinstance(spec, AnyOf):
        return next((raw[c] for c in spec.any_of if c in raw), None)
    if isinstance(spec, Contains):
        if spec.column not in raw:
            return None
        tokens = text(raw[spec.column])
        found = tokens.str.contains(rf"(?:^|[\s,;]){re.escape(spec.contains)}(?:$|[\s,;])")
        return found.map({True: "true", False: "false"}).astype("str").where(tokens.notna())
    parts = [text(raw[c]) for c in spec.join if c in raw]
    if not parts:
        return None
    joined = parts[0]
    for part in parts[1:]:
        joined = (joined + spec.sep + part).fillna(joined).fillna(part)
    return joined


def _map_values(col: pd.Series, table: dict[Any, Any]) -> pd.Series:
    """Replace listed values (case-insensitive); unlisted values are kept as they are."""
    keys = {str(k).strip().lower(): _as_text(v) for k, v in table.items()}
    original = text(col)
    lookup = original.str.strip().str.lower()
    hit = lookup.isin(list(keys))
    return original.where(~hit, lookup.map(keys).astype("str"))


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    return str(value).lower() if isinstance(value, bool) else str(value)


def select(
    raw: pd.DataFrame,
    table: TableMapping,
    fields: tuple[ContractField, ...],
    extra: dict[str, str] | None = None,
) -> pd.DataFrame:
    """Canonical columns the export has, values mapped; index = 1-based source row numbers."""
    raw = raw.reset_index(drop=True)
    specs: dict[str, Source] = {f.name: table.columns.get(f.name, f.name) for f in fields}
    specs.update(extra or {})
    out = {}
    for name, spec in specs.items():
        col = resolve(raw, spec)
        if col is not None:
            out[name] = _map_values(col, table.values[name]) if name in table.values else col
    return pd.DataFrame(out, index=raw.index).set_axis(row_index(len(raw)))


# --- collapse: event exports → one row per ticket -----------------------------------------


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


def collapse_events(
    events: pd.DataFrame, spec: Events, agents: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One row per ticket from typed event rows (each carrying the ticket's state after it).

    Fields known at creation come from the first event, outcomes from the last (the final
    state). Derived: first responder = first actor; agent_id = first assignee whose role is
    not a coordinator role; reassignment_count = assignee changes after the first
    assignment; agents_involved = distinct assignees; final_tier = highest tier seen;
    resolver = the resolver column, else the actor who set the final resolution time.
    The result's index is each ticket's first event row.
    """
    ev = events.sort_values(["ticket_id", "event_time"], kind="stable")
    ticket = ev["ticket_id"]
    first = ev[~ticket.duplicated()]
    last = ev[~ticket.duplicated(keep="last")].set_index("ticket_id")
    out = pd.DataFrame({"ticket_id": first["ticket_id"]}, index=first.index)
    by_id = first.set_index("ticket_id")
    for f in TICKET_FIELDS[1:]:
        source = by_id if f.known_at_creation else last
        if f.name in source:
            out[f.name] = _per_ticket(out, source[f.name])
    start = _per_ticket(out, by_id["event_time"])
    out["created_at"] = out["created_at"].fillna(start) if "created_at" in out else start
    return out.assign(**_derived(ev, by_id, last, spec, agents, out))


def _per_ticket(out: pd.DataFrame, values: pd.Series) -> pd.Series:
    """Align a ticket-indexed series with ``out`` (indexed by first event row)."""
    return pd.Series(values.reindex(out["ticket_id"]).to_numpy(), index=out.index)


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
        actor = by_id["event_actor"]
        role = roles_of(actor, by_id.get("event_actor_role"), agents)
        derived["first_responder_id"] = _per_ticket(out, actor)
        derived["first_responder_role"] = _per_ticket(out, role)
        if "resolved_at" in ev:
            final = ev["ticket_id"].map(last["resolved_at"])
            setter = ev[ev["resolved_at"].notna() & (ev["resolved_at"] == final)]
            resolver = setter.drop_duplicates("ticket_id").set_index("ticket_id")["event_actor"]
            current = out.get("resolver_id", pd.Series(np.nan, index=out.index, dtype="str"))
            derived["resolver_id"] = current.fillna(_per_ticket(out, resolver))
    if "event_assignee" in ev:
        derived.update(_assignments(ev, spec, agents, out))
    if "event_tier" in ev:
        derived["initial_tier"] = _per_ticket(out, by_id["event_tier"])
        derived["final_tier"] = _per_ticket(out, groups["event_tier"].max())
    if "event_queue" in ev:
        derived["initial_queue"] = _per_ticket(out, by_id["event_queue"])
        derived["final_queue"] = _per_ticket(out, last["event_queue"])
    return derived


def _assignments(
    ev: pd.DataFrame, spec: Events, agents: pd.DataFrame | None, out: pd.DataFrame
) -> dict[str, pd.Series]:
    assigned = ev[ev["event_assignee"].notna()]
    who = assigned["event_assignee"]
    role = roles_of(who, assigned.get("event_assignee_role"), agents)
    handlers = assigned[~is_coordinator(role, spec.coordinator_roles)]
    handlers = handlers.drop_duplicates("ticket_id")
    previous = assigned.groupby("ticket_id", sort=False)["event_assignee"].shift()
    changed = (previous.notna() & (who != previous)).groupby(assigned["ticket_id"]).sum()
    distinct = who.groupby(assigned["ticket_id"]).nunique()
    return {
        "agent_id": _per_ticket(out, handlers.set_index("ticket_id")["event_assignee"]),
        "reassignment_count": _per_ticket(out, changed).fillna(0).astype("Int64"),
        "agents_involved": _per_ticket(out, distinct).fillna(0).astype("Int64"),
    }


def ticket_fields(mapping: Mapping) -> tuple[ContractField, ...]:
    """Fields ``select`` reads for this mapping: the contract plus event columns."""
    names = set(mapping.event_columns())
    return TICKET_FIELDS + tuple(f for f in EVENT_FIELDS if f.name in names)


def required_columns(mapping: Mapping) -> list[str]:
    """Columns without which no row can be kept (an event's time stands in for created_at)."""
    names = required(TICKET_FIELDS)
    if mapping.events is None:
        return names
    return [n for n in names if n != "created_at"] + ["event_time"]


def source_labels(table: TableMapping, fields: tuple[ContractField, ...]) -> dict[str, str]:
    """Canonical or event field → how the export provides it, for error messages."""
    labels = {f.name: _label(table.columns.get(f.name, f.name)) for f in fields}
    return labels | (table.event_columns() if isinstance(table, Mapping) else {})


def apply_mapping(
    raw: pd.DataFrame, mapping: Mapping, source: str, agents: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Canonical ticket frame from a raw export, without row validation (see ``load_tickets``).

    Unparseable values become NA here; ``load_tickets`` reports them instead. A missing
    required column raises DataValidationError naming ``source``: no row could be kept.
    ``agents`` supplies roles when collapsing an event export.
    """
    chosen = select(raw, mapping, TICKET_FIELDS, mapping.event_columns())
    labels = source_labels(mapping, TICKET_FIELDS)
    if problems := missing(chosen, required_columns(mapping), source, labels):
        raise DataValidationError(problems)
    fields = ticket_fields(mapping)
    typed = coerce(chosen, fields, mapping.timezone, mapping.datetime_format)
    if mapping.events is not None:
        typed = collapse_events(typed.dropna(subset=["ticket_id"]), mapping.events, agents)
    return complete(typed, TICKET_FIELDS).reset_index(drop=True)
