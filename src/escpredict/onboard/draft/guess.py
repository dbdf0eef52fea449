"""Guesses from a sample of an export's values: datetime formats, missing markers, value maps.

Each guess is checked against the sample itself (a format must parse every sampled value),
so a draft never proposes something its own data contradicts; where several answers fit the
sample equally (``01-02-2024`` is day-first or month-first) the guess says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from itertools import product

import pandas as pd

from escpredict.ingest.validation import text

#: Whole values that exports use for "no value".
MISSING_MARKERS: tuple[str, ...] = (
    "?", "NULL", "null", "Null", "N/A", "n/a", "NA", "#N/A", "-", "--", "none", "None",
    "(none)", "nil", "<null>", "undefined",
)

#: A marker counts when it is at least this share of some column's non-blank values.
MARKER_SHARE = 0.01

ISO = "ISO8601"
MIXED = "mixed"
_DATES = ("%Y-%m-%d", "%d-%m-%Y", "%m-%d-%Y", "%d/%m/%Y", "%m/%d/%Y", "%Y/%m/%d", "%d.%m.%Y",
          "%d/%m/%y", "%m/%d/%y", "%d.%m.%y", "%d/%b/%y", "%d-%b-%Y", "%d-%b-%y", "%d %b %Y",
          "%b %d, %Y", "%Y%m%d")
_TIMES = (" %H:%M:%S", " %H:%M", " %I:%M %p", " %I:%M:%S %p", " %H:%M:%S.%f", "")
CANDIDATE_FORMATS: tuple[str, ...] = tuple(d + t for d, t in product(_DATES, _TIMES))

#: Looks like a timestamp at all: digits, and a date separator or a month name.
_DATE_LIKE = re.compile(
    r"\d{1,4}[-/.]\w{1,3}[-/.]\d{2,4}|\d{4}-\d{2}-\d{2}|[A-Za-z]{3} \d{1,2}, \d{4}|\d{8}[T ]"
)


#: Distinct values every candidate format is tried on (in plain Python, then in pandas)
#: before the survivors are tried on all: a draft tries a hundred formats per column.
FIRST_VALUES = 5
PROBE_VALUES = 100


@dataclass(frozen=True)
class DatetimeGuess:
    format: str  # ISO8601 or a strftime format
    also: tuple[str, ...] = ()  # other formats that parse the sample as well (ambiguity)


def present(col: pd.Series, missing: list[str]) -> pd.Series:
    """Non-blank values as text, without the export's missing markers."""
    values = text(col).dropna()
    return values[~values.str.strip().isin(missing)]


def missing_markers(sample: pd.DataFrame) -> dict[str, list[str]]:
    """Markers that are a noticeable share of some column (``?`` in the ServiceNow log),
    each with the columns it was seen in, in the order of ``MISSING_MARKERS``."""
    seen: dict[str, list[str]] = {}
    for name in sample.columns:
        values = text(sample[name]).dropna().str.strip()
        if values.empty:
            continue
        counts = values.value_counts()
        for marker in MISSING_MARKERS:
            if counts.get(marker, 0) >= max(1, MARKER_SHARE * len(values)):
                seen.setdefault(marker, []).append(str(name))
    return {m: seen[m] for m in MISSING_MARKERS if m in seen}


def is_datetime(col: pd.Series, missing: list[str]) -> bool:
    """Typed datetimes, or text whose every sampled value looks like a timestamp."""
    if pd.api.types.is_datetime64_any_dtype(col):
        return True
    values = present(col, missing)
    return not values.empty and bool(values.str.contains(_DATE_LIKE).all())


def datetime_format(col: pd.Series, missing: list[str]) -> DatetimeGuess | None:
    """The format that parses every sampled value, ISO 8601 first; None if none does."""
    if pd.api.types.is_datetime64_any_dtype(col):
        return DatetimeGuess(ISO)
    values = present(col, missing).str.strip().drop_duplicates()
    if values.empty or not values.str.contains(_DATE_LIKE).all():
        return None
    if _parses(values, ISO):
        return DatetimeGuess(ISO)
    # a format failing on a few values fails on all: try it on all last
    first, probe = list(values.head(FIRST_VALUES)), values.head(PROBE_VALUES)
    fits = [f for f in CANDIDATE_FORMATS
            if _strptime(first, f) and _parses(probe, f) and _parses(values, f)]
    if fits:
        return DatetimeGuess(fits[0], tuple(fits[1:]))
    if _parses(values, MIXED):  # several formats in one column: pandas reads each value
        return DatetimeGuess(MIXED)
    return None


def _strptime(values: list[str], fmt: str) -> bool:
    try:
        for value in values:
            datetime.strptime(value, fmt)
    except ValueError:
        return False
    return True


def _parses(values: pd.Series, fmt: str) -> bool:
    try:
        parsed = pd.to_datetime(values, format=fmt, errors="coerce", utc=True)
    except (ValueError, TypeError):
        return False
    return bool(parsed.notna().all())


_TIER = re.compile(
    r"^(?:l|t|tier|level|lvl|line|support\s*level|support\s*tier)\s*[-_ ]?\s*(\d)$"
    r"|^(\d)(?:st|nd|rd|th)?\s*[-_ ]?\s*(?:line|level|tier)(?:\s+support)?$",
    re.IGNORECASE,
)
_ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4}


def tier_number(value: str) -> int | None:
    """``L1``, ``Tier 2``, ``2nd line``, ``Second line`` → the tier number; else None."""
    value = value.strip()
    if value.isdigit():
        return int(value)
    if m := _TIER.match(value):
        return int(m.group(1) or m.group(2))
    words = value.lower().split()
    if len(words) == 2 and words[0] in _ORDINALS and words[1] in ("line", "level", "tier"):
        return _ORDINALS[words[0]]
    return None


def tier_map(col: pd.Series, missing: list[str]) -> tuple[dict[str, int], list[str]]:
    """Tier strings → numbers, and the sampled values no rule recognised.

    Plain integers need no map, so they are left out of it.
    """
    mapped: dict[str, int] = {}
    unknown: list[str] = []
    for value in sorted(present(col, missing).str.strip().unique()):
        number = tier_number(value)
        if number is None:
            unknown.append(value)
        elif not value.isdigit():
            mapped[value] = number
    return mapped, unknown


#: Canonical value → patterns (lower case) that mean it, for ``values:`` maps.
VOCABULARY: dict[str, dict[str, str]] = {
    "priority": {
        "urgent": r"critical|urgent|highest|blocker|emergency|^p1\b|^1\b|^sev(erity)?\s*1",
        "high": r"high|major|^p2\b|^2\b|^sev(erity)?\s*2",
        "medium": r"moderate|medium|normal|^p3\b|^3\b|^sev(erity)?\s*3",
        "low": r"low|minor|trivial|planning|^p[45]\b|^[45]\b|^sev(erity)?\s*[45]",
    },
    "channel": {
        "email": r"e-?mail|^mail",
        "phone": r"phone|voice|call|telephon",
        "chat": r"chat|messag|virtual_agent|whatsapp|sms",
        "web": r"web|portal|self[- ]?service|form|api|mobile|widget|app",
    },
}


def value_map(field: str, col: pd.Series, missing: list[str]) -> tuple[dict[str, str], list[str]]:
    """Sampled values → canonical words for ``field``, and the values left as they are.

    A value already canonical (``high``) needs no entry; ``High``, ``2 - High`` or ``Major``
    does, so that the model sees the same words as a scoring request sends.
    """
    mapped: dict[str, str] = {}
    kept: list[str] = []
    for value in sorted(present(col, missing).str.strip().unique()):
        lowered = value.lower()
        hit = next((word for word, pattern in VOCABULARY[field].items()
                    if re.search(pattern, lowered)), None)
        if hit is None:
            kept.append(value)
        elif hit != value:
            mapped[value] = hit
    return mapped, kept


#: Satisfaction words → a score in [0, 1]; None makes the value missing (a survey offered
#: but not answered). Checked in this order, so "not happy" is not read as "happy".
CSAT_WORDS: tuple[tuple[str, float | None], ...] = (
    (r"unoffered|offered|not answered|no response|pending", None),
    (r"not happy|unhappy|bad|dissatisf|poor|negative|terrible", 0.0),
    (r"neutral|okay|^ok$|average", 0.5),
    (r"good|happy|satisf|great|excellent|positive", 1.0),
)


def csat_map(col: pd.Series, missing: list[str]) -> tuple[dict[str, float | None], list[str]]:
    """Satisfaction words → scores, and the words no pattern knows; numbers need no map."""
    mapped: dict[str, float | None] = {}
    unknown: list[str] = []
    values = present(col, missing).str.strip()
    words = values[pd.to_numeric(values, errors="coerce").isna()]
    for value in sorted(words.unique()):
        score = next((s for pattern, s in CSAT_WORDS if re.search(pattern, value.lower())), "?")
        if score == "?":
            unknown.append(value)
        else:
            mapped[value] = score
    return mapped, unknown


def has_token(col: pd.Series, token: str) -> bool:
    """Some value of a list-like column (tags) holds ``token`` as a whole word."""
    pattern = rf"(?:^|[\s,;]){re.escape(token)}(?:$|[\s,;])"
    return bool(text(col).dropna().str.lower().str.contains(pattern).any())


def resolving_statuses(statuses: list[str]) -> list[str]:
    """The statuses that mark a ticket resolved: resolved/solved/completed/done/fixed, else
    closed. A close usually follows the resolution days later (or by a system user), so it
    stands in only for exports that never say resolved."""
    for pattern in (r"resolv|solved|complet|done|fixed", r"clos"):
        found = sorted(s for s in statuses if re.search(pattern, s, re.IGNORECASE))
        if found:
            return found
    return []


_BOOL_WORDS = {"true", "false", "t", "f", "yes", "no", "y", "n", "0", "1"}


def feature_kind(col: pd.Series, missing: list[str]) -> str | None:
    """categorical, numeric, text or boolean for an extra feature; None when unfit.

    Unfit: empty, one value only, or an id-like column (nearly every value distinct and
    short), which a model would only memorise.
    """
    if pd.api.types.is_bool_dtype(col):
        return "boolean"
    values = present(col, missing).str.strip()
    distinct = values.nunique()
    if distinct < 2:
        return None
    if set(values.str.lower().unique()) <= _BOOL_WORDS and distinct == 2:
        return "boolean"
    long_text = values.str.len().mean() > 40
    if distinct > max(50, 0.5 * len(values)) and not long_text:
        return None
    if pd.to_numeric(values, errors="coerce").notna().all():
        return "numeric"
    return "text" if long_text else "categorical"
