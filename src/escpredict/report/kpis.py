"""Monthly support KPIs, by calendar month (UTC) of ticket creation.

Definitions (repeated in the report):

* ``escalation_rate``: escalated / resolved tickets;
* ``first_contact_resolution``: resolved tickets not escalated, not reopened and worked by
  one agent (tickets without an ``agents_involved`` value are judged on the first two);
* ``resolved_without_escalation``: resolved and not escalated / all tickets created,
  open ones included, so a backlog shows up as a drop;
* resolution times are medians in hours; ``agents_per_escalated`` is the mean
  ``agents_involved`` of escalated tickets; CSAT means use only tickets with a score.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

KPI_COLUMNS: tuple[str, ...] = (
    "month",
    "tickets",
    "resolved",
    "escalation_rate",
    "first_contact_resolution",
    "resolved_without_escalation",
    "median_hours_escalated",
    "median_hours_not_escalated",
    "agents_per_escalated",
    "csat_after_escalation",
    "csat_without_escalation",
    "csat_responses_escalated",
)


def resolution_hours(tickets: pd.DataFrame) -> pd.Series:
    """Hours from creation to resolution; NaN while open."""
    return (tickets["resolved_at"] - tickets["created_at"]).dt.total_seconds() / 3600.0


def monthly_kpis(tickets: pd.DataFrame) -> pd.DataFrame:
    """One row per creation month; ``escalated`` is boolean with NA for open tickets."""
    month = tickets["created_at"].dt.tz_convert("UTC").dt.strftime("%Y-%m")
    resolved = tickets["escalated"].notna()
    escalated = tickets["escalated"].fillna(False).astype(bool)
    calm = resolved & ~escalated
    one_agent = ~(tickets["agents_involved"].astype("Float64") > 1).fillna(False).astype(bool)
    reopened = tickets["reopened"].fillna(False).astype(bool)
    hours = tickets["resolution_hours"]
    csat = tickets["csat"].astype(np.float64)
    parts = pd.DataFrame(
        {
            "month": month,
            "resolved": resolved,
            "escalated": escalated,
            "calm": calm,
            "fcr": calm & ~reopened & one_agent,
            "hours_esc": hours.where(escalated),
            "hours_calm": hours.where(calm),
            "agents_esc": tickets["agents_involved"].astype(np.float64).where(escalated),
            "csat_esc": csat.where(escalated),
            "csat_calm": csat.where(calm),
        }
    )
    g = parts.groupby("month", sort=True)
    n_resolved = g["resolved"].sum()
    table = pd.DataFrame(
        {
            "tickets": g.size(),
            "resolved": n_resolved,
            "escalation_rate": g["escalated"].sum() / n_resolved,
            "first_contact_resolution": g["fcr"].sum() / n_resolved,
            "resolved_without_escalation": g["calm"].sum() / g.size(),
            "median_hours_escalated": g["hours_esc"].median(),
            "median_hours_not_escalated": g["hours_calm"].median(),
            "agents_per_escalated": g["agents_esc"].mean(),
            "csat_after_escalation": g["csat_esc"].mean(),
            "csat_without_escalation": g["csat_calm"].mean(),
            "csat_responses_escalated": g["csat_esc"].count(),
        }
    )
    return table.reset_index()[list(KPI_COLUMNS)]
