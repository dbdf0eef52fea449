"""How an export's rows relate to its tickets: the ticket id, the event time, and which
columns change within a ticket.

An event log repeats its ticket id on every update, whatever the column is called. The id is
recognised by how its rows behave: a column whose groups of rows have a timestamp that changes
within most of them, and whose groups are either runs of consecutive rows (an export sorted by
ticket) or short-lived beside the export's span (sorted by time, tickets interleaved: a ticket
is worked for days, while a person, a customer or a status recurs through the whole export).
Among such columns the one that keeps the most other columns constant wins: the ticket refines
every attribute of a ticket (product, requester, country), and nothing coarser keeps them all.
The event time is the timestamp that changes within most tickets, preferring one that never
goes back within a ticket in file order (true of both sort orders; the loader sorts anyway).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from escpredict.ingest.validation import text
from escpredict.onboard.draft import guess

#: A column is constant per ticket when it changes within at most this share of the tickets
#: that have several rows (one corrected value in a hundred tickets is noise, not an event).
CHANGE_NOISE = 0.01

#: The event time changes within at least this share of tickets that have several rows…
MIN_TIME_VARYING = 0.5
#: …and never decreases (or never increases: newest first) within this share of them.
MIN_MONOTONE = 0.95

#: Rows per ticket: an id candidate has at least this share of rows in repeated values.
MIN_REPEATED = 0.3

#: An id names at least this many tickets, of at most this many rows each on average.
MIN_TICKETS = 3
MAX_MEAN_EVENTS = 100

#: A ticket's rows span at most this share of the export's time span (median over tickets).
MAX_SPAN_SHARE = 0.25

#: Longest mean value length an id can have (longer values are text, not ids).
MAX_ID_LENGTH = 40


def values_of(col: pd.Series, missing: list[str]) -> pd.Series:
    """Per row: the value as trimmed text, NA when blank or a missing marker."""
    values = text(col).str.strip()
    return values.mask(values.isin(missing))


def parse_times(col: pd.Series, missing: list[str]) -> pd.Series | None:
    """The column as UTC timestamps when a datetime format reads every sampled value."""
    if pd.api.types.is_datetime64_any_dtype(col):
        return pd.to_datetime(col, utc=True)
    found = guess.datetime_format(col, missing)
    if found is None:
        return None
    fmt = found.format.lower() if found.format in (guess.ISO, guess.MIXED) else found.format
    return pd.to_datetime(values_of(col, missing), format=fmt, errors="coerce", utc=True)


@dataclass(frozen=True)
class Tickets:
    """Which sampled row belongs to which ticket, and which column times the rows."""

    column: str
    codes: np.ndarray = field(repr=False)  # per row: its ticket's number, -1 if no id
    time: str | None = None  # the event time; None when no timestamp changes within tickets
    at: pd.Series | None = field(default=None, repr=False)  # the event time, parsed

    @cached_property
    def repeated(self) -> np.ndarray:
        """Per row: does its ticket have several rows?"""
        sizes = np.bincount(self.codes[self.codes >= 0], minlength=1)
        return (self.codes >= 0) & (sizes[np.maximum(self.codes, 0)] >= 2)

    def changes(self, values: pd.Series) -> float:
        """Share of tickets with several rows in which ``values`` takes more than one value
        (a missing value counts as one: a field filled in later is a change)."""
        mask = self.repeated
        if not mask.any():
            return 0.0
        frame = pd.DataFrame({"ticket": self.codes[mask], "value": values.to_numpy()[mask]})
        return float((frame.groupby("ticket")["value"].nunique(dropna=False) > 1).mean())

    def constant(self, values: pd.Series) -> bool:
        return self.changes(values) <= CHANGE_NOISE

    def per_ticket(self, values: pd.Series) -> pd.Series:
        """Each ticket's first value (rows in sample order), indexed by ticket number."""
        keep = self.codes >= 0
        return pd.Series(values.to_numpy()[keep]).groupby(self.codes[keep]).first()


def find_tickets(sample: pd.DataFrame, missing: list[str], named: str | None,
                 generic: bool = False, named_time: str | None = None,
                 events: bool = False) -> Tickets | None:
    """The rows' tickets when rows are events (ids repeat), else None.

    ``named`` is the column the header names as the ticket id: it wins when its values
    repeat, or when ``events`` (a layout with no ticket-level form). A named column unique
    per row is the ticket id of a one-row-per-ticket export, unless its name is only
    ``generic`` (``id``, ``number``: an event log's row id) and another column behaves as
    a ticket id. Without a name, the column is found by its values alone.
    """
    times = {str(c): t for c in sample.columns
             if (t := parse_times(sample[c], missing)) is not None}
    values = {str(c): values_of(sample[c], missing) for c in sample.columns if c not in times}
    if named is not None:
        codes = _codes(values_of(sample[named], missing))
        if events or _repeats(codes):
            return _timed(named, codes, times, named_time)
        if not generic:
            return None
    found = [scored for column in values if column != named
             and (scored := _assess(column, values, times, named_time))]
    return max(found, key=lambda pair: pair[0])[1] if found else None


def _codes(ids: pd.Series) -> np.ndarray:
    return pd.factorize(ids, use_na_sentinel=True)[0]


def _repeats(codes: np.ndarray) -> bool:
    known = codes[codes >= 0]
    return len(known) > 0 and len(np.unique(known)) < len(known)


def _timed(column: str, codes: np.ndarray, times: dict[str, pd.Series],
           named_time: str | None) -> Tickets:
    tickets = Tickets(column, codes)
    scored = [(_time_score(tickets, t, name == named_time), name) for name, t in times.items()
              if name != column]
    usable = [(score, name) for score, name in scored if score[1] >= MIN_TIME_VARYING]
    if not usable:
        return tickets
    time = max(usable)[1]
    return Tickets(column, codes, time, times[time])


def _time_score(tickets: Tickets, times: pd.Series, named: bool) -> tuple[bool, float, bool]:
    """(ordered within tickets, share of tickets it changes within, named so)."""
    mask = tickets.repeated
    if not mask.any():
        return (False, 0.0, named)
    frame = pd.DataFrame({"ticket": tickets.codes[mask], "time": times.to_numpy()[mask]})
    groups = frame.groupby("ticket")["time"]
    step = groups.diff()
    rises = (step > pd.Timedelta(0)).groupby(frame["ticket"]).any()
    falls = (step < pd.Timedelta(0)).groupby(frame["ticket"]).any()
    ordered = float((~rises | ~falls).mean()) >= MIN_MONOTONE
    return (ordered, float((groups.nunique() > 1).mean()), named)


def _assess(column: str, values: dict[str, pd.Series], times: dict[str, pd.Series],
            named_time: str | None) -> tuple[tuple[int, bool, int], Tickets] | None:
    """A score for ``column`` as the ticket id of an event log, or None when it is not one."""
    ids = values[column]
    if ids.isna().mean() > CHANGE_NOISE or ids.str.len().mean() > MAX_ID_LENGTH:
        return None
    codes = _codes(ids)
    if Tickets(column, codes).repeated.mean() < MIN_REPEATED:
        return None
    tickets = _timed(column, codes, times, named_time)
    if tickets.time is None:
        return None
    distinct = int(codes.max()) + 1
    if distinct < max(MIN_TICKETS, len(ids) / MAX_MEAN_EVENTS):
        return None  # a handful of values over many rows: a state or a flag, not tickets
    runs = int((ids != ids.shift()).sum())
    contiguous = runs <= 1.02 * distinct + 1
    if not (contiguous or _short_lived(tickets, times[tickets.time])):
        return None
    kept = sum(tickets.constant(other) for name, other in values.items()
               if name != column and other.nunique() > 1)
    return (kept, contiguous, distinct), tickets


def _short_lived(tickets: Tickets, times: pd.Series) -> bool:
    """Whether a ticket's rows span a small part of the export (median over tickets)."""
    span = times.max() - times.min()
    mask = tickets.repeated
    if pd.isna(span) or span <= pd.Timedelta(0) or not mask.any():
        return False
    per = pd.Series(times.to_numpy()[mask]).groupby(tickets.codes[mask]).agg(["min", "max"])
    return bool(((per["max"] - per["min"]).median() / span) <= MAX_SPAN_SHARE)


#: A process-mining variant column, by name: computed from a case's whole trace.
VARIANT_NAME = r"(?:^|_)(?:variant|variants|trace)(?:_|$)"

#: A column is a function of the trace when it agrees within this share of repeated traces…
MIN_TRACE_AGREEMENT = 0.95
#: …seen on at least this many traces shared by several tickets.
MIN_SHARED_TRACES = 3


def follows_trace(tickets: Tickets, values: pd.Series, steps: pd.Series) -> bool:
    """Whether a column constant per ticket is a function of the ticket's whole sequence of
    ``steps`` (statuses in time order) and tracks it: as many values as sequences, each
    value shared by tickets with the same sequence. A process-mining *variant* is one: it
    is computed from the whole trace, outcome included."""
    keep = tickets.codes >= 0
    order = pd.DataFrame({"ticket": tickets.codes, "step": steps.fillna("").to_numpy(),
                          "at": tickets.at.to_numpy() if tickets.at is not None else 0})[keep]
    order = order.sort_values(["ticket", "at"], kind="stable")
    traces = order.groupby("ticket")["step"].agg(" > ".join)
    frame = pd.DataFrame({"trace": traces, "value": tickets.per_ticket(values)})
    shared = frame[frame["trace"].duplicated(keep=False)]
    agreeing = shared.groupby("trace")["value"].nunique(dropna=False) == 1
    if len(agreeing) < MIN_SHARED_TRACES or agreeing.mean() < MIN_TRACE_AGREEMENT:
        return False
    return frame["value"].nunique() >= 0.5 * frame["trace"].nunique()
