"""The report's five sections: their words, figures and which tables they show.

Kept apart from ``build`` (which scores tickets and computes the tables) so the prose a
manager reads sits in one place.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from escpredict.labels.maturity import Maturity
from escpredict.report import drivers, fairness, figures, kpis, underescalation
from escpredict.report.render import TABLES_DIR, figure_uri

#: How a KPI frequency reads in titles.
FREQ_WORD = {kpis.DAILY: "daily", kpis.WEEKLY: "weekly", kpis.MONTHLY: "monthly"}
_FREQ_PERIOD = {kpis.DAILY: "day", kpis.WEEKLY: "week (Monday to Sunday)",
                kpis.MONTHLY: "calendar month"}


#: The note under every observed-vs-expected table.
GAP_NOTE = (
    "ratio = observed / expected; 95% exact Poisson interval; 'above expected' when the whole "
    "interval is above 1. z: signed strength of evidence, about ±2 where the interval touches 1; "
    "rows are sorted by it, significant ones first. Fewer than "
    f"{fairness.MIN_TICKETS} tickets or under {fairness.MIN_EXPECTED:g} expected: not enough "
    "data, no ratio, listed last; so are groups whose agent, team or category the export does "
    "not record (not recorded)."
)


def more(shown: int, total: int, status: str, table: str) -> list[str]:
    """The closing line of a capped list of findings, naming the file that has them all."""
    rest = total - shown
    return [f"… {rest:,} more {status}: see {TABLES_DIR}/{table}.csv"] if rest > 0 else []


def _heatmaps(by_category: pd.DataFrame, by_tenure: pd.DataFrame) -> list[dict[str, str]]:
    """The mean |SHAP| heatmaps that compare something: one column (every tenure "unknown"
    without an agents table) is left out."""
    out = []
    if len(by_category) > 1:
        out.append(_figure(
            figures.heatmap_figure(by_category, "Mean |SHAP| by category"), "Drivers by category",
            "What matters most differs by category: the categories with most tickets, the rest "
            "pooled as 'other'; n counts tickets of the SHAP sample."))
    if len(by_tenure) > 1:
        out.append(_figure(
            figures.heatmap_figure(by_tenure, "Mean |SHAP| by agent tenure band"),
            "Drivers by tenure band", "Tenure band of the assigned agent at creation."))
    return out


def _ratio_plot(by_agent: pd.DataFrame) -> list[dict[str, str]]:
    """The agents' forest plot, unless no agent has enough data for a ratio."""
    if by_agent["ratio"].isna().all():
        return []
    return [_figure(
        figures.ratio_figure(by_agent, "agent_id",
                             "Escalations vs expected, by agent (strongest evidence first)"),
        "Agent ratios", "Red: significantly above expected; green: below; grey: within noise.")]


def maturity_note(cut: Maturity, left_out: int) -> str:
    """Which tickets the KPIs and comparisons count, given training's label-maturity cut.

    ``left_out`` counts the period's tickets created after the cutoff: when the period ends
    before it, saying tickets "are left out" would misread as a loss of data.
    """
    if cut.horizon_days == 0:
        return ("Every ticket counts (no label-maturity horizon): the latest points count only "
                "tickets resolved so far, and escalated tickets take longer to close, so recent "
                "escalation rates may read low.")
    if left_out == 0:
        return (f"Every ticket of the period counts: it ends before {cut.cutoff:%Y-%m-%d %H:%M} "
                f"UTC, the last {cut.horizon_days:.1f} days of the data, whose tickets training "
                "leaves out as too recent to judge.")
    return (f"Tickets created after {cut.cutoff:%Y-%m-%d %H:%M} UTC (the last "
            f"{cut.horizon_days:.1f} days of the data; {left_out:,} of the period) are left out "
            "of every KPI and comparison, as training leaves them out: escalated tickets take "
            "longer to close, so too few of their escalations are known yet and they would read "
            "as a drop.")


def _figure(fig: Any, alt: str, caption: str) -> dict[str, str]:
    return {"uri": figure_uri(fig), "alt": alt, "caption": caption}


def layout(
    kpi_table: pd.DataFrame, freq: str, summary: drivers.ShapSample, top: np.ndarray,
    by_category: pd.DataFrame, by_tenure: pd.DataFrame, by_agent: pd.DataFrame,
    gap_tables: list[str], findings: list[str], under: pd.DataFrame, threshold: float,
    recognised: pd.DataFrame, n_findings: int, notes: str,
) -> list[dict[str, Any]]:
    """The five sections: intro, findings, figures and the names of their tables.

    ``notes`` close the KPI caption: which tickets the label-maturity cut and the period
    leave out, and why.
    """
    held_flags = under[under["flag"]]
    return [
        {
            "id": "kpis", "title": "KPIs over time",
            "intro": (
                f"By {_FREQ_PERIOD[freq]} (UTC) of ticket creation. Escalation rate and first-contact "
                "resolution (not escalated, not reopened, one agent) are shares of resolved "
                "tickets; 'resolved without escalation' is a share of all tickets created, so a "
                "growing backlog shows as a drop. Times are medians; CSAT means use answered "
                "surveys only."
            ),
            "figures": [_figure(figures.kpi_figure(kpi_table, freq), "KPI trends",
                                f"{FREQ_WORD[freq].title()} KPIs; a period under "
                                f"{kpis.DAILY_BELOW_DAYS} days is shown by day, one under "
                                f"{kpis.WEEKLY_BELOW_DAYS} by week, a longer one by month. "
                                "The first and last points may cover part of a "
                                f"{_FREQ_PERIOD[freq]}. " + notes)],
            "tables": ["kpis"],
        },
        {
            "id": "drivers", "title": "What drives escalations",
            "intro": (
                "SHAP values split each ticket's predicted escalation log-odds into the part each "
                "input field contributed (exact TreeSHAP from the model, summed over the model "
                "columns one field feeds: all words of the ticket text, all levels of priority). "
                "Points right of zero pushed towards escalation. Numeric fields are coloured from "
                "low (blue) to high (red); fields such as priority or category have no single "
                "value and are grey."
            ),
            "figures": [
                _figure(figures.beeswarm_figure(summary, top), "SHAP summary",
                        f"Strongest {len(top)} input fields on {len(summary.index):,} random tickets "
                        "(fields that move no prediction are left out)."),
                *_heatmaps(by_category, by_tenure),
            ],
            "tables": [],
        },
        {
            "id": "gaps", "title": "Training gaps",
            "intro": (
                "Each agent, team, team × category and tenure × category cell is compared with "
                "what the model expected for its own tickets with a typical agent (the model's "
                "probability averaged over random agent profiles, so tenure and past record do "
                "not excuse or condemn anyone), scaled so the whole period is 1.0×. Flagged cells "
                "are significantly above expected; drivers are the input fields pushing hardest "
                "towards escalation on their escalated tickets. Tables list the strongest "
                "evidence first (z: about ±2 where the 95% interval touches 1.0×); groups "
                "without enough data come last."
            ),
            "findings": findings,
            "no_findings": "No agent or cell is significantly above expected.",
            "figures": _ratio_plot(by_agent),
            "tables": gap_tables,
        },
        {
            "id": "recognition", "title": "Recognition",
            "intro": ("Who takes the hard tickets, and who escalates less than their tickets "
                      "would predict (check section 5 before praising a low count)."),
            "findings": [fairness.finding({"agent_id": row["agent_id"]}, row, [])
                         for _, row in recognised.head(n_findings).iterrows()]
                        + more(min(n_findings, len(recognised)), len(recognised),
                                "below expected", "below_expected"),
            "good": True,
            "no_findings": "No agent is significantly below expected.",
            "figures": [],
            "tables": ["top_resolvers", "below_expected"],
        },
        {
            "id": "under", "title": "Possible under-escalation",
            "intro": (
                "Held high-risk tickets: the model would have routed them to tier 2 on arrival "
                f"(p ≥ {threshold:.2f}, its routing threshold) but they were not escalated. "
                "They went badly when "
                f"reopened, rated CSAT ≤ {underescalation.LOW_CSAT:g}, or resolved more than "
                f"{underescalation.SLOW_FACTOR:g}× slower than the category's median "
                "non-escalated ticket. Each agent's bad outcomes are compared with all agents' "
                "held high-risk tickets in the same categories."
            ),
            "findings": [
                fairness.finding({"agent_id": row["agent_id"]}, row, [],
                                 "bad outcomes on held high-risk tickets")
                + f" (reopened {row['reopened']}, low CSAT {row['low_csat']}, slow {row['slow']})"
                for _, row in held_flags.head(n_findings).iterrows()
            ] + more(min(n_findings, len(held_flags)), len(held_flags), "above expected",
                      "under_escalation"),
            "no_findings": "No agent has significantly more bad outcomes on held high-risk tickets.",
            "figures": [],
            "tables": ["under_escalation"],
        },
    ]
