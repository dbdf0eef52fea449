"""Label maturity: tickets created too recently to have had a fair chance to escalate.

A label is known only once a ticket is resolved, and escalated tickets take longer to
resolve. Near the end of an export the slow, escalated tickets are still open (no label)
while the quick, mostly unescalated ones already count: the latest weeks look calmer than
they were (right-censoring). Tickets created within a *horizon* of the export's end are
therefore immature and left out of training and evaluation.

Both classes are left out, not only the negatives: a ticket of that window already escalated
is a sure positive, but keeping those and dropping the rest would inflate the window's
escalation rate instead of deflating it. Dropping the whole window keeps the tickets that
remain a fair sample of every class.

The horizon, unless configured, is the ``AUTO_QUANTILE`` of the days from creation to
resolution of escalated tickets: by then that share of escalations has become known. The
resolution time, not an escalation time, is what counts because labels wait for it. Only
tickets created in the first half of the export's span are measured: each of them had at
least half the span to close, so the measurement is not itself censored by the export's end
(unless escalations routinely take longer than that, when the export is too short anyway).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

#: Share of escalations known at the automatic horizon.
AUTO_QUANTILE = 0.95

_DAY = pd.Timedelta(days=1)


@dataclass(frozen=True)
class Maturity:
    """Tickets created after ``cutoff`` (export end minus the horizon) are immature."""

    end: pd.Timestamp  # the latest timestamp in the export
    horizon_days: float

    @property
    def cutoff(self) -> pd.Timestamp:
        return self.end - self.horizon_days * _DAY

    def mature(self, created_at: pd.Series) -> np.ndarray:
        """True for tickets old enough to be judged; a zero horizon keeps every ticket."""
        return (created_at <= self.cutoff).to_numpy(dtype=bool)

    def labels(self, labels: pd.Series, created_at: pd.Series) -> pd.Series:
        """``labels`` with immature tickets NA, as if still open: what may train and evaluate.

        Point-in-time history keeps the raw labels: an outcome already known is known.
        """
        return labels.where(self.mature(created_at))


def export_end(tickets: pd.DataFrame) -> pd.Timestamp:
    """The latest creation or resolution time in the export: when it was taken, at the latest."""
    latest = tickets["created_at"].max()
    if "resolved_at" in tickets and tickets["resolved_at"].notna().any():
        latest = max(latest, tickets["resolved_at"].max())
    return latest


def measured_before(first_created: pd.Timestamp, end: pd.Timestamp) -> pd.Timestamp:
    """Escalations of tickets created before this instant measure the horizon."""
    return first_created + (end - first_created) / 2


def escalation_days(
    tickets: pd.DataFrame, labels: pd.Series, created_before: pd.Timestamp
) -> pd.Series:
    """Days from creation to resolution of escalated tickets created before ``created_before``."""
    chosen = labels.fillna(False).to_numpy(dtype=bool) & (
        tickets["created_at"] < created_before
    ).to_numpy()
    picked = tickets[chosen]
    return ((picked["resolved_at"] - picked["created_at"]) / _DAY).astype("float64")


def horizon_days(quantile_days: float) -> float:
    """The measured quantile as a horizon; no escalation measured (NaN) means no horizon."""
    return 0.0 if pd.isna(quantile_days) else max(float(quantile_days), 0.0)


def resolve(
    setting: float | Literal["auto"], end: pd.Timestamp, measure: Callable[[], float]
) -> Maturity:
    """``setting`` days, or when "auto" the ``AUTO_QUANTILE`` that ``measure`` computes.

    ``measure`` runs only when needed: on a cluster it is a pass over the data.
    """
    days = horizon_days(measure()) if setting == "auto" else float(setting)
    return Maturity(end, days)


def maturity(
    tickets: pd.DataFrame, labels: pd.Series, setting: float | Literal["auto"]
) -> Maturity:
    """The export's maturity cut: ``setting`` days, or measured on the export when "auto"."""
    end = export_end(tickets)
    before = measured_before(tickets["created_at"].min(), end)
    return resolve(
        setting, end, lambda: escalation_days(tickets, labels, before).quantile(AUTO_QUANTILE)
    )
