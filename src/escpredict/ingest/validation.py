"""Checks that an export can become the canonical ticket frame, and the parsing they share.

Nothing is dropped silently: every check returns ``Problem``s naming the file, the 1-based
data row numbers of the source file and the canonical field, and the loader either refuses
the file (``DataValidationError``) or quarantines exactly those rows. The parsers live here
because "is this value a timestamp?" and "turn it into one" must be the same code.

Frames passed between these functions are indexed by source row number (``row``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from escpredict.contract import TICKET_FIELDS, Field, required

#: Rows listed per problem in an error message before "and N more".
MAX_LISTED_ROWS = 10


@dataclass(frozen=True)
class Problem:
    source: str
    rows: list[int]  # 1-based data rows; empty when the whole file is affected
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.source}, {_rows_text(self.rows)}, field {self.field!r}: {self.message}"


def _rows_text(rows: list[int]) -> str:
    if not rows:
        return "all rows"
    listed = ", ".join(map(str, rows[:MAX_LISTED_ROWS]))
    more = len(rows) - MAX_LISTED_ROWS
    return f"row{'s' if len(rows) > 1 else ''} {listed}" + (f" and {more} more" if more > 0 else "")


class DataValidationError(ValueError):
    """The data breaks the contract; ``problems`` lists every problem found, not just the first."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{len(problems)} data problem(s):\n{lines}")

    def __reduce__(self) -> tuple[type, tuple[list[Problem]]]:
        """Rebuilt from its problems, so it crosses processes (a Dask worker) intact."""
        return type(self), (self.problems,)


def row_index(n: int) -> pd.RangeIndex:
    """The index every frame here carries: 1-based data row numbers of the source file."""
    return pd.RangeIndex(1, n + 1, name="row")


# --- parsing: export values → contract types ----------------------------------------------


def text(col: pd.Series) -> pd.Series:
    """Values as strings (``str`` dtype); blanks become missing, integral floats lose ``.0``.

    Integral floats matter because an id column with gaps arrives from JSON or Parquet as
    float64, and ``"1234.0"`` must still match ``"1234"`` in the agents table.
    """
    if col.dtype == object:
        # a list comprehension, not .map: .map would infer [77, None] as floats
        col = pd.Series([_join_list(v) for v in col.to_numpy()], index=col.index, dtype=object)
    elif pd.api.types.is_float_dtype(col):
        finite = col.dropna()
        if (finite == np.round(finite)).all():
            col = col.astype("Int64")
    out = col.astype("str").mask(col.isna())
    return out.mask(out.str.strip() == "")


def _join_list(value: Any) -> Any:
    return " ".join(map(str, value)) if isinstance(value, list | tuple | np.ndarray) else value


#: A zone suffix: Z, +hh:mm, +hhmm, +hh, and malformed ones such as a cut-off "+00:0" that
#: pandas still reads as zoned (the naive parse would then crash instead of naming the row).
_AWARE = r"(?:[Zz]|[+-][\d:]+)$"
_TRUE = {"true", "t", "yes", "y"}
_FALSE = {"false", "f", "no", "n"}


def parse_datetime(col: pd.Series, tz: str, fmt: str) -> pd.Series:
    """UTC timestamps; naive values are local to ``tz``, aware ones are converted.

    Mixed naive/aware exports are common (a migration changes the export format), so the two
    kinds are parsed separately instead of refusing the file. Unparseable, out-of-range and
    non-existent local times become NaT; the caller compares with the input to report them.
    """
    if isinstance(col.dtype, pd.DatetimeTZDtype):
        return col.dt.tz_convert("UTC").dt.as_unit("ns")
    if pd.api.types.is_datetime64_dtype(col):
        return _localize(col, tz)
    values = text(col)
    aware = values.str.contains(_AWARE) & values.str.contains(":")
    out = pd.Series(pd.NaT, index=col.index, dtype="datetime64[ns, UTC]")
    for variant in date_separator_variants(fmt):
        left = out.isna() & values.notna()
        if not left.any():
            break
        if (now := left & aware).any():
            parsed = pd.to_datetime(values[now], format=variant, utc=True, errors="coerce")
            out[now] = _in_range(parsed)
        if (now := left & ~aware).any():
            parsed = pd.to_datetime(values[now], format=variant, errors="coerce")
            out[now] = _localize(parsed, tz)
    return out


#: Separators between a strftime format's date fields that spreadsheet tools swap by locale.
DATE_SEPARATORS = ("-", "/", ".")
_DATE_FIELDS = re.compile(r"(%[dmyYbB])([-/.])(?=%[dmyYbB])")


def date_separator_variants(fmt: str) -> list[str]:
    """``fmt``, then the same format with its date separator swapped for the other ones.

    A spreadsheet tool that re-saves an export rewrites ``29-02-2016`` as ``29/2/2016`` by
    the user's locale: the separator changes, never the order of day, month and year, so
    reading either keeps a day-first format day-first. ``ISO8601`` and ``mixed`` already
    read any separator.
    """
    found = _DATE_FIELDS.search(fmt)
    if found is None:
        return [fmt]
    others = [sep for sep in DATE_SEPARATORS if sep != found.group(2)]
    return [fmt, *(_DATE_FIELDS.sub(lambda m, sep=sep: m.group(1) + sep, fmt) for sep in others)]


def _localize(col: pd.Series, tz: str) -> pd.Series:
    local = col.dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
    return _in_range(local.dt.tz_convert("UTC"))


def _in_range(col: pd.Series) -> pd.Series:
    lo, hi = pd.Timestamp.min.tz_localize("UTC"), pd.Timestamp.max.tz_localize("UTC")
    return col.where((col >= lo) & (col <= hi)).dt.as_unit("ns")


def _numbers(col: pd.Series) -> pd.Series:
    """Floats; typed numeric columns (Parquet) skip the round trip through text."""
    if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
        return col.astype("float64")
    return pd.to_numeric(text(col), errors="coerce").astype("float64")


def parse_int(col: pd.Series) -> pd.Series:
    """Nullable integers; non-numbers and fractions become NA."""
    numbers = _numbers(col)
    whole = (numbers == np.round(numbers)) & (numbers.abs() < 2**62)
    return numbers.where(whole).astype("Int64")


def parse_bool(col: pd.Series) -> pd.Series:
    """Nullable booleans from true/false/yes/no or counts (a reopen count of 2 is ``True``)."""
    if pd.api.types.is_bool_dtype(col):
        return col.astype("boolean")
    words = text(col).str.strip().str.lower()
    numbers = pd.to_numeric(words, errors="coerce")
    out = pd.Series(pd.NA, index=col.index, dtype="boolean")
    out[words.isin(_TRUE)] = True
    out[words.isin(_FALSE)] = False
    counted = numbers.notna()
    out[counted] = numbers[counted] != 0
    return out


def coerce(
    frame: pd.DataFrame,
    fields: tuple[Field, ...],
    tz: str = "UTC",
    fmt: str | dict[str, str] = "ISO8601",
) -> pd.DataFrame:
    """Contract dtypes for the fields present in ``frame`` (others are left out).

    ``fmt`` is one datetime format for every timestamp, or a format per field name.
    """
    formats = fmt if isinstance(fmt, dict) else {}

    def parse(f: Field) -> pd.Series:
        col = frame[f.name]
        if f.kind == "datetime":
            return parse_datetime(col, tz, formats.get(f.name, "ISO8601") if formats else fmt)
        return _PARSERS[f.kind](col)

    typed = {f.name: parse(f) for f in fields if f.name in frame}
    return pd.DataFrame(typed, index=frame.index)


_PARSERS = {"str": text, "int": parse_int, "float": _numbers, "bool": parse_bool}


def unparsed(
    before: pd.DataFrame, after: pd.DataFrame, fields: tuple[Field, ...]
) -> dict[str, pd.Series]:
    """Per typed column, where a value was given but could not be parsed."""
    names = [f.name for f in fields if f.kind != "str" and f.name in after]
    masks = {name: text(before[name]).notna() & after[name].isna() for name in names}
    return {name: mask for name, mask in masks.items() if mask.any()}


_EMPTY = {"str": "str", "datetime": "datetime64[ns, UTC]", "int": "Int64", "float": "float64"}


def complete(frame: pd.DataFrame, fields: tuple[Field, ...]) -> pd.DataFrame:
    """Every contract column, in contract order; absent ones all-NA, absent text empty."""
    out = frame.copy()
    for f in fields:
        if f.name not in out:
            out[f.name] = pd.Series(None, index=out.index, dtype=_EMPTY.get(f.kind, "boolean"))
    for name in ("subject", "description"):
        if name in out:
            out[name] = out[name].fillna("")
    return out[[f.name for f in fields]]


# --- checks -------------------------------------------------------------------------------

_KIND_NAMES = {"datetime": "a timestamp", "int": "a whole number", "float": "a number"}


def _where(mask: pd.Series, source: str, field: str, message: str) -> list[Problem]:
    rows = mask.index[mask.to_numpy(dtype=bool)].tolist()
    return [Problem(source, rows, field, message)] if rows else []


def unparseable(
    before: pd.DataFrame,
    after: pd.DataFrame,
    fields: tuple[Field, ...],
    source: str,
    labels: dict[str, str] | None = None,
) -> list[Problem]:
    """Values given but not of the field's kind (e.g. csat 'great', created_at 'yesterday')."""
    kinds = {f.name: f.kind for f in fields}
    problems = []
    for name, mask in unparsed(before, after, fields).items():
        examples = ", ".join(repr(v) for v in text(before[name])[mask].unique()[:3])
        column = (labels or {}).get(name, name)
        origin = f" (column {column!r})" if column != name else ""
        kind = _KIND_NAMES.get(kinds[name], "true/false")
        problems += _where(mask, source, name, f"not {kind}{origin}, e.g. {examples}")
    return problems


def empty(frame: pd.DataFrame, names: list[str], source: str) -> list[Problem]:
    """Required values that are missing or blank."""
    problems = []
    for name in names:
        if name in frame:
            problems += _where(text(frame[name]).isna(), source, name, "required value is empty")
    return problems


def duplicated(frame: pd.DataFrame, name: str, source: str) -> list[Problem]:
    """Every row sharing an id: the export cannot say which one is right."""
    if name not in frame:
        return []
    ids = frame[name]
    return _where(ids.notna() & ids.duplicated(keep=False), source, name, f"duplicate {name}")


def resolved_before_created(typed: pd.DataFrame, source: str) -> list[Problem]:
    if not {"created_at", "resolved_at"} <= set(typed):
        return []
    early = typed["resolved_at"] < typed["created_at"]
    return _where(early.fillna(False), source, "resolved_at", "resolved before it was created")


def missing(
    frame: pd.DataFrame, names: list[str], source: str, labels: dict[str, str] | None = None
) -> list[Problem]:
    """Required columns absent from the export: a file-level problem no quarantine can fix."""
    return [
        Problem(
            source, [], n, f"required column is missing (expected {(labels or {}).get(n, n)!r})"
        )
        for n in names
        if n not in frame
    ]


def check_tickets(
    before: pd.DataFrame,
    typed: pd.DataFrame,
    source: str,
    labels: dict[str, str] | None = None,
    fields: tuple[Field, ...] = TICKET_FIELDS,
) -> list[Problem]:
    """Row problems of a ticket-level frame, before (as read) and after typing.

    ``fields`` are the contract fields plus any extra features a mapping declares.
    """
    return (
        unparseable(before, typed, fields, source, labels)
        + empty(before, required(fields), source)
        + duplicated(typed, "ticket_id", source)
        + resolved_before_created(typed, source)
    )


def validate_tickets(df: pd.DataFrame, source: str) -> list[Problem]:
    """Every problem in a frame with canonical column names (typed or as read, UTC)."""
    frame = df.reset_index(drop=True).set_axis(row_index(len(df)))
    typed = coerce(frame, TICKET_FIELDS)
    return missing(frame, required(TICKET_FIELDS), source) + check_tickets(frame, typed, source)
