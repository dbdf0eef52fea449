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
resolution time, not an escalation time, is what counts because labels wait for it. It is
measured over *tickets*, not over the export's time span: on the escalated tickets of the
dense span (``density.py``; a sparse old tail of long-running survivors would say "months")
created before its median creation time. Each of those had at least the younger half of the
bulk's time to close, so the measurement is not itself censored by the export's end, and
half the bulk is always there to measure, however the export's time span is shaped.

The horizon never empties a window: when the cut would leave the train, validation or test
window with fewer than ``MIN_WINDOW_TICKETS`` labelled tickets or ``MIN_WINDOW_CLASS`` of a
class, a shorter horizon (``FALLBACK_SHARES`` of it, down to none) that does not is used,
and ``Maturity.fallback`` says so with the numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from escpredict.labels.density import DenseSpan, dense_span
from escpredict.labels.split import window_masks

#: Share of escalations known at the automatic horizon.
AUTO_QUANTILE = 0.95
#: A horizon must leave every time window at least this many labelled tickets ...
MIN_WINDOW_TICKETS = 100
#: ... and at least this many of each class; else a shorter horizon is used.
MIN_WINDOW_CLASS = 10
#: Horizons tried when the measured (or configured) one empties a window, as shares of it.
FALLBACK_SHARES = (1.0, 0.75, 0.5, 0.25, 0.125, 0.0625, 0.0)

_DAY = pd.Timedelta(days=1)
WINDOWS = ("train", "valid", "test")


@dataclass(frozen=True)
class WindowCount:
    """Labelled tickets of one time window, and how many of them escalated."""

    tickets: int
    escalated: int

    @property
    def viable(self) -> bool:
        """Enough tickets and enough of each class to train, calibrate or evaluate on."""
        return (self.tickets >= MIN_WINDOW_TICKETS
                and min(self.escalated, self.tickets - self.escalated) >= MIN_WINDOW_CLASS)

    @property
    def two_classes(self) -> bool:
        return 0 < self.escalated < self.tickets

    def describe(self) -> str:
        return f"{self.tickets:,} tickets, {self.escalated:,} escalated"


@dataclass(frozen=True)
class Maturity:
    """Tickets created after ``cutoff`` (export end minus the horizon) are immature."""

    end: pd.Timestamp  # the latest timestamp in the export
    horizon_days: float
    how: str = ""  # how the horizon was chosen, for people
    fallback: str = ""  # why a shorter horizon than measured or configured is used; "" if none

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

    def describe(self) -> str:
        """The horizon, how it was chosen and any fallback, in one paragraph."""
        text = (
            f"label maturity: horizon {self.horizon_days:.1f} days, tickets created after "
            f"{self.cutoff:%Y-%m-%d %H:%M} left out (export ends {self.end:%Y-%m-%d %H:%M})"
        )
        text += f"; {self.how}" if self.how else ""
        return text + (f". {self.fallback}" if self.fallback else "")

    def params(self) -> dict[str, str]:
        """What a run records: the horizon applied, the cut it made and how it was chosen."""
        return {
            "maturity_horizon_days": f"{self.horizon_days:.3f}",
            "maturity_cutoff": str(self.cutoff),
            "export_end": str(self.end),
            "maturity_how": self.how,
            "maturity_fallback": self.fallback or "none",
        }


def export_end(tickets: pd.DataFrame) -> pd.Timestamp:
    """The latest creation or resolution time in the export: when it was taken, at the latest."""
    latest = tickets["created_at"].max()
    if "resolved_at" in tickets and tickets["resolved_at"].notna().any():
        latest = max(latest, tickets["resolved_at"].max())
    return latest


def measured_cohort(created: pd.Series, span: DenseSpan) -> tuple[np.ndarray, pd.Timestamp]:
    """Tickets whose escalations measure the horizon: in the dense span, created before its
    median creation time (returned too)."""
    dense = span.contains(created)
    before = created[dense].median()
    return dense & (created < before).to_numpy(), before


def escalation_days(tickets: pd.DataFrame, labels: pd.Series, chosen: np.ndarray) -> np.ndarray:
    """Days from creation to resolution of the escalated tickets among ``chosen``."""
    picked = chosen & labels.fillna(False).to_numpy(dtype=bool)
    resolved, created = tickets["resolved_at"][picked], tickets["created_at"][picked]
    return ((resolved - created) / _DAY).to_numpy(dtype="float64")


def measure(tickets: pd.DataFrame, labels: pd.Series, weight: float = 1.0) -> tuple[float, str]:
    """The automatic horizon in days and how it was measured, in words."""
    span = dense_span(tickets["created_at"], weight)
    chosen, before = measured_cohort(tickets["created_at"], span)
    days = escalation_days(tickets, labels, chosen)
    where = (
        f"escalated tickets created before {before:%Y-%m-%d %H:%M}, the median creation time "
        "of the export's dense span" + (f" ({span.describe()})" if span.n_sparse else "")
    )
    if not len(days):
        return 0.0, f"no horizon: no {where} to measure it on"
    horizon = max(float(np.quantile(days, AUTO_QUANTILE)), 0.0)
    return horizon, (
        f"measured as the {AUTO_QUANTILE:.0%} quantile of days from creation to resolution of "
        f"the {round(len(days) * weight):,} {where}"
    )


def window_counts(
    created: pd.Series, labels: pd.Series, cut: Maturity, fractions: tuple[float, float],
    weight: float = 1.0,
) -> dict[str, WindowCount]:
    """Labelled tickets per time window once ``cut`` has left out the immature ones.

    The windows are cut as training cuts them (``split.window_masks``) on what remains.
    """
    kept = labels.notna().to_numpy() & cut.mature(created)
    if not kept.any():
        return {name: WindowCount(0, 0) for name in WINDOWS}
    known = labels[kept].astype(bool)
    masks = window_masks(created[kept], *fractions)
    return {
        name: WindowCount(round(int(mask.sum()) * weight), round(int(known[mask].sum()) * weight))
        for name, mask in masks.items()
    }


def _grade(counts: dict[str, WindowCount]) -> int:
    """2: every window viable; 1: every window holds both classes; 0: neither."""
    windows = counts.values()
    return 2 if all(w.viable for w in windows) else int(all(w.two_classes for w in windows))


def hold_windows(
    cut: Maturity, created: pd.Series, labels: pd.Series, fractions: tuple[float, float],
    weight: float = 1.0,
) -> Maturity:
    """``cut``, or the longest shorter horizon that leaves every window viable.

    Each candidate (``FALLBACK_SHARES`` of the horizon) is graded: every window viable,
    else every window with both classes, else neither; the first of the best grade wins, so
    a horizon that already holds is kept, and data too small for any stays as it was.
    """
    if cut.horizon_days == 0:
        return cut
    tried: list[tuple[float, dict[str, WindowCount]]] = []
    for share in FALLBACK_SHARES:  # longest first; stop at the first that holds
        shorter = Maturity(cut.end, cut.horizon_days * share)
        tried.append((share, window_counts(created, labels, shorter, fractions, weight)))
        if _grade(tried[-1][1]) == 2:
            break
    share, counts = max(tried, key=lambda t: _grade(t[1]))  # the first of the best grade
    if share == 1.0:
        return cut
    first = tried[0][1]
    short = ", ".join(f"{name} {first[name].describe()}" for name in WINDOWS
                      if not first[name].viable)
    kept = ", ".join(f"{name} {counts[name].describe()}" for name in WINDOWS)
    days = cut.horizon_days * share
    return Maturity(
        cut.end,
        days,
        cut.how,
        f"The {cut.horizon_days:.1f}-day horizon would leave too little to learn or test on "
        f"({short}; each window needs {MIN_WINDOW_TICKETS} tickets and {MIN_WINDOW_CLASS} of "
        f"each class), so {'no horizon' if days == 0 else f'{days:.1f} days'} is used instead "
        f"({kept}): the newest labels may read calmer than they will be",
    )


def maturity(
    tickets: pd.DataFrame,
    labels: pd.Series,
    setting: float | Literal["auto"],
    fractions: tuple[float, float],
    end: pd.Timestamp | None = None,
    weight: float = 1.0,
) -> Maturity:
    """The export's maturity cut: ``setting`` days, or measured on the export when "auto",
    shortened if it would empty one of the windows cut at ``fractions`` (valid, test).

    ``tickets`` (``created_at``, ``resolved_at``) may be a uniform sample of the export, as
    on a cluster: ``weight`` is tickets per sampled ticket, ``end`` the whole export's end.
    """
    end = export_end(tickets) if end is None else end
    if setting == "auto":
        days, how = measure(tickets, labels, weight)
    else:
        days, how = float(setting), f"set by labels.maturity_days = {setting:g}"
    return hold_windows(Maturity(end, days, how), tickets["created_at"], labels, fractions, weight)
