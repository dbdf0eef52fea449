"""Read one source (a column, a join, a constant, …) from a raw export, values cleaned.

Cleaning follows the order of ``docs/mappings.md``: missing markers → prefix strip or regex
extract → value map → default → ``when`` row filter. Values are only turned into text when a step needs it, so typed
Parquet columns reach ``validation.coerce`` as they are.
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

from escpredict.ingest.mapping.spec import AnyOf, Column, Constant, Contains, Join, Modifiers
from escpredict.ingest.validation import text


def resolve(
    raw: pd.DataFrame,
    spec: Any,
    markers: list[str] = (),
    values: dict[Any, Any] | None = None,
) -> pd.Series | None:
    """One column from the export, or None when the export lacks it.

    ``markers`` are the missing-value markers in force for this column and ``values`` its
    value map (inline or from the mapping's ``values:`` section).
    """
    col = _read(raw, spec, list(markers))
    modifiers = spec if isinstance(spec, Modifiers) else None
    if col is None:
        if modifiers is None or modifiers.default is None:
            return None
        col = pd.Series(pd.NA, index=raw.index, dtype="str")
    if modifiers is not None:
        col = _normalise(col, modifiers)
    if values is not None:
        col = map_values(col, values)
    if modifiers is not None and modifiers.default is not None:
        col = text(col).fillna(as_text(modifiers.default))
    if modifiers is not None and modifiers.when:
        col = _only_when(raw, col, modifiers.when, list(markers))
    return col


def _only_when(
    raw: pd.DataFrame, col: pd.Series, when: dict[str, list[Any]], markers: list[str]
) -> pd.Series | None:
    """Values only on rows where each named export column holds one of the listed values.

    For "long" exports (a changelog: field, from, to) where one column's meaning depends on
    another's. A ``when`` column the export lacks makes the whole source absent.
    """
    if any(name not in raw for name in when):
        return None
    keep = pd.Series(True, index=raw.index)
    for name, accepted in when.items():
        wanted = [as_text(v).strip().lower() for v in accepted]
        keep &= text(without_markers(raw[name], markers)).str.strip().str.lower().isin(wanted)
    return col.where(keep.to_numpy())


def _read(raw: pd.DataFrame, spec: Any, markers: list[str]) -> pd.Series | None:
    def column(name: str) -> pd.Series:
        return without_markers(raw[name], markers)

    if isinstance(spec, str):
        return column(spec) if spec in raw else None
    if isinstance(spec, Column):
        return column(spec.column) if spec.column in raw else None
    if isinstance(spec, AnyOf):
        found = [column(c) for c in spec.any_of if c in raw]
        if not found:
            return None
        first = found[0]
        for other in found[1:]:
            first = first.where(first.notna(), other)
        return first
    if isinstance(spec, Constant):
        return pd.Series(as_text(spec.constant), index=raw.index, dtype="str")
    if isinstance(spec, Contains):
        if spec.column not in raw:
            return None
        tokens = text(column(spec.column))
        found = tokens.str.contains(rf"(?:^|[\s,;]){re.escape(spec.contains)}(?:$|[\s,;])")
        return found.map({True: "true", False: "false"}).astype("str").where(tokens.notna())
    assert isinstance(spec, Join)
    parts = [text(column(c)) for c in spec.join if c in raw]
    if not parts:
        return None
    joined = parts[0]
    for part in parts[1:]:
        joined = (joined + spec.sep + part).fillna(joined).fillna(part)
    return joined


def without_markers(col: pd.Series, markers: list[str]) -> pd.Series:
    """Values equal to a missing marker (after trimming) become missing."""
    if not markers or not (col.dtype == object or pd.api.types.is_string_dtype(col)):
        return col
    hit = text(col).str.strip().isin(markers).to_numpy(dtype=bool)
    return col.mask(hit) if hit.any() else col


def _normalise(col: pd.Series, spec: Modifiers) -> pd.Series:
    """Strip the first matching prefix, or keep a regex's capture group, for comparable ids."""
    if spec.extract is not None:
        values = text(col)
        found = values.str.extract(spec.extract, expand=False)
        return found.where(found.notna(), values)
    prefixes = spec.prefixes()
    if not prefixes:
        return col
    values = text(col)
    done = pd.Series(False, index=values.index)
    for prefix in prefixes:
        cut = values.str.startswith(prefix, na=False) & ~done
        values = values.where(~cut, values.str[len(prefix) :])
        done |= cut
    return values


def map_values(col: pd.Series, table: dict[Any, Any]) -> pd.Series:
    """Replace listed values (case-insensitive); unlisted values are kept as they are."""
    keys = {str(k).strip().lower(): as_text(v) for k, v in table.items()}
    original = text(col)
    lookup = original.str.strip().str.lower()
    hit = lookup.isin(list(keys))
    return original.where(~hit, lookup.map(keys).astype("str"))


def as_text(value: Any) -> str | None:
    """A YAML scalar as the text an export would hold (``true``, not ``True``)."""
    if value is None:
        return None
    return str(value).lower() if isinstance(value, bool) else str(value)
