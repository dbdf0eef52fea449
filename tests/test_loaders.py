"""Reading exports: formats, round trips, and clear errors for files that cannot be read."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from escpredict.contract import TICKET_FIELDS
from escpredict.ingest.loaders import DataReadError, load_agents, load_tickets, read_table
from escpredict.ingest.validation import DataValidationError

HEADER = "ticket_id,created_at,channel,category,priority,customer_id\n"


def write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def test_csv_parquet_jsonl_and_parquet_folders_read_the_same_table(tmp_path):
    frame = pd.DataFrame({"ticket_id": ["1", "2", "3"], "subject": ["a", "b, c", 'say "hi"']})
    frame.to_csv(tmp_path / "t.csv", index=False)
    frame.to_parquet(tmp_path / "t.parquet")
    frame.to_json(tmp_path / "t.ndjson", orient="records", lines=True)
    (tmp_path / "parts").mkdir()
    frame.iloc[:2].to_parquet(tmp_path / "parts/part-0.parquet")
    frame.iloc[2:].to_parquet(tmp_path / "parts/part-1.parquet")
    for name in ("t.csv", "t.parquet", "t.ndjson", "parts"):
        got = read_table(tmp_path / name)
        assert got.astype(str).to_dict("list") == frame.to_dict("list"), name


def test_csv_keeps_ids_as_written(tmp_path):
    path = write(tmp_path / "t.csv", "ticket_id,n\n007,1e3\n")
    assert read_table(path).iloc[0].tolist() == ["007", "1e3"]


def test_text_neither_utf8_nor_windows_1252_names_the_file_byte_and_line(tmp_path):
    path = write(tmp_path / "odd.csv", HEADER.encode() + b"T1,2024-01-01,caf\x81,a,b,c\n")
    offset = len(HEADER) + len("T1,2024-01-01,caf")
    with pytest.raises(DataReadError, match=rf"odd\.csv: not utf-8 or cp1252 text: byte {offset} "
                                            r"\(line 2\).*csv\.encoding"):
        read_table(path)


def test_a_binary_file_is_refused_not_decoded(tmp_path):
    path = write(tmp_path / "t.csv", HEADER.encode() + b"T1,\x00\x00\x17,a,b,c,d\n")
    with pytest.raises(DataReadError, match=r"t\.csv: a NUL character on line 2"):
        read_table(path)


def test_truncated_csv_is_refused_not_padded(tmp_path):
    path = write(tmp_path / "cut.csv", HEADER + "T1,2024-01-01,email,billing,high,C1\nT2,2024-0")
    with pytest.raises(DataReadError, match=r"cut\.csv: truncated: last line 3 has 2 of 6"):
        read_table(path)


def test_csv_without_final_newline_but_complete_is_fine(tmp_path):
    path = write(tmp_path / "ok.csv", HEADER + "T1,2024-01-01,email,billing,high,C1")
    assert len(read_table(path)) == 1


def test_csv_cut_inside_a_quoted_field_is_refused(tmp_path):
    path = write(tmp_path / "cut.csv", HEADER + 'T1,2024-01-01,email,"billing')
    with pytest.raises(DataReadError, match=r"cut\.csv: not a readable CSV"):
        read_table(path)


def test_truncated_jsonl_names_the_line(tmp_path):
    path = write(tmp_path / "t.jsonl", '{"ticket_id": "T1"}\n\n{"ticket_id": "T2", "chan')
    with pytest.raises(DataReadError, match=r"t\.jsonl: line 3 is not valid JSON"):
        read_table(path)


def test_truncated_parquet_is_refused(tmp_path):
    full = tmp_path / "full.parquet"
    pd.DataFrame({"ticket_id": [str(i) for i in range(100)]}).to_parquet(full)
    cut = write(tmp_path / "cut.parquet", full.read_bytes()[:-30])
    with pytest.raises(DataReadError, match=r"cut\.parquet: not a readable Parquet"):
        read_table(cut)


@pytest.mark.parametrize(
    ("name", "complaint"),
    [("nope.csv", "file not found"), ("t.xlsx", "unsupported file type"), ("e.csv", "empty")],
)
def test_unreadable_inputs_name_the_file(tmp_path, name, complaint):
    write(tmp_path / "t.xlsx", b"PK")
    write(tmp_path / "e.csv", "")
    with pytest.raises(DataReadError, match=complaint) as info:
        read_table(tmp_path / name)
    assert name in str(info.value)


def test_jsonl_keeps_large_integer_ids_exact(tmp_path):
    path = write(tmp_path / "t.jsonl", '{"id": 9007199254740993}\n{"id": null}\n')
    assert read_table(path)["id"].tolist()[0] == 9007199254740993


def test_agents_load_with_typed_hire_dates_and_refuse_duplicates(tmp_path):
    good = write(tmp_path / "a.csv", "agent_id,hire_date,role\nA1,2023-05-01,agent\n")
    agents = load_agents(good)
    assert agents["hire_date"].iloc[0] == pd.Timestamp("2023-05-01", tz="UTC")
    assert list(agents.columns) == ["agent_id", "hire_date", "team", "role"]
    bad = write(tmp_path / "b.csv", "agent_id,hire_date\nA1,2023-05-01\nA1,soon\n")
    with pytest.raises(DataValidationError, match=r"rows 1, 2, field 'agent_id'") as info:
        load_agents(bad)
    assert "row 2, field 'hire_date': not a timestamp" in str(info.value)


# --- round trip ---------------------------------------------------------------------------

texts = st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=12)
ids = st.text("abcXYZ0123456789-_", min_size=1, max_size=8)
times = st.datetimes(
    min_value=pd.Timestamp("2000-01-01").to_pydatetime(),
    max_value=pd.Timestamp("2030-01-01").to_pydatetime(),
).map(lambda t: pd.Timestamp(t).floor("s"))


@st.composite
def canonical_frames(draw) -> pd.DataFrame:
    n = draw(st.integers(1, 6))
    column = {
        "str": lambda: [draw(ids) for _ in range(n)],
        "datetime": lambda: [draw(times) for _ in range(n)],
        "int": lambda: [draw(st.one_of(st.none(), st.integers(0, 9))) for _ in range(n)],
        "float": lambda: [draw(st.one_of(st.none(), st.floats(0, 5, width=32))) for _ in range(n)],
        "bool": lambda: [draw(st.one_of(st.none(), st.booleans())) for _ in range(n)],
    }
    data = {f.name: column[f.kind]() for f in TICKET_FIELDS}
    data["ticket_id"] = [f"T{i}" for i in range(n)]
    data["subject"] = [draw(texts).strip() for _ in range(n)]
    data["resolved_at"] = [c + pd.Timedelta(hours=1) for c in data["created_at"]]
    frame = pd.DataFrame(data)
    dtypes = {
        "str": "str",
        "datetime": "datetime64[ns]",
        "int": "Int64",
        "float": "float64",
        "bool": "boolean",
    }
    frame = frame.astype({f.name: dtypes[f.kind] for f in TICKET_FIELDS})
    for name in ("created_at", "resolved_at"):
        frame[name] = frame[name].dt.tz_localize("UTC")
    return frame


def write_as(frame: pd.DataFrame, path: Path) -> None:
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    elif path.suffix == ".parquet":
        frame.to_parquet(path)
    else:
        frame.to_json(path, orient="records", lines=True, date_format="iso", date_unit="s")


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(frame=canonical_frames())
def test_any_valid_frame_round_trips(tmp_path, suffix, frame):
    path = tmp_path / f"tickets{suffix}"
    write_as(frame, path)
    got = load_tickets(path).tickets
    pd.testing.assert_frame_equal(got, frame, check_exact=False, rtol=1e-6)


def test_nested_json_objects_become_dotted_columns(tmp_path):
    records = [
        {
            "ticket_id": "T1",
            "created_at": "2024-01-01T00:00:00Z",
            "channel": "web",
            "category": "x",
            "priority": "low",
            "customer_id": "C",
            "extra": {"a": 1},
        }
    ]
    path = write(tmp_path / "t.jsonl", "\n".join(json.dumps(r) for r in records))
    assert "extra.a" in read_table(path)
    assert "extra.a" not in load_tickets(path).tickets
