"""Read ticket and agent exports into validated canonical frames.

Reading is strict on purpose: a file that is truncated, corrupt or not UTF-8 fails with the
file name and the byte offset or line, because a silently mis-read export trains a model
on wrong data. Row problems are either refused together (``DataValidationError``) or, with
``quarantine``, written out with the reason so that every input row is accounted for.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from escpredict.config import ConfigError
from escpredict.contract import AGENT_FIELDS, required
from escpredict.ingest.mapping import (
    Mapping,
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


class DataReadError(ValueError):
    """A file cannot be read as a table; the message names the file and where it broke."""


# --- reading ------------------------------------------------------------------------------


def read_table(path: Path) -> pd.DataFrame:
    """A .csv, .parquet or .jsonl/.ndjson file, or a folder of Parquet files (in name order).

    CSV values are read as text so that ids keep leading zeros and validation sees exactly
    what the export holds; typing happens in ``validation.coerce``.
    """
    path = Path(path)
    if path.is_dir():
        return _read_parquet_folder(path)
    readers = {".csv": _read_csv, ".parquet": _read_parquet, ".jsonl": _read_jsonl}
    return readers[table_format(path)](path)


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


def _decode(path: Path) -> str:
    """UTF-8 text (a BOM is allowed); on failure say where, instead of guessing an encoding."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DataReadError(
            f"{path}: not UTF-8 text: byte {exc.start} (line {line}) is "
            f"{data[exc.start : exc.start + 1]!r}; re-export as UTF-8"
        ) from exc


def _read_csv(path: Path) -> pd.DataFrame:
    text = _decode(path)
    if not text.strip():
        raise DataReadError(f"{path}: file is empty")
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, ValueError) as exc:
        raise DataReadError(f"{path}: not a readable CSV file: {exc}") from exc
    _check_last_line(path, text, len(frame.columns))
    return frame


def _check_last_line(path: Path, text: str, n_columns: int) -> None:
    """A final line without newline and with too few fields means the file was cut off.

    pandas pads short rows with missing values, so this truncation would otherwise pass.
    """
    if text.endswith(("\n", "\r")) or "\n" not in text:
        return
    last = text.rsplit("\n", 1)[1]
    fields = next(csv.reader([last]), [])
    if len(fields) < n_columns:
        line = text.count("\n") + 1
        raise DataReadError(
            f"{path}: truncated: last line {line} has {len(fields)} of {n_columns} fields"
        )


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except (pa.ArrowException, OSError) as exc:
        raise DataReadError(f"{path}: not a readable Parquet file (truncated?): {exc}") from exc


def _read_parquet_folder(path: Path) -> pd.DataFrame:
    files = sorted(path.rglob("*.parquet"))
    if not files:
        raise DataReadError(f"{path}: folder holds no .parquet files")
    return pd.concat([_read_parquet(f) for f in files], ignore_index=True)


def _read_jsonl(path: Path) -> pd.DataFrame:
    return parse_jsonl(_decode(path), str(path))


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


def load_tickets(
    path: Path | str,
    mapping: str | Mapping = "generic",
    quarantine: Path | None = None,
    agents: pd.DataFrame | None = None,
) -> LoadResult:
    """Read, map, validate (and for event exports collapse) a ticket export.

    Without ``quarantine`` any row problem raises DataValidationError listing all of them;
    with it the bad source rows go to that file (.csv or .parquet) with a ``problem``
    column, so ``len(tickets)`` plus ``quarantined`` accounts for every ticket-level row.
    A missing required column always raises. ``agents`` supplies roles for event exports.
    """
    _check_quarantine_path(quarantine)
    return map_tickets(read_table(Path(path)), mapping, str(path), quarantine, agents)


def map_tickets(
    raw: pd.DataFrame,
    mapping: str | Mapping,
    source: str,
    quarantine: Path | None = None,
    agents: pd.DataFrame | None = None,
) -> LoadResult:
    """``load_tickets`` of an export already read with ``read_table`` (``source`` names it
    in errors), for callers that also look at the raw columns: the file is read once."""
    _check_quarantine_path(quarantine)
    spec = load_mapping(mapping)
    tickets, problems, bad = _map_checked(raw, spec, source, agents)
    if problems and quarantine is None:
        raise DataValidationError(problems)
    if quarantine is not None:
        _write_quarantine(raw, problems, bad, Path(quarantine))
    canonical = complete(tickets, spec.output_fields()).reset_index(drop=True)
    return LoadResult(canonical, len(bad), problems)


def _check_quarantine_path(quarantine: Path | None) -> None:
    if quarantine is not None and Path(quarantine).suffix.lower() not in (".csv", ".parquet"):
        raise ValueError(f"{quarantine}: quarantine file must end in .csv or .parquet")


def canonical_tickets(raw: pd.DataFrame, mapping: str | Mapping, source: str) -> pd.DataFrame:
    """One chunk of a ticket-level export (e.g. a Dask partition) as a canonical frame.

    Any problem raises DataValidationError (row numbers count within the chunk). Event
    exports are refused: collapsing needs all events of a ticket, which a chunk may split.
    """
    spec = load_mapping(mapping)
    if spec.events is not None:
        raise ConfigError(f"{source}: event-level exports need the local engine")
    tickets, problems, _ = _map_checked(raw, spec, source, None)
    if problems:
        raise DataValidationError(problems)
    return complete(tickets, spec.output_fields())


def _map_checked(
    raw: pd.DataFrame, spec: Mapping, source: str, agents: pd.DataFrame | None
) -> tuple[pd.DataFrame, list[Problem], set[int]]:
    """Map, type and check raw rows: good tickets, problems, and the bad source rows."""
    fields = ticket_fields(spec)
    before = select(raw, spec, fields)
    labels = source_labels(spec, fields)
    if problems := missing(before, required_columns(spec), source, labels):
        raise DataValidationError(problems)
    typed = type_columns(before, spec, fields)
    if spec.events is not None:
        return _collapse_checked(before, typed, spec, source, labels, agents)
    problems = check_tickets(before, typed, source, labels, spec.output_fields())
    bad = _rows_of(problems)
    return typed.drop(index=list(bad)), problems, bad


def _rows_of(problems: list[Problem]) -> set[int]:
    return {row for p in problems for row in p.rows}


def _collapse_checked(
    before: pd.DataFrame,
    typed: pd.DataFrame,
    spec: Mapping,
    source: str,
    labels: dict[str, str],
    agents: pd.DataFrame | None,
) -> tuple[pd.DataFrame, list[Problem], set[int]]:
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
    return tickets[~failed], problems + ticket_problems, bad


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
    before = select(read_table(Path(path)), table, AGENT_FIELDS)
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
