"""Reasons a reader can act on: SHAP values grouped by input field, stated in the ticket's values.

SHAP values are additive, so summing a field's columns loses nothing: the grouped values
still add up to the margin. A reader then sees one "priority" reason stated in the ticket's
own value ("priority = high"), not a "priority = low" column that is 0 for a high-priority
ticket, and one "ticket text" reason naming whole words the ticket contains, never
character fragments.

Everything that depends only on the model (which columns form which field, where the word
n-grams are) is computed once by `reason_layout`; `explain_rows` then does per ticket only
a small matrix product and formats the few reasons it returns. The functions are pure, so
the scoring API, batch scoring, the MLflow pyfunc and the manager report share them.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from typing import Any, Protocol

import numpy as np
import pandas as pd
import scipy.sparse as sp

from escpredict.contract import HISTORY_NAMES

#: Source of every text n-gram column (``features.TEXT_SOURCE``).
TEXT_FIELD = "text"
#: How many whole words or phrases a "ticket text" reason names.
TEXT_TERMS = 3
_WORD_COLUMN = re.compile(r"^(?:word|phrase) '(.*)'$")
#: Ids whose history fields mean nothing when the id is missing: that agent's or customer's
#: history fields then become one reason, that no one was named (e.g. "no agent known").
_IDS: tuple[tuple[str, str], ...] = (("agent_id", "agent"), ("customer_id", "customer"))
#: Model fields computed from an id's history (the smoothed rates are built from it too);
#: not every ``customer_...`` field is (customer_segment is the ticket's own).
_HISTORY_FIELDS = frozenset(HISTORY_NAMES) | {"agent_escalation_rate", "customer_escalation_rate"}
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True)
class Reason:
    """One input field's signed share of a ticket's score (summed SHAP values, log-odds).

    ``feature`` and ``field`` both name the source field (``feature`` is kept for clients of
    the per-column reasons); ``value`` is the field's number when it is one, else NaN.
    """

    feature: str
    name: str
    value: float
    contribution: float
    field: str
    display_value: str
    text: str


class _Builder(Protocol):
    feature_names: list[str]
    readable_names: list[str]
    feature_sources: list[str]

    def transform_record(self, record: Mapping[str, Any]) -> sp.csr_matrix: ...


@dataclass(frozen=True)
class ReasonLayout:
    """What explaining needs from a fitted model, fixed once when the model loads."""

    fields: tuple[str, ...]  # source fields, in order of first column
    grouping: _Grouping  # how to sum columns into fields
    single_column: np.ndarray  # per field: its column when it has exactly one, else -1
    readable: tuple[str, ...]  # per field: a readable name
    word_columns: np.ndarray  # the whole-word / phrase n-gram columns, ascending
    word_terms: dict[int, str]  # column -> its word or phrase
    overall_rate: float  # earlier outcomes' escalation rate the history rates shrink to
    window_days: int  # the "recent tickets" window
    by_id: tuple[tuple[str, str, np.ndarray], ...]  # (id field, who, its history fields' groups)
    known_levels: dict[str, frozenset[str]]  # categorical field -> levels with their own code


@dataclass(frozen=True)
class _Grouping:
    """Columns reordered so each field's are adjacent (None: they already are), and where
    each field starts: one ``np.add.reduceat`` then sums a row per field in microseconds,
    where a sparse indicator product pays scipy's per-call checks (~60 us a ticket)."""

    order: np.ndarray | None
    starts: np.ndarray
    n_columns: int

    def sum(self, contrib: np.ndarray) -> np.ndarray:
        """Per-field sums of the last axis of `contrib` (its first ``n_columns`` entries)."""
        columns = contrib[..., : self.n_columns]
        if self.order is not None:
            columns = columns[..., self.order]
        return np.add.reduceat(columns, self.starts, axis=-1)


def _grouping(sources: Sequence[str]) -> tuple[tuple[str, ...], _Grouping]:
    """Fields in order of first appearance and how to sum the columns of each."""
    groups, first, inverse = np.unique(np.asarray(sources), return_index=True, return_inverse=True)
    appearance = np.argsort(first, kind="stable")  # appearance order, not alphabetical
    rank = np.empty_like(appearance)
    rank[appearance] = np.arange(appearance.size)
    field_of = rank[inverse.ravel()]
    order = np.argsort(field_of, kind="stable")
    starts = np.searchsorted(field_of[order], np.arange(appearance.size))
    contiguous = bool(np.all(order == np.arange(order.size)))
    return (
        tuple(str(g) for g in groups[appearance]),
        _Grouping(None if contiguous else order, starts, len(sources)),
    )


def group_contributions(
    contrib: np.ndarray, sources: Sequence[str]
) -> tuple[np.ndarray, list[str]]:
    """Sum the columns of `contrib` (n × k, one per feature) that share a source.

    `sources` names each column's source field (``FeatureBuilder.feature_sources``); a
    trailing expected-value column, if `contrib` has one more column than `sources`, is
    kept last. Groups come in order of first appearance.
    """
    contrib = np.asarray(contrib, dtype=np.float64)
    k = len(sources)
    if contrib.shape[1] not in (k, k + 1):
        raise ValueError(f"{contrib.shape[1]} contribution columns for {k} feature sources")
    fields, grouping = _grouping(sources)
    grouped = grouping.sum(contrib)
    if contrib.shape[1] == k + 1:
        grouped = np.hstack([grouped, contrib[:, k:]])
    return grouped, list(fields)


def reasons_json(reasons: Sequence[Reason]) -> str:
    """Reasons as JSON text (one list of objects, keys as in the scoring API; NaN as null)."""
    return json.dumps(
        [
            {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in asdict(r).items()}
            for r in reasons
        ]
    )


def reason_layout(builder: _Builder, window_days: int = 30) -> ReasonLayout:
    """Field grouping, word-column lookup and the overall escalation rate of a fitted builder.

    Works for any column layout (one-hot or integer-coded categoricals, extra features):
    a field is whatever ``feature_sources`` names. Word columns are the text columns whose
    readable name is "word '...'" or "phrase '...'"; character n-grams are never listed.
    """
    sources = builder.feature_sources
    fields, grouping = _grouping(sources)
    counts = np.diff(np.append(grouping.starts, len(sources)))
    first = [sources.index(f) for f in fields]
    single = np.where(counts == 1, first, -1)
    words = [
        (j, m.group(1))
        for j, (source, name) in enumerate(zip(sources, builder.readable_names, strict=True))
        if source == TEXT_FIELD and (m := _WORD_COLUMN.match(name))
    ]
    readable = tuple(
        "ticket text" if f == TEXT_FIELD else _field_label(f, builder.readable_names[j], c)
        for f, j, c in zip(fields, first, counts, strict=True)
    )
    return ReasonLayout(
        fields=fields,
        grouping=grouping,
        single_column=np.asarray(single, dtype=np.int64),
        readable=readable,
        word_columns=np.array([j for j, _ in words], dtype=np.int64),
        word_terms=dict(words),
        overall_rate=_overall_rate(builder),
        window_days=window_days,
        by_id=tuple(
            (id_field, who, np.array([i for i, f in enumerate(fields) if _history_of(f, who)]))
            for id_field, who in _IDS
            if id_field not in fields
        ),
        # Builders with integer-coded categoricals pool rare and unseen levels into one code
        # (``categories[field][0]``); a reason then says the level was scored as "other".
        known_levels={
            field: frozenset(levels[1:])
            for field, levels in getattr(builder, "categories", {}).items()
        },
    )


def _history_of(field: str, who: str) -> bool:
    return field in _HISTORY_FIELDS and field.startswith(who + "_")


def _field_label(field: str, first_readable: str, n_columns: int) -> str:
    """A one-column field keeps its column's readable name; a one-hot field its own name."""
    if n_columns == 1 and " = " not in first_readable:
        return first_readable
    return field.replace("_", " ")


def _overall_rate(builder: _Builder) -> float:
    """The rate the smoothed history rates shrink towards: what an agent without outcomes gets.

    Read through the public record path (no outcomes yet: 0 of 0), so it holds for any
    builder that has an ``agent_escalation_rate`` column; NaN when it has none.
    """
    if "agent_escalation_rate" not in builder.feature_names:
        return math.nan
    zero = {"agent_prior_escalated": 0.0, "agent_prior_resolved": 0.0}
    row = builder.transform_record(zero).toarray()[0]
    return float(row[builder.feature_names.index("agent_escalation_rate")])


def explain_rows(
    layout: ReasonLayout,
    contrib: np.ndarray,
    rows: np.ndarray,
    records: Sequence[Mapping[str, Any]],
    n: int,
) -> list[list[Reason]]:
    """The `n` strongest field reasons of every row, strongest first.

    `contrib` is (rows × columns[+1]) SHAP values, `rows` the dense feature rows, `records`
    the tickets as scored (raw field values plus history), one per row. Grouping, merging
    and ranking run on the whole matrix at once; only the reasons returned are formatted.
    """
    contrib = np.asarray(contrib)
    grouped = layout.grouping.sum(contrib)
    merged: list[dict[int, tuple[str, str]]] = [{} for _ in records]
    for id_field, who, groups in layout.by_id:
        nobody = [i for i, r in enumerate(records) if _nobody_named(r, id_field, who)]
        if groups.size and nobody:
            # One reason for all of it: the sum stays whole, so reasons still add to the margin.
            total = grouped[np.ix_(nobody, groups)].sum(axis=1)
            grouped[np.ix_(nobody, groups)] = 0.0
            grouped[nobody, groups[0]] = total
            for i in nobody:
                merged[i][int(groups[0])] = (id_field, who)
    # Strongest first, ties in field order (a stable sort); zeros sort last and are dropped.
    order = np.argsort(-np.abs(grouped), axis=1, kind="stable")[:, : max(n, 0)]
    return [
        [
            _nobody(*merged[r][i], float(grouped[r, i]))
            if i in merged[r]
            else _reason(layout, i, float(grouped[r, i]), contrib[r], rows[r], records[r])
            for i in map(int, order[r])
            if grouped[r, i] != 0
        ]
        for r in range(grouped.shape[0])
    ]


def _nobody_named(record: Mapping[str, Any], id_field: str, who: str) -> bool:
    """No id and no history given for it: every one of its history values is unknown."""
    return _missing(record.get(id_field)) and all(
        _missing(record.get(name)) for name in HISTORY_NAMES if name.startswith(who + "_")
    )


def _nobody(id_field: str, who: str, contribution: float) -> Reason:
    """One reason for all history of an agent/customer the ticket does not name."""
    return Reason(
        feature=id_field,
        name=who,
        value=math.nan,
        contribution=contribution,
        field=id_field,
        display_value="none given",
        text=f"no {who} known ({who}: none given)",
    )


def _reason(
    layout: ReasonLayout,
    i: int,
    contribution: float,
    contrib: np.ndarray,
    row: np.ndarray,
    record: Mapping[str, Any],
) -> Reason:
    field = layout.fields[i]
    column = int(layout.single_column[i])
    value = float(row[column]) if column >= 0 else math.nan
    if field == TEXT_FIELD:
        shown, text = _text_reason(layout, contribution, contrib, row)
    elif field in _STATED:
        shown, text = _STATED[field](value, record, layout)
    elif field in record or column < 0:  # an input field (one-hot levels, or in the ticket)
        raw = record.get(field)
        # A category's column holds a level code, which means nothing to a reader.
        value = float(raw) if isinstance(raw, int | float) and not _missing(raw) else math.nan
        shown, text = _field_value(layout.readable[i], raw)
        known = layout.known_levels.get(field)
        if known is not None and shown != "none given" and shown not in known:
            text += " (a rare or new value, scored as 'other')"
    else:
        shown = "missing" if math.isnan(value) else f"{value:g}"
        text = f"{layout.readable[i]}: {shown}"
    return Reason(
        feature=field,
        name=layout.readable[i],
        value=value,
        contribution=contribution,
        field=field,
        display_value=shown,
        text=text,
    )


def _text_reason(
    layout: ReasonLayout, contribution: float, contrib: np.ndarray, row: np.ndarray
) -> tuple[str, str]:
    """The whole words/phrases the ticket contains that push hardest the way the text does."""
    present = layout.word_columns[row[layout.word_columns] != 0]  # words the ticket contains
    pushes = contrib[present] * np.sign(contribution)
    order = np.argsort(-pushes, kind="stable")[:TEXT_TERMS]
    terms = [f'"{layout.word_terms[int(present[o])]}"' for o in order if pushes[o] > 0]
    if not terms:
        return "no telling words", "ticket text: no single telling word"
    shown = ", ".join(terms)
    return shown, f"ticket text: {shown}"


# -- one sentence per known field ---------------------------------------------------------------
def _missing(value: Any) -> bool:
    """None, NaN, pd.NA or NaT: what pandas and JSON bodies use for "not given"."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def _field_value(label: str, value: Any) -> tuple[str, str]:
    """A categorical or extra field stated in the ticket's own value; absent named as such."""
    if _missing(value) or (isinstance(value, str) and not value.strip()):
        return "none given", f"{label}: none given"
    shown = f"{value:g}" if isinstance(value, float) else str(value)
    return shown, f"{label} = {shown}"


def _tenure(value: float, *_: Any) -> tuple[str, str]:
    if math.isnan(value):
        return "unknown", "agent tenure unknown (agent not on record)"
    return f"{value:.0f} days", f"agent tenure {value:.0f} days"


def _recent(_: float, record: Mapping[str, Any], layout: ReasonLayout) -> tuple[str, str]:
    # The ticket's own count, not the model's column (which may be rescaled to a rate).
    count = record.get("agent_recent_tickets")
    if _missing(count):
        return "unknown", "agent's recent tickets unknown"
    return f"{count:.0f}", f"agent had {count:.0f} tickets in the last {layout.window_days} days"


def _rate_text(escalated: Any, total: Any, whose: str, layout: ReasonLayout) -> tuple[str, str]:
    overall = "" if math.isnan(layout.overall_rate) else f" (overall {layout.overall_rate:.0%})"
    if _missing(total) or _missing(escalated) or float(total) <= 0:
        return "no earlier outcomes", f"{whose} has no escalation outcomes yet{overall}"
    rate = float(escalated) / float(total)
    counts = f"{float(escalated):.0f} of {float(total):.0f} earlier tickets"
    return f"{rate:.0%}", f"{whose}'s escalation rate {rate:.0%}, {counts}{overall}"


def _agent_rate(_: float, record: Mapping[str, Any], layout: ReasonLayout) -> tuple[str, str]:
    return _rate_text(
        record.get("agent_prior_escalated"), record.get("agent_prior_resolved"), "agent", layout
    )


def _customer_rate(_: float, record: Mapping[str, Any], layout: ReasonLayout) -> tuple[str, str]:
    return _rate_text(
        record.get("customer_prior_escalated"),
        record.get("customer_prior_tickets"),
        "customer",
        layout,
    )


def _since_last(value: float, *_: Any) -> tuple[str, str]:
    if math.isnan(value):
        return "first ticket", "customer's first ticket"
    return f"{value:.0f} days", f"customer's previous ticket {value:.0f} days earlier"


def _hour(value: float, *_: Any) -> tuple[str, str]:
    if math.isnan(value):
        return "unknown", "creation time unknown"
    return f"{value:02.0f}:00 UTC", f"created at {value:02.0f}:00-{value:02.0f}:59 UTC"


def _weekday(value: float, *_: Any) -> tuple[str, str]:
    if math.isnan(value):
        return "unknown", "creation day unknown"
    return _DAYS[int(value)], f"created on a {_DAYS[int(value)]}"


def _weekend(value: float, *_: Any) -> tuple[str, str]:
    if math.isnan(value):
        return "unknown", "creation day unknown"
    return ("weekend", "created at the weekend") if value else ("weekday", "created on a weekday")


def _season(value: float, record: Mapping[str, Any], _: ReasonLayout) -> tuple[str, str]:
    year = getattr(record.get("created_at"), "year", None)
    if math.isnan(value) or year is None:
        return "unknown", "time of year unknown"
    day = date(year, 1, 1) + timedelta(days=int(value) - 1)  # day_of_year is in UTC
    shown = f"{day.day} {_MONTHS[day.month - 1]}"
    return shown, f"time of year ({shown})"


def _length(part: str) -> Callable[..., tuple[str, str]]:
    def state(value: float, *_: Any) -> tuple[str, str]:
        if math.isnan(value) or value == 0:
            return "empty", f"{part}: empty"
        return f"{value:.0f} characters", f"{part} {value:.0f} characters long"

    return state


def _count(noun: str) -> Callable[..., tuple[str, str]]:
    def state(value: float, *_: Any) -> tuple[str, str]:
        if math.isnan(value) or value == 0:
            return "none", f"no {noun}s"
        return f"{value:.0f}", f"{value:.0f} {noun}{'' if value == 1 else 's'}"

    return state


def _caps(value: float, *_: Any) -> tuple[str, str]:
    if math.isnan(value):
        return "no letters", "no letters in the text"
    return f"{value:.0%}", f"{value:.0%} of letters are capitals"


_STATED: dict[str, Callable[[float, Mapping[str, Any], ReasonLayout], tuple[str, str]]] = {
    "agent_tenure_days": _tenure,
    "agent_recent_tickets": _recent,
    "agent_escalation_rate": _agent_rate,
    "customer_escalation_rate": _customer_rate,
    "customer_days_since_last": _since_last,
    "hour_of_day": _hour,
    "day_of_week": _weekday,
    "is_weekend": _weekend,
    "day_of_year": _season,
    "subject_length": _length("subject"),
    "description_length": _length("description"),
    "exclamation_count": _count("exclamation mark"),
    "caps_ratio": _caps,
    "urgency_word_count": _count("urgency word"),
}
