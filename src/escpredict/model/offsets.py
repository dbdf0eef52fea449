"""Starting scores of the booster: fixed log-odds terms added to its raw score.

An offset is fitted before the booster and given to LightGBM as ``init_score``, so the
trees learn only what it leaves. The model's margin is the booster's raw score plus every
offset, and its SHAP values stay exact: each offset is additive over matrix columns, so
its share of a column is its term there minus that term's training mean, and the means
(with any intercept) add to the expected value.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import lightgbm as lgb
import numpy as np
import scipy.sparse as sp


class Offset(Protocol):
    """A log-odds term, additive over columns of the model matrix."""

    #: Mean offset over the training rows: its part of SHAP's expected value.
    reference: float

    def of(self, matrix: sp.spmatrix | np.ndarray) -> np.ndarray:
        """The offset of every row."""

    def centred(self, matrix: sp.spmatrix | np.ndarray) -> dict[int, np.ndarray]:
        """Per matrix column, its term for every row minus the term's training mean."""


def present(*candidates: Offset | None) -> tuple[Offset, ...]:
    """The offsets a model applies (those fitted), in the order given."""
    return tuple(offset for offset in candidates if offset is not None)


def total(offsets: Sequence[Offset], matrix: sp.spmatrix | np.ndarray) -> np.ndarray | None:
    """Sum of the offsets per row (LightGBM's ``init_score``); None without any."""
    if not offsets:
        return None
    return np.sum([offset.of(matrix) for offset in offsets], axis=0)


def margin(
    booster: lgb.Booster, offsets: Sequence[Offset], matrix: sp.spmatrix | np.ndarray,
    **predict_params: Any,
) -> np.ndarray:
    """The model's log-odds before calibration: booster raw score plus its offsets."""
    raw = np.asarray(booster.predict(matrix, raw_score=True, **predict_params), dtype=np.float64)
    start = total(offsets, matrix)
    return raw if start is None else raw + start


def with_offset_shap(
    offsets: Sequence[Offset], contrib: np.ndarray, matrix: sp.spmatrix | np.ndarray
) -> np.ndarray:
    """Booster SHAP values (last column: expected value) extended to booster + offsets.

    Adds in place to a float64 `contrib` (the fresh array the booster returned) and
    returns it: a copy of a batch's (rows × thousands of columns) matrix cost ~3 ms of a
    100-ticket batch's ~50.
    """
    if not offsets:
        return contrib
    out = np.asarray(contrib, dtype=np.float64)
    for offset in offsets:
        for column, values in offset.centred(matrix).items():
            out[:, column] += values
        out[:, -1] += offset.reference
    return out


def threads_for(matrix: sp.csr_matrix | np.ndarray) -> dict[str, int]:
    """One thread for one row: LightGBM parallelises over rows, so for a single ticket the
    second thread is only start-up cost (raw score 96 -> 29 us, SHAP 1.00 -> 0.95 ms), and
    a row's result is the same bit for bit. Larger matrices keep the booster's setting."""
    return {"num_threads": 1} if matrix.shape[0] == 1 else {}
