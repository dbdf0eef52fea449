"""Support KPIs per week or calendar month (UTC) of ticket creation.

A period shorter than ``WEEKLY_BELOW_DAYS`` gets weekly points (weeks start on Monday):
two months by month would be two points, which shows no trend at all; one shorter than
``DAILY_BELOW_DAYS`` (a few days' export) gets daily points for the same reason.

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

#: Reports covering fewer days than these get daily or weekly KPI points; longer ones monthly.
DAILY_BELOW_DAYS = 28
WEEKLY_BELOW_DAYS = 183
#: pandas period codes: days, Monday-to-Sunday weeks, calendar months.
DAILY, WEEKLY, MONTHLY = "D", "W-SUN", "M"

KPI_COLUMNS: tuple[str, ...] = (
    "period_start",
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


def kpi_frequency(start: pd.Timestamp, end: pd.Timestamp) -> str:
    """``DAILY``, ``WEEKLY`` or ``MONTHLY``: the finest that keeps a long period legible."""
    span = end - start
    if span < pd.Timedelta(days=DAILY_BELOW_DAYS):
        return DAILY
    return WEEKLY if span < pd.Timedelta(days=WEEKLY_BELOW_DAYS) else MONTHLY


def period_starts(created_at: pd.Series, freq: str) -> pd.Series:
    """The first day (``YYYY-MM-DD``, UTC) of each timestamp's day, week or month."""
    naive = created_at.dt.tz_convert("UTC").dt.tz_localize(None)
    return naive.dt.to_period(freq).dt.start_time.dt.strftime("%Y-%m-%d")


def period_kpis(tickets: pd.DataFrame, freq: str) -> pd.DataFrame:
    """One row per creation period (``freq``: ``DAILY``, ``WEEKLY`` or ``MONTHLY``), oldest first.

    ``escalated`` is boolean with NA for open tickets.
    """
    period = period_starts(tickets["created_at"], freq)
    resolved = tickets["escalated"].notna()
    escalated = tickets["escalated"].fillna(False).astype(bool)
    calm = resolved & ~escalated
    one_agent = ~(tickets["agents_involved"].astype("Float64") > 1).fillna(False).astype(bool)
    reopened = tickets["reopened"].fillna(False).astype(bool)
    hours = tickets["resolution_hours"]
    csat = tickets["csat"].astype(np.float64)
    parts = pd.DataFrame(
        {
            "period_start": period,
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
    g = parts.groupby("period_start", sort=True)
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
