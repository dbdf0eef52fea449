"""The period a report covers: ``--since``/``--until`` as UTC dates, both days included, and
where not given, the export's dense span (``labels.density``).

A sparse old tail holds only the long-running tickets that survived the export's cut: its
months would chart 1-100 tickets each, with an escalation rate that falls as the tail meets
the bulk only because of which tickets survived. So by default the report starts (and ends)
where the export is dense, and says what it left out and why.

Kept apart from the report's heavy imports so the CLI can name its error cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pandas as pd

from escpredict.labels.density import SPARSE_SHARE, DenseSpan, dense_span


class PeriodError(ValueError):
    """--since/--until select no tickets, or are out of order."""


@dataclass(frozen=True)
class Period:
    """What the report covers: [start, end) in UTC, and how it was chosen (for the reader)."""

    start: pd.Timestamp
    end: pd.Timestamp
    how: str
    #: What the default period leaves out of a sparse head or tail, and why ("" if nothing).
    note: str = ""

    def describe(self) -> str:
        last = self.end - pd.Timedelta(microseconds=1)
        return f"{self.start:%Y-%m-%d} to {last:%Y-%m-%d} ({self.how})"


def choose_period(
    tickets: pd.DataFrame, since: date | None, until: date | None, source: str
) -> tuple[pd.DataFrame, Period]:
    """The tickets the report covers and its period: ``since``/``until`` where given, and on
    a side not given, the first or last day of the export's dense span."""
    span = dense_span(tickets["created_at"])
    head, tail = span.start.date(), span.end.date()
    first = since or (head if span.n_before and not (until and until < head) else None)
    last = until or (tail if span.n_after and not (since and since > tail) else None)
    window = select_period(tickets, first, last, source)
    created = window["created_at"]
    note = _left_out(tickets["created_at"], since, until, first, last, span)
    given = "/".join(flag for flag, day in (("--since", since), ("--until", until)) if day)
    if note:
        how = f"{given}, else where the export is dense" if given else "where the export is dense"
    else:
        how = given or "every ticket of the data"
    return window, Period(
        start=pd.Timestamp(first, tz="UTC") if first else created.min(),
        end=pd.Timestamp(last, tz="UTC") + pd.Timedelta(days=1) if last else created.max(),
        how=how,
        note=note,
    )


def _left_out(created: pd.Series, since: date | None, until: date | None,
              first: date | None, last: date | None, span: DenseSpan) -> str:
    """The footnote for tickets the default period leaves out of a sparse head or tail."""
    parts = []
    if first and not since:
        n = int((created < pd.Timestamp(first, tz="UTC")).sum())
        parts.append(f"{n:,} tickets created before {first} (from {span.first:%Y-%m-%d}; "
                     "--since to include them)")
    if last and not until:
        n = int((created >= pd.Timestamp(last, tz="UTC") + pd.Timedelta(days=1)).sum())
        parts.append(f"{n:,} created after {last} (to {span.last:%Y-%m-%d}; --until to "
                     "include them)")
    if not parts:
        return ""
    return (
        f"Left out by default: {' and '.join(parts)}. They arrive at under {SPARSE_SHARE:.0%} "
        f"of the export's usual {span.usual_per_day:,.1f} tickets a day, typically the "
        "long-running tickets that survived the export's cut: their months would chart a "
        "handful of slow, often escalated tickets, an escalation rate that reflects which "
        "tickets survived, not how the desk worked."
    )


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
