"""The period a report covers: ``--since``/``--until`` as UTC dates, both days included.

Kept apart from the report's heavy imports so the CLI can name its error cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pandas as pd


class PeriodError(ValueError):
    """--since/--until select no tickets, or are out of order."""


@dataclass(frozen=True)
class Period:
    """What the report covers: [start, end) in UTC, and how it was chosen (for the reader)."""

    start: pd.Timestamp
    end: pd.Timestamp
    how: str

    @classmethod
    def covering(cls, window: pd.DataFrame, since: date | None, until: date | None) -> Period:
        """The asked-for days, or the span of the tickets' creation times where not asked."""
        created = window["created_at"]
        return cls(
            start=pd.Timestamp(since, tz="UTC") if since else created.min(),
            end=pd.Timestamp(until, tz="UTC") + pd.Timedelta(days=1) if until else created.max(),
            how="--since/--until" if since or until else "every ticket of the data",
        )

    def describe(self) -> str:
        last = self.end - pd.Timedelta(microseconds=1)
        return f"{self.start:%Y-%m-%d} to {last:%Y-%m-%d} ({self.how})"


def select_period(tickets: pd.DataFrame, since: date | None, until: date | None,
                  source: str) -> pd.DataFrame:
    """Tickets created on ``since`` .. ``until`` (UTC dates, both included; None: open-ended).

    An empty selection is an error naming the data's own span, not an empty report.
    """
    if since and until and since > until:
        raise PeriodError(f"--since {since} is after --until {until}")
    created = tickets["created_at"]
    keep = pd.Series(True, index=tickets.index)
    if since:
        keep &= created >= pd.Timestamp(since, tz="UTC")
    if until:
        keep &= created < pd.Timestamp(until, tz="UTC") + pd.Timedelta(days=1)
    if not keep.any():
        raise PeriodError(
            f"{source}: no tickets created from {since or 'the start'} to {until or 'the end'}; "
            f"the data covers {created.min():%Y-%m-%d} to {created.max():%Y-%m-%d}"
        )
    return tickets[keep]
