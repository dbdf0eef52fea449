"""Where an export is dense: the one rule for what counts as a sparse head or tail.

Many exports are cut by a filter on the *current* state ("tickets updated in the last five
weeks", "incidents of this quarter's queue"), so beside the dense bulk they hold a thin
tail of old tickets: only those that ran long enough to survive the cut. Those tickets are
not a sample of their months: they are slow, and far more often escalated. A horizon
measured on them, or a monthly KPI drawn through them, describes the filter, not the desk.

The rule: a ticket's *local rate* is the number of tickets created within
``RATE_WINDOW_DAYS`` around it, per day (the window is clipped to the export, so the first
and last days are not halved). The *usual rate* is the median ticket's local rate (tickets,
not days, vote: a year of near-empty months cannot outvote the weeks holding the bulk). The
dense span runs from the first to the last ticket whose local rate is at least
``SPARSE_SHARE`` of the usual rate; tickets before or after it are the sparse head and tail.
A quiet week inside the span stays inside it: only the edges are cut.

Label maturity, ``check`` and the report all call ``dense_span``, so they agree on it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

#: Tickets arriving at under this share of the usual rate, before or after the bulk, are sparse.
SPARSE_SHARE = 0.1
#: Days around a ticket over which its local rate is counted: a week, so weekends average out.
RATE_WINDOW_DAYS = 7.0

_DAY_NS = pd.Timedelta(days=1).value


@dataclass(frozen=True)
class DenseSpan:
    """Tickets created from ``start`` to ``end`` (both included) are the dense bulk."""

    start: pd.Timestamp
    end: pd.Timestamp
    n_before: int  # sparse head: tickets created before ``start``
    n_after: int  # sparse tail: tickets created after ``end``
    usual_per_day: float  # the median ticket's local rate
    first: pd.Timestamp  # the export's first and last creation times
    last: pd.Timestamp

    @property
    def n_sparse(self) -> int:
        return self.n_before + self.n_after

    def contains(self, created: pd.Series) -> np.ndarray:
        return ((created >= self.start) & (created <= self.end)).to_numpy(dtype=bool)

    def describe(self) -> str:
        """One sentence for people: where the bulk is and what lies outside it."""
        dense = f"tickets are dense from {self.start:%Y-%m-%d} to {self.end:%Y-%m-%d}"
        if not self.n_sparse:
            return f"{dense} (the whole export)"
        parts = []
        if self.n_before:
            parts.append(f"{self.n_before:,} created before it (from {self.first:%Y-%m-%d})")
        if self.n_after:
            parts.append(f"{self.n_after:,} after it (to {self.last:%Y-%m-%d})")
        return (
            f"{dense}; {' and '.join(parts)} arrive at under {SPARSE_SHARE:.0%} of the usual "
            f"{self.usual_per_day:,.1f} a day: a sparse tail, typically long-running tickets "
            "that survived the export's cut"
        )


def local_rate(created_ns: np.ndarray) -> np.ndarray:
    """Tickets per day created within ``RATE_WINDOW_DAYS`` around each (sorted) creation time."""
    half = RATE_WINDOW_DAYS * _DAY_NS / 2
    first, last = created_ns[0], created_ns[-1]
    lo = np.maximum(created_ns - half, first)
    hi = np.minimum(created_ns + half, last)
    count = np.searchsorted(created_ns, hi, "right") - np.searchsorted(created_ns, lo, "left")
    return count / ((hi - lo) / _DAY_NS)


def dense_span(created: pd.Series, weight: float = 1.0) -> DenseSpan:
    """The export's dense span by the module's rule; ``created`` may be a uniform sample,
    ``weight`` (tickets per sampled ticket) scales the counts and the rate back.

    An export shorter than the rate window has no tail to speak of: all of it is dense.
    """
    times = created.dropna().sort_values()
    values = times.to_numpy(dtype="datetime64[ns]").view("int64")
    first, last = times.iloc[0], times.iloc[-1]
    if values[-1] - values[0] <= RATE_WINDOW_DAYS * _DAY_NS:
        per_day = len(values) * weight / max((values[-1] - values[0]) / _DAY_NS, 1.0)
        return DenseSpan(first, last, 0, 0, per_day, first, last)
    rate = local_rate(values)
    usual = float(np.median(rate))
    dense = np.flatnonzero(rate >= SPARSE_SHARE * usual)
    lo, hi = dense[0], dense[-1]
    return DenseSpan(
        start=times.iloc[lo],
        end=times.iloc[hi],
        n_before=round(lo * weight),
        n_after=round((len(values) - 1 - hi) * weight),
        usual_per_day=usual * weight,
        first=first,
        last=last,
    )
