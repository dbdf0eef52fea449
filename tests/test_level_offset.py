"""The level offset: per-level log-odds of the categoricals that the booster starts from."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from escpredict.contract import HISTORY_NAMES
from escpredict.lifecycle.pyfunc import load_escalation_model
from escpredict.lifecycle.registry import use_store
from escpredict.model.escalation import EscalationModel
from escpredict.model.level_offset import C_GRID, LevelOffset
from escpredict.model.offsets import with_offset_shap
from tests.conftest import Trained

SIZES = [50, 5]  # levels of the two code columns (1 and 2) of the matrices below


def _tickets(n: int, signal: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(matrix: noise, product code, priority code with some missing; labels; product effects)."""
    product_effect = np.random.default_rng(99).normal(0, signal, SIZES[0])  # one truth
    rng = np.random.default_rng(seed)
    priority_effect = np.linspace(-signal, signal, SIZES[1])
    product = rng.integers(0, SIZES[0], n)
    priority = rng.integers(0, SIZES[1], n)
    logit = -1.0 + product_effect[product] + priority_effect[priority]
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    codes = np.column_stack([rng.normal(size=n), product, priority]).astype(np.float64)
    codes[rng.random(n) < 0.1, 2] = np.nan
    return codes, y, product_effect


def _fit(n: int, signal: float, seed: int = 0) -> tuple[LevelOffset, np.ndarray, np.ndarray]:
    x, y, effect = _tickets(n, signal, seed)
    valid_x, valid_y, _ = _tickets(n // 4, signal, seed + 1)
    offset = LevelOffset.fit(x, y, valid_x, valid_y, [1, 2], SIZES)
    assert offset is not None
    return offset, x, effect


def test_fit_recovers_each_levels_effect() -> None:
    offset, _, effect = _fit(40_000, signal=0.8)
    product = offset.tables[0][:-1]
    assert np.corrcoef(product, effect)[0, 1] > 0.95
    priority = offset.tables[1][:-1]
    assert np.all(np.diff(priority) > 0)  # the priority effect rises level by level


def test_levels_without_signal_get_the_strongest_shrinkage() -> None:
    offset, x, _ = _fit(20_000, signal=0.0)
    assert offset.strength == min(C_GRID)
    assert offset.of(x).std() < 0.1  # with signal 0.8 (test above) it is about 0.87


def test_no_categorical_column_means_no_offset() -> None:
    x, y, _ = _tickets(1000, 0.5, 0)
    assert LevelOffset.fit(x, y, x, y, [], []) is None


def test_offset_reads_dense_or_sparse_rows_and_a_missing_code_adds_nothing() -> None:
    offset, x, _ = _fit(20_000, signal=0.5)
    rows = np.array([[0.3, 7.0, 2.0], [0.0, 7.0, np.nan]])
    dense = offset.of(rows)
    np.testing.assert_array_equal(dense, offset.of(sp.csr_matrix(rows)))
    expected = offset.reference - offset.means.sum() + offset.tables[0][7]
    assert dense[1] == pytest.approx(expected)
    assert dense[0] - dense[1] == pytest.approx(offset.tables[1][2])
    assert offset.of(x).mean() == pytest.approx(offset.reference)  # SHAP's E[offset]


def test_an_offset_saved_as_json_gives_the_same_terms_and_reference() -> None:
    offset, x, _ = _fit(5_000, signal=0.5)
    loaded = LevelOffset.from_state(json.loads(json.dumps(offset.to_state())))
    assert loaded.reference == offset.reference
    np.testing.assert_array_equal(loaded.of(x), offset.of(x))
    np.testing.assert_array_equal(loaded.centred_terms(x), offset.centred_terms(x))


def test_shap_of_the_offset_sits_on_the_code_columns_and_sums_to_it() -> None:
    offset, x, _ = _fit(20_000, signal=0.5)
    rows = x[:100]
    contrib = with_offset_shap((offset,), np.zeros((100, x.shape[1] + 1)), rows)
    np.testing.assert_allclose(contrib.sum(axis=1), offset.of(rows), atol=1e-12)
    assert not contrib[:, 0].any()  # the numeric column owes the offset nothing
    assert contrib[:, 1].std() > 0 and contrib[:, 2].std() > 0
    whole = with_offset_shap((offset,), np.zeros((len(x), x.shape[1] + 1)), x)
    np.testing.assert_allclose(whole[:, 1:3].mean(axis=0), 0, atol=1e-12)  # centred on training


@pytest.fixture(scope="module")
def model(trained: Trained) -> EscalationModel:
    use_store(trained.tracking_uri)
    return load_escalation_model(
        f"models:/{trained.result.model_name}/{trained.result.model_version}"
    )


def test_a_trained_model_applies_it_alike_to_one_ticket_and_to_a_frame(
    model: EscalationModel, trained: Trained
) -> None:
    assert model.levels is not None  # on by default
    window = trained.result.test_window.head(30).drop(columns=list(HISTORY_NAMES))
    records: list[dict[str, Any]] = window.to_dict("records")
    single = [model.score_record(r, n_reasons=3).probability for r in records]
    np.testing.assert_allclose(single, model.predict_proba(pd.DataFrame(records)), rtol=1e-12)
    matrix = model.matrix(window)
    margin = model.booster.predict(matrix, raw_score=True) + model.levels.of(matrix)
    if model.season is not None:
        margin += model.season.of(matrix)
    np.testing.assert_allclose(model.contributions(matrix).sum(axis=1), margin, atol=1e-9)
