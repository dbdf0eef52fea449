"""CSV files as spreadsheets and ticket tools write them, read without being told how.

A spreadsheet saves a CSV in the user's locale: ``;`` separators where the decimal mark is a
comma (``1,5``), Windows-1252 instead of UTF-8, a BOM, and often dozens of empty columns and
hundreds of blank rows at the end of a sheet someone once formatted. Each is detected here;
a mapping's ``csv:`` block (``CsvDialect``) states any of them when detection should not
guess. What is detected or ignored is reported (``ReadNotes``), never silently applied:
empty trailing columns and blank rows are dropped but counted.

The separator comes from the standard library's ``csv.Sniffer`` limited to , ; tab and |,
run on the first ``SNIFF_BYTES``. Values stay text: typing happens in ``validation``.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from escpredict.ingest.mapping import CsvDialect

#: Separators a detected CSV may use, and how a message names them.
SEPARATORS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
#: The separator is sniffed on this much of the file's start.
SNIFF_BYTES = 64 * 1024
#: Decoded when a file is not UTF-8: Excel's "CSV" in Western locales, a superset of
#: latin-1's printable characters (€, smart quotes and dashes where latin-1 has controls).
FALLBACK_ENCODING = "cp1252"

#: Byte-order marks, longest first (UTF-32's starts like UTF-16's), and what they decode as.
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
         (codecs.BOM_UTF16_BE, "utf-16"))
#: A number written with a decimal comma, optionally with dots grouping thousands.
_DECIMAL_COMMA = re.compile(r"[+-]?(?:\d+|\d{1,3}(?:\.\d{3})+)(?:,\d+)?")


class DataReadError(ValueError):
    """A file cannot be read as a table; the message names the file and where it broke."""


@dataclass(frozen=True)
class ReadNotes:
    """How a file was read and what was left out of it, for check and the training counts."""

    encoding: str = "utf-8"
    sep: str = ","
    decimal_columns: tuple[str, ...] = ()  # columns whose decimal commas became points
    empty_columns: int = 0  # columns without a header or a value, dropped
    blank_rows: int = 0  # rows without a value at the end of the file, dropped

    def ignored(self) -> str:
        """``50 empty columns and 203 blank rows ignored``, or "" when nothing was."""
        parts = [f"{n:,} {what}" for n, what in ((self.empty_columns, "empty columns"),
                                                 (self.blank_rows, "blank rows")) if n]
        return " and ".join(parts) + " ignored" if parts else ""

    def describe(self) -> str:
        """How the file was read, in one line."""
        parts = [f"{self.encoding}", f"{SEPARATORS.get(self.sep, repr(self.sep))}-separated"]
        if self.decimal_columns:
            parts.append(f"decimal comma in {', '.join(self.decimal_columns)}")
        ignored = self.ignored()
        return "read as " + ", ".join(parts) + (f"; {ignored}" if ignored else "")


def decode(data: bytes, source: str, encoding: str | None = None) -> tuple[str, str]:
    """The text and how it was decoded: the declared encoding, else a BOM's, else UTF-8,
    else ``FALLBACK_ENCODING``.

    Bytes no candidate reads, and NUL characters (a binary file, or UTF-16 without a BOM),
    are an error naming the byte or line and the mapping key to set.
    """
    bom = next((name for mark, name in _BOMS if data.startswith(mark)), None)
    if encoding and codecs.lookup(encoding).name == "utf-8":
        encoding = "utf-8-sig"  # reads UTF-8 with or without a BOM
    tried = [encoding] if encoding else [bom] if bom else ["utf-8", FALLBACK_ENCODING]
    failure = None
    for name in tried:
        try:
            text = data.decode(name)
        except UnicodeDecodeError as exc:
            failure = failure or exc
            continue
        if "\x00" in text:
            line = text.count("\n", 0, text.index("\x00")) + 1
            raise DataReadError(
                f"{source}: a NUL character on line {line}: a binary file, or UTF-16 without "
                "a byte-order mark? Set the mapping's csv.encoding"
            )
        return text, codecs.lookup(name).name.removesuffix("-sig") + (" with BOM" if bom else "")
    assert failure is not None
    line = data.count(b"\n", 0, failure.start) + 1
    raise DataReadError(
        f"{source}: not {' or '.join(tried)} text: byte {failure.start} (line {line}) is "
        f"{data[failure.start : failure.start + 1]!r}; set the mapping's csv.encoding "
        "(e.g. cp1251) or re-export as UTF-8"
    )


def codec(encoding: str) -> str:
    """The codec that reads a file ``decode`` described as ``encoding`` (``utf-8 with BOM``
    → ``utf-8-sig``), for readers given the bytes a block at a time."""
    name = encoding.removesuffix(" with BOM")
    return "utf-8-sig" if encoding == "utf-8 with BOM" else name


def sniff_separator(text: str) -> str:
    """The separator of the first ``SNIFF_BYTES`` (whole lines), or a comma when the file
    has one column or the sniffer cannot tell."""
    head = text[:SNIFF_BYTES].replace("\r\n", "\n")  # the sniffer's patterns end lines at \n
    if len(text) > SNIFF_BYTES and "\n" in head:
        head = head[: head.rfind("\n") + 1]
    try:
        return csv.Sniffer().sniff(head, delimiters="".join(SEPARATORS)).delimiter
    except csv.Error:
        return ","


def one_column_holding(frame: pd.DataFrame) -> str | None:
    """The separator a one-column header holds, if any: the file was read with another."""
    if len(frame.columns) != 1:
        return None
    name = str(frame.columns[0])
    return next((sep for sep in SEPARATORS if sep in name), None)


def drop_empty(frame: pd.DataFrame, header: list[str]) -> tuple[pd.DataFrame, int, int]:
    """Without columns that have neither a header nor a value, and without the blank rows
    that end the file (a blank row inside it stays, so row numbers keep matching the file:
    validation names it). Returns the frame and both counts."""
    empty = [i for i, name in enumerate(header[: frame.shape[1]])
             if not name.strip() and frame.iloc[:, i].isna().all()]
    kept = frame.drop(columns=frame.columns[empty])
    filled = kept.notna().to_numpy().any(axis=1)
    last = int(filled.nonzero()[0][-1]) + 1 if filled.any() else 0
    return kept.iloc[:last], len(empty), len(kept) - last


def decimal_comma_columns(frame: pd.DataFrame, missing: tuple[str, ...] = ()) -> list[str]:
    """Columns every value of which (missing-value markers aside) is a number written with
    a decimal comma: at least one comma, dots only grouping thousands (``1,5``, ``1.234,50``)."""
    out = []
    for name in frame.columns:
        values = frame[name].dropna()
        values = values[~values.isin(missing)]
        if values.str.contains(",", regex=False).any() and values.str.fullmatch(_DECIMAL_COMMA).all():
            out.append(name)
    return out


def read_csv_text(
    text: str, source: str, dialect: CsvDialect, encoding: str, missing: tuple[str, ...] = ()
) -> tuple[pd.DataFrame, ReadNotes]:
    """The table of ``text`` (values as text, blanks missing) and how it was read."""
    sep = dialect.sep or sniff_separator(text)
    try:
        frame = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False,
                            na_values=[""], skip_blank_lines=False)
    except (pd.errors.ParserError, ValueError) as exc:
        raise DataReadError(f"{source}: not a readable CSV file: {exc}") from exc
    if (held := one_column_holding(frame)) is not None and held != sep:
        raise DataReadError(
            f"{source}: the header reads as one column {str(frame.columns[0])[:60]!r}, "
            f"which holds {SEPARATORS[held]}s ({held!r}): the file looks "
            f"{SEPARATORS[held]}-separated; set the mapping's csv.sep to {held!r}"
        )
    check_last_line(source, text, sep, len(frame.columns))
    header = next(csv.reader(io.StringIO(text), delimiter=sep), [])
    frame, empty_columns, blank_rows = drop_empty(frame, header)
    comma = dialect.decimal == "," or (dialect.decimal is None and sep != ",")
    converted = decimal_comma_columns(frame, missing) if comma else []
    frame = to_decimal_points(frame, converted, missing)
    return frame, ReadNotes(encoding, sep, tuple(converted), empty_columns, blank_rows)


def to_decimal_points(
    frame: pd.DataFrame, columns: list[str] | tuple[str, ...], missing: tuple[str, ...] = ()
) -> pd.DataFrame:
    """``columns`` written with decimal commas (``1.234,5``) as decimal points (``1234.5``);
    missing-value markers are left as they are."""
    for name in columns:
        number = ~frame[name].isin(missing)
        frame.loc[number, name] = (frame.loc[number, name].str.replace(".", "", regex=False)
                                   .str.replace(",", ".", regex=False))
    return frame


def head_bytes(path: Path, size: int) -> bytes:
    """The file's first ``size`` bytes, cut after its last whole line when there is more:
    what a reader of a big file decides its dialect and columns from."""
    with path.open("rb") as f:
        head = f.read(size)
        more = bool(f.read(1))
    if not head.strip():
        raise DataReadError(f"{path}: file is empty")
    return (head[: head.rfind(b"\n") + 1] or head) if more else head


def read_csv(
    data: bytes, source: str, dialect: CsvDialect, missing: tuple[str, ...] = ()
) -> tuple[pd.DataFrame, ReadNotes]:
    """``data`` as a table of text values, and how it was read."""
    text, encoding = decode(data, source, dialect.encoding)
    if not text.strip():
        raise DataReadError(f"{source}: file is empty")
    return read_csv_text(text, source, dialect, encoding, missing)


def check_last_line(source: str, text: str, sep: str, n_columns: int) -> None:
    """A final line without newline and with too few fields means the file was cut off.

    pandas pads short rows with missing values, so this truncation would otherwise pass.
    """
    if text.endswith(("\n", "\r")) or "\n" not in text:
        return
    last = text.rsplit("\n", 1)[1]
    fields = next(csv.reader([last], delimiter=sep), [])
    if len(fields) < n_columns:
        line = text.count("\n") + 1
        raise DataReadError(
            f"{source}: truncated: last line {line} has {len(fields)} of {n_columns} fields"
        )
