"""Read ticket and agent exports into validated canonical frames.

Reading is strict on purpose: a file that is truncated or corrupt fails with the file name
and the byte offset or line, because a silently mis-read export trains a model on wrong
data; how a spreadsheet wrote a CSV is detected and reported (``csvfile``). Row problems are either refused together (``DataValidationError``) or, with
``quarantine``, written out with the reason so that every input row is accounted for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from escpredict.contract import AGENT_FIELDS, required
from escpredict.ingest.csvfile import DataReadError, ReadNotes, decode, read_csv
from escpredict.ingest.mapping import (
    CsvDialect,
    Mapping,
    TableMapping,
    collapse_and_derive,
    load_mapping,
    required_columns,
    select,
    source_labels,
    ticket_fields,
    type_columns,
)
from escpredict.ingest.validation import (
    DataValidationError,
    Problem,
    check_tickets,
    complete,
    duplicated,
    empty,
    missing,
    resolved_before_created,
    unparseable,
)

# --- reading ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Export:
    """A file's table (values as read) and how it was read."""

    frame: pd.DataFrame
    notes: ReadNotes


def read_export(
    path: Path, dialect: CsvDialect | None = None, markers: tuple[str, ...] = ()
) -> Export:
    """A .csv, .parquet or .jsonl/.ndjson file, or a folder of Parquet files (in name order).

    CSV values are read as text so that ids keep leading zeros and validation sees exactly
    what the export holds; typing happens in ``validation.coerce``. How a CSV is written
    (encoding, separator, decimal comma) is detected unless ``dialect`` states it; the
    mapping's missing-value ``markers`` may stand among decimal-comma numbers (``csvfile``).
    """
    path = Path(path)
    if path.is_dir():
        return Export(_read_parquet_folder(path), ReadNotes())
    suffix = table_format(path)
    if suffix == ".csv":
        return Export(*read_csv(path.read_bytes(), str(path), dialect or CsvDialect(), markers))
    readers = {".parquet": _read_parquet, ".jsonl": _read_jsonl}
    return Export(readers[suffix](path), ReadNotes())


def table_format(path: Path) -> str:
    """``.csv``, ``.parquet`` or ``.jsonl`` (``.ndjson`` too): how a file export is read.

    Both engines ask here, so they accept, and refuse, the same files in the same words.
    """
    if not path.is_file():
        raise DataReadError(f"{path}: file not found")
    suffix = ".jsonl" if path.suffix.lower() == ".ndjson" else path.suffix.lower()
    if suffix not in (".csv", ".parquet", ".jsonl"):
        raise DataReadError(
            f"{path}: unsupported file type {path.suffix or '(none)'!r}; use .csv, .parquet, "
            ".jsonl/.ndjson or a folder of .parquet files"
        )
    return suffix


def read_table(path: Path, dialect: CsvDialect | None = None) -> pd.DataFrame:
    """``read_export``'s table alone."""
    return read_export(path, dialect).frame


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except (pa.ArrowException, OSError) as exc:
        raise DataReadError(f"{path}: not a readable Parquet file (truncated?): {exc}") from exc


def parquet_files(path: Path) -> list[Path]:
    """A Parquet folder's files in a stable order (both engines read a folder this way)."""
    files = sorted(path.rglob("*.parquet"))
    if not files:
        raise DataReadError(f"{path}: folder holds no .parquet files")
    return files


def _read_parquet_folder(path: Path) -> pd.DataFrame:
    return pd.concat([_read_parquet(f) for f in parquet_files(path)], ignore_index=True)


def _read_jsonl(path: Path) -> pd.DataFrame:
    text, _ = decode(path.read_bytes(), str(path))
    return parse_jsonl(text, str(path))


def parse_jsonl(text: str, source: str, numbered: bool = True) -> pd.DataFrame:
    """One JSON object per line; nested objects become dotted columns (``via.channel``).

    ``numbered=False`` is for a block of a file (the Dask engine): its line numbers would
    count within the block, so errors quote the line's start instead.
    """
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"line {number}" if numbered else f"the line starting {line[:40]!r}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataReadError(
                f"{source}: {where} is not valid JSON (truncated?): {exc.msg}"
            ) from exc
        if not isinstance(record, dict):
            raise DataReadError(f"{source}: {where} is not a JSON object")
        records.append(_flatten(record))
    # object dtype keeps big integer ids exact instead of turning them into floats
    return pd.DataFrame(records, dtype=object)


def _flatten(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


# --- loading ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadResult:
    tickets: pd.DataFrame  # canonical ticket frame, RangeIndex
    quarantined: int  # source rows written to the quarantine file
    problems: list[Problem]  # why they were quarantined
    notes: ReadNotes = field(default_factory=ReadNotes)  # how the file was read, what was ignored
    #: Event exports: the typed events of the tickets kept (``ticket_id`` and the mapping's
    #: ``event_*`` columns), what checkpoints of open tickets are built from; else None.
    events: pd.DataFrame | None = None


def load_tickets(
    path: Path | str,
    mapping: str | Mapping = "generic",
    quarantine: Path | None = None,
    agents: pd.DataFrame | None = None,
    until: pd.Timestamp | None = None,
) -> LoadResult:
    """Read, map, validate (and for event exports collapse) a ticket export.

    Without ``quarantine`` any row problem raises DataValidationError listing all of them;
    with it the bad source rows go to that file (.csv or .parquet) with a ``problem``
    column, so ``len(tickets)`` plus ``quarantined`` accounts for every ticket-level row.
    A missing required column always raises. ``agents`` supplies roles for event exports.
    ``until`` (event exports) keeps only events at or before it: the export as it was then.
    """
    _check_quarantine_path(quarantine)
    spec = load_mapping(mapping)
    export = read_export(Path(path), spec.csv, markers(spec))
    result = map_tickets(export.frame, spec, str(path), quarantine, agents, until)
    return replace(result, notes=export.notes)


def markers(table: TableMapping) -> tuple[str, ...]:
    """The table's missing-value markers as the text a CSV holds."""
    return tuple(str(m) for m in table.missing)


def map_tickets(
    raw: pd.DataFrame,
    mapping: str | Mapping,
    source: str,
    quarantine: Path | None = None,
    agents: pd.DataFrame | None = None,
    until: pd.Timestamp | None = None,
) -> LoadResult:
    """``load_tickets`` of an export already read with ``read_table`` (``source`` names it
    in errors), for callers that also look at the raw columns: the file is read once."""
    _check_quarantine_path(quarantine)
    spec = load_mapping(mapping)
    tickets, problems, bad, events = _map_checked(raw, spec, source, agents, until)
    if problems and quarantine is None:
        raise DataValidationError(problems)
    if quarantine is not None:
        _write_quarantine(raw, problems, bad, Path(quarantine))
    canonical = complete(tickets, spec.output_fields()).reset_index(drop=True)
    return LoadResult(canonical, len(bad), problems, events=events)


def _check_quarantine_path(quarantine: Path | None) -> None:
    if quarantine is not None and Path(quarantine).suffix.lower() not in (".csv", ".parquet"):
        raise ValueError(f"{quarantine}: quarantine file must end in .csv or .parquet")


def _map_checked(
    raw: pd.DataFrame, spec: Mapping, source: str, agents: pd.DataFrame | None,
    until: pd.Timestamp | None = None,
) -> tuple[pd.DataFrame, list[Problem], set[int], pd.DataFrame | None]:
    """Map, type and check raw rows: good tickets, problems, the bad source rows, and (event
    exports) the good tickets' typed events."""
    fields = ticket_fields(spec)
    before = select(raw, spec, fields)
    labels = source_labels(spec, fields)
    if problems := missing(before, required_columns(spec), source, labels):
        raise DataValidationError(problems)
    typed = type_columns(before, spec, fields)
    if spec.events is not None:
        if until is not None:  # a later event is not in the export as it was then
            early = (typed["event_time"] <= until) | typed["event_time"].isna()
            before, typed = before[early], typed[early]
        return _collapse_checked(before, typed, spec, source, labels, agents)
    problems = check_tickets(before, typed, source, labels, spec.output_fields())
    bad = _rows_of(problems)
    return typed.drop(index=list(bad)), problems, bad, None


def _rows_of(problems: list[Problem]) -> set[int]:
    return {row for p in problems for row in p.rows}


def _collapse_checked(
    before: pd.DataFrame,
    typed: pd.DataFrame,
    spec: Mapping,
    source: str,
    labels: dict[str, str],
    agents: pd.DataFrame | None,
) -> tuple[pd.DataFrame, list[Problem], set[int], pd.DataFrame]:
    """Collapse an event export; a ticket with any bad event is quarantined whole.

    Collapsing around a bad event would silently change the ticket's outcome. Ticket-level
    problems are reported on the ticket's first event row.
    """
    problems = unparseable(before, typed, ticket_fields(spec), source, labels)
    problems += empty(before, ["ticket_id", "event_time"], source)
    ids = typed["ticket_id"]
    bad_event = ids.index.isin(list(_rows_of(problems)))
    good = typed[~ids.isin(ids[bad_event]) & ~bad_event]
    tickets, derived = collapse_and_derive(good, spec, agents)
    derive_fields = tuple(f for f in spec.output_fields() if f.name in derived)
    derive_labels = {name: f"derive.{name}" for name in derived}
    ticket_problems = unparseable(derived, tickets, derive_fields, source, derive_labels)
    ticket_problems += empty(tickets, required(spec.output_fields()), source)
    ticket_problems += resolved_before_created(tickets, source)
    failed = tickets.index.isin(list(_rows_of(ticket_problems)))
    bad_ids = ids.isin(ids[bad_event]) | ids.isin(tickets["ticket_id"][failed])
    bad = _rows_of(problems) | set(ids.index[bad_ids])
    kept = ~good["ticket_id"].isin(tickets["ticket_id"][failed])
    columns = ["ticket_id", *(c for c in good.columns if c.startswith("event_"))]
    return tickets[~failed], problems + ticket_problems, bad, good.loc[kept, columns]


def _write_quarantine(
    raw: pd.DataFrame, problems: list[Problem], bad: set[int], path: Path
) -> None:
    """Bad rows as read plus why; written even when empty so a stale file never misleads."""
    reasons: dict[int, list[str]] = {row: [] for row in sorted(bad)}
    for p in problems:
        for row in p.rows:
            reasons[row].append(f"{p.field}: {p.message}")
    rows = list(reasons)
    out = raw.iloc[[r - 1 for r in rows]].reset_index(drop=True)
    other = "another event of this ticket has a problem"
    out["problem"] = ["; ".join(r) or other for r in reasons.values()]
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".parquet":
        out.to_parquet(path, index=False)
    else:
        out.to_csv(path, index=False)


def load_agents(path: Path | str, mapping: str | Mapping = "generic") -> pd.DataFrame:
    """The canonical agents frame; any problem raises DataValidationError (agents are few)."""
    source = str(path)
    table = load_mapping(mapping).agents
    before = select(read_export(Path(path), table.csv, markers(table)).frame, table, AGENT_FIELDS)
    typed = type_columns(before, table, AGENT_FIELDS)
    names = required(AGENT_FIELDS)
    labels = source_labels(table, AGENT_FIELDS)
    problems = (
        missing(before, names, source, labels)
        + unparseable(before, typed, AGENT_FIELDS, source, labels)
        + empty(before, names, source)
        + duplicated(typed, "agent_id", source)
    )
    if problems:
        raise DataValidationError(problems)
    return complete(typed, AGENT_FIELDS).reset_index(drop=True)
