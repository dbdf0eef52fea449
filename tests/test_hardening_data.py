"""Training-data faults: every one is a clear error naming file/rows, or a quarantine that
accounts for every row, never a silent drop. Property tests over random faults and rows.

Complements tests/test_loaders.py (single examples of each read error) and tests/test_labels.py
(rule semantics) with properties: *which* rows are named, and that counts always add up.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from escpredict.config import LabelConfig
from escpredict.contract import LABEL, TICKET_FIELDS, required
from escpredict.ingest.loaders import DataReadError, load_tickets
from escpredict.ingest.validation import DataValidationError
from escpredict.labels.rules import LabelError, label_tickets
from escpredict.labels.split import TrainingDataError, time_split

START = pd.Timestamp("2024-03-01T08:00:00Z")
REQUIRED = required(TICKET_FIELDS)
PROPERTY = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def export(n: int) -> pd.DataFrame:
    """``n`` valid resolved tickets as an export holds them (text, ISO times with zone)."""
    created = [START + pd.Timedelta(hours=7 * i) for i in range(n)]
    return pd.DataFrame(
        {
            "ticket_id": [f"T{i:04d}" for i in range(n)],
            "created_at": [t.isoformat() for t in created],
            "channel": ["email", "chat", "web"] * (n // 3) + ["phone"] * (n % 3),
            "category": "billing",
            "priority": "high",
            "subject": [f'Refund, "again" #{i}' for i in range(n)],
            "customer_id": [f"C{i % 5}" for i in range(n)],
            "resolved_at": [(t + pd.Timedelta(hours=3)).isoformat() for t in created],
        }
    )


def csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def problem_rows(error: DataValidationError) -> dict[str, set[int]]:
    """Rows named per field, across all problems."""
    named: dict[str, set[int]] = {}
    for problem in error.problems:
        named.setdefault(problem.field, set()).update(problem.rows)
    return named


# --- truncated and mis-encoded files -----------------------------------------------------


@PROPERTY
@given(n=st.integers(2, 12), cut=st.floats(0.0, 1.0, exclude_max=True))
def test_a_cut_csv_is_refused_naming_the_file_or_keeps_every_line_that_is_left(
    tmp_path: Path, n: int, cut: float
) -> None:
    data = csv_bytes(export(n))
    path = tmp_path / "cut.csv"
    path.write_bytes(data[: int(len(data) * cut)])
    try:
        loaded = load_tickets(path, quarantine=tmp_path / "q.csv")
    except (DataReadError, DataValidationError) as error:
        assert "cut.csv" in str(error)
        return
    lines_left = path.read_text().rstrip("\n").count("\n")  # data lines after the header

    assert len(loaded.tickets) + loaded.quarantined == lines_left


@PROPERTY
@given(
    n=st.integers(1, 10),
    row=st.integers(0, 9),
    encoding=st.sampled_from(["cp1252", "latin-1"]),
    word=st.sampled_from(["café", "Müller", "naïve", "Ørsted"]),
)
def test_a_legacy_encoded_file_reads_every_word_as_written_and_says_how(
    tmp_path: Path, n: int, row: int, encoding: str, word: str
) -> None:
    frame = export(n)
    row = min(row, n - 1)
    frame.loc[row, "subject"] = word
    path = tmp_path / "legacy.csv"
    path.write_bytes(frame.to_csv(index=False).encode(encoding))

    loaded = load_tickets(path)

    assert loaded.tickets["subject"].iloc[row] == word
    assert loaded.notes.encoding == "cp1252"  # check prints it: nothing is guessed silently


def test_a_utf16_export_with_its_byte_order_mark_reads_as_written(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes(export(3).to_csv(index=False).encode("utf-16"))  # Excel's "Unicode text"
    loaded = load_tickets(path)
    assert len(loaded.tickets) == 3 and loaded.notes.encoding == "utf-16 with BOM"


def test_a_utf16_export_without_its_byte_order_mark_is_refused_not_misread(
    tmp_path: Path,
) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes(export(3).to_csv(index=False).encode("utf-16-le"))
    with pytest.raises(DataReadError, match=r"excel\.csv: a NUL character on line 1"):
        load_tickets(path)


# --- missing columns -----------------------------------------------------------------------


@PROPERTY
@given(dropped=st.sets(st.sampled_from(REQUIRED), min_size=1))
def test_missing_required_columns_are_all_named_even_when_quarantining(
    tmp_path: Path, dropped: set[str]
) -> None:
    path = tmp_path / "narrow.csv"
    path.write_bytes(csv_bytes(export(4).drop(columns=sorted(dropped))))

    with pytest.raises(DataValidationError, match=r"narrow\.csv, all rows") as info:
        load_tickets(path, quarantine=tmp_path / "q.csv")

    assert {p.field for p in info.value.problems} == dropped
    assert all("required column is missing" in p.message for p in info.value.problems)


# --- row faults: refused with the rows named, or quarantined with every row accounted for ----

FAULTS = ("duplicate_id", "resolved_before_created", "bad_timestamp", "empty_customer")


def inject(frame: pd.DataFrame, faults: dict[int, str]) -> dict[str, set[int]]:
    """Apply ``faults`` (0-based row → kind) in place; returns the 1-based rows each field
    must be named for (a duplicated id names both rows)."""
    expected: dict[str, set[int]] = {}
    for row, kind in faults.items():
        if kind == "duplicate_id":
            twin = (row + 1) % len(frame)
            frame.loc[row, "ticket_id"] = frame.loc[twin, "ticket_id"]
            expected.setdefault("ticket_id", set()).update({row + 1, twin + 1})
        elif kind == "resolved_before_created":
            created = pd.Timestamp(frame.loc[row, "created_at"])
            frame.loc[row, "resolved_at"] = (created - pd.Timedelta(minutes=1)).isoformat()
            expected.setdefault("resolved_at", set()).add(row + 1)
        elif kind == "bad_timestamp":
            frame.loc[row, "created_at"] = "31/02/2024 25:61"
            expected.setdefault("created_at", set()).add(row + 1)
        else:
            frame.loc[row, "customer_id"] = " "
            expected.setdefault("customer_id", set()).add(row + 1)
    return expected


@st.composite
def faulty_exports(draw: st.DrawFn) -> tuple[pd.DataFrame, dict[str, set[int]]]:
    n = draw(st.integers(4, 16))
    rows = draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=4, unique=True))
    faults: dict[int, str] = {}
    for row in rows:  # a duplicate copies the next row's id: that row stays untouched
        kind = draw(st.sampled_from(FAULTS))
        touched = set(faults) | {(r + 1) % n for r, k in faults.items() if k == "duplicate_id"}
        if row not in touched and not (kind == "duplicate_id" and (row + 1) % n in touched):
            faults[row] = kind
    frame = export(n)
    return frame, inject(frame, faults)


@PROPERTY
@given(case=faulty_exports())
def test_row_faults_are_refused_naming_exactly_the_bad_rows_and_fields(
    tmp_path: Path, case: tuple[pd.DataFrame, dict[str, set[int]]]
) -> None:
    frame, expected = case
    path = tmp_path / "faulty.csv"
    path.write_bytes(csv_bytes(frame))

    with pytest.raises(DataValidationError, match=r"faulty\.csv, rows? \d") as info:
        load_tickets(path)

    assert problem_rows(info.value) == expected


@PROPERTY
@given(case=faulty_exports())
def test_quarantine_accounts_for_every_row_and_keeps_exactly_the_good_ones(
    tmp_path: Path, case: tuple[pd.DataFrame, dict[str, set[int]]]
) -> None:
    frame, expected = case
    path, quarantine = tmp_path / "faulty.csv", tmp_path / "bad.csv"
    path.write_bytes(csv_bytes(frame))
    bad_rows = set().union(*expected.values())

    loaded = load_tickets(path, quarantine=quarantine)

    assert len(loaded.tickets) + loaded.quarantined == len(frame)
    assert loaded.quarantined == len(bad_rows)
    good = [i for i in range(len(frame)) if i + 1 not in bad_rows]
    assert loaded.tickets["subject"].tolist() == frame["subject"].iloc[good].tolist()
    written = pd.read_csv(quarantine, dtype=str, keep_default_na=False)
    assert (
        written["subject"].tolist()
        == frame["subject"].iloc[sorted(r - 1 for r in bad_rows)].tolist()
    )
    assert written["problem"].str.len().gt(0).all()


# --- time zones ----------------------------------------------------------------------------

SPELLINGS = {
    "naive": lambda t: t.tz_convert(None).isoformat(),
    "Z": lambda t: t.tz_convert(None).isoformat() + "Z",
    "offset": lambda t: t.tz_convert("Asia/Kolkata").isoformat(),
    "negative offset": lambda t: t.tz_convert("America/Los_Angeles").isoformat(),
    "space and compact offset": lambda t: t.tz_convert("Europe/Berlin").strftime(
        "%Y-%m-%d %H:%M:%S%z"
    ),
    "hour-only offset": lambda t: t.tz_convert("Asia/Karachi").strftime("%Y-%m-%dT%H:%M:%S+05"),
}


@PROPERTY
@given(spellings=st.lists(st.sampled_from(sorted(SPELLINGS)), min_size=2, max_size=12))
def test_mixed_time_zone_spellings_all_load_as_the_same_utc_instants(
    tmp_path: Path, spellings: list[str]
) -> None:
    frame = export(len(spellings))
    instants = pd.to_datetime(frame["created_at"], utc=True)
    frame["created_at"] = [SPELLINGS[s](t) for s, t in zip(spellings, instants, strict=True)]
    path = tmp_path / "mixed.csv"
    path.write_bytes(csv_bytes(frame))

    loaded = load_tickets(path).tickets

    assert loaded["created_at"].tolist() == instants.tolist()


# --- labels and time windows ---------------------------------------------------------------

maybe_tier = st.one_of(st.none(), st.integers(1, 3))
maybe_id = st.one_of(st.none(), st.sampled_from(["a1", "a2", "s1"]))


@st.composite
def label_inputs(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(1, 12))
    rows = [
        {
            "ticket_id": f"T{i}",
            "agent_id": draw(maybe_id),
            "resolver_id": draw(maybe_id),
            "resolved_at": draw(st.sampled_from([START, pd.NaT])),
            "initial_tier": draw(maybe_tier),
            "final_tier": draw(maybe_tier),
            "reassignment_count": draw(maybe_tier),
        }
        for i in range(n)
    ]
    frame = pd.DataFrame(rows)
    return frame.astype({c: "Int64" for c in ("initial_tier", "final_tier", "reassignment_count")})


@settings(max_examples=60, deadline=None)
@given(frame=label_inputs())
def test_every_resolved_ticket_gets_a_label_or_its_row_is_named(frame: pd.DataFrame) -> None:
    """No rule may silently treat a ticket it cannot judge as 'not escalated'."""
    judgeable = (
        (frame["initial_tier"].notna() & frame["final_tier"].notna())
        | (frame["agent_id"].notna() & frame["resolver_id"].notna())
        | frame["reassignment_count"].notna()
    )
    unjudged = frame["resolved_at"].notna() & ~judgeable
    cfg = LabelConfig()
    try:
        labels = label_tickets(frame, cfg)
    except LabelError as error:
        assert error.rows == [i + 1 for i in frame.index[unjudged]]
        assert unjudged.sum() > cfg.max_unlabelled_share * frame["resolved_at"].notna().sum()
        return
    assert labels.index.equals(frame.index)
    # a few set aside with no label, like open tickets; every other resolved ticket judged
    assert labels.notna().tolist() == (frame["resolved_at"].notna() & ~unjudged).tolist()


@settings(max_examples=60, deadline=None)
@given(flags=st.lists(st.booleans(), min_size=20, max_size=80))
def test_a_single_class_window_is_refused_by_name_and_a_split_drops_no_row(
    flags: list[bool],
) -> None:
    """One ticket a day: train is the first 60 % of days, valid the next 20 %, test the rest."""
    frame = pd.DataFrame(
        {
            "created_at": pd.date_range("2024-01-01", periods=len(flags), freq="D", tz="UTC"),
            LABEL: flags,
        }
    )
    day = (frame["created_at"] - frame["created_at"].iloc[0]).dt.days / (len(frame) - 1)
    windows = {"train": day < 0.6, "valid": (day >= 0.6) & (day < 0.8), "test": day >= 0.8}
    single = [name for name, rows in windows.items() if frame[LABEL][rows].nunique() < 2]

    if single:
        with pytest.raises(TrainingDataError, match=rf"the {single[0]} window .* only one class"):
            time_split(frame, 0.2, 0.2)
        return
    split = time_split(frame, 0.2, 0.2)
    parts = {"train": split.train, "valid": split.valid, "test": split.test}
    assert {name: part.index.tolist() for name, part in parts.items()} == {
        name: frame.index[rows].tolist() for name, rows in windows.items()
    }
