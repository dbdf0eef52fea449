"""Exports read in blocks on a Dask cluster: CSV, JSON Lines and Parquet, never gathered.

Each block is parsed the way the local reader parses a whole file (text as text, the same
JSON flattening, the same refusals), so a block's rows equal the local engine's rows.
Reading errors name the file; one raised on a worker reaches the client as the same
``DataReadError``, so the CLI prints one line for it, never a traceback.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dask.dataframe as dd
import pandas as pd
import pyarrow as pa
from dask.dataframe.io.csv import read_pandas

from escpredict.ingest.loaders import DataReadError, parse_jsonl, table_format

#: Bytes per partition of a CSV or JSON Lines file. A block of text becomes several times
#: its size as a frame, and an event export's blocks are shuffled by ticket: 32 MiB keeps
#: a partition's frame well under a worker's share of memory on small machines.
BLOCKSIZE = 32 * 2**20
#: Bytes at the head of a file read on the client: the header, the dialect, the JSON keys.
HEAD_BYTES = 2**20

#: pandas' options that read CSV values as the text the export holds (as the local reader).
_AS_TEXT = {"dtype": str, "keep_default_na": False, "na_values": [""]}
#: A lone surrogate: a byte the declared encoding could not decode (errors="surrogateescape").
_UNDECODED = re.compile("[\udc80-\udcff]")


def read_blocks(path: Path, blocksize: int = BLOCKSIZE) -> dd.DataFrame:
    """A .csv, .jsonl/.ndjson or .parquet file, or a folder of Parquet files, as partitions."""
    path = Path(path)
    with reading(path), _opening(path):
        if path.is_dir():
            files = sorted(path.rglob("*.parquet"))
            if not files:
                raise DataReadError(f"{path}: folder holds no .parquet files")
            return dd.read_parquet([str(f) for f in files])
        kind = table_format(path)
        if kind == ".parquet":
            return dd.read_parquet(str(path))
        if not path.stat().st_size:
            raise DataReadError(f"{path}: file is empty")
        return _csv(path, blocksize) if kind == ".csv" else _jsonl(path, blocksize)


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


# --- CSV ----------------------------------------------------------------------------------


def csv_dialect(path: Path) -> dict[str, Any]:
    """pandas options for this file's dialect, decided once from its head."""
    return {"sep": ",", "encoding": "utf-8-sig"}


class _CsvBlock:
    """pandas.read_csv on one block (dask prepends the header), errors naming the file."""

    __name__ = "read_csv"  # dask's block reader names its tasks after its reader

    def __init__(self, source: str) -> None:
        self.source = source

    def __call__(self, buffer: Any, **options: Any) -> pd.DataFrame:
        try:
            return pd.read_csv(buffer, **options)
        except UnicodeDecodeError as exc:
            raise DataReadError(
                f"{self.source}: not {exc.encoding} text: {exc.reason}, byte "
                f"{exc.object[exc.start : exc.start + 1]!r}; re-export as UTF-8"
            ) from None
        except (pd.errors.ParserError, ValueError) as exc:
            raise DataReadError(f"{self.source}: not a readable CSV file: {exc}") from None


def _csv(path: Path, blocksize: int) -> dd.DataFrame:
    dialect = csv_dialect(path)
    head = _head(path)
    # A quoted value holding a line break cannot be cut at line ends: read such a file whole.
    whole = _has_quoted_line_break(head, dialect)
    try:
        return read_pandas(
            _CsvBlock(str(path)), str(path), blocksize=None if whole else blocksize,
            sample=HEAD_BYTES, compression=None, **_AS_TEXT, **dialect,
        )
    except ValueError as exc:  # e.g. a header with no data row within the head
        raise DataReadError(f"{path}: not a readable CSV file: {exc}") from exc


def _head(path: Path) -> bytes:
    with path.open("rb") as f:
        return f.read(HEAD_BYTES)


def _has_quoted_line_break(head: bytes, dialect: dict[str, Any]) -> bool:
    complete = head[: head.rfind(b"\n") + 1] or head
    try:
        frame = _CsvBlock("head")(io.BytesIO(complete), **_AS_TEXT, **dialect)
    except DataReadError:
        return False  # the blocks will say what is wrong, naming the file
    text = frame.select_dtypes(exclude="number").astype("str")
    return bool(text.apply(lambda col: col.str.contains("[\r\n]", regex=True)).any().any())


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
                f"{self.source}: not UTF-8 text after {line!r}; re-export as UTF-8"
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


def _jsonl(path: Path, blocksize: int) -> dd.DataFrame:
    head = _head(path)
    complete = head[: head.rfind(b"\n") + 1] or head
    text = complete.decode("utf-8-sig", errors="surrogateescape")
    columns = list(_JsonBlock(str(path))(io.StringIO(text)).columns)
    meta = pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    return dd.read_json(
        str(path), lines=True, blocksize=blocksize, encoding="utf-8-sig",
        errors="surrogateescape", engine=_JsonBlock(str(path), columns), meta=meta,
        compression=None,
    )
