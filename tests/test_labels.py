"""Escalation labels: which tickets count as escalated, and who counts as first handler."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from escpredict.config import LabelConfig
from escpredict.labels.rules import (
    LabelError,
    first_handler,
    label_tickets,
    rule_votes,
    unlabelled,
)

RESOLVED = pd.Timestamp("2024-01-02", tz="UTC")
CFG = LabelConfig()


def tickets(*rows: dict) -> pd.DataFrame:
    """Resolved tickets at tier 1 with no reassignments, unless a row says otherwise."""
    base = {
        "ticket_id": None,
        "agent_id": None,
        "first_responder_id": None,
        "first_responder_role": None,
        "resolver_id": None,
        "resolved_at": RESOLVED,
        "initial_tier": 1,
        "final_tier": 1,
        "reassignment_count": 0,
    }
    frame = pd.DataFrame([base | {"ticket_id": f"T{i}"} | r for i, r in enumerate(rows, 1)])
    return frame.astype({"initial_tier": "Int64", "final_tier": "Int64"})


def labels(frame: pd.DataFrame, cfg: LabelConfig = CFG, agents=None) -> list:
    return label_tickets(frame, cfg, agents).tolist()


ONLY_RESOLVER = LabelConfig(rules=["resolver_differs"])


def test_coordinator_assigned_and_the_assigned_agent_resolved_is_not_escalated():
    frame = tickets(
        {
            "first_responder_id": "d1",
            "first_responder_role": "coordinator",
            "resolver_id": "a1",
            "agent_id": "a1",
        },
    )
    assert labels(frame) == [False]


def test_coordinator_first_touch_leaves_the_resolver_rule_unable_to_judge():
    frame = tickets(
        {"first_responder_id": "d1", "first_responder_role": "coordinator", "resolver_id": "a1"},
    )
    assert labels(frame) == [False]  # tier and reassignments judge it; resolver rule abstains
    with pytest.raises(LabelError, match="T1"):
        labels(frame, ONLY_RESOLVER)


def test_coordinator_assigned_and_a_different_agent_resolved_is_escalated():
    frame = tickets(
        {
            "first_responder_id": "d1",
            "first_responder_role": "coordinator",
            "agent_id": "a1",
            "resolver_id": "s1",
        },
    )
    assert labels(frame) == [True]


def test_agent_who_first_responded_and_resolved_is_not_escalated():
    frame = tickets(
        {"first_responder_id": "a1", "first_responder_role": "agent", "resolver_id": "a1"}
    )
    assert labels(frame) == [False]


def test_agent_first_responded_and_a_senior_resolved_is_escalated():
    frame = tickets(
        {"first_responder_id": "a1", "first_responder_role": "agent", "resolver_id": "s1"}
    )
    assert labels(frame, ONLY_RESOLVER) == [True]


def test_dispatcher_first_touch_is_excluded_like_a_coordinator():
    frame = tickets(
        {"first_responder_id": "d1", "first_responder_role": "Dispatcher", "resolver_id": "a1"}
    )
    assert first_handler(frame, CFG).isna().all()
    assert labels(frame) == [False]  # judged by the tier and reassignment rules only


def test_role_comes_from_the_agents_table_when_the_export_has_no_role_column():
    frame = tickets({"first_responder_id": "d1", "resolver_id": "a1"}).drop(
        columns="first_responder_role"
    )
    agents = pd.DataFrame({"agent_id": ["d1", "a1"], "role": ["dispatcher", "agent"]})
    with pytest.raises(LabelError):  # d1 is a dispatcher, so nobody handled it first
        labels(frame, ONLY_RESOLVER, agents)
    assert labels(frame, ONLY_RESOLVER, None) == [True]  # without roles d1 counts as handler


def test_open_ticket_has_no_label():
    frame = tickets({"first_responder_id": "a1", "resolver_id": "s1", "resolved_at": pd.NaT})
    assert labels(frame)[0] is pd.NA


def test_resolved_ticket_no_rule_can_judge_names_its_row():
    frame = tickets(
        {"agent_id": "a1", "resolver_id": "a1"},
        {"resolver_id": "a1", "final_tier": None, "reassignment_count": None},
    )
    with pytest.raises(LabelError, match=r"Rows \(ticket_id\): 2 \(T2\)") as info:
        labels(frame)
    assert info.value.rows == [2]


def test_a_few_tickets_no_rule_can_judge_are_set_aside_like_open_ones():
    """One empty reassignment count in 40 tickets: the ticket gets no label, training goes on."""
    rows = [{"reassignment_count": 3 if i % 4 == 0 else 0} for i in range(40)]
    rows[17] = {"reassignment_count": None}
    frame = tickets(*rows)
    only_count = LabelConfig(rules=["reassignments"], max_unlabelled_share=0.05)
    got = label_tickets(frame, only_count)
    assert got.isna().tolist() == [i == 17 for i in range(40)]
    left = unlabelled(frame, got)
    assert (left.rows, left.ticket_ids, left.resolved) == ([18], ["T18"], 40)
    assert left.describe(0.05).startswith("1 resolved ticket(s) no label rule can judge are set "
                                          "aside like open tickets (2.50% of 40 resolved")
    assert "Rows (ticket_id): 18 (T18)" in left.describe(0.05)


def test_more_unjudged_tickets_than_the_stated_share_stay_an_error_naming_share_and_limit():
    rows = [{"reassignment_count": None if i < 3 else 0} for i in range(40)]
    strict = LabelConfig(rules=["reassignments"], max_unlabelled_share=0.05)
    with pytest.raises(LabelError, match=r"7\.5% of 40 resolved tickets, more than "
                                         r"labels\.max_unlabelled_share 5%") as info:
        label_tickets(tickets(*rows), strict)
    assert info.value.rows == [1, 2, 3]
    assert label_tickets(tickets(*rows), strict.model_copy(update={"max_unlabelled_share": 0.1}))[
        :3].isna().all()


def test_tier_raise_and_many_reassignments_each_mark_escalation():
    frame = tickets(
        {"agent_id": "a1", "resolver_id": "a1", "final_tier": 2},
        {"agent_id": "a1", "resolver_id": "a1", "reassignment_count": 3},
        {"agent_id": "a1", "resolver_id": "a1", "reassignment_count": 2},
    )
    assert labels(frame) == [True, True, False]


def test_explicit_flag_wins_when_configured_and_is_one_vote_otherwise():
    frame = tickets(
        {"agent_id": "a1", "resolver_id": "s1", "escalated": False},
        {"agent_id": "a1", "resolver_id": "a1", "escalated": True},
        {"agent_id": "a1", "resolver_id": "s1", "escalated": None},
    )
    assert labels(frame) == [False, True, True]
    assert labels(frame, LabelConfig(explicit_flag_overrides=False)) == [True, True, True]


def test_rules_left_out_of_the_config_do_not_fire():
    frame = tickets({"agent_id": "a1", "resolver_id": "a1", "final_tier": 3})
    assert labels(frame, LabelConfig(rules=["resolver_differs"])) == [False]


def test_labels_keep_the_ticket_index():
    frame = tickets({"agent_id": "a1", "resolver_id": "s1"}).set_axis([42])
    assert label_tickets(frame, CFG).index.tolist() == [42]


def test_rule_votes_give_one_column_per_configured_rule_with_na_where_it_abstains():
    frame = tickets(
        {"agent_id": "a1", "resolver_id": "s1", "final_tier": 2},
        {"agent_id": "a1", "resolver_id": "a1", "final_tier": None},
    )
    votes = rule_votes(frame, LabelConfig(rules=["tier_raised", "resolver_differs"]))
    assert list(votes.columns) == ["tier_raised", "resolver_differs"]
    assert votes["tier_raised"].tolist() == [True, pd.NA]
    assert votes["resolver_differs"].tolist() == [True, False]


people = st.sampled_from(["a1", "a2", "s1", "d1"])


@settings(max_examples=60, deadline=None)
@given(
    handler=people,
    role=st.sampled_from([None, "agent", "senior", "coordinator", "dispatcher"]),
    as_agent_id=st.booleans(),
    tier=st.integers(1, 3),
    reassignments=st.integers(0, 2),
)
def test_first_handler_resolving_without_tier_raise_is_never_escalated(
    handler, role, as_agent_id, tier, reassignments
):
    row = {
        "resolver_id": handler,
        "initial_tier": tier,
        "final_tier": tier,
        "reassignment_count": reassignments,
    }
    row |= (
        {"agent_id": handler}
        if as_agent_id
        else {"first_responder_id": handler, "first_responder_role": role}
    )
    assert labels(tickets(row)) == [False]


@settings(max_examples=60, deadline=None)
@given(first=people, resolver=people, role=st.sampled_from(["coordinator", "dispatcher"]))
def test_a_coordinator_is_never_the_first_handler(first, resolver, role):
    frame = tickets(
        {"first_responder_id": first, "first_responder_role": role, "resolver_id": resolver}
    )
    assert first_handler(frame, CFG).isna().all()
    assert labels(frame) == [False]
