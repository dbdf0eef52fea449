"""The Dask engine reads the exports users have (event logs, CSV, JSON Lines, Parquet) in
blocks, and maps them into the same tickets as the local engine, ticket by ticket."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from dask.distributed import Client
from typer.testing import CliRunner

from escpredict.cli import app
from escpredict.ingest.loaders import DataReadError, load_agents, load_tickets, read_table
from escpredict.ingest.validation import DataValidationError
from escpredict.samples import realistic
from escpredict.scaleout.dask_engine import persisted
from escpredict.scaleout.read import read_blocks
from escpredict.scaleout.tickets import quarantined_rows, read_tickets
from tests.test_spreadsheet_csv import sheet

SERVICENOW = Path(__file__).parent / "data" / "servicenow-incident-events-sample.csv"
#: Small blocks, so a few thousand events span several partitions and tickets straddle them.
BLOCK = 150_000


@pytest.fixture(scope="module")
def events(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The realistic profile's event log (CSV, as the README trains it) and its agents."""
    out = tmp_path_factory.mktemp("realistic")
    realistic.write(realistic.generate(1500, seed=4), out, "csv")
    return out


def by_ticket(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values("ticket_id").reset_index(drop=True)


def test_an_event_log_collapses_to_the_local_engines_tickets_although_blocks_split_tickets(
    dask_client: Client, events: Path
) -> None:
    blocks = read_blocks(events / "events.csv", BLOCK).frame
    ids = [set(part["Incident ID"]) for part in dask_client.compute(blocks.to_delayed(), sync=True)]
    assert len(ids) >= 4
    assert any(a & b for a, b in itertools.pairwise(ids)), "no ticket straddles blocks"

    agents = load_agents(events / "agents.csv", "realistic-events")
    local = load_tickets(events / "events.csv", "realistic-events", agents=agents).tickets
    got = read_tickets(events / "events.csv", "realistic-events", agents, blocksize=BLOCK).tickets
    pd.testing.assert_frame_equal(by_ticket(got.compute()), by_ticket(local))


def _as_jsonl(raw: pd.DataFrame, path: Path) -> Path:
    with path.open("w") as f:
        for record in raw.to_dict("records"):
            f.write(json.dumps({k: None if pd.isna(v) else v for k, v in record.items()}) + "\n")
    return path


def _as_parquet_folder(raw: pd.DataFrame, folder: Path) -> Path:
    folder.mkdir()
    for i, start in enumerate(range(0, len(raw), 2000)):
        raw.iloc[start : start + 2000].to_parquet(folder / f"part-{i}.parquet", index=False)
    return folder


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet folder"])
def test_the_real_servicenow_sample_gives_the_local_tickets_in_every_format(
    dask_client: Client, tmp_path: Path, fmt: str
) -> None:
    raw = read_table(SERVICENOW)
    path = {
        "csv": lambda: SERVICENOW,
        "jsonl": lambda: _as_jsonl(raw, tmp_path / "events.jsonl"),
        "parquet folder": lambda: _as_parquet_folder(raw, tmp_path / "events"),
    }[fmt]()
    got = read_tickets(path, "servicenow-events", blocksize=4 * BLOCK).tickets
    assert got.npartitions > 1
    local = load_tickets(path, "servicenow-events").tickets
    assert len(local) == 890
    pd.testing.assert_frame_equal(by_ticket(got.compute()), by_ticket(local))


@pytest.mark.parametrize(("encoding", "bom"), [("cp1252", False), ("utf-8", True)])
def test_a_spreadsheets_csv_is_read_in_blocks_as_the_local_reader_reads_it_whole(
    dask_client: Client, tmp_path: Path, encoding: str, bom: bool
) -> None:
    """Dialect from the head (";", decimal comma, encoding, BOM); the 50 empty columns and
    the 203 blank rows that end the sheet are dropped although they span several blocks."""
    path = sheet(tmp_path / "export.csv", ";", encoding, empty_columns=50, blank_rows=203, bom=bom)
    mapping = tmp_path / "sheet.yaml"
    mapping.write_text('name: sheet\ndatetime_format: "%d/%m/%Y %H:%M"\n')
    local = load_tickets(path, str(mapping))
    got = read_tickets(path, str(mapping), blocksize=2048)
    assert got.tickets.npartitions > 4
    pd.testing.assert_frame_equal(by_ticket(got.tickets.compute()), by_ticket(local.tickets))
    assert got.notes == local.notes


@pytest.fixture(scope="module")
def broken(events: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The event log with three unreadable times and one event without a ticket id."""
    raw = read_table(events / "events.csv")
    raw.loc[[5, 700, 9000], "Change Time"] = "yesterday"
    raw.loc[1234, "Incident ID"] = ""
    path = tmp_path_factory.mktemp("broken") / "events.csv"
    raw.to_csv(path, index=False)
    return path


def test_quarantine_writes_bad_events_per_partition_and_keeps_the_local_tickets(
    dask_client: Client, events: Path, broken: Path, tmp_path: Path
) -> None:
    agents = load_agents(events / "agents.csv", "realistic-events")
    local = load_tickets(broken, "realistic-events", tmp_path / "local.csv", agents)
    folder = tmp_path / "quarantine"
    (folder).mkdir()
    (folder / "part-00099.csv").write_text("stale,problem\n1,2\n")
    got = read_tickets(broken, "realistic-events", agents, folder, BLOCK).tickets.compute()
    pd.testing.assert_frame_equal(by_ticket(got), by_ticket(local.tickets))
    assert quarantined_rows(folder) == local.quarantined > 4  # whole tickets, not 4 events
    written = pd.concat([pd.read_csv(f, dtype=str) for f in sorted(folder.glob("part-*.csv"))])
    assert not (folder / "part-00099.csv").exists()
    assert set(written["Incident ID"].dropna()) == set(read_table(tmp_path / "local.csv")["Incident ID"].dropna())
    assert written["problem"].str.contains("not a timestamp").sum() == 3


def test_bad_events_are_refused_naming_the_partition_row_and_field(
    dask_client: Client, broken: Path
) -> None:
    with pytest.raises(DataValidationError) as refused:
        persisted(dask_client, read_tickets(broken, "realistic-events", blocksize=BLOCK).tickets)
    problems = refused.value.problems
    assert {p.field for p in problems} == {"event_time", "ticket_id"}
    assert sum(len(p.rows) for p in problems if p.field == "event_time") == 3
    assert all(p.source.startswith(f"{broken} (partition ") for p in problems)
    assert f"{broken} (partition 0), row 6, field 'event_time': not a timestamp" in str(refused.value)


def test_a_ragged_csv_row_is_one_error_naming_the_file(dask_client: Client, tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    rows = [f"T{i},2024-01-0{1 + i % 9}T10:00:00Z,web" for i in range(20_000)]
    rows[15_000] += ",extra,fields"
    path.write_text("ticket_id,created_at,channel\n" + "\n".join(rows) + "\n")
    with pytest.raises(DataReadError, match=f"{path}: not a readable CSV file"):
        read_blocks(path, 100_000).frame.compute()


@pytest.mark.parametrize("name", ["tickets.xlsx", "tickets", "missing.csv"])
def test_an_export_it_cannot_read_is_refused_in_one_line(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    if name != "missing.csv":
        path.write_bytes(b"PK\x03\x04") if "." in name else path.mkdir()
    with pytest.raises(DataReadError) as refused:
        read_blocks(path)
    assert str(path) in str(refused.value) and "\n" not in str(refused.value)


# --- through the command line -------------------------------------------------------------

SMALL = [
    "--set", "features.word_max_features=200", "--set", "features.char_max_features=0",
    "--set", "model.num_boost_round=30", "--set", "labels.rules=[tier_raised]",
    "--set", "model.search=off",
]


def _train(tmp_path: Path, tickets: Path, agents: Path, *engine: str) -> list[str]:
    return [
        "train", "--tickets", str(tickets), "--agents", str(agents),
        "--mapping", "realistic-events", "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}",
        *SMALL, "--engine", *engine,
    ]


def test_cli_trains_an_event_log_csv_on_dask_local_and_scores_jsonl_and_parquet(
    dask_client: Client, events: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """The README's path, in a child process as a user runs it: no traceback anywhere, the
    model registered. The other formats are scored by the Dask engine on the session's
    cluster, through the same command line."""
    args = _train(tmp_path, events / "events.csv", events / "agents.csv", "dask-local")
    done = subprocess.run(
        [sys.executable, "-m", "escpredict", *args],
        capture_output=True, text=True, cwd=tmp_path, timeout=600, check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "Traceback" not in output
    assert "roc_auc" in done.stdout and "escalation-risk v1" in done.stdout
    assert "no open-ticket model: the Dask engine does not build checkpoints" in output

    raw = read_table(events / "events.csv")
    inputs = {"jsonl": _as_jsonl(raw, tmp_path / "events.jsonl"),
              "parquet": _as_parquet_folder(raw, tmp_path / "parts")}
    for name, path in inputs.items():
        result = CliRunner().invoke(app, [
            "score", str(path), str(tmp_path / f"scores-{name}"), "--model",
            "models:/escalation-risk/1", "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}",
            "--mapping", "realistic-events", "--agents", str(events / "agents.csv"),
            "--engine", "dask", "--scheduler", dask_client.scheduler.address,
        ])
        assert result.exit_code == 0, result.output
        assert "scored 1,500 tickets" in result.output
    assert "Traceback" not in capfd.readouterr().err


@pytest.mark.parametrize(
    ("name", "expected"),
    [("events.xlsx", "unsupported file type '.xlsx'"), ("ragged.csv", "not a readable CSV file")],
)
def test_cli_refuses_input_it_cannot_read_in_one_line_without_a_traceback(
    dask_client: Client, events: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str],
    name: str, expected: str,
) -> None:
    path = tmp_path / name
    if name.endswith(".xlsx"):
        path.write_bytes(b"PK\x03\x04 not a csv")
        engine = ["dask-local", "--workers", "1"]
    else:
        lines = (events / "events.csv").read_text().splitlines()
        lines[5000] += ",one,too,many"
        path.write_text("\n".join(lines) + "\n")
        engine = ["dask", "--scheduler", dask_client.scheduler.address]
    result = CliRunner().invoke(app, _train(tmp_path, path, events / "agents.csv", *engine))
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    error = " ".join(result.output.split())  # the console wraps long lines
    assert f"error: {path}: {expected}" in error
    assert "Traceback" not in result.output + capfd.readouterr().err
