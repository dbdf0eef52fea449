"""CSV exports as spreadsheets write them: separator, encoding, BOM, decimal comma, day-first
dates and a sheet's empty trailing columns and rows, read without being declared."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from escpredict.cli import app
from escpredict.config import load_config
from escpredict.ingest.loaders import DataReadError, load_tickets, read_export
from escpredict.ingest.mapping import CsvDialect
from escpredict.lifecycle.stages import Stages
from escpredict.lifecycle.train import prepare

HEADER = ["ticket_id", "created_at", "channel", "category", "priority", "customer_id",
          "resolved_at", "csat", "escalated", "subject"]


def rows(decimal: str, n: int = 12) -> list[list[str]]:
    """Day-first dates (13/2 cannot be month-first), CSAT with ``decimal``, accented text."""
    return [[f"T{i}", f"{13 + i}/02/2024 09:30", "e-mail", "Réseau", "élevée", f"C{i % 3}",
             f"{13 + i}/02/2024 17:45", f"{i % 5}{decimal}5", "true" if i % 3 == 0 else "false",
             "imprimante HS; urgent, merci"] for i in range(n)]


def sheet(path: Path, sep: str, encoding: str, empty_columns: int = 0, blank_rows: int = 0,
          bom: bool = False) -> Path:
    """What a spreadsheet saves: ``sep``-separated, trailing empty columns and blank rows,
    and decimal commas unless the separator is a comma (a comma locale writes points)."""
    pad = [""] * empty_columns
    out = io.StringIO()
    writer = csv.writer(out, delimiter=sep, lineterminator="\r\n")  # quotes what holds sep
    decimal = "." if sep == "," else ","
    writer.writerows([HEADER + pad, *(r + pad for r in rows(decimal))])
    writer.writerows([[""] * (len(HEADER) + empty_columns)] * blank_rows)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + out.getvalue().encode(encoding))
    return path


@pytest.fixture
def day_first(tmp_path: Path) -> Path:
    """The small mapping such an export needs: only its date format."""
    path = tmp_path / "sheet.yaml"
    path.write_text('name: sheet\ndatetime_format: "%d/%m/%Y %H:%M"\n')
    return path


@pytest.mark.parametrize(("encoding", "bom", "read_as"), [
    ("cp1252", False, "cp1252"),  # Excel's "CSV" in a French locale
    ("utf-8", True, "utf-8 with BOM"),  # "CSV UTF-8"
])
def test_a_semicolon_sheet_with_decimal_commas_and_empty_tails_reads_as_meant(
    tmp_path: Path, day_first: Path, encoding: str, bom: bool, read_as: str
) -> None:
    path = sheet(tmp_path / "export.csv", ";", encoding, empty_columns=50, blank_rows=203, bom=bom)

    result = load_tickets(path, str(day_first))

    tickets = result.tickets
    assert len(tickets) == 12 and result.problems == []
    assert tickets["created_at"].iloc[0] == pd.Timestamp("2024-02-13 09:30", tz="UTC")
    assert tickets["csat"].tolist()[:3] == [0.5, 1.5, 2.5]
    assert tickets["category"].iloc[0] == "Réseau"
    assert tickets["subject"].iloc[0] == "imprimante HS; urgent, merci"
    notes = result.notes
    assert (notes.encoding, notes.sep, notes.decimal_columns) == (read_as, ";", ("csat",))
    assert notes.ignored() == "50 empty columns and 203 blank rows ignored"


@pytest.mark.parametrize("sep", ["\t", "|", ","])
def test_tab_pipe_and_comma_files_read_alike_with_the_generic_mapping(
    tmp_path: Path, day_first: Path, sep: str
) -> None:
    export = read_export(sheet(tmp_path / "export.csv", sep, "utf-8"))
    assert export.notes.sep == sep and list(export.frame.columns) == HEADER
    assert export.frame["subject"].iloc[0] == "imprimante HS; urgent, merci"
    assert len(load_tickets(tmp_path / "export.csv", str(day_first)).tickets) == 12


def test_a_comma_file_keeps_comma_decimals_as_written_and_a_mapping_may_say_otherwise(
    tmp_path: Path,
) -> None:
    path = sheet(tmp_path / "export.csv", ";", "utf-8")
    assert read_export(path, CsvDialect(decimal=".")).frame["csat"].iloc[1] == "1,5"
    assert read_export(path).frame["csat"].iloc[1] == "1.5"
    comma = sheet(tmp_path / "comma.csv", "|", "utf-8")
    assert read_export(comma, CsvDialect(sep="|", decimal=",")).notes.decimal_columns == ("csat",)


def test_a_declared_encoding_wins_over_detection(tmp_path: Path) -> None:
    path = tmp_path / "ru.csv"
    path.write_bytes("ticket_id;subject\nT1;Принтер не печатает\n".encode("cp1251"))
    assert read_export(path, CsvDialect(encoding="cp1251")).frame["subject"].iloc[0] == \
        "Принтер не печатает"
    assert read_export(path).notes.encoding == "cp1252"  # said, so check shows it


def test_a_header_read_as_one_column_names_the_likely_separator(tmp_path: Path) -> None:
    path = sheet(tmp_path / "export.csv", ";", "utf-8")
    with pytest.raises(DataReadError, match=r"the header reads as one column 'ticket_id;"
                       r"created_at;.*the file looks semicolon-separated; set the mapping's "
                       r"csv.sep to ';'"):
        read_export(path, CsvDialect(sep=","))


def test_a_mapping_declares_how_its_csv_is_written(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text('name: m\ncsv: {sep: ";", decimal: ",", encoding: latin-1}\n')
    from escpredict.ingest.mapping import MappingError, load_mapping

    assert load_mapping(str(path)).csv == CsvDialect(sep=";", decimal=",", encoding="latin-1")
    path.write_text("name: m\ncsv: {encoding: klingon}\n")
    with pytest.raises(MappingError, match="csv.encoding.*unknown encoding 'klingon'"):
        load_mapping(str(path))


def test_check_and_training_count_what_was_ignored(tmp_path: Path, day_first: Path) -> None:
    path = sheet(tmp_path / "export.csv", ";", "cp1252", empty_columns=50, blank_rows=203)
    result = CliRunner().invoke(app, ["check", "--tickets", str(path), "--mapping",
                                      str(day_first), "--json"])
    report = json.loads(result.output)
    assert report["read"] == ("read as cp1252, semicolon-separated, decimal comma in csat; "
                              "50 empty columns and 203 blank rows ignored")
    assert (report["empty_columns_ignored"], report["blank_rows_ignored"]) == (50, 203)
    assert report["rows_read"] == 12
    cfg = load_config(None, {"data.tickets": str(path), "data.mapping": str(day_first)})
    counts = prepare(cfg, Stages(show=False)).counts
    assert (counts["n_empty_columns_ignored"], counts["n_blank_rows_ignored"]) == (50, 203)
