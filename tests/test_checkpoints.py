"""Checkpoints of open tickets are strictly point in time (issue 17, item 2).

Every test writes its own tiny event log: a few tickets, a few updates each.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from escpredict.config import LabelConfig, OpenTicketConfig
from escpredict.contract import LABEL, STATE_NAMES
from escpredict.ingest.mapping import Mapping
from escpredict.labels.checkpoints import Timing, build_checkpoints, open_at
from escpredict.labels.state import EventStream, WaitStatuses, state_of
from escpredict.labels.values import epoch_ns

START = pd.Timestamp("2024-03-04 08:00", tz="UTC")
CFG = OpenTicketConfig(ages=["0", "1h", "4h", "1d"])
WAITS = WaitStatuses(CFG.wait_statuses)


def hours(h: float) -> pd.Timestamp:
    return START + pd.Timedelta(hours=h)


def event(ticket: str, at: float, status: str, tier: int | None = 1, queue: str | None = "Net L1",
          assignee: str | None = "a1") -> dict:
    return {"ticket_id": ticket, "event_time": hours(at), "event_status": status,
            "event_tier": tier, "event_queue": queue, "event_assignee": assignee}


def frame(events: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(events).astype({
        "ticket_id": "str", "event_status": "str", "event_tier": "Int64",
        "event_queue": "str", "event_assignee": "str",
    })


def mapping(**derive: object) -> Mapping:
    """An event mapping naming the columns the events above carry."""
    return Mapping.model_validate({
        "level": "events",
        "events": {"time": "t", "status": "s", "tier": "l", "queue": "q", "assignee": "a"},
        "derive": {"resolved_at": {"time": "last", "where": {"status": ["Resolved"]}}, **derive},
    })


def tickets_of(events: pd.DataFrame, **columns: object) -> pd.DataFrame:
    """The collapsed tickets the label rules need (what ``collapse_events`` derives)."""
    first = events.sort_values("event_time", kind="stable").groupby("ticket_id", sort=False)
    out = pd.DataFrame({
        "ticket_id": first["ticket_id"].first().to_numpy(),
        "created_at": first["event_time"].first().to_numpy(),
        "initial_tier": first["event_tier"].first().to_numpy(),
        "final_tier": first["event_tier"].max().to_numpy(),
        "agent_id": first["event_assignee"].first().to_numpy(),
    })
    return out.assign(**columns)


def snapshots(events: pd.DataFrame, labels: list[bool], rules=("tier_raised",), **derive):
    tickets = tickets_of(events)
    timing = Timing.of(LabelConfig(rules=list(rules)), mapping(**derive))
    label = pd.Series(labels, index=tickets.index, dtype="boolean")
    return build_checkpoints(tickets, events, label, timing, CFG), tickets


def log() -> pd.DataFrame:
    """T1 escalates at 2 h (to tier 2, queue Net L2); T2 is resolved at 3 h; T3 stays open
    a day and a half, waiting on the customer from 5 h to 10 h."""
    return frame([
        event("T1", 0, "New", assignee=None),
        event("T1", 0.5, "Active"),
        event("T1", 2, "Active", tier=2, queue="Net L2", assignee="b7"),
        event("T1", 30, "Resolved", tier=2, queue="Net L2", assignee="b7"),
        event("T2", 0, "New", assignee=None),
        event("T2", 3, "Resolved"),
        event("T3", 0, "New", assignee=None),
        event("T3", 5, "Awaiting User"),
        event("T3", 10, "Active", queue="Net L1 East"),
        event("T3", 36, "Resolved", queue="Net L1 East"),
    ])


def test_a_ticket_escalated_or_resolved_by_a_checkpoint_is_not_in_its_population():
    snaps, tickets = snapshots(log(), [True, False, False])
    ages = {t: sorted(snaps.loc[snaps["ticket"] == i, "band"]) for i, t in tickets["ticket_id"].items()}
    assert ages == {"T1": [0, 1], "T2": [0, 1], "T3": [0, 1, 2, 3]}
    assert snaps.loc[snaps["ticket"] == 0, LABEL].all()  # T1 escalates later, at 2 h


def test_the_label_never_leaks_through_a_queue_whose_name_reveals_the_tier():
    """T1's queue "Net L2" is taken at its escalation, after the 1 h checkpoint: the 1 h
    snapshot must read the queue it was in then, never the one that gives the label away."""
    snaps, _ = snapshots(log(), [True, False, False])
    t1 = snaps[snaps["ticket"] == 0].set_index("band")
    assert t1.loc[1, "queue_now"] == "Net L1"
    assert t1.loc[1, "tier_now"] == 1
    assert not snaps["queue_now"].str.contains("L2").any()


def test_appending_later_events_never_changes_an_earlier_snapshot():
    events = log()
    before, _ = snapshots(events, [True, False, False])
    later = frame([
        event("T3", 1.5, "Active", queue="Net L2"),  # after the 1 h checkpoint
        event("T1", 1.0001, "Active", tier=3, queue="Net L3"),  # a hair after 1 h
        event("T4", 0.5, "New"),  # a new ticket
    ])
    appended = pd.concat([events, later], ignore_index=True)
    tickets = tickets_of(appended)
    timing = Timing.of(LabelConfig(rules=["tier_raised"]), mapping())
    label = pd.Series([True, False, False, False], index=tickets.index, dtype="boolean")
    after = build_checkpoints(tickets, appended, label, timing, CFG)
    key = ["ticket", "band"]
    early = before[before["as_of"] <= epoch_ns(pd.Series([hours(1)]))[0]].set_index(key)
    again = after.set_index(key).loc[early.index]
    pd.testing.assert_frame_equal(early[list(STATE_NAMES)], again[list(STATE_NAMES)])


def test_state_reads_the_latest_value_waits_and_moves_up_to_as_of():
    snaps, _ = snapshots(log(), [True, False, False])
    t3 = snaps[snaps["ticket"] == 2].set_index("band")
    day = t3.loc[3]
    assert day["status_now"] == "Active"
    assert day["queue_now"] == "Net L1 East"
    assert day["queue_changes"] == 1
    assert day["hours_since_queue_change"] == pytest.approx(14)
    assert day["waiting_hours"] == pytest.approx(5)  # from 5 h to 10 h
    assert day["events_so_far"] == 3
    assert day["hours_since_update"] == pytest.approx(14)
    assert t3.loc[2, "waiting_hours"] == 0  # at 4 h it had not waited yet
    assert (t3.loc[1, "assigned_now"], day["assigned_now"]) == (0, 1)


def test_an_escalation_rule_events_cannot_time_keeps_the_ticket_at_creation_only():
    """A flag given as a ticket column may mean the ticket escalated at any moment, so it
    joins no later age's population (conservative), while a timed rule's ticket does."""
    events = log()
    tickets = tickets_of(events, escalated=[False, False, True])
    timing = Timing.of(LabelConfig(rules=["explicit_flag", "tier_raised"]), mapping())
    assert set(timing.untimed()) == {"explicit_flag"}
    label = pd.Series([True, False, True], index=tickets.index, dtype="boolean")
    snaps = build_checkpoints(tickets, events, label, timing, CFG)
    assert sorted(snaps.loc[snaps["ticket"] == 2, "band"]) == [0]
    assert sorted(snaps.loc[snaps["ticket"] == 0, "band"]) == [0, 1]


def test_a_derived_flag_is_timed_at_the_event_that_raises_it():
    events = log()
    tickets = tickets_of(events)
    timing = Timing.of(
        LabelConfig(rules=["explicit_flag"]),
        mapping(escalated={"moved_to": {"queue": ["Net L1 East"]}}),
    )
    assert timing.untimed() == {}
    label = pd.Series([False, False, True], index=tickets.index, dtype="boolean")
    snaps = build_checkpoints(tickets, events, label, timing, CFG)
    assert sorted(snaps.loc[snaps["ticket"] == 2, "band"]) == [0, 1, 2]  # moved at 10 h


def test_a_ticket_passed_to_someone_else_leaves_the_population_when_it_is_passed_on():
    """resolver_differs is known only at resolution; the instant the ticket goes to someone
    other than its first handler is when it has been passed on."""
    events = frame([
        event("T1", 0, "New", assignee=None),
        event("T1", 0.5, "Active", assignee="a1"),
        event("T1", 2, "Active", assignee="b7"),
        event("T1", 30, "Resolved", assignee="b7"),
    ])
    snaps, _ = snapshots(events, [True], rules=("resolver_differs",))
    assert sorted(snaps["band"]) == [0, 1]


def test_reassignments_past_the_limit_end_the_ticket_s_open_life():
    people = ["a1", "b1", "c1", "d1"]
    events = frame([event("T1", 0.5 * k, "Active", assignee=p) for k, p in enumerate(people)]
                   + [event("T1", 48, "Resolved", assignee="d1")])
    snaps, _ = snapshots(events, [True], rules=("reassignments",))  # 3 changes > 2 at 1.5 h
    assert sorted(snaps["band"]) == [0, 1]
    assert snaps["assignee_changes"].max() == 2  # at 1 h: a1 → b1 → c1 (that one at 1 h sharp)


def test_the_watch_population_is_what_was_open_and_unescalated_then():
    events = log()
    tickets = tickets_of(events)
    timing = Timing.of(LabelConfig(rules=["tier_raised"]), mapping())
    now = open_at(tickets, events, timing, hours(2.5), WAITS)
    assert tickets.loc[now["ticket"], "ticket_id"].tolist() == ["T2", "T3"]
    assert now["age_hours"].tolist() == [2.5, 2.5]


def test_one_ticket_s_state_equals_the_state_computed_for_many(tmp_path):
    """The scoring path (``state_of``, dicts) and the training path (``EventStream``) agree
    on random logs with sparse columns, ties and waits."""
    rng = np.random.default_rng(3)
    rows = []
    for t in range(60):
        n = int(rng.integers(1, 8))
        offsets = np.sort(rng.integers(0, 80 * 3600, n))
        offsets[0] = 0
        for k in range(n):
            rows.append({
                "ticket_id": f"T{t}", "event_time": START + pd.Timedelta(seconds=int(offsets[k])),
                "event_status": rng.choice(["New", "Active", "Awaiting User", "On hold", None]),
                "event_tier": rng.choice([1, 2, None]), "event_queue": rng.choice(["A", "B", None]),
                "event_assignee": rng.choice(["x", "y", None]),
            })
    events = frame(rows)
    stream = EventStream.build(events, WAITS)
    created = events.groupby("ticket_id")["event_time"].min()
    queries = [(t, created[t] + pd.Timedelta(hours=h)) for t in created.index
               for h in (0, 0.25, 3, 20, 200)]
    ids = pd.Series([t for t, _ in queries])
    at = pd.Series([when for _, when in queries])
    many = stream.at(stream.ids.get_indexer(ids), epoch_ns(at), epoch_ns(ids.map(created)))
    for k, (ticket, when) in enumerate(queries):
        mine = events[events["ticket_id"] == ticket]
        dicts = [{"time": int(e.event_time.value), "status": e.event_status, "tier": e.event_tier,
                  "queue": e.event_queue, "assignee": e.event_assignee}
                 for e in mine.itertuples()]
        one = state_of(int(created[ticket].value), dicts, int(when.value), WAITS)
        for name, value in one.items():
            other = many.iloc[k][name]
            if value is None or (isinstance(value, float) and math.isnan(value)):
                assert pd.isna(other), (ticket, when, name)
            else:
                assert other == pytest.approx(value), (ticket, when, name)


def test_after_updates_adds_a_snapshot_at_each_update_in_its_age_band():
    """T3 (updates at 5 h, 10 h, resolved at 36 h) also gets snapshots right after 5 h and
    10 h, both in the 4h band, each seeing that update."""
    events = log()
    tickets = tickets_of(events)
    timing = Timing.of(LabelConfig(rules=["tier_raised"]), mapping())
    label = pd.Series([True, False, False], index=tickets.index, dtype="boolean")
    cfg = OpenTicketConfig(ages=CFG.ages, after_updates=True)
    snaps = build_checkpoints(tickets, events, label, timing, cfg)
    t3 = snaps[snaps["ticket"] == 2]
    assert t3["age_hours"].tolist() == [0, 1, 4, 5, 10, 24]
    assert t3["band"].tolist() == [0, 1, 2, 2, 2, 3]
    assert t3.set_index("age_hours").loc[5, "status_now"] == "Awaiting User"
    t1 = snaps[snaps["ticket"] == 0]  # its update at 0.5 h is in the creation band: no row
    assert t1["age_hours"].tolist() == [0, 1]


def test_a_snapshot_knows_the_ticket_s_agent_only_once_assigned():
    """An event export learns a ticket's agent (its first handler) at the first assignment,
    possibly after creation: snapshots before it must score the ticket without one."""
    snaps, _ = snapshots(log(), [True, False, False])
    t1 = snaps[snaps["ticket"] == 0].set_index("band")  # a1 assigned at 0.5 h
    assert (bool(t1.loc[0, "agent_known"]), bool(t1.loc[1, "agent_known"])) == (False, True)
    t3 = snaps[snaps["ticket"] == 2].set_index("band")  # a1 assigned at 5 h
    assert t3["agent_known"].tolist() == [False, False, False, True]
