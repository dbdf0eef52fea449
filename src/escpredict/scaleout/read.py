"""Exports read in blocks on a Dask cluster: CSV, JSON Lines and Parquet, never gathered.

Each block is parsed the way the local reader parses a whole file (text as text, the same
JSON flattening, the same refusals), so a block's rows equal the local engine's rows. How a
CSV is written (encoding, separator, decimal comma, empty trailing columns and rows) is
decided once, from the file's head, by the local reader's own functions (``csvfile``), and
every block is read that way. Reading errors name the file; one raised on a worker reaches
the client as the same ``DataReadError``, so the CLI prints one line for it, never a
traceback.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask.dataframe as dd
import pandas as pd
import pyarrow as pa
from dask.dataframe.io.csv import read_pandas

from escpredict.ingest.csvfile import (
    ReadNotes,
    check_last_line,
    codec,
    decode,
    head_bytes,
    read_csv_text,
    to_decimal_points,
)
from escpredict.ingest.loaders import (
    DataReadError,
    markers,
    parquet_files,
    parse_jsonl,
    table_format,
)
from escpredict.ingest.mapping import TableMapping

#: Bytes per partition of a CSV or JSON Lines file. A block of text becomes several times
#: its size as a frame, and an event export's blocks are shuffled by ticket: 32 MiB keeps
#: a partition's frame well under a worker's share of memory on small machines.
BLOCKSIZE = 32 * 2**20
#: Bytes at the head of a file read on the client: the header, the dialect, the JSON keys;
#: and at its tail: a last line cut short, blank rows ending a spreadsheet's file.
HEAD_BYTES = 2**20
TAIL_BYTES = 2**16

#: pandas' options that read CSV values as the text the export holds (as the local reader).
_AS_TEXT = {"dtype": str, "keep_default_na": False, "na_values": [""], "skip_blank_lines": False}
#: A lone surrogate: a byte the declared encoding could not decode (errors="surrogateescape").
_UNDECODED = re.compile("[\udc80-\udcff]")


@dataclass(frozen=True)
class Blocks:
    """An export's rows as partitions, and how the file was read (``csvfile.ReadNotes``)."""

    frame: dd.DataFrame
    notes: ReadNotes


def read_blocks(
    path: Path, blocksize: int = BLOCKSIZE, table: TableMapping | None = None
) -> Blocks:
    """A .csv, .jsonl/.ndjson or .parquet file, or a folder of Parquet files, as partitions.

    ``table`` is the mapping: its ``csv:`` dialect and missing-value markers, as locally.
    """
    path, table = Path(path), table or TableMapping()
    with reading(path), _opening(path):
        if path.is_dir():
            return Blocks(dd.read_parquet([str(f) for f in parquet_files(path)]), ReadNotes())
        kind = table_format(path)
        if kind == ".parquet":
            return Blocks(dd.read_parquet(str(path)), ReadNotes())
        head = head_bytes(path, HEAD_BYTES)
        if kind == ".jsonl":
            return Blocks(_jsonl(path, head, blocksize), ReadNotes())
        return _csv(path, head, blocksize, table)


@contextmanager
def reading(path: Path) -> Iterator[None]:
    """Turn what the parsers raise on a broken file into one DataReadError naming it.

    Wraps the graph's construction (the client reads heads and Parquet footers) and every
    computation that reads the export: a block is only parsed when a stage needs it.
    """
    try:
        yield
    except UnicodeDecodeError as exc:
        raise DataReadError(f"{path}: not {exc.encoding} text: {exc.reason}") from exc
    except pa.ArrowException as exc:
        raise DataReadError(f"{path}: not readable (truncated?): {exc}") from exc
    except pd.errors.ParserError as exc:
        raise DataReadError(f"{path}: not a readable CSV file: {exc}") from exc


@contextmanager
def _opening(path: Path) -> Iterator[None]:
    """While the graph is built on the client: a file that cannot be opened, by name."""
    try:
        yield
    except OSError as exc:
        raise DataReadError(f"{path}: cannot be read: {exc.strerror or exc}") from exc


def _tail(path: Path, encoding: str, size: int = TAIL_BYTES) -> str:
    """The file's last ``size`` bytes as text, from the first whole line in them."""
    total = path.stat().st_size
    with path.open("rb") as f:
        f.seek(max(total - size, 0))
        tail = f.read()
    if total > size:
        tail = tail[tail.find(b"\n") + 1 :]
    return tail.decode(encoding, errors="replace")


# --- CSV ----------------------------------------------------------------------------------


class _CsvBlock:
    """pandas.read_csv on one block (dask prepends the header), shaped as the head was:
    empty columns dropped, decimal commas made points. Errors name the file."""

    __name__ = "read_csv"  # dask's block reader names its tasks after its reader

    def __init__(
        self, source: str, dropped: list[str], decimal: tuple[str, ...], missing: tuple[str, ...]
    ) -> None:
        self.source, self.dropped, self.decimal, self.missing = source, dropped, decimal, missing

    def __call__(self, buffer: Any, **options: Any) -> pd.DataFrame:
        try:
            frame = pd.read_csv(buffer, **options)
        except UnicodeDecodeError as exc:
            raise DataReadError(
                f"{self.source}: not {exc.encoding} text after the file's head: byte "
                f"{exc.object[exc.start : exc.start + 1]!r}; set the mapping's csv.encoding "
                "or re-export as UTF-8"
            ) from None
        except (pd.errors.ParserError, ValueError) as exc:
            raise DataReadError(f"{self.source}: not a readable CSV file: {exc}") from None
        frame = frame.drop(columns=[c for c in self.dropped if c in frame.columns])
        return to_decimal_points(frame, self.decimal, self.missing)


def _csv(path: Path, head: bytes, blocksize: int, table: TableMapping) -> Blocks:
    """The dialect from the head (``csvfile``, as the local reader decides it for the whole
    file), then the file in blocks read that way."""
    source, missing = str(path), markers(table)
    text, encoding = decode(head, source, table.csv.encoding)
    shaped, notes = read_csv_text(text, source, table.csv, encoding, missing)
    read_as = {**_AS_TEXT, "sep": notes.sep, "encoding": codec(encoding)}
    every_column = pd.read_csv(io.StringIO(text), nrows=0, **{**read_as, "encoding": None})
    dropped = [c for c in every_column.columns if c not in shaped.columns]
    _check_tail(path, read_as, len(every_column.columns))
    # Blocks are cut at line ends: a file whose head holds a quoted line break is read
    # whole, and so is UTF-16/32, whose line ends are not single bytes.
    whole = _has_quoted_line_break(shaped) or not _one_byte_line_ends(read_as["encoding"])
    reader = _CsvBlock(source, dropped, notes.decimal_columns, missing)
    try:
        frame = read_pandas(reader, source, blocksize=None if whole else blocksize,
                            sample=HEAD_BYTES, compression=None, **read_as)
    except ValueError as exc:  # e.g. a header with no data row within the head
        raise DataReadError(f"{path}: not a readable CSV file: {exc}") from exc
    if blank_rows := _blank_end(path, read_as):
        frame = _without_last_rows(frame, blank_rows)
    return Blocks(frame, ReadNotes(encoding, notes.sep, notes.decimal_columns,
                                   notes.empty_columns, blank_rows))


def _check_tail(path: Path, read_as: dict[str, Any], n_columns: int) -> None:
    """Refuse a file whose last line was cut short (``csvfile.check_last_line``)."""
    try:
        check_last_line(str(path), _tail(path, read_as["encoding"]), read_as["sep"], n_columns)
    except DataReadError:
        raise DataReadError(
            f"{path}: truncated: its last line has fewer than the header's {n_columns} fields"
        ) from None


def _blank_end(path: Path, read_as: dict[str, Any]) -> int:
    """How many blank rows (nothing but separators) end the file: a spreadsheet's
    formatted but empty rows. Read backwards until a row holds a value."""
    size, total = TAIL_BYTES, path.stat().st_size
    while True:
        lines = _tail(path, read_as["encoding"], size).removesuffix("\n").split("\n")
        blank = next((i for i, line in enumerate(reversed(lines))
                      if line.strip("\r").replace(read_as["sep"], "")), None)
        if blank is not None or size >= total:
            return len(lines) if blank is None else blank
        size *= 4


def _without_last_rows(frame: dd.DataFrame, n: int) -> dd.DataFrame:
    """``frame`` without its last ``n`` rows, which may span the last partitions: as
    ``csvfile.drop_empty`` drops the blank rows ending a whole file (a blank row inside it
    stays: validation names it). Counts the rows of only as many partitions as it takes."""
    drop: dict[int, int] = {}
    for number in reversed(range(frame.npartitions)):
        if n <= 0:
            break
        rows = int(frame.partitions[number].shape[0].compute())
        drop[number], n = min(rows, n), n - rows
    return frame.map_partitions(_cut_end, drop, meta=frame._meta)


def _cut_end(
    frame: pd.DataFrame, drop: dict[int, int], partition_info: dict | None = None
) -> pd.DataFrame:
    cut = drop.get((partition_info or {}).get("number", -1), 0)
    return frame.iloc[: len(frame) - cut]


def _one_byte_line_ends(encoding: str) -> bool:
    return "\n".encode(encoding.removesuffix("-sig")) == b"\n"


def _has_quoted_line_break(head: pd.DataFrame) -> bool:
    return bool(head.apply(lambda col: col.str.contains("[\r\n]", regex=True)).any().any())


# --- JSON Lines ---------------------------------------------------------------------------


class _JsonBlock:
    """``loaders.parse_jsonl`` on one block, conformed to the keys of the file's head.

    Blocks must share columns; a key first seen after the head is refused by name rather
    than silently dropped.
    """

    def __init__(self, source: str, columns: list[str] | None = None) -> None:
        self.source, self.columns = source, columns

    def __call__(self, text: io.StringIO, **_: Any) -> pd.DataFrame:
        value = text.getvalue()
        if undecoded := _UNDECODED.search(value):
            line = value[: undecoded.start()].rsplit("\n", 1)[-1][-40:]
            raise DataReadError(
                f"{self.source}: a byte the file's head's encoding cannot read, after "
                f"{line!r}; re-export as UTF-8"
            )
        frame = parse_jsonl(value, self.source, numbered=False)
        if self.columns is None:
            return frame
        if extra := [c for c in frame.columns if c not in self.columns]:
            raise DataReadError(
                f"{self.source}: key(s) {extra} first appear after the file's first "
                f"{HEAD_BYTES // 2**20} MiB; the Dask engine takes the columns from there: "
                "put a record holding every key first"
            )
        return frame.reindex(columns=self.columns).astype(object)


def _jsonl(path: Path, head: bytes, blocksize: int) -> dd.DataFrame:
    text, encoding = decode(head, str(path))
    columns = list(_JsonBlock(str(path))(io.StringIO(text)).columns)
    meta = pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    return dd.read_json(
        str(path), lines=True, blocksize=blocksize, encoding=codec(encoding),
        errors="surrogateescape", engine=_JsonBlock(str(path), columns), meta=meta,
        compression=None,
    )
