"""Annual baseline log-odds by day of year, given to LightGBM as its starting score.

Escalation rates follow the calendar (a holiday rush, a quiet summer). Trees can learn that
from the ``day_of_year`` feature, but early-stopped boosting on a few tens of thousands of
tickets spends few splits on a weak, smooth effect: on the 30k sample the booster predicted
a summer trough of 0.187 where the tickets showed 0.155, even on its own training months,
and the test window (a spring decline after a winter validation window) came out
over-predicted by 0.02-0.04. A two-harmonic logistic curve, fitted on the training window
and used as ``init_score``, carries the season whole; the booster learns what is left.

The offset is a function of ``day_of_year`` alone, so it is stored as a 367-entry table
(index 0 for a missing day) and looked up from the feature matrix itself: every scoring path
that has the matrix gets the same margin, with no extra input. Its SHAP value is exact:
for an additive term s, phi = s(x) - E[s], added to the ``day_of_year`` column
(``offsets.with_offset_shap``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression

#: Harmonics of the year in the curve: 1 gives one peak and one trough, 2 lets them differ
#: in width. More would chase noise in a single year of data.
HARMONICS = 2
#: A curve over the year is only identified when the training window covers most of it;
#: with fewer distinct days of year it would extrapolate to unseen months.
MIN_DAYS_COVERED = 330
_DAYS = np.arange(1, 367, dtype=np.float64)


def covers_year(day_of_year: np.ndarray) -> bool:
    """Whether days of year (NaN for unknown) cover enough of the year to learn it.

    One rule for the curve and for the raw ``day_of_year`` feature: below it, every later
    day lies beyond what training saw, and the feature would only act as a clock.
    """
    days = np.asarray(day_of_year, dtype=np.float64)
    return bool(np.unique(days[~np.isnan(days)]).size >= MIN_DAYS_COVERED)


def _harmonics(day_of_year: np.ndarray) -> np.ndarray:
    angle = 2 * np.pi * (day_of_year - 1) / 365.25
    return np.column_stack(
        [f(k * angle) for k in range(1, HARMONICS + 1) for f in (np.sin, np.cos)]
    )


def _column(matrix: sp.spmatrix | np.ndarray, column: int) -> np.ndarray:
    values = matrix[:, column]
    return np.asarray(values.toarray() if sp.issparse(values) else values).ravel()


class SeasonalOffset:
    """Baseline log-odds per day of year (``table[day]``), plus its training-row mean."""

    def __init__(self, column: int, table: np.ndarray, reference: float) -> None:
        self.column = column  # index of ``day_of_year`` in the feature matrix
        self.table = table  # (367,): table[0] (missing day) is the reference
        self.reference = reference  # mean offset over training rows: SHAP's E[s]

    @classmethod
    def fit(
        cls, matrix: sp.spmatrix | np.ndarray, y: np.ndarray, column: int
    ) -> SeasonalOffset | None:
        """Fit on the training window; None when it covers too little of the year."""
        days = _column(matrix, column)
        known = ~np.isnan(days)
        if not covers_year(days):
            return None
        # A near-unpenalised fit of 2 * HARMONICS + 1 parameters on thousands of rows.
        glm = LogisticRegression(C=1e4).fit(_harmonics(days[known]), np.asarray(y)[known])
        curve = glm.decision_function(_harmonics(_DAYS))
        reference = float(glm.decision_function(_harmonics(days[known])).mean())
        return cls(column, np.concatenate([[reference], curve]), reference)

    def to_state(self) -> dict[str, Any]:
        """JSON-ready data: the table round-trips exactly."""
        return {"column": self.column, "table": self.table.tolist(), "reference": self.reference}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> SeasonalOffset:
        table = np.asarray(state["table"], dtype=np.float64)
        if table.shape != (_DAYS.size + 1,):
            raise ValueError(f"a seasonal table has {_DAYS.size + 1} entries, not {table.size}")
        return cls(int(state["column"]), table, float(state["reference"]))

    def of(self, matrix: sp.spmatrix | np.ndarray) -> np.ndarray:
        """Offset (log-odds) of every row; a missing day of year gets the reference."""
        days = _column(matrix, self.column)
        index = np.where(np.isnan(days), 0, days).astype(np.int64)
        return self.table[np.clip(index, 0, 366)]

    def centred(self, matrix: sp.spmatrix | np.ndarray) -> dict[int, np.ndarray]:
        """The whole offset is the ``day_of_year`` column's share (``offsets.Offset``)."""
        return {self.column: self.of(matrix) - self.reference}
