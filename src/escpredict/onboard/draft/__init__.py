"""Draft a mapping YAML for an unfamiliar export (``escpredict mapping init``).

``layouts`` recognises the ticketing system from the header, ``guess`` reads formats,
markers and value maps off a sample of values, ``columns``, ``events`` and ``changelog``
draft the mapping's sections (``build`` runs them in order over a ``state.Drafting``), and
``emit`` writes the draft as YAML with a comment for every doubt. ``read_sample`` bounds
how much of a large export is read.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from escpredict.ingest.loaders import DataReadError, read_table
from escpredict.onboard.draft.build import draft_mapping
from escpredict.onboard.draft.emit import to_yaml
from escpredict.onboard.draft.state import Draft

__all__ = ["Draft", "draft_mapping", "draft_yaml", "read_sample", "to_yaml"]

#: Rows of the export a draft looks at: the first ones (whole tickets of an event export)
#: and as many drawn at random (formats that only show later, e.g. a day above 12).
SAMPLE_ROWS = 2000

#: A CSV file above this size is sampled from its first rows only: reading all of a
#: multi-gigabyte export to draft a mapping would take minutes and its size in memory.
WHOLE_FILE_BYTES = 50_000_000
HEAD_ROWS = 20_000


def read_sample(path: Path) -> pd.DataFrame:
    """The head of the export plus a seeded random draw from the rest (of a bounded head
    for a large CSV file)."""
    path = Path(path)
    big_csv = path.suffix.lower() == ".csv" and path.is_file()
    if big_csv and path.stat().st_size > WHOLE_FILE_BYTES:
        frame = _csv_head(path, HEAD_ROWS)
    else:
        frame = read_table(path)
    if frame.empty:
        raise DataReadError(f"{path}: no data rows: a mapping is drafted from sample values")
    _check_delimiter(path, frame)
    head = frame.head(SAMPLE_ROWS)
    rest = frame.iloc[SAMPLE_ROWS:]
    drawn = rest.sample(min(SAMPLE_ROWS, len(rest)), random_state=0).sort_index()
    return pd.concat([head, drawn])


def _check_delimiter(path: Path, frame: pd.DataFrame) -> None:
    """One column whose name holds ``;`` or a tab: a CSV written with another delimiter
    (spreadsheets in many locales), which no mapping can split; say how to fix it."""
    if len(frame.columns) != 1:
        return
    name = str(frame.columns[0])
    for sep, label in ((";", "semicolon"), ("\t", "tab"), ("|", "pipe")):
        if sep in name:
            raise DataReadError(
                f"{path}: one column named {name[:60]!r}: the file looks {label}-separated; "
                "export it comma-separated"
            )


def _csv_head(path: Path, rows: int) -> pd.DataFrame:
    """The first rows, read as ``loaders.read_table`` reads CSV: text values, blanks missing."""
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], nrows=rows,
                           encoding="utf-8-sig")
    except (UnicodeDecodeError, pd.errors.ParserError, ValueError) as exc:
        raise DataReadError(f"{path}: not a readable UTF-8 CSV file: {exc}") from exc


def draft_yaml(path: Path) -> str:
    """The draft mapping for the export at ``path``, as commented YAML."""
    return to_yaml(draft_mapping(read_sample(path), Path(path).stem))
