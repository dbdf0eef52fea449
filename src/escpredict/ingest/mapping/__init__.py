"""Declarative export mappings: one YAML file per export format (``pipelines/mappings/``).

A mapping turns a customer's export into the canonical frames of ``contract.py``, so a new
ticketing system is supported by writing YAML, not code. The format is documented, with
examples, in ``docs/mappings.md``.

Applying a mapping happens in pure steps, kept separate so validation can see raw values
before they are typed: ``select`` (names, markers, ids, value maps) → ``type_columns``
(contract types) → ``collapse_events`` and ``derive_fields`` (event exports only).
``apply_mapping`` runs them all; ``loaders.load_tickets`` runs them with validation in
between. Modules: ``spec`` (schema), ``resolve`` (one source column), ``select`` (a frame's
canonical columns), ``events`` (per-ticket collapse and derive rules).
"""

from __future__ import annotations

import pandas as pd

from escpredict.ingest.mapping.events import (
    collapse_events,
    derive_fields,
    first_time,
    is_coordinator,
    roles_of,
)
from escpredict.ingest.mapping.resolve import resolve
from escpredict.ingest.mapping.select import (
    required_columns,
    select,
    source_labels,
    ticket_fields,
    type_columns,
)
from escpredict.ingest.mapping.spec import (
    EVENT_FIELDS,
    AnyOf,
    Column,
    Constant,
    Contains,
    CsvDialect,
    Events,
    Join,
    Mapping,
    MappingError,
    Source,
    TableMapping,
    load_mapping,
    mapping_dirs,
)
from escpredict.ingest.validation import DataValidationError, complete, missing

__all__ = [
    "EVENT_FIELDS",
    "AnyOf",
    "Column",
    "Constant",
    "Contains",
    "CsvDialect",
    "Events",
    "Join",
    "Mapping",
    "MappingError",
    "Source",
    "TableMapping",
    "apply_mapping",
    "collapse_and_derive",
    "collapse_events",
    "derive_fields",
    "first_time",
    "is_coordinator",
    "load_mapping",
    "mapping_dirs",
    "required_columns",
    "resolve",
    "roles_of",
    "select",
    "source_labels",
    "ticket_fields",
    "type_columns",
]


def collapse_and_derive(
    typed: pd.DataFrame, mapping: Mapping, agents: pd.DataFrame | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Typed events → (tickets with derived fields typed, derived values as computed).

    The untyped derived values come back too, so a caller can report values a rule's
    value map made unparseable for the field (see ``loaders``).
    """
    assert mapping.events is not None
    tickets = collapse_events(typed, mapping.events, agents, mapping.output_fields())
    if not mapping.derive:
        return tickets, tickets.iloc[:, :0]
    derived = derive_fields(typed, mapping.derive, tickets)
    fields = tuple(f for f in mapping.output_fields() if f.name in derived)
    return tickets.assign(**type_columns(derived, mapping, fields)), derived


def apply_mapping(
    raw: pd.DataFrame, mapping: Mapping, source: str, agents: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Canonical ticket frame from a raw export, without row validation (see ``load_tickets``).

    Unparseable values become NA here; ``load_tickets`` reports them instead. A missing
    required column raises DataValidationError naming ``source``: no row could be kept.
    ``agents`` supplies roles when collapsing an event export.
    """
    fields = ticket_fields(mapping)
    chosen = select(raw, mapping, fields)
    if problems := missing(
        chosen, required_columns(mapping), source, source_labels(mapping, fields)
    ):
        raise DataValidationError(problems)
    typed = type_columns(chosen, mapping, fields)
    if mapping.events is not None:
        typed, _ = collapse_and_derive(typed.dropna(subset=["ticket_id"]), mapping, agents)
    return complete(typed, mapping.output_fields()).reset_index(drop=True)
