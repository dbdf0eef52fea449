"""The report's tables, checked against small hand-built data with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2

from escpredict.labels.maturity import Maturity
from escpredict.report import drivers, fairness, kpis, sections, underescalation
from escpredict.report.build import mature_tickets
from escpredict.report.render import Table, html_rows, write_tables


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
    assert table["flag"].to_dict() == {"high": True, "low": False, "usual": False}


def test_tables_list_the_strongest_evidence_first_and_unjudged_groups_last() -> None:
    frame = pd.concat([
        tickets_for("small but clear", 40, 16, 0.1),  # 16 vs 4: not enough expected, unjudged
        tickets_for("mild", 100, 11, 0.1),            # 11 vs 10: within noise
        tickets_for("big team, 1.3x", 2000, 260, 0.1),  # 260 vs 200: modest ratio, strong evidence
        tickets_for("small agent, 2x", 50, 10, 0.1),    # 10 vs 5: high ratio, weak evidence
        tickets_for("too few", 10, 9, 0.5),
        tickets_for("quiet", 200, 8, 0.1),              # 8 vs 20: below expected
    ])
    table = fairness.observed_expected(frame, ["agent_id"])
    assert table["agent_id"].tolist() == [
        "big team, 1.3x", "quiet",  # significant, largest |z| first whatever the direction
        "small agent, 2x", "mild",  # within noise, by |z|
        "small but clear", "too few",  # not enough data, most tickets first
    ]
    assert table["z"].iloc[0] == pytest.approx(np.sqrt(2 * (260 * np.log(1.3) - 60)))
    assert table["z"].iloc[1] < -2  # signed: below expected is negative
    assert table["z"].iloc[-2:].isna().all()  # nothing to rank on without enough data


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


def test_peer_scale_makes_each_segment_total_one() -> None:
    observed = pd.Series([True, False, True, False, True, True])
    expected = pd.Series([0.5, 0.5, 0.25, 0.25, 0.5, 0.5])
    in_training = pd.Series([True, True, True, True, False, False])
    scale = fairness.peer_scale(observed, expected, in_training)
    assert scale.tolist() == pytest.approx([2 / 1.5] * 4 + [2.0] * 2)
    for part in (in_training, ~in_training):
        assert (expected * scale)[part].sum() == pytest.approx(observed[part].sum())


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
    table = kpis.period_kpis(kpi_tickets(), kpis.MONTHLY).set_index("period_start")
    jan = table.loc["2024-01-01"]
    assert (jan["tickets"], jan["resolved"]) == (4, 3)
    assert jan["escalation_rate"] == pytest.approx(1 / 3)
    assert jan["first_contact_resolution"] == pytest.approx(1 / 3)  # the reopened one is not
    assert jan["resolved_without_escalation"] == pytest.approx(2 / 4)  # open ticket counts
    assert jan["median_hours_escalated"] == pytest.approx(10.0)
    assert jan["median_hours_not_escalated"] == pytest.approx(3.0)
    assert jan["agents_per_escalated"] == pytest.approx(3.0)
    assert jan["csat_after_escalation"] == pytest.approx(2.0)
    feb = table.loc["2024-02-01"]
    assert feb["first_contact_resolution"] == 1.0  # unknown agents_involved is not held against it
    assert np.isnan(feb["csat_after_escalation"])


def test_a_short_period_gets_weekly_kpi_points_a_long_one_monthly() -> None:
    day = pd.Timestamp("2024-03-01", tz="UTC")
    assert kpis.kpi_frequency(day, day + pd.Timedelta(days=3)) == kpis.DAILY  # a few days' export
    assert kpis.kpi_frequency(day, day + pd.Timedelta(days=61)) == kpis.WEEKLY
    assert kpis.kpi_frequency(day, day + pd.Timedelta(days=365)) == kpis.MONTHLY
    created = pd.Series(pd.date_range("2024-03-01", "2024-04-30 23:00", freq="6h", tz="UTC"))
    tickets = pd.DataFrame({
        "created_at": created,
        "resolved_at": created + pd.Timedelta(hours=1),
        "escalated": pd.array([False] * len(created), dtype="boolean"),
        "reopened": pd.array([False] * len(created), dtype="boolean"),
        "agents_involved": pd.array([1] * len(created), dtype="Int64"),
        "csat": 4.0,
    }).assign(resolution_hours=lambda f: kpis.resolution_hours(f))
    weekly = kpis.period_kpis(tickets, kpis.WEEKLY)
    assert len(weekly) == 10  # two months: ten Monday-to-Sunday weeks, not two points
    assert weekly["period_start"].iloc[:2].tolist() == ["2024-02-26", "2024-03-04"]  # Mondays
    assert weekly["tickets"].sum() == len(tickets)
    assert weekly["tickets"].iloc[1] == 7 * 4


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


def test_heatmap_groups_are_the_commonest_categories_plus_other() -> None:
    categories = pd.Series(["c"] * 3 + ["a"] * 5 + ["b"] * 4 + ["d", "e"], name="category")
    pooled, order = drivers.top_levels(categories, 2)
    assert order == ["a", "b", "other (3 categories)"]  # by volume, the pool last
    assert pooled.value_counts().to_dict() == {"other (3 categories)": 5, "a": 5, "b": 4}
    assert pooled.index.equals(categories.index)  # every ticket still counted
    assert drivers.top_levels(categories, 5)[1] == ["a", "b", "c", "d", "e"]  # nothing to pool


def shap_sample(values: list[list[float]], sources: list[str]) -> drivers.ShapSample:
    array = np.array(values, dtype=float)
    return drivers.ShapSample(pd.RangeIndex(len(array)), array, np.full_like(array, np.nan),
                              np.zeros(len(array)), sources, [s.replace("_", " ") for s in sources])


def test_mean_abs_shap_by_group_follows_the_given_order_and_counts_tickets() -> None:
    sample = shap_sample([[1.0, -2.0], [3.0, 0.0], [-1.0, 1.0]], ["priority", "text"])
    groups = pd.Series(["x", "other", "x"], name="category")
    table = drivers.mean_abs_by(sample, groups, np.array([1, 0]), ["x", "missing", "other"])
    assert table.index.tolist() == ["x", "other"]
    assert table.columns.tolist() == ["n", "text", "priority"]
    assert table.loc["x"].tolist() == [2, 1.5, 1.0]


def test_cell_drivers_are_fields_pushing_clearly_more_than_usual_minus_excluded_ones() -> None:
    sample = shap_sample(
        [[2.0, 0.1, 0.9, 0.5, 0.0], [2.0, 0.3, 0.9, 0.5, 2.0], [2.0, 0.2, 0.9, 0.5, -1.0]],
        ["text", "priority", "agent_tenure_days", "channel", "day_of_year"],
    )
    baseline = np.array([2.0, 0.0, 0.0, 0.6, 0.0])  # text pushes every escalation this much
    rows = pd.Index([0, 1, 2])
    # day_of_year: mean 0.33 above usual, but within noise (standard error 0.88)
    assert drivers.cell_drivers(sample, rows, baseline) == [2, 1]
    assert drivers.cell_drivers(sample, rows, baseline, exclude=["agent_tenure_days"]) == [1]


def test_a_driver_names_the_cells_value_only_when_most_tickets_have_it_more_than_usual() -> None:
    overall = pd.Series(["low"] * 6 + ["urgent"] * 2 + ["medium"] * 2)
    assert drivers.describe_driver("priority", pd.Series(["urgent"] * 3 + ["low"]), overall) == (
        "priority (mostly urgent)"
    )
    assert drivers.describe_driver(  # low is most of the cell, but no more than usual
        "priority", pd.Series(["low", "low", "urgent", "medium"]), overall) == "priority"
    assert drivers.describe_driver("priority", pd.Series(["urgent", "low"]), overall) == "priority"
    assert drivers.describe_driver("tenure", pd.Series([1.0, 1.0]), pd.Series([1.0])) == "tenure"


def test_html_tables_are_cut_and_name_the_file_holding_every_row(tmp_path) -> None:
    frame = pd.DataFrame({"agent_id": [f"A{i:03d}" for i in range(40)], "n": range(40)})
    table = Table("By agent", frame, max_rows=25)
    shown = html_rows("gaps_by_agent", table)
    assert len(shown["rows"]) == 25 and shown["rows"][0][0] == "A000"
    assert (shown["hidden"], shown["file"]) == (15, "tables/gaps_by_agent.csv")
    files = write_tables({"gaps_by_agent": table}, tmp_path / "tables")
    assert pd.read_csv(files["gaps_by_agent.csv"]).equals(frame)


def test_kpis_count_only_tickets_old_enough_to_judge_so_the_latest_weeks_do_not_read_low() -> None:
    # Every other ticket escalates and takes 10 days to close, the rest close in 2 hours;
    # the data ends on day 56, when escalations of the last 10 days are still open.
    start, day = pd.Timestamp("2024-01-01", tz="UTC"), pd.Timedelta(days=1)
    created = pd.Series([start + i * day for i in range(56)])
    escalated = np.arange(56) % 2 == 0
    resolved_at = created + pd.to_timedelta(np.where(escalated, 240, 2), unit="h")
    open_ = resolved_at > start + 56 * day
    window = pd.DataFrame({
        "created_at": created,
        "resolved_at": resolved_at.where(~open_),
        "escalated": pd.array(np.where(open_, None, escalated), dtype="boolean"),
        "reopened": False,
        "agents_involved": 1,
        "csat": np.nan,
    })
    cut = Maturity(end=start + 56 * day, horizon_days=10)

    def weekly(tickets: pd.DataFrame) -> pd.DataFrame:
        return kpis.period_kpis(
            tickets.assign(resolution_hours=kpis.resolution_hours(tickets)), kpis.WEEKLY
        )

    assert weekly(window)["escalation_rate"].iloc[-1] == 0  # only the quick ones are known
    counted = weekly(mature_tickets(window, cut))
    assert pd.Timestamp(counted["period_start"].iloc[-1], tz="UTC") <= cut.cutoff
    assert (counted["escalation_rate"] >= 3 / 7).all()  # no week reads low
    assert (counted["resolved"] == counted["tickets"]).all()  # no false backlog either


def test_groups_without_a_recorded_agent_are_neither_praised_nor_flagged() -> None:
    """Unassigned tickets pool under "(unknown)": 0 escalations there says nothing of a person."""
    frame = pd.concat([
        tickets_for("(unknown)", 200, 0, 0.07),   # 0 vs 14: would read "below expected"
        tickets_for("alice", 100, 10, 0.1),
        tickets_for("bob", 20, 2, 0.1),           # too few tickets to judge
    ])
    table = fairness.observed_expected(frame, ["agent_id"], unknown="(unknown)")
    unknown = table.set_index("agent_id").loc["(unknown)"]
    assert unknown["status"] == fairness.NOT_RECORDED
    assert not unknown["flag"] and pd.isna(unknown["ratio"]) and pd.isna(unknown["z"])
    assert table["agent_id"].tolist() == ["alice", "bob", "(unknown)"]  # unrecorded: last
    judged = fairness.observed_expected(frame, ["agent_id"])
    assert judged.set_index("agent_id").loc["(unknown)", "status"] == fairness.BELOW


def test_the_kpi_caption_names_the_maturity_cutoff_or_warns_without_one() -> None:
    cut = Maturity(end=pd.Timestamp("2024-03-01", tz="UTC"), horizon_days=10)
    note = sections.maturity_note(cut, left_out=120)
    assert "created after 2024-02-20 00:00 UTC (the last 10.0 days of the data; 120" in note
    assert "may read low" in sections.maturity_note(Maturity(cut.end, 0), left_out=0)


def test_a_period_ending_before_the_maturity_cutoff_does_not_claim_tickets_are_left_out() -> None:
    """A short export resolved long after it was created: its horizon ends after the period."""
    cut = Maturity(end=pd.Timestamp("2017-01-30", tz="UTC"), horizon_days=150)
    note = sections.maturity_note(cut, left_out=0)
    assert note.startswith("Every ticket of the period counts")
    assert "left out of every KPI" not in note


def test_top_fields_ranks_by_mean_absolute_shap_and_drops_unused_fields() -> None:
    values = np.array([
        [0.0, -0.4, 0.1, 0.0],
        [0.0, 0.2, -0.3, 0.0],
    ])  # fields 0 and 3 never move a prediction
    assert drivers.top_fields(values, 3).tolist() == [1, 2]
    assert drivers.top_fields(values, 1).tolist() == [1]
    assert drivers.top_fields(np.zeros((2, 3)), 2).tolist() == [0, 1]  # no field used: keep rows
