"""Validation: every bad row is named (file, 1-based data row, field) and none is lost."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from escpredict.ingest.loaders import load_tickets
from escpredict.ingest.validation import (
    DataValidationError,
    Problem,
    parse_datetime,
    validate_tickets,
)

HEADER = "ticket_id,created_at,channel,category,priority,customer_id,resolved_at,csat"
GOOD = "T{i},2024-01-01 10:00,email,billing,high,C1,2024-01-02 10:00,4"


def export(tmp_path: Path, *rows: str, header: str = HEADER) -> Path:
    path = tmp_path / "tickets.csv"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def problems_of(path: Path) -> list[Problem]:
    with pytest.raises(DataValidationError) as info:
        load_tickets(path)
    return info.value.problems


@pytest.mark.parametrize(
    ("bad_row", "field", "message"),
    [
        ("T9,someday,email,billing,high,C1,,", "created_at", "not a timestamp"),
        ("T9,2024-01-01 10:00,email,billing,high,C1,,great", "csat", "not a number"),
        ("T9,2024-01-01 10:00,email,,high,C1,,", "category", "required value is empty"),
        ("T9,2024-01-01 10:00,email,billing,high,  ,,", "customer_id", "required value is empty"),
        ("T9,2024-01-03 10:00,email,billing,high,C1,2024-01-02,", "resolved_at", "resolved before"),
        ("T1,2024-01-01 10:00,email,billing,high,C1,,", "ticket_id", "duplicate ticket_id"),
    ],
)
def test_each_kind_of_problem_names_file_row_and_field(tmp_path, bad_row, field, message):
    path = export(tmp_path, GOOD.format(i=1), bad_row)
    [problem] = problems_of(path)
    rows = [1, 2] if field == "ticket_id" else [2]
    assert (problem.source, problem.rows, problem.field) == (str(path), rows, field)
    assert message in problem.message
    assert f"tickets.csv, row{'s' if len(rows) > 1 else ''} {', '.join(map(str, rows))}" in str(
        DataValidationError([problem])
    )


def test_all_problems_are_reported_at_once(tmp_path):
    path = export(
        tmp_path,
        "T1,someday,email,billing,high,C1,,",
        "T2,2024-01-01 10:00,email,billing,high,C1,,great",
    )
    assert {p.field for p in problems_of(path)} == {"created_at", "csat"}


def test_error_message_caps_the_listed_rows(tmp_path):
    path = export(tmp_path, *[f"T{i},nope,email,b,high,C1,," for i in range(25)])
    message = str(problems_of(path)[0])
    assert "rows 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 and 15 more, field 'created_at'" in message
    assert "e.g. 'nope'" in message


def test_messages_name_the_export_column_behind_a_mapped_field(tmp_path):
    path = export(
        tmp_path,
        "INC1,bad,email,x,1 - Critical,C",
        header="number,opened_at,contact_type,category,priority,caller_id",
    )
    with pytest.raises(DataValidationError, match="not a timestamp \\(column 'opened_at'\\)"):
        load_tickets(path, "servicenow")


def test_a_missing_required_column_is_refused_even_with_quarantine(tmp_path):
    path = export(tmp_path, "T1,2024-01-01,email,high,C1,,", header=HEADER.replace("category,", ""))
    with pytest.raises(DataValidationError, match="all rows, field 'category': required column"):
        load_tickets(path, quarantine=tmp_path / "q.csv")


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_quarantine_keeps_the_good_rows_and_writes_the_bad_ones_with_reasons(tmp_path, suffix):
    path = export(
        tmp_path, GOOD.format(i=1), "T2,someday,email,billing,high,C1,,", GOOD.format(i=3)
    )
    quarantine = tmp_path / f"bad{suffix}"
    result = load_tickets(path, quarantine=quarantine)
    assert result.tickets["ticket_id"].tolist() == ["T1", "T3"]
    assert result.quarantined == 1 and result.problems[0].rows == [2]
    bad = pd.read_csv(quarantine, dtype=str) if suffix == ".csv" else pd.read_parquet(quarantine)
    assert list(bad.columns) == [*HEADER.split(","), "problem"]
    assert bad.iloc[0]["created_at"] == "someday"
    assert bad.iloc[0]["problem"].startswith("created_at: not a timestamp")


def test_clean_data_with_quarantine_writes_an_empty_file(tmp_path):
    quarantine = tmp_path / "q.csv"
    quarantine.write_text("stale\n")
    result = load_tickets(export(tmp_path, GOOD.format(i=1)), quarantine=quarantine)
    assert result.quarantined == 0 and result.problems == []
    assert pd.read_csv(quarantine).empty


def test_a_bad_event_quarantines_its_whole_ticket(tmp_path):
    mapping = tmp_path / "events.yaml"
    mapping.write_text("level: events\nevents: {time: at, actor: by}\n")
    path = export(
        tmp_path,
        "T1,2024-01-01 09:00,email,billing,high,C1,,,a1",
        "T1,never,email,billing,high,C1,,,a1",
        "T1,2024-01-01 11:00,email,billing,high,C1,2024-01-01 11:00,,a1",
        "T2,2024-01-01 09:00,chat,login,low,C2,2024-01-01 10:00,,a2",
        "T3,2024-01-01 09:00,chat,,low,C2,,,a2",
        header=HEADER.replace("created_at", "at") + ",by",
    )
    result = load_tickets(path, str(mapping), quarantine=tmp_path / "q.csv")
    assert result.tickets["ticket_id"].tolist() == ["T2"]
    assert result.quarantined == 4  # three events of T1, one of T3
    reasons = pd.read_csv(tmp_path / "q.csv")["problem"].tolist()
    assert reasons[0] == "another event of this ticket has a problem"
    assert reasons[1].startswith("event_time: not a timestamp")
    assert reasons[3] == "category: required value is empty"


def test_validate_tickets_accepts_a_clean_canonical_frame_and_flags_a_bad_one():
    frame = pd.DataFrame(
        {
            "ticket_id": ["T1", "T2"],
            "created_at": pd.to_datetime(["2024-01-02", "2024-01-02"], utc=True),
            "channel": "email",
            "category": "billing",
            "priority": "low",
            "customer_id": "C1",
            "resolved_at": pd.to_datetime(["2024-01-03", "2024-01-01"], utc=True),
        }
    )
    assert validate_tickets(frame.iloc[:1], "frame") == []
    [problem] = validate_tickets(frame, "frame")
    assert (problem.rows, problem.field) == ([2], "resolved_at")
    missing = validate_tickets(frame.iloc[:1].drop(columns="channel"), "frame")
    assert [(p.field, p.rows) for p in missing] == [("channel", [])]


cells = {
    "created_at": st.sampled_from(["2024-01-01 10:00", "2024-01-01T10:00:00Z", "nope", ""]),
    "category": st.sampled_from(["billing", ""]),
    "resolved_at": st.sampled_from(["", "2024-01-02", "2023-12-31", "later"]),
    "csat": st.sampled_from(["", "3", "3.5", "good"]),
}


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(
        st.fixed_dictionaries({**cells, "id": st.integers(0, 6)}), min_size=1, max_size=12
    )
)
def test_no_row_is_ever_lost(tmp_path, rows):
    lines = [
        f"T{r['id']},{r['created_at']},email,{r['category']},low,C1,{r['resolved_at']},{r['csat']}"
        for r in rows
    ]
    quarantine = tmp_path / "q.parquet"
    result = load_tickets(export(tmp_path, *lines), quarantine=quarantine)
    assert len(result.tickets) + result.quarantined == len(rows)
    assert len(pd.read_parquet(quarantine)) == result.quarantined
    assert result.tickets["ticket_id"].is_unique


@pytest.mark.parametrize("value", ["29-02-2016 01:16", "29/2/2016 01:16", "29.02.2016 01:16"])
def test_a_date_format_reads_any_date_separator_but_keeps_its_field_order(value):
    parsed = parse_datetime(pd.Series([value, "2/3/2016 10:00"]), "UTC", "%d-%m-%Y %H:%M")
    assert parsed.tolist() == [pd.Timestamp("2016-02-29 01:16", tz="UTC"),
                               pd.Timestamp("2016-03-02 10:00", tz="UTC")]  # day first, still


def test_a_value_no_separator_variant_reads_stays_unparsed():
    parsed = parse_datetime(pd.Series(["2016-02-29", "31/31/2016 10:00"]), "UTC", "%d-%m-%Y %H:%M")
    assert parsed.isna().all()
