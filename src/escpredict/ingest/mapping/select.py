"""The canonical columns of an export, named and cleaned but untyped, then typed.

Kept apart from typing so validation can compare the values as read with the typed ones
and name every value that could not be parsed.
"""

from __future__ import annotations

import pandas as pd

from escpredict.contract import Field as ContractField
from escpredict.contract import required
from escpredict.ingest.mapping.resolve import resolve
from escpredict.ingest.mapping.spec import Mapping, TableMapping, label
from escpredict.ingest.validation import coerce, row_index


def select(
    raw: pd.DataFrame, table: TableMapping, fields: tuple[ContractField, ...]
) -> pd.DataFrame:
    """Columns for ``fields`` that the export has; index = 1-based source row numbers."""
    raw = raw.reset_index(drop=True)
    out = {}
    for f in fields:
        spec = table.source_of(f.name)
        col = resolve(raw, spec, table.markers_of(f.name), table.values_of(f.name))
        if col is not None:
            out[f.name] = col
    return pd.DataFrame(out, index=raw.index).set_axis(row_index(len(raw)))


def type_columns(
    frame: pd.DataFrame, table: TableMapping, fields: tuple[ContractField, ...]
) -> pd.DataFrame:
    """Contract types, each timestamp read with its own or the mapping's datetime format."""
    return coerce(frame, fields, table.timezone, table.formats(fields))


def ticket_fields(mapping: Mapping) -> tuple[ContractField, ...]:
    """Fields ``select`` reads for this mapping: contract, extra features, event columns."""
    return mapping.output_fields() + mapping.event_fields()


def required_columns(mapping: Mapping) -> list[str]:
    """Columns without which no row can be kept (an event's time stands in for created_at).

    A field computed by ``derive:`` is checked per ticket after collapsing, not here.
    """
    names = [n for n in required(mapping.output_fields()) if n not in mapping.derive]
    if mapping.events is None:
        return names
    return [n for n in names if n != "created_at"] + ["event_time"]


def source_labels(table: TableMapping, fields: tuple[ContractField, ...]) -> dict[str, str]:
    """Canonical, feature or event field → how the export provides it, for error messages."""
    labels = {f.name: label(table.source_of(f.name)) for f in fields}
    return labels | (table.event_columns() if isinstance(table, Mapping) else {})
