"""The structure search: candidates judged on past windows; the configured structure is left
only for one that beats it by the margin; bounded, reproducible, logged and printed."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from typer.testing import CliRunner

from escpredict.cli import app
from escpredict.config import TrainConfig
from escpredict.labels.split import Split, time_split
from escpredict.lifecycle.stages import Stages
from escpredict.lifecycle.train import SEARCH_ARTIFACT, Prepared, prepare, structure
from escpredict.model.features import OTHER
from escpredict.model.search import (
    MIN_GAIN,
    REFERENCE_BOOSTER,
    SearchResult,
    Structure,
    _Fold,
    _Judge,
    choose,
    make_folds,
)
from tests.conftest import small_config, store_client

runner = CliRunner()


@pytest.fixture(scope="module")
def windows(sample_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Prepared, Split]:
    uri = f"sqlite:///{tmp_path_factory.mktemp('search') / 'mlflow.db'}"
    cfg = small_config(sample_dir, uri)
    prepared = prepare(cfg, Stages(show=False))
    return prepared, time_split(prepared.frame, cfg.split.valid_fraction, cfg.split.test_fraction)


def searched(sample_dir: Path, windows: tuple[Prepared, Split], **overrides: object) -> SearchResult:
    prepared, split = windows
    budget = {"model.search.trials": 2, "model.search.folds": 2}
    cfg = small_config(sample_dir, "unused", **budget, **overrides)
    return choose(cfg, split.train, split.valid, prepared.extras)


def test_folds_roll_back_in_time_from_the_runs_own_split() -> None:
    rng = np.random.default_rng(0)
    created = rng.permutation(1000)  # rows in any order; 0-849 train, 850-999 valid
    created = np.concatenate([np.sort(created[created < 850]), np.arange(850, 1000)])
    folds = make_folds(created, 850, 3)
    assert len(folds) == 3
    np.testing.assert_array_equal(folds[0].train, np.arange(850))
    np.testing.assert_array_equal(folds[0].valid, np.arange(850, 1000))
    for earlier, later in zip(folds[1:], folds, strict=False):
        assert created[earlier.train].max() < created[earlier.valid].min()
        assert created[earlier.valid].max() < created[later.valid].min()
        assert earlier.valid.size == 150 and (earlier.valid < 850).all()  # never past training
    assert folds[2].train.size == 550


def test_a_fold_pools_levels_its_training_rows_saw_fewer_than_k_times() -> None:
    codes = np.array([1, 1, 1, 2, 2, 3, np.nan, 1, 2, 4])  # rows 7-9 validate; 4 unseen
    x = sp.csr_matrix(np.column_stack([np.ones(10), codes]))
    judge = _Judge(TrainConfig(), x, np.zeros(10), [_Fold(np.arange(7), np.arange(7, 10))],
                   slice(1, 2), [5], None)
    pooled = judge.pooled(0, 3).toarray()[:, 1]
    np.testing.assert_array_equal(pooled, [1, 1, 1, OTHER, OTHER, OTHER, np.nan, 1, OTHER, OTHER])
    once = judge.pooled(0, 1).toarray()[:, 1]  # unseen in training is pooled even at k = 1
    np.testing.assert_array_equal(once, [1, 1, 1, 2, 2, 3, np.nan, 1, 2, OTHER])


def test_the_configured_and_the_plain_references_structures_are_judged_first_and_reproducibly(
    sample_dir: Path, windows: tuple[Prepared, Split]
) -> None:
    first, again = searched(sample_dir, windows), searched(sample_dir, windows)
    pd.testing.assert_frame_equal(first.table, again.table)
    assert first.chosen == again.chosen
    assert list(first.table["name"]) == ["default", "reference"]  # the trial budget: 2
    reference = first.table.iloc[1]
    assert not reference["linear_offset"] and reference["min_level_count"] == 1
    # At the final model's size, exactly the plain reference's LightGBM settings.
    as_trained = Structure.from_values(reference.to_dict()).booster(len(windows[1].train))
    for key, value in REFERENCE_BOOSTER.items():
        assert as_trained[key] == value, key
    assert first.n_folds == 2 and first.table["fold_2_auc"].notna().all()
    assert first.table["mean_auc"].iloc[0] == pytest.approx(
        first.table[["fold_1_auc", "fold_2_auc"]].iloc[0].mean()
    )


def test_a_structure_that_cannot_learn_is_left_for_one_that_can(
    sample_dir: Path, windows: tuple[Prepared, Split]
) -> None:
    """No split possible and no starting offset: the default scores chance on every fold."""
    crippled = {"model.params.min_child_samples": 1_000_000, "model.linear_offset": False,
                "model.seasonal_offset": False}
    result = searched(sample_dir, windows, **crippled)
    assert result.table["mean_auc"].iloc[0] == pytest.approx(0.5)
    assert result.changed and result.gain > max(result.margin, MIN_GAIN)
    cfg = small_config(sample_dir, "unused", **crippled)
    trained_with = result.config(cfg)
    booster = result.chosen.booster(len(windows[1].train))
    assert trained_with.model.params["min_child_samples"] == booster["min_child_samples"] < 1_000_000
    assert trained_with.features.min_level_count == result.chosen.min_level_count
    assert "chose" in result.describe()


def test_off_trains_the_configured_structure_as_it_is(sample_dir: Path) -> None:
    cfg = small_config(sample_dir, "unused", **{"model.search": "off"})
    assert structure(cfg, Stages(show=False), pd.DataFrame(), pd.DataFrame(), {}) == (cfg, None)


def test_too_few_escalations_to_judge_on_two_windows_keeps_the_configured_structure(
    sample_dir: Path, windows: tuple[Prepared, Split]
) -> None:
    prepared, split = windows
    cfg = small_config(sample_dir, "unused", **{"model.search.trials": 2})
    result = choose(cfg, split.train.tail(400), split.valid.head(60), prepared.extras)
    assert not result.changed and result.skipped
    assert result.config(cfg) is cfg
    assert "skipped" in result.describe()


def test_the_run_logs_every_candidate_and_the_choice_and_prints_it(
    sample_dir: Path, tmp_path: Path
) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    args = ["train", "--tickets", str(sample_dir / "tickets.parquet"),
            "--agents", str(sample_dir / "agents.parquet"), "--tracking-uri", uri]
    for pair in ("features.word_max_features=400", "features.char_max_features=300",
                 "model.num_boost_round=60", "model.search.trials=2", "model.search.folds=2"):
        args += ["--set", pair]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "structure search: 2 candidates on 2 past windows" in " ".join(result.output.split())
    client = store_client(uri)
    run_id = client.get_model_version_by_alias("escalation-risk", "candidate").run_id
    params = client.get_run(run_id).data.params
    assert params["search.chosen"] in ("default", "reference")
    assert params["search.candidates"] == "2"
    mlflow.set_tracking_uri(uri)
    table = pd.read_csv(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=SEARCH_ARTIFACT))
    assert list(table["name"]) == ["default", "reference"]
    assert table["mean_auc"].between(0.5, 1).all()
