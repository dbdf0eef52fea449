"""Draft a mapping YAML for an unfamiliar export (``escpredict mapping init``).

``layouts`` recognises the ticketing system from the header, ``guess`` reads formats,
markers and value maps off a sample of values, ``cases`` tells an event log's tickets and
event time by how its rows behave, ``roles`` its event columns by their values, and
``creation`` which columns may be known at creation; ``columns``, ``events`` and
``changelog`` draft the mapping's sections (``build`` runs them in order over a
``state.Drafting``), and ``emit`` writes the draft as YAML with a comment for every doubt.
``read_sample`` bounds how much of a large export is read, keeping an event log's tickets whole.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from escpredict.ingest.csvfile import head_bytes, read_csv
from escpredict.ingest.loaders import DataReadError, read_table
from escpredict.ingest.mapping import CsvDialect
from escpredict.ingest.validation import text
from escpredict.onboard.draft import guess
from escpredict.onboard.draft.build import draft_mapping, ticket_rows
from escpredict.onboard.draft.emit import to_yaml
from escpredict.onboard.draft.layouts import detect
from escpredict.onboard.draft.state import Draft

__all__ = ["Draft", "draft_mapping", "draft_yaml", "read_sample", "to_yaml"]

#: Rows of the export a draft looks at: the first ones (whole tickets of an event export)
#: and as many drawn at random (formats that only show later, e.g. a day above 12).
SAMPLE_ROWS = 2000

#: A CSV file above this size is sampled from its first rows only: reading all of a
#: multi-gigabyte export to draft a mapping would take minutes and its size in memory.
WHOLE_FILE_BYTES = 50_000_000
HEAD_ROWS = 20_000
#: Bytes read for those rows (wide exports hold fewer rows in them).
HEAD_BYTES = 32 * 2**20


def read_sample(path: Path) -> pd.DataFrame:
    """The head of the export plus a seeded random draw from the rest (of a bounded head
    for a large CSV file); for an event log, every row of the tickets drawn."""
    path = Path(path)
    big_csv = path.suffix.lower() == ".csv" and path.is_file()
    if big_csv and path.stat().st_size > WHOLE_FILE_BYTES:
        frame = _csv_head(path, HEAD_ROWS)
    else:
        frame = read_table(path)
    if frame.empty:
        raise DataReadError(f"{path}: no data rows: a mapping is drafted from sample values")
    head = frame.head(HEAD_ROWS)
    layout, _ = detect([str(c) for c in head.columns])
    _, tickets = ticket_rows(head, layout, list(guess.missing_markers(head)))
    if tickets is not None:
        return _whole_tickets(frame, tickets.column)
    rest = frame.iloc[SAMPLE_ROWS:]
    drawn = rest.sample(min(SAMPLE_ROWS, len(rest)), random_state=0).sort_index()
    return pd.concat([frame.head(SAMPLE_ROWS), drawn])


def _whole_tickets(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """Every row of the first tickets and of tickets drawn at random, about SAMPLE_ROWS rows
    each, in file order: a ticket cut short would look as if its columns never changed."""
    ids = text(frame[column]).reset_index(drop=True)
    sizes = ids.value_counts(sort=False)
    order = pd.Series(ids.dropna().unique())
    first = order[: max(1, int((sizes[order].cumsum() <= SAMPLE_ROWS).sum()))]
    rest = order.iloc[len(first):].sample(frac=1.0, random_state=0)
    drawn = rest[sizes[rest].cumsum().to_numpy() <= SAMPLE_ROWS]
    keep = ids.isin(pd.concat([first, drawn])) | (ids.isna() & (ids.index < SAMPLE_ROWS))
    return frame[keep.to_numpy()]


def _csv_head(path: Path, rows: int) -> pd.DataFrame:
    """The first rows, read as ``loaders.read_table`` reads CSV (``ingest.csvfile``: its
    separator, encoding and decimal comma detected; text values, blanks missing)."""
    return read_csv(head_bytes(path, HEAD_BYTES), str(path), CsvDialect())[0].head(rows)


def draft_yaml(path: Path) -> str:
    """The draft mapping for the export at ``path``, as commented YAML."""
    return to_yaml(draft_mapping(read_sample(path), Path(path).stem))
