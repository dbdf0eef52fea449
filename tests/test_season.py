"""The seasonal offset: an annual log-odds curve the booster starts from."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from escpredict.lifecycle.pyfunc import load_escalation_model
from escpredict.lifecycle.registry import use_store
from escpredict.lifecycle.train import run
from escpredict.model.season import MIN_DAYS_COVERED, SeasonalOffset
from tests.conftest import Trained, small_config


def _year_of_tickets(n: int, days: int = 365, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(matrix with day of year in column 1, labels) with log-odds -1.5 + 0.5 cos(season)."""
    rng = np.random.default_rng(seed)
    day = rng.integers(1, days + 1, n).astype(np.float64)
    logit = -1.5 + 0.5 * np.cos(2 * np.pi * (day - 1) / 365.25)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return np.column_stack([rng.normal(size=n), day]), y


def test_fit_recovers_the_annual_curve() -> None:
    x, y = _year_of_tickets(60_000)
    season = SeasonalOffset.fit(x, y, column=1)
    assert season is not None
    assert abs(season.table[1] - (-1.0)) < 0.1  # 1 January: -1.5 + 0.5
    assert abs(season.table[183] - (-2.0)) < 0.1  # early July: -1.5 - 0.5
    assert abs(season.reference - season.of(x).mean()) < 1e-9


def test_a_window_covering_part_of_the_year_gets_no_curve() -> None:
    x, y = _year_of_tickets(20_000, days=MIN_DAYS_COVERED - 1)
    assert SeasonalOffset.fit(x, y, column=1) is None


def test_offset_is_read_from_sparse_or_dense_rows_and_a_missing_day_is_neutral() -> None:
    x, y = _year_of_tickets(20_000)
    season = SeasonalOffset.fit(x, y, column=1)
    assert season is not None
    rows = np.array([[0.3, 10.0], [0.0, np.nan], [1.0, 366.0]])
    dense = season.of(rows)
    np.testing.assert_array_equal(dense, season.of(sp.csr_matrix(rows)))
    assert dense[0] == season.table[10] and dense[2] == season.table[366]
    assert dense[1] == season.reference


def test_an_offset_saved_as_json_gives_the_same_curve() -> None:
    x, y = _year_of_tickets(5_000)
    season = SeasonalOffset.fit(x, y, column=1)
    assert season is not None
    loaded = SeasonalOffset.from_state(json.loads(json.dumps(season.to_state())))
    assert (loaded.column, loaded.reference) == (season.column, season.reference)
    np.testing.assert_array_equal(loaded.of(x), season.of(x))


def test_trained_model_carries_the_offset_and_shap_sums_to_its_margin(trained: Trained) -> None:
    use_store(trained.tracking_uri)
    model = load_escalation_model(f"models:/escalation-risk/{trained.result.model_version}")
    assert model.season is not None  # the sample's training window spans a year
    matrix = model.matrix(trained.result.test_window.head(200))
    contrib = model.contributions(matrix)
    margin = model.booster.predict(matrix, raw_score=True) + model.season.of(matrix)
    if model.levels is not None:
        margin += model.levels.of(matrix)
    np.testing.assert_allclose(contrib.sum(axis=1), margin, atol=1e-9)
    np.testing.assert_allclose(model.calibrator.apply(margin), model.proba_from_matrix(matrix))


def test_training_without_the_offset_is_a_config_switch(trained: Trained, tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    switches = {"model.seasonal_offset": False, "model.linear_offset": False}
    result = run(small_config(trained.data_dir, uri, **switches))
    use_store(uri)
    model = load_escalation_model(f"models:/escalation-risk/{result.model_version}")
    assert model.season is None and model.offsets == ()
    matrix = model.matrix(result.test_window.head(50))
    np.testing.assert_allclose(
        model.contributions(matrix).sum(axis=1), model.booster.predict(matrix, raw_score=True)
    )
