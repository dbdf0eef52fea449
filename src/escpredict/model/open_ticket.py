"""The open-ticket model: the risk that a ticket still open and unescalated escalates from now on.

It reads the at-creation model's margin (its log-odds for the ticket as created) and the
ticket's state so far (``contract.STATE_FIELDS``: age, status, queue, updates, waits, ...),
and answers per age band (``open_tickets.ages``: a ticket of 6 h is in the 4h band):

- band 0, creation: the at-creation model's own answer, unchanged;
- every later band: a LightGBM booster started from the margin (``init_score``) that also
  reads it as a feature, then a calibrator fitted on that band alone, because the base rate
  among tickets still open moves with age. Training chooses one booster for all bands or one
  per band (``structure``); a band where the booster did not beat the at-creation ranking on
  the validation window keeps that ranking (``fallback``), recalibrated for its age.

Scoring runs per request, so it takes plain numbers: `StateEncoder.rows` builds the matrix
from dicts, the frame path `StateEncoder.matrix` from a frame, with the same codes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from escpredict.contract import STATE_FIELDS, STATE_NAMES
from escpredict.labels.state import EVENT_KEYS as EVENT_COLUMN_KEYS
from escpredict.labels.state import WaitStatuses, state_of
from escpredict.labels.values import missing
from escpredict.model.calibration import Calibrator
from escpredict.model.explain import Reason
from escpredict.model.offsets import threads_for

#: The at-creation model's margin, the first column of the open-ticket matrix.
MARGIN = "creation_margin"
STATE_NUMERIC: tuple[str, ...] = tuple(f.name for f in STATE_FIELDS if f.kind == "float")
STATE_CATEGORICAL: tuple[str, ...] = tuple(f.name for f in STATE_FIELDS if f.kind == "str")
#: Code of levels seen too rarely in training, and of new ones; missing values are NaN.
OTHER = 0
#: Per-band boosters ("per_band") or one for every band, age a feature ("shared").
STRUCTURES = ("shared", "per_band")


@dataclass(frozen=True)
class StateEncoder:
    """The open-ticket matrix: margin, numeric state, then one code column per categorical
    state field (levels seen at least ``min_count`` times in training keep a code)."""

    levels: dict[str, tuple[str, ...]]  # field -> its levels by code; code 0 is OTHER

    @classmethod
    def fit(cls, state: pd.DataFrame, min_count: int) -> StateEncoder:
        levels = {}
        for name in STATE_CATEGORICAL:
            counts = state[name].dropna().astype(str).value_counts()
            levels[name] = ("(other)", *sorted(counts.index[counts >= min_count]))
        return cls(levels)

    @property
    def names(self) -> list[str]:
        return [MARGIN, *STATE_NUMERIC, *STATE_CATEGORICAL]

    @property
    def categorical_columns(self) -> list[int]:
        first = 1 + len(STATE_NUMERIC)
        return list(range(first, first + len(STATE_CATEGORICAL)))

    @cached_property
    def codes(self) -> dict[str, dict[str, int]]:
        """Each categorical's level -> code, built once per loaded model (not per request)."""
        return {
            name: {level: code for code, level in enumerate(levels) if code != OTHER}
            for name, levels in self.levels.items()
        }

    def matrix(self, margin: np.ndarray, state: pd.DataFrame) -> np.ndarray:
        """Rows for a frame of states (``STATE_NAMES`` columns) and their margins."""
        columns = [np.asarray(margin, dtype=np.float64)]
        columns += [state[n].to_numpy(dtype=np.float64, na_value=np.nan) for n in STATE_NUMERIC]
        for name in STATE_CATEGORICAL:
            values = state[name]
            known = values.notna().to_numpy()
            codes = np.full(len(values), np.nan)
            mapped = values[known].astype(str).map(self.codes[name]).fillna(OTHER)
            codes[known] = mapped.to_numpy(dtype=np.float64)
            columns.append(codes)
        return np.column_stack(columns)

    def rows(self, margins: Sequence[float], states: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """The same rows as `matrix`, from dicts (the scoring path: no DataFrame)."""
        out = np.empty((len(states), len(self.names)))
        codes = self.codes
        for i, (margin, state) in enumerate(zip(margins, states, strict=True)):
            numbers = [np.nan if missing(state.get(n)) else float(state[n]) for n in STATE_NUMERIC]
            levels = [
                np.nan if missing(state.get(n)) else float(codes[n].get(str(state[n]), OTHER))
                for n in STATE_CATEGORICAL
            ]
            out[i] = [float(margin), *numbers, *levels]
        return out

    def to_state(self) -> dict[str, Any]:
        return {"levels": {name: list(levels) for name, levels in self.levels.items()}}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> StateEncoder:
        levels = {str(k): tuple(map(str, v)) for k, v in state["levels"].items()}
        if set(levels) != set(STATE_CATEGORICAL):
            raise ValueError(f"state levels for {sorted(levels)}, expected {STATE_CATEGORICAL}")
        return cls(levels)


@dataclass
class OpenTicketModel:
    """Boosters and calibrators per age band; band 0 is the at-creation model's."""

    band_hours: tuple[float, ...]  # each band's first age, ascending from 0
    band_names: tuple[str, ...]
    encoder: StateEncoder
    structure: str
    #: band -> its booster; None where the band falls back to the at-creation ranking.
    #: With ``shared`` every band that uses a booster holds the same one.
    boosters: dict[int, lgb.Booster | None]
    calibrators: dict[int, Calibrator]  # bands 1..n
    wait_statuses: tuple[str, ...]
    #: The label rules' signs of an escalation a state can show: a tier above the initial
    #: one (``tier_raised``), more assignee changes than allowed (``reassignments``; None).
    tier_raised: bool = False
    max_reassignments: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def waits(self) -> WaitStatuses:
        return WaitStatuses(self.wait_statuses)

    def shows_escalation(self, record: Mapping[str, Any], state: Mapping[str, Any]) -> bool:
        """Whether the state already shows what the label rules call an escalation."""
        tier, initial = state.get("tier_now"), record.get("initial_tier")
        raised = self.tier_raised and not (missing(tier) or missing(initial)) and tier > initial
        changes = state.get("assignee_changes")
        passed = (self.max_reassignments is not None and not missing(changes)
                  and changes > self.max_reassignments)
        return bool(raised or passed)

    def band_of(self, age_hours: np.ndarray) -> np.ndarray:
        """Each age's band: the last band starting at or before it (a negative age: 0)."""
        ages = np.asarray(age_hours, dtype=np.float64)
        return np.maximum(np.searchsorted(self.band_hours, ages, side="right") - 1, 0)

    def margin(self, rows: np.ndarray, bands: np.ndarray) -> np.ndarray:
        """Log-odds before calibration: the at-creation margin plus the band's booster."""
        out = rows[:, 0].copy()
        for booster, chosen in self._answering(bands):
            picked = rows[chosen]
            out[chosen] += booster.predict(picked, raw_score=True, **threads_for(picked))
        return out

    def proba(self, rows: np.ndarray, bands: np.ndarray) -> np.ndarray:
        """Calibrated risk of escalating from now on, for rows of bands 1 and later."""
        raw = self.margin(rows, bands)
        out = np.empty(len(raw))
        for band in np.unique(bands):
            chosen = bands == band
            out[chosen] = self.calibrators[int(band)].apply(raw[chosen])
        return out

    def contributions(self, rows: np.ndarray, bands: np.ndarray) -> np.ndarray:
        """The boosters' SHAP values per open-ticket column (last: expected value); zero for
        a band that falls back to the at-creation ranking."""
        out = np.zeros((len(rows), rows.shape[1] + 1))
        for booster, chosen in self._answering(bands):
            picked = rows[chosen]
            out[chosen] = booster.predict(picked, pred_contrib=True, **threads_for(picked))
        return out

    def _answering(self, bands: np.ndarray) -> Iterator[tuple[lgb.Booster, np.ndarray]]:
        """Each distinct booster with the rows whose band it answers: with ``shared`` one
        booster serves every band, so one call scores them all."""
        groups: dict[int, tuple[lgb.Booster, list[int]]] = {}
        for band, booster in self.boosters.items():
            if booster is not None:
                groups.setdefault(id(booster), (booster, []))[1].append(band)
        for booster, its_bands in groups.values():
            chosen = np.isin(bands, its_bands)
            if chosen.any():
                yield booster, chosen

    def to_state(self) -> dict[str, Any]:
        """Everything but the boosters, as JSON-ready data; ``booster_names`` names each
        band's booster file (``boosters()`` gives their texts)."""
        return {
            "band_hours": list(self.band_hours),
            "band_names": list(self.band_names),
            "encoder": self.encoder.to_state(),
            "structure": self.structure,
            "booster_names": {str(b): self.booster_name(b) for b in self.boosters},
            "calibrators": {str(b): c.to_state() for b, c in self.calibrators.items()},
            "wait_statuses": list(self.wait_statuses),
            "tier_raised": self.tier_raised,
            "max_reassignments": self.max_reassignments,
            "metadata": self.metadata,
        }

    def booster_name(self, band: int) -> str | None:
        if self.boosters[band] is None:
            return None
        return "shared" if self.structure == "shared" else f"band-{band}"

    def booster_texts(self) -> dict[str, str]:
        """Booster file name -> LightGBM's text model, each booster once."""
        return {
            name: booster.model_to_string()
            for band, booster in self.boosters.items()
            if booster is not None and (name := self.booster_name(band)) is not None
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any], texts: Mapping[str, str]) -> OpenTicketModel:
        loaded = {name: lgb.Booster(model_str=text) for name, text in texts.items()}
        return cls(
            band_hours=tuple(float(h) for h in state["band_hours"]),
            band_names=tuple(map(str, state["band_names"])),
            encoder=StateEncoder.from_state(state["encoder"]),
            structure=str(state["structure"]),
            boosters={
                int(b): None if name is None else loaded[name]
                for b, name in state["booster_names"].items()
            },
            calibrators={int(b): Calibrator.from_state(c) for b, c in state["calibrators"].items()},
            wait_statuses=tuple(map(str, state["wait_statuses"])),
            tier_raised=bool(state["tier_raised"]),
            max_reassignments=state["max_reassignments"],
            metadata=dict(state.get("metadata", {})),
        )


def hours_text(hours: float) -> str:
    """A duration as a reader says it: "40 minutes", "an hour", "5 hours", "2 days"."""
    if hours < 1:
        minutes = max(round(hours * 60), 1)
        return "a minute" if minutes == 1 else f"{minutes} minutes"
    if hours < 36:
        whole = round(hours)
        return "an hour" if whole == 1 else f"{whole} hours"
    days = round(hours / 24)
    return "a day" if days == 1 else f"{days} days"


def state_text(name: str, state: Mapping[str, Any]) -> tuple[str, str]:
    """(display value, sentence) for one open-ticket column of a ticket's state."""
    value = state.get(name)
    if name != MARGIN and missing(value):
        return "unknown", f"{name.replace('_', ' ')}: unknown"
    if name == "age_hours":
        return hours_text(value), f"open for {hours_text(value)}"
    if name == "hours_since_update":
        return hours_text(value), f"no update for {hours_text(value)}"
    if name == "events_so_far":
        return f"{value:.0f}", f"{value:.0f} update{'s' * (value != 1)} so far"
    if name == "assignee_changes":
        return f"{value:.0f}", f"{value:.0f} assignee change{'s' * (value != 1)} so far"
    if name in ("queue_changes", "hours_since_queue_change", "queue_now"):
        return _queue_text(state)
    if name == "waiting_hours":
        if not value:
            return "none", "no time waiting on others so far"
        return hours_text(value), f"waited on others for {hours_text(value)} so far"
    if name == "tier_now":
        return f"{value:g}", f"now at tier {value:g}"
    if name == "assigned_now":
        return ("assigned", "assigned to someone") if value else ("unassigned", "nobody assigned")
    if name == "status_now":
        return str(value), f"status: {value}"
    raise KeyError(name)


def _queue_text(state: Mapping[str, Any]) -> tuple[str, str]:
    queue, since = state.get("queue_now"), state.get("hours_since_queue_change")
    if missing(queue):
        return "none", "no queue"
    if missing(since) or not state.get("queue_changes"):
        return str(queue), f"in queue {queue} since creation"
    ago = hours_text(since)
    return str(queue), f"moved to {queue} {'an hour' if ago == 'an hour' else ago} ago"


#: Open-ticket columns shown as one reason: the queue, how often and how long ago it moved.
_REASON_FIELD: dict[str, str] = {
    "queue_changes": "queue_now",
    "hours_since_queue_change": "queue_now",
}
_READABLE: dict[str, str] = {
    MARGIN: "risk at creation",
    "age_hours": "age",
    "events_so_far": "updates so far",
    "hours_since_update": "time since the last update",
    "assignee_changes": "assignee changes",
    "queue_now": "queue",
    "waiting_hours": "time waiting on others",
    "tier_now": "tier now",
    "assigned_now": "assigned now",
    "status_now": "status now",
}
#: Beyond this, rescaling the at-creation reasons by the booster's use of the margin would
#: overstate them; the booster's share is then a reason of its own.
_MAX_RESCALE = 4.0


def open_reasons(
    creation: list[Reason], contrib: np.ndarray, names: Sequence[str],
    state: Mapping[str, Any], creation_shift: float, n: int,
) -> list[Reason]:
    """An open ticket's ``n`` strongest reasons, on the log-odds it is calibrated from.

    ``creation`` are its at-creation reasons (which add up to ``creation_shift``, its margin
    minus the at-creation expected value) and ``contrib`` the booster's SHAP values over the
    open-ticket columns ``names``. The booster's share of the margin column rescales the
    at-creation reasons, so every reason still adds up to the margin.
    """
    grouped: dict[str, float] = {}
    for name, value in zip(names, contrib[: len(names)], strict=True):
        key = _REASON_FIELD.get(name, name)
        grouped[key] = grouped.get(key, 0.0) + float(value)
    share = grouped.pop(MARGIN, 0.0)
    scale = 1.0 + share / creation_shift if abs(creation_shift) > 1e-9 else math.inf
    reasons = list(creation)
    if 0.0 <= scale <= _MAX_RESCALE:
        reasons = [replace(r, contribution=r.contribution * scale) for r in creation]
    elif share:
        grouped[MARGIN] = share
    for key, value in grouped.items():
        if value:
            reasons.append(_state_reason(key, value, state))
    reasons.sort(key=lambda r: -abs(r.contribution))
    return reasons[:n]


def _state_reason(name: str, contribution: float, state: Mapping[str, Any]) -> Reason:
    if name == MARGIN:
        shown, text = "as scored at creation", "risk at creation, reweighed for its age"
        value = math.nan
    else:
        shown, text = state_text(name, state)
        raw = state.get(name)
        value = float(raw) if isinstance(raw, int | float) and not missing(raw) else math.nan
    return Reason(
        feature=name, name=_READABLE[name], value=value, contribution=contribution,
        field=name, display_value=shown, text=text,
    )


# -- a request's state ----------------------------------------------------------------------
#: A request's current-fields state: field -> the state value it gives (times are converted).
CURRENT_FIELDS: dict[str, str] = {
    "status": "status_now",
    "queue": "queue_now",
    "tier": "tier_now",
    "events_so_far": "events_so_far",
    "assignee_changes": "assignee_changes",
    "queue_changes": "queue_changes",
    "waiting_hours": "waiting_hours",
}


def to_ns(value: Any) -> int:
    """UTC epoch nanoseconds of a datetime, pandas Timestamp or ISO 8601 text (naive = UTC)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, pd.Timestamp):
        return int((value.tz_localize("UTC") if value.tzinfo is None else value).value)
    if isinstance(value, datetime):
        aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value
        delta = aware - _EPOCH
        return (delta.days * 86_400 + delta.seconds) * 10**9 + delta.microseconds * 1_000
    raise TypeError(f"{value!r} is not a date-time")


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: The keys a state may have: ``as_of``, then ``events`` or the current fields.
CURRENT_KEYS: tuple[str, ...] = (*CURRENT_FIELDS, "assigned", "last_update_at", "queue_changed_at")
STATE_KEYS: frozenset[str] = frozenset({"as_of", "events", *CURRENT_KEYS})
EVENT_KEYS: frozenset[str] = frozenset(EVENT_COLUMN_KEYS.values())


def state_values(created_at: Any, state: Mapping[str, Any], waits: WaitStatuses) -> dict[str, Any]:
    """``STATE_NAMES`` of a ticket at ``state["as_of"]``, from its events so far
    (``state["events"]``: dicts with ``time`` and any of status, tier, queue, assignee) or
    from its current fields (``CURRENT_FIELDS``, ``assigned``, ``last_update_at``,
    ``queue_changed_at``). Raises ValueError when as_of is before creation."""
    created, as_of = to_ns(created_at), to_ns(state["as_of"])
    if as_of < created:
        raise ValueError("state.as_of is before the ticket's created_at")
    if state.get("events") is not None:
        events = [{**e, "time": to_ns(e["time"])} for e in state["events"]]
        return state_of(created, events, as_of, waits)
    out: dict[str, Any] = dict.fromkeys(STATE_NUMERIC, math.nan) | dict.fromkeys(STATE_CATEGORICAL)
    out.update({name: state.get(key) for key, name in CURRENT_FIELDS.items()})
    hour = 3_600 * 10**9
    out["age_hours"] = (as_of - created) / hour
    last = state.get("last_update_at")
    out["hours_since_update"] = (as_of - (created if last is None else to_ns(last))) / hour
    moved = state.get("queue_changed_at")
    out["hours_since_queue_change"] = math.nan if moved is None else (as_of - to_ns(moved)) / hour
    assigned = state.get("assigned")
    out["assigned_now"] = math.nan if assigned is None else float(bool(assigned))
    return out


def state_frame(created_at: Sequence[Any], states: Sequence[Any], waits: WaitStatuses) -> pd.DataFrame:
    """``STATE_NAMES`` per row from each row's state: a mapping, its JSON text, or missing
    (that row is scored as at creation). Raises ValueError naming the row (0-based) of a
    state that is not one."""
    rows = []
    for i, (created, state) in enumerate(zip(created_at, states, strict=True)):
        if missing(state):
            rows.append({})
            continue
        try:
            parsed = json.loads(state) if isinstance(state, str) else state
            if not isinstance(parsed, Mapping) or "as_of" not in parsed:
                raise ValueError("a state is an object with as_of and events or current fields")
            unknown = set(parsed) - STATE_KEYS
            for event in parsed.get("events") or []:
                unknown |= set(event) - EVENT_KEYS
            if unknown:
                raise ValueError(f"unknown keys {sorted(unknown)}")
            rows.append(state_values(created, parsed, waits))
        except (TypeError, KeyError, ValueError) as exc:
            raise ValueError(f"state, row {i}: {exc}") from exc
    return pd.DataFrame(rows, columns=list(STATE_NAMES)).astype(
        {name: "float64" for name in STATE_NUMERIC}
    )


