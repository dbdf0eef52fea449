"""Point-in-time history: a ticket may only know what was known when it was created."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from escpredict.contract import HISTORY_NAMES
from escpredict.labels.history import (
    AGENT_HISTORY,
    CUSTOMER_HISTORY,
    HistorySnapshot,
    agent_history,
    build_snapshot,
    customer_history,
    fold_events,
    history_features,
    latest_known,
    snapshot_events,
    snapshot_from_events,
)

T0 = pd.Timestamp("2024-03-01 09:00", tz="UTC")
DAY = pd.Timedelta(days=1)


def frame(rows: list[dict]) -> tuple[pd.DataFrame, pd.Series]:
    """Tickets from short dicts: created/resolved as offsets in days from T0, label as bool/None."""
    tickets = pd.DataFrame(
        {
            "ticket_id": [f"T{i}" for i in range(len(rows))],
            "created_at": [T0 + r["created"] * DAY for r in rows],
            "resolved_at": [
                T0 + r["resolved"] * DAY if r.get("resolved") is not None else pd.NaT for r in rows
            ],
            "customer_id": pd.array([r.get("customer", "C1") for r in rows], dtype="str"),
            "agent_id": pd.array([r.get("agent", "A1") for r in rows], dtype="str"),
        }
    )
    tickets["resolved_at"] = pd.to_datetime(tickets["resolved_at"], utc=True)
    labels = pd.Series([r.get("escalated") for r in rows], dtype="boolean")
    return tickets, labels


AGENTS = pd.DataFrame(
    {
        "agent_id": ["A1", "A2"],
        "hire_date": pd.to_datetime(["2024-01-01", "2023-03-01"], utc=True),
        "team": ["billing", "tech"],
        "role": ["agent", "senior"],
    }
)


def random_tickets(n: int, seed: int, start: pd.Timestamp = T0) -> tuple[pd.DataFrame, pd.Series]:
    """A realistic-looking export: repeat customers, busy agents, ties, open tickets."""
    rng = np.random.default_rng(seed)
    created = start + pd.to_timedelta(np.sort(rng.integers(0, 120 * 86_400, n)) // 3600 * 3600, "s")
    open_ = rng.random(n) < 0.15
    resolved = created + pd.to_timedelta(rng.exponential(4 * 86_400, n).astype(int), "s")
    agent = pd.Series(rng.choice(["A1", "A2", "A3", "A4"], n), dtype="str")
    tickets = pd.DataFrame(
        {
            "ticket_id": [f"R{seed}-{i}" for i in range(n)],
            "created_at": created,
            "resolved_at": pd.Series(resolved).where(~open_),
            "customer_id": pd.Series(rng.integers(0, n // 4, n).astype(str), dtype="str").radd("C"),
            "agent_id": agent.where(rng.random(n) > 0.1),
        }
    )
    labels = pd.Series(rng.random(n) < 0.3, dtype="boolean").mask(open_)
    return tickets, labels


def naive_history(tickets: pd.DataFrame, labels: pd.Series, agents: pd.DataFrame, window_days: int):
    """The as-of rule written out ticket by ticket: the slow, obviously right reference."""
    hire = dict(zip(agents["agent_id"], agents["hire_date"], strict=True))
    rows = []
    for _, me in tickets.iterrows():
        t = me["created_at"]
        earlier = tickets[tickets["created_at"] < t]
        known = labels.notna() & tickets["resolved_at"].notna()
        known &= tickets[["created_at", "resolved_at"]].max(axis=1) < t
        row = dict.fromkeys(HISTORY_NAMES, np.nan)
        if pd.notna(me["agent_id"]):
            same = tickets["agent_id"] == me["agent_id"]
            mine = earlier[same.loc[earlier.index]]
            if me["agent_id"] in hire:
                row["agent_tenure_days"] = (t - hire[me["agent_id"]]) / DAY
            row["agent_recent_tickets"] = (mine["created_at"] >= t - window_days * DAY).sum()
            row["agent_prior_resolved"] = (known & same).sum()
            row["agent_prior_escalated"] = (known & same & labels.fillna(False)).sum()
        same = tickets["customer_id"] == me["customer_id"]
        mine = earlier[same.loc[earlier.index]]
        row["customer_prior_tickets"] = len(mine)
        row["customer_prior_escalated"] = (known & same & labels.fillna(False)).sum()
        if len(mine):
            row["customer_days_since_last"] = (t - mine["created_at"].max()) / DAY
        rows.append(row)
    return pd.DataFrame(rows, index=tickets.index, dtype=float)


def test_matches_the_as_of_rule_written_out_ticket_by_ticket():
    tickets, labels = random_tickets(300, seed=1)
    fast = history_features(tickets, labels, AGENTS, window_days=7)
    assert list(fast.columns) == list(HISTORY_NAMES)
    assert (fast.dtypes == np.float64).all()
    pd.testing.assert_frame_equal(fast, naive_history(tickets, labels, AGENTS, 7), rtol=1e-12)


def test_entities_without_events_of_a_kind_count_zero_wherever_their_code_falls():
    # Only A1 and C1 (the first codes) ever escalate: the others' escalation counts are
    # searched at and past the end of the event arrays.
    tickets, labels = frame(
        [
            {"created": 0, "resolved": 1, "escalated": True, "agent": "A1", "customer": "C1"},
            {"created": 0, "resolved": 1, "escalated": False, "agent": "A2", "customer": "C3"},
            {"created": 2, "agent": "A2", "customer": "C3"},
            {"created": 2, "agent": "A3", "customer": "C4"},
            {"created": 3, "agent": "A1", "customer": "C1"},
        ]
    )
    h = history_features(tickets, labels, AGENTS)
    assert h["agent_prior_escalated"].tolist() == [0, 0, 0, 0, 1]
    assert h["customer_prior_escalated"].tolist() == [0, 0, 0, 0, 1]
    pd.testing.assert_frame_equal(h, naive_history(tickets, labels, AGENTS, 30), rtol=1e-12)


def test_an_outcome_resolved_after_creation_is_not_visible():
    tickets, labels = frame(
        [
            {"created": 0, "resolved": 5, "escalated": True},
            {"created": 3},  # while ticket 0 is still open
            {"created": 5},  # exactly at ticket 0's resolution: not yet known
            {"created": 6},  # after it: known
        ]
    )
    h = history_features(tickets, labels, AGENTS)
    assert h["agent_prior_resolved"].tolist() == [0, 0, 0, 1]
    assert h["agent_prior_escalated"].tolist() == [0, 0, 0, 1]
    assert h["customer_prior_escalated"].tolist() == [0, 0, 0, 1]
    assert h["customer_prior_tickets"].tolist() == [0, 1, 2, 3]  # creation is known at once


def test_an_outcome_without_a_resolution_time_is_never_visible():
    """An export may flag an escalation on a still-open ticket: when it became known is unknown."""
    tickets, labels = frame([{"created": 0, "escalated": True}, {"created": 9}])
    h = history_features(tickets, labels, AGENTS)
    assert h["agent_prior_escalated"].tolist() == [0, 0]
    assert h["customer_prior_escalated"].tolist() == [0, 0]


def test_tickets_with_the_same_timestamp_do_not_see_each_other():
    tickets, labels = frame(
        [{"created": 0, "resolved": 0, "escalated": True}, {"created": 0}, {"created": 0}]
    )
    h = history_features(tickets, labels, AGENTS)
    assert (h["customer_prior_tickets"] == 0).all()
    assert (h["agent_recent_tickets"] == 0).all()
    assert (h["agent_prior_resolved"] == 0).all()
    assert h["customer_days_since_last"].isna().all()


def test_recent_ticket_window_includes_its_start_and_excludes_anything_older():
    second = pd.Timedelta(seconds=1) / DAY
    tickets, labels = frame(
        [
            {"created": 0, "customer": "C1"},
            {"created": 30, "customer": "C2"},  # exactly 30 days later: ticket 0 is in the window
            {"created": 30 + second, "customer": "C3"},  # ticket 0 has just left the window
        ]
    )
    h = history_features(tickets, labels, AGENTS, window_days=30)
    assert h["agent_recent_tickets"].tolist() == [0, 1, 1]


def test_unknown_or_missing_agents_and_first_tickets_are_nan_not_zero():
    tickets, labels = frame(
        [
            {"created": 0, "agent": "A1", "customer": "C1"},
            {"created": 1, "agent": "ghost", "customer": "C1"},
            {"created": 2, "agent": None, "customer": "C2"},
        ]
    )
    h = history_features(tickets, labels, AGENTS)
    assert h.loc[0, "agent_tenure_days"] == (T0 - AGENTS.hire_date[0]) / DAY
    assert np.isnan(h.loc[1, "agent_tenure_days"])  # not in the roster
    assert h.loc[1, "agent_recent_tickets"] == 0  # but its own ticket counts are known
    assert (
        h.loc[2, ["agent_tenure_days", "agent_recent_tickets", "agent_prior_resolved"]].isna().all()
    )
    assert np.isnan(h.loc[0, "customer_days_since_last"])
    assert h.loc[1, "customer_days_since_last"] == 1.0
    assert np.isnan(h.loc[2, "customer_days_since_last"])
    assert h.loc[2, "customer_prior_tickets"] == 0


def test_works_without_an_agent_roster_and_refuses_misaligned_labels():
    tickets, labels = frame([{"created": 0}, {"created": 1}])
    h = history_features(tickets, labels, None)
    assert h["agent_tenure_days"].isna().all()
    assert h["agent_recent_tickets"].tolist() == [0, 1]
    with pytest.raises(ValueError, match="aligned"):
        history_features(tickets, labels.iloc[::-1], None)


def test_appending_future_tickets_changes_no_earlier_feature():
    """THE leakage test: the past does not depend on what happens next."""
    past, past_labels = random_tickets(400, seed=2)
    future, future_labels = random_tickets(200, seed=3, start=past["created_at"].max() + DAY)
    future.index += len(past)
    future_labels.index = future.index
    both = pd.concat([past, future])
    both_labels = pd.concat([past_labels, future_labels])

    before = history_features(past, past_labels, AGENTS)
    after = history_features(both, both_labels, AGENTS)
    pd.testing.assert_frame_equal(after.loc[past.index], before)


def test_each_ticket_matches_the_export_as_it_looked_at_its_creation():
    """Stronger than appending: hide every outcome not yet known and every later ticket."""
    tickets, labels = random_tickets(250, seed=4)
    full = history_features(tickets, labels, AGENTS)
    for i in np.random.default_rng(0).choice(len(tickets), 25, replace=False):
        t = tickets["created_at"][i]
        then = tickets[tickets["created_at"] <= t].copy()
        not_yet = ~(then["resolved_at"] < t)
        then.loc[not_yet, "resolved_at"] = pd.NaT
        then_labels = labels[then.index].mask(not_yet)
        at_creation = history_features(then, then_labels, AGENTS)
        pd.testing.assert_series_equal(at_creation.loc[i], full.loc[i])


def test_snapshot_lookup_equals_history_of_a_ticket_appended_at_that_time(tmp_path: Path):
    tickets, labels = random_tickets(400, seed=5)
    # End the data on a creation (outcomes after it are not known yet), so that lookups at
    # as_of meet same-time tickets and the last window still holds tickets.
    end = tickets["created_at"].max()
    pending = ~(tickets["resolved_at"] < end)
    tickets["resolved_at"] = tickets["resolved_at"].mask(pending)
    labels = labels.mask(pending)
    twin = tickets.iloc[[-1]].assign(ticket_id="twin").set_axis([len(tickets)])
    tickets = pd.concat([tickets, twin])
    labels = pd.concat([labels, labels.iloc[[-1]].set_axis(twin.index)])
    roster = pd.concat(
        [AGENTS, AGENTS.assign(agent_id=["A3", "new_hire"], hire_date=T0 + 100 * DAY)]
    )
    build_snapshot(tickets, labels, roster, window_days=7).save(tmp_path)
    snapshot = HistorySnapshot.load(tmp_path)  # as a registered model holds it
    as_of = snapshot.as_of
    assert as_of == end and (tickets["created_at"] == end).sum() > 1

    last = tickets.iloc[-1]
    cases = [
        (last["agent_id"], last["customer_id"], as_of),  # ties at as_of are not visible
        ("A2", last["customer_id"], as_of + pd.Timedelta(seconds=1)),
        ("A3", tickets["customer_id"][0], as_of + 3 * DAY),
        ("A4", "C0", as_of + 8 * DAY),  # A4 is not on the roster
        ("new_hire", "brand-new", as_of + DAY),
        ("ghost", "brand-new", as_of + 400 * DAY),
        (None, tickets["customer_id"][10], as_of + DAY),
    ]
    for agent, customer, when in cases:
        new = pd.DataFrame(
            {
                "ticket_id": ["NEW"],
                "created_at": [when],
                "resolved_at": pd.Series([pd.NaT], dtype="datetime64[us, UTC]"),
                "customer_id": pd.array([customer], dtype="str"),
                "agent_id": pd.array([agent], dtype="str"),
            },
            index=[10_000],
        )
        appended = pd.concat([tickets, new])
        appended_labels = pd.concat([labels, pd.Series([pd.NA], index=[10_000], dtype="boolean")])
        expected = history_features(appended, appended_labels, roster, window_days=7).loc[10_000]
        values, flags = snapshot.lookup(agent, customer, when.to_pydatetime())
        assert list(values) == list(HISTORY_NAMES)
        np.testing.assert_array_equal(
            list(values.values()), expected.to_numpy(), err_msg=str(agent)
        )
        assert "before_snapshot" not in flags


def test_snapshot_flags_say_why_a_value_is_a_cold_start_default():
    tickets, labels = frame([{"created": 0, "agent": "A1", "customer": "C1"}])
    snapshot = build_snapshot(tickets, labels, AGENTS)
    later = T0 + DAY

    values, flags = snapshot.lookup("ghost", "nobody", later)
    assert set(flags) == {"unknown_agent", "new_agent", "new_customer"}
    assert np.isnan(values["agent_tenure_days"]) and values["agent_prior_resolved"] == 0
    assert np.isnan(values["customer_days_since_last"]) and values["customer_prior_tickets"] == 0

    values, flags = snapshot.lookup("A2", "C1", later)  # on the roster, no tickets yet
    assert flags == ["new_agent"]
    assert values["agent_tenure_days"] == (later - AGENTS.hire_date[1]) / DAY

    assert snapshot.lookup(None, None, later)[1] == ["no_agent", "no_customer"]
    assert snapshot.lookup("A1", "C1", T0 - DAY)[1] == [
        "before_snapshot",
        "new_agent",
        "new_customer",
    ]
    naive = snapshot.lookup("A1", "C1", later.tz_localize(None).to_pydatetime())[0]
    assert naive["customer_days_since_last"] == 1.0  # naive times are read as UTC


def test_history_halves_need_only_their_own_entity_tickets():
    tickets, labels = random_tickets(300, seed=8)
    whole = history_features(tickets, labels, AGENTS, 7)
    for rows in tickets.groupby("agent_id").groups.values():
        alone = agent_history(tickets.loc[rows], labels.loc[rows], AGENTS, 7)
        pd.testing.assert_frame_equal(alone, whole.loc[rows, list(AGENT_HISTORY)], check_exact=True)
    for rows in tickets.groupby("customer_id").groups.values():
        alone = customer_history(tickets.loc[rows], labels.loc[rows])
        pd.testing.assert_frame_equal(
            alone, whole.loc[rows, list(CUSTOMER_HISTORY)], check_exact=True
        )


def test_snapshot_from_events_folded_over_any_split_equals_the_whole():
    tickets, labels = random_tickets(400, seed=5)
    whole = build_snapshot(tickets, labels, AGENTS, 10)
    parts = [tickets.iloc[i::3] for i in range(3)]  # every entity spread over all parts
    as_of = max(latest_known(p, labels.loc[p.index]) for p in parts)
    cutoff = as_of - 10 * DAY.value
    events = pd.concat([snapshot_events(p, labels.loc[p.index], cutoff) for p in parts])
    split = snapshot_from_events(fold_events(events, cutoff), as_of, AGENTS, 10)
    assert split.as_of == whole.as_of
    for when in (whole.as_of, whole.as_of + 3 * DAY):
        for agent, customer in [*zip(tickets["agent_id"], tickets["customer_id"]), ("A2", "C?")]:
            assert split.lookup(agent, customer, when) == whole.lookup(agent, customer, when)


def test_an_export_without_any_agent_has_history_without_agent_values() -> None:
    """Event logs often name no assignee at creation: agent columns are missing, not an error."""
    created = pd.date_range("2024-01-01", periods=4, freq="D", tz="UTC")
    tickets = pd.DataFrame(
        {
            "ticket_id": ["T1", "T2", "T3", "T4"],
            "created_at": created,
            "resolved_at": created + pd.Timedelta(hours=2),
            "customer_id": ["C1", "C1", "C2", "C1"],
            "agent_id": pd.Series([None] * 4, dtype="str"),
        }
    )
    labels = pd.Series([True, False, False, True], dtype="boolean")
    history = history_features(tickets, labels, None)
    assert history[["agent_tenure_days", "agent_recent_tickets"]].isna().all().all()
    assert history["customer_prior_tickets"].tolist() == [0, 1, 0, 2]
    assert history["customer_prior_escalated"].tolist() == [0, 1, 0, 1]


def test_a_saved_snapshot_loads_back_field_for_field(tmp_path: Path):
    tickets, labels = random_tickets(300, seed=8)
    roster = pd.concat([AGENTS, AGENTS.assign(agent_id=["idle", "new_hire"])])  # no tickets
    snapshot = build_snapshot(tickets, labels, roster, window_days=7)
    snapshot.save(tmp_path)

    loaded = HistorySnapshot.load(tmp_path)

    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "agents.parquet", "customers.parquet", "events.parquet", "snapshot.json"
    ]
    assert (loaded.as_of, loaded.window_days) == (snapshot.as_of, snapshot.window_days)
    assert loaded.agent_codes == snapshot.agent_codes
    assert loaded.customer_codes == snapshot.customer_codes
    np.testing.assert_array_equal(loaded.hire, snapshot.hire, strict=True)
    for stream in ("agent_created", "agent_resolved", "agent_escalated", "customer_created",
                   "customer_escalated"):
        for part in ("base_count", "base_latest", "offsets", "tail"):
            np.testing.assert_array_equal(
                getattr(getattr(loaded, stream), part), getattr(getattr(snapshot, stream), part),
                strict=True, err_msg=f"{stream}.{part}",
            )
