"""The report's tables, checked against small hand-built data with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2

from escpredict.report import fairness, kpis, underescalation
from escpredict.report.drivers import display_name, short_name, word_counts


def tickets_for(group: str, n: int, escalated: int, p: float) -> pd.DataFrame:
    """n tickets of one agent, `escalated` of them escalated, each expected with probability p."""
    return pd.DataFrame({
        "agent_id": group,
        "escalated": np.arange(n) < escalated,
        "expected": p,
    })


def test_observed_expected_counts_ratio_and_exact_poisson_interval() -> None:
    frame = tickets_for("A", 100, 30, 0.1)
    row = fairness.observed_expected(frame, ["agent_id"]).iloc[0]
    assert (row["n"], row["observed"]) == (100, 30)
    assert row["expected"] == pytest.approx(10.0)
    assert row["ratio"] == pytest.approx(3.0)
    # Garwood: [chi2(0.025, 2*30)/2, chi2(0.975, 2*31)/2] / expected
    assert row["ci_low"] == pytest.approx(chi2.ppf(0.025, 60) / 2 / 10)
    assert row["ci_high"] == pytest.approx(chi2.ppf(0.975, 62) / 2 / 10)
    assert row["ci_low"] == pytest.approx(2.024, abs=1e-3)
    assert row["flag"] and row["status"] == fairness.ABOVE


def test_interval_with_no_events_starts_at_zero() -> None:
    low, high = fairness.poisson_ratio_interval(np.array([0]), np.array([5.0]))
    assert low[0] == 0.0
    assert high[0] == pytest.approx(-np.log(0.025) / 5.0)  # exact upper bound for 0 events


def test_status_says_above_below_or_as_expected_from_the_interval() -> None:
    frame = pd.concat([
        tickets_for("high", 100, 30, 0.1),   # 3.0x, interval above 1
        tickets_for("low", 200, 5, 0.15),    # 5 vs 30 expected, interval below 1
        tickets_for("usual", 100, 11, 0.1),  # 1.1x, interval straddles 1
    ])
    table = fairness.observed_expected(frame, ["agent_id"]).set_index("agent_id")
    assert table.loc["high", "status"] == fairness.ABOVE
    assert table.loc["low", "status"] == fairness.BELOW
    assert table.loc["usual", "status"] == fairness.AS_EXPECTED
    assert list(table.index) == ["high", "usual", "low"]  # highest ratio first
    assert table["flag"].tolist() == [True, False, False]


def test_small_cells_say_not_enough_data_and_are_not_ranked() -> None:
    frame = pd.concat([
        tickets_for("few tickets", 29, 29, 0.5),     # n < 30, however extreme
        tickets_for("few expected", 400, 40, 0.01),  # expected 4 < 5
        tickets_for("enough", 30, 3, 0.2),           # n = 30, expected = 6
    ])
    table = fairness.observed_expected(frame, ["agent_id"]).set_index("agent_id")
    for name in ("few tickets", "few expected"):
        assert table.loc[name, "status"] == fairness.NOT_ENOUGH
        assert not table.loc[name, "flag"]
        assert table.loc[name, ["ratio", "ci_low", "ci_high"]].isna().all()
    assert table.loc["enough", "ratio"] == pytest.approx(0.5)
    assert table.index[0] == "enough"  # rows with a ratio come first


def test_cells_group_on_several_keys() -> None:
    frame = pd.concat([
        tickets_for("x", 40, 8, 0.1).assign(team="T1", category="Billing"),
        tickets_for("y", 40, 2, 0.1).assign(team="T1", category="Outage"),
    ])
    table = fairness.observed_expected(frame, ["team", "category"])
    got = table.set_index(["team", "category"])["observed"].to_dict()
    assert got == {("T1", "Billing"): 8, ("T1", "Outage"): 2}


def test_peer_scale_makes_the_window_total_one() -> None:
    observed = pd.Series([True, False, True, False])
    expected = pd.Series([0.5, 0.5, 0.25, 0.25])
    assert fairness.peer_scale(observed, expected) == pytest.approx(2 / 1.5)


def test_finding_reads_as_one_plain_line() -> None:
    row = pd.Series({"ratio": 2.1, "ci_low": 1.6, "ci_high": 2.7, "observed": 42, "expected": 20.0})
    line = fairness.finding({"tenure_band": "<3m", "category": "Billing/refunds"}, row,
                            ["'chargeback'", "priority high"])
    assert line == (
        "agents under 3 months on Billing/refunds: 2.1× expected escalations "
        "(1.6-2.7; 42 observed vs 20.0 expected); drivers: 'chargeback', priority high"
    )


def kpi_tickets() -> pd.DataFrame:
    t0 = pd.Timestamp("2024-01-10", tz="UTC")
    feb = pd.Timestamp("2024-02-03", tz="UTC")
    hours = pd.to_timedelta
    return pd.DataFrame({
        "created_at": [t0, t0, t0, t0, feb],
        "resolved_at": [t0 + hours("2h"), t0 + hours("10h"), t0 + hours("4h"), pd.NaT, feb + hours("1h")],
        "escalated": pd.array([False, True, False, pd.NA, False], dtype="boolean"),
        "reopened": pd.array([False, False, True, pd.NA, False], dtype="boolean"),
        "agents_involved": pd.array([1, 3, 1, 1, pd.NA], dtype="Int64"),
        "csat": [5.0, 2.0, np.nan, np.nan, 4.0],
    }).assign(resolution_hours=lambda f: kpis.resolution_hours(f))


def test_monthly_kpis_follow_their_definitions() -> None:
    table = kpis.monthly_kpis(kpi_tickets()).set_index("month")
    jan = table.loc["2024-01"]
    assert (jan["tickets"], jan["resolved"]) == (4, 3)
    assert jan["escalation_rate"] == pytest.approx(1 / 3)
    assert jan["first_contact_resolution"] == pytest.approx(1 / 3)  # the reopened one is not
    assert jan["resolved_without_escalation"] == pytest.approx(2 / 4)  # open ticket counts
    assert jan["median_hours_escalated"] == pytest.approx(10.0)
    assert jan["median_hours_not_escalated"] == pytest.approx(3.0)
    assert jan["agents_per_escalated"] == pytest.approx(3.0)
    assert jan["csat_after_escalation"] == pytest.approx(2.0)
    feb = table.loc["2024-02"]
    assert feb["first_contact_resolution"] == 1.0  # unknown agents_involved is not held against it
    assert np.isnan(feb["csat_after_escalation"])


def held_tickets(agent: str, n: int, bad: int, category: str = "Billing") -> pd.DataFrame:
    return pd.DataFrame({
        "agent_id": agent,
        "category": category,
        "probability": 0.8,
        "escalated": False,
        "reopened": np.arange(n) < bad,
        "csat": 4.0,
        "resolution_hours": 1.0,
    })


def test_bad_outcomes_are_reopened_low_csat_or_twice_the_category_median() -> None:
    frame = pd.DataFrame({
        "category": ["A"] * 4,
        "escalated": [False, False, False, True],
        "reopened": pd.array([True, False, False, pd.NA], dtype="boolean"),
        "csat": [5.0, 2.0, np.nan, 1.0],
        "resolution_hours": [1.0, 2.0, 4.1, 50.0],  # median of non-escalated: 2.0
    })
    outcomes = underescalation.bad_outcomes(frame)
    assert outcomes["reopened"].tolist() == [True, False, False, False]
    assert outcomes["low_csat"].tolist() == [False, True, False, True]
    assert outcomes["slow"].tolist() == [False, False, True, True]


def test_under_escalation_compares_agents_with_peers_on_held_high_risk_tickets() -> None:
    frame = pd.concat([
        held_tickets("holder", 40, 20),
        held_tickets("peer", 160, 20),
        held_tickets("peer", 100, 0).assign(probability=0.1),  # not high risk: ignored
        held_tickets("peer", 50, 50).assign(escalated=True),  # escalated: ignored
    ], ignore_index=True)
    table = underescalation.under_escalation(frame, high_risk=0.5).set_index("agent_id")
    # peer rate on held high-risk Billing tickets: 40 bad / 200 held = 0.2
    assert table.loc["holder", ["n", "observed"]].tolist() == [40, 20]
    assert table.loc["holder", "expected"] == pytest.approx(8.0)
    assert table.loc["holder", "status"] == fairness.ABOVE
    assert table.loc["holder", "reopened"] == 20
    assert table.loc["peer", "n"] == 160


def test_top_resolvers_count_escalated_tickets_only() -> None:
    frame = pd.DataFrame({
        "ticket_id": list("abcde"),
        "resolver_id": ["S1", "S1", "S2", "S2", "S2"],
        "escalated": [True, True, True, False, False],
        "resolution_hours": [10.0, 20.0, 30.0, 1.0, 1.0],
        "csat": [4.0, np.nan, 2.0, 5.0, 5.0],
    })
    table = fairness.top_resolvers(frame)
    assert table["resolver_id"].tolist() == ["S1", "S2"]
    assert table["escalated_resolved"].tolist() == [2, 1]
    assert table.loc[0, "median_resolution_hours"] == 15.0
    assert table.loc[0, "share_of_escalations"] == pytest.approx(2 / 3)


def test_character_ngrams_are_named_after_the_commonest_word_containing_them() -> None:
    words = word_counts(["Refund please, refund now", "refunded? Prefer a fund"])
    assert display_name("text contains ' refu'", words) == "words like 'refund'"
    assert display_name("text contains 'fund '", words) == "words like 'refund'"
    assert display_name("text contains 'zzz'", words) == "text containing 'zzz'"
    assert display_name("word 'refund'", words) == "word 'refund'"
    assert short_name("word 'refund'") == "'refund'"
    assert short_name("priority = high") == "priority high"
