"""The trained escalation model: feature pipeline, booster, calibrator and history snapshot.

One object serves every consumer (batch scoring, the HTTP service, reports, promotion), so
a probability is computed by exactly one code path whether it is asked for one ticket or a
million: ``predict_proba`` for frames and ``score_record`` for a single ticket share the
booster call and the calibrator, which is what makes serving/batch parity hold.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import scipy.sparse as sp

from escpredict.contract import HISTORY_NAMES
from escpredict.labels.history import HistorySnapshot
from escpredict.labels.values import missing
from escpredict.model.calibration import Calibrator
from escpredict.model.explain import Reason, ReasonLayout, explain_rows, reason_layout
from escpredict.model.features import FeatureBuilder
from escpredict.model.level_offset import LevelOffset
from escpredict.model.offsets import Offset, margin, present, threads_for, with_offset_shap
from escpredict.model.open_ticket import OpenTicketModel, open_reasons, state_values
from escpredict.model.season import SeasonalOffset

__all__ = ["EscalationModel", "Reason", "Score"]

#: Rows explained per TreeSHAP call on the frame path: dense chunks are faster than CSR, and
#: this bounds their memory (2,000 rows x a few thousand float64 columns ~ tens of MB).
_EXPLAIN_CHUNK = 2000


@dataclass(frozen=True)
class Score:
    probability: float
    tier: str
    route: str
    reasons: list[Reason]
    flags: list[str]
    #: With a state: the age band that answered ("creation" at first); None without one.
    age_band: str | None = None


@dataclass
class EscalationModel:
    builder: FeatureBuilder
    booster: lgb.Booster
    calibrator: Calibrator
    snapshot: HistorySnapshot
    threshold: float
    tiers: dict[str, float]
    route_queue: str
    default_queue: str
    metadata: dict[str, Any] = field(default_factory=dict)
    #: The booster's starting score; None for models trained without one (or before it).
    season: SeasonalOffset | None = None
    #: Per-level starting score of the categoricals; None when off (or before it existed).
    levels: LevelOffset | None = None
    #: The model for tickets already open (scoring with ``state``); None when training had
    #: no events to build checkpoints from.
    open: OpenTicketModel | None = None

    # -- batch path -------------------------------------------------------------------------
    def with_history(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Fill history columns a frame lacks from the snapshot (values as of each ticket)."""
        missing = [c for c in HISTORY_NAMES if c not in frame.columns]
        if not missing:
            return frame
        looked_up = [
            self.snapshot.lookup(_opt(a), _opt(c), t)[0]
            for a, c, t in zip(frame["agent_id"], frame["customer_id"], frame["created_at"])
        ]
        history = pd.DataFrame(looked_up, index=frame.index, columns=list(HISTORY_NAMES))
        return pd.concat([frame, history[missing]], axis=1)

    def matrix(self, frame: pd.DataFrame) -> sp.csr_matrix:
        return self.builder.transform(self.with_history(frame))

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated escalation probability for every row of a canonical ticket frame."""
        return self.proba_from_matrix(self.matrix(frame))

    @property
    def offsets(self) -> tuple[Offset, ...]:
        """The starting scores added to the booster's raw score, season first."""
        return present(self.season, self.levels)

    def proba_from_matrix(self, matrix: sp.csr_matrix | np.ndarray) -> np.ndarray:
        return self.calibrator.apply(
            margin(self.booster, self.offsets, matrix, **threads_for(matrix))
        )

    def contributions(self, matrix: sp.csr_matrix | np.ndarray) -> np.ndarray:
        """Exact per-ticket SHAP values (log-odds); last column is the expected value.

        They sum to the margin the calibrator sees: booster and offsets together.
        """
        contrib = self.booster.predict(matrix, pred_contrib=True, **threads_for(matrix))
        dense = contrib.toarray() if sp.issparse(contrib) else np.asarray(contrib)
        return with_offset_shap(self.offsets, dense, matrix)

    def tier_of(self, probability: float) -> str:
        tier = next(iter(self.tiers))
        for name, lower in self.tiers.items():
            if probability >= lower:
                tier = name
        return tier

    def route_of(self, probability: float) -> str:
        return self.route_queue if probability >= self.threshold else self.default_queue

    @cached_property
    def reason_layout(self) -> ReasonLayout:
        """Field grouping and word lookup for reasons: built once, on the first score."""
        return reason_layout(self.builder, self.builder.cfg.recent_window_days)

    def __getstate__(self) -> dict[str, Any]:
        # Dask ships the model to its workers by pickle: the layout, derived from the
        # builder, is rebuilt there rather than copied. (Saved models are `model.artefact`.)
        return {k: v for k, v in self.__dict__.items() if k != "reason_layout"}

    def score_table(
        self, frame: pd.DataFrame, n_reasons: int = 0, state: pd.DataFrame | None = None
    ) -> pd.DataFrame:
        """probability, risk_tier, route (and ``reasons``, a list per row if asked) per row.

        ``state`` (``STATE_NAMES`` columns, row-aligned with ``frame``) scores open tickets:
        rows whose age falls after the first band get the open-ticket model's risk of
        escalating from then on; rows with no age are scored as at creation.
        """
        full = self.with_history(frame)
        matrix = self.builder.transform(full)
        raw = margin(self.booster, self.offsets, matrix)
        probability = self.calibrator.apply(raw)
        opened = self._open_rows(raw, state)
        if opened is not None:
            probability[opened.index] = opened.probability
        table = pd.DataFrame(
            {
                "probability": probability,
                "risk_tier": [self.tier_of(p) for p in probability],
                "route": [self.route_of(p) for p in probability],
            },
            index=frame.index,
        )
        if n_reasons > 0:
            records = full.to_dict("records")
            reasons: list[list[Reason]] = []
            for start in range(0, matrix.shape[0], _EXPLAIN_CHUNK):
                rows = matrix[start : start + _EXPLAIN_CHUNK].toarray()
                chunk = records[start : start + _EXPLAIN_CHUNK]
                contrib = self.contributions(rows)
                found = explain_rows(self.reason_layout, contrib, rows, chunk, n_reasons)
                if opened is not None:
                    self._open_reasons(found, contrib, raw[start:], opened, start, n_reasons)
                reasons += found
            table["reasons"] = reasons
        return table

    def _open_rows(self, raw: np.ndarray, state: pd.DataFrame | None) -> _Opened | None:
        """The open-ticket model's answer for the rows ``state`` places after creation."""
        if state is None:
            return None
        if self.open is None:
            raise OpenScoringError(NO_OPEN_MODEL)
        ages = state["age_hours"].to_numpy(dtype=np.float64, na_value=np.nan)
        bands = self.open.band_of(np.nan_to_num(ages, nan=-1.0))
        index = np.flatnonzero(~np.isnan(ages) & (bands > 0))
        picked = state.iloc[index]
        rows = self.open.encoder.matrix(raw[index], picked)
        return _Opened(index, bands[index], rows, self.open.proba(rows, bands[index]),
                       picked.to_dict("records"))

    def _open_reasons(
        self, found: list[list[Reason]], contrib: np.ndarray, raw: np.ndarray, opened: _Opened,
        start: int, n: int,
    ) -> None:
        """Replace, in place, the reasons of the open rows among ``found`` (rows ``start``...)
        with `open_reasons`; ``contrib`` and ``raw`` are those rows' at-creation SHAP
        values and margins."""
        here = np.flatnonzero((opened.index >= start) & (opened.index < start + len(found)))
        if not len(here):
            return
        assert self.open is not None
        extra = self.open.contributions(opened.rows[here], opened.bands[here])
        for k, j in enumerate(here):
            i = int(opened.index[j]) - start
            found[i] = open_reasons(
                found[i], extra[k], self.open.encoder.names, opened.states[j],
                float(raw[i] - contrib[i, -1]), n,
            )

    # -- single-ticket path (serving) -------------------------------------------------------
    def complete_record(self, record: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """Add snapshot history for fields the caller did not supply; return cold-start flags."""
        supplied = {k: record[k] for k in HISTORY_NAMES if record.get(k) is not None}
        if len(supplied) == len(HISTORY_NAMES):
            return dict(record), []
        values, flags = self.snapshot.lookup(
            record.get("agent_id"), record.get("customer_id"), record["created_at"]
        )
        return {**record, **values, **supplied}, flags

    def score_record(self, record: Mapping[str, Any], n_reasons: int = 5) -> Score:
        """Probability, tier, route and top reasons for one ticket, without any DataFrame."""
        return self.score_records([record], n_reasons)[0]

    def score_records(
        self, records: Sequence[Mapping[str, Any]], n_reasons: int = 5
    ) -> list[Score]:
        """`score_record` for many tickets with one booster call and one SHAP call for all.

        Same answers as scoring each alone: LightGBM scores rows independently, and the
        rows are the ones `transform_records` builds for a single ticket. A record with a
        ``state`` (``open_ticket.state_values``: its events so far, or its current fields,
        and ``as_of``) past the first age band gets the open-ticket model's answer.
        """
        completed = [self.complete_record(r) for r in records]
        if not completed:
            return []
        # Dense rows, built as one matrix: LightGBM's SHAP takes ~2/3 of the time it needs
        # on CSR rows (0.37 vs 0.56 ms a ticket). The raw score comes from its own booster
        # call, as in batch scoring, rather than from a sum of SHAP values that can differ
        # in the last bits and cross an isotonic step.
        fulls = [full for full, _ in completed]
        rows = self.builder.transform_records(fulls)
        raw = margin(self.booster, self.offsets, rows, **threads_for(rows))
        probability = self.calibrator.apply(raw)
        flags = [list(f) for _, f in completed]
        bands: list[str | None] = [None] * len(records)
        opened = self._open_records(records, raw, flags, bands)
        if opened is not None:
            probability[opened.index] = opened.probability
        if n_reasons > 0:
            contrib = self.contributions(rows)
            reasons = explain_rows(self.reason_layout, contrib, rows, fulls, n_reasons)
            if opened is not None:
                self._open_reasons(reasons, contrib, raw, opened, 0, n_reasons)
        else:
            reasons = [[] for _ in completed]
        return [
            Score(
                probability=float(p),
                tier=self.tier_of(float(p)),
                route=self.route_of(float(p)),
                reasons=r,
                flags=f,
                age_band=band,
            )
            for p, r, f, band in zip(probability, reasons, flags, bands, strict=True)
        ]

    def _open_records(
        self, records: Sequence[Mapping[str, Any]], raw: np.ndarray, flags: list[list[str]],
        bands_named: list[str | None],
    ) -> _Opened | None:
        """The open-ticket model's answer for records whose ``state`` is past creation;
        ``flags`` gain ``already_escalated`` where the state shows an escalation, and
        ``bands_named`` each state's age band."""
        given = [i for i, r in enumerate(records) if r.get("state") is not None]
        if not given:
            return None
        if self.open is None:
            raise OpenScoringError(NO_OPEN_MODEL)
        waits = self.open.waits
        states = [state_values(records[i]["created_at"], records[i]["state"], waits) for i in given]
        bands = self.open.band_of(np.array([s["age_hours"] for s in states]))
        for i, state, band in zip(given, states, bands, strict=True):
            bands_named[i] = self.open.band_names[int(band)]
            if self.open.shows_escalation(records[i], state):
                flags[i].append("already_escalated")
        later = np.flatnonzero(bands > 0)
        index = np.array(given, dtype=np.int64)[later]
        picked = [states[k] for k in later]
        rows = self.open.encoder.rows(raw[index], picked)
        return _Opened(index, bands[later], rows, self.open.proba(rows, bands[later]), picked)


#: A model trained without events has no open-ticket part.
NO_OPEN_MODEL = (
    "state was given, but this model has no open-ticket part: open-ticket scoring needs a "
    "model trained on an event export (one row per update, `level: events` in the mapping)"
)


class OpenScoringError(ValueError):
    """A request asks for open-ticket scoring the model cannot give."""


@dataclass(frozen=True)
class _Opened:
    """Rows answered by the open-ticket model: positions, bands, its matrix, probabilities
    and the states (dicts) they were built from."""

    index: np.ndarray
    bands: np.ndarray
    rows: np.ndarray
    probability: np.ndarray
    states: list[dict[str, Any]]


def _opt(value: Any) -> Any:
    """NA-like values become None so snapshot lookups treat them as unknown ids."""
    return None if missing(value) else value
