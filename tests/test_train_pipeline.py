"""The training pipeline: from an export on disk to a registered, evaluated candidate."""

from __future__ import annotations

import warnings
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MaxAbsScaler

from escpredict.contract import LABEL
from escpredict.labels.split import TrainingDataError, time_split
from escpredict.lifecycle.pyfunc import load_escalation_model
from escpredict.lifecycle.registry import use_store
from escpredict.lifecycle.stages import Stages
from escpredict.lifecycle.train import BASELINE_ITERATIONS, fit_baseline, prepare, run
from escpredict.model.features import FeatureBuilder
from tests.conftest import Trained, small_config, store_client

METRICS = (
    "roc_auc",
    "pr_auc",
    "brier",
    "ece",
    "recall_top10",
    "precision_at_threshold",
    "recall_at_threshold",
)


def test_registers_a_candidate_with_metrics_plots_and_config(trained: Trained) -> None:
    client = store_client(trained.tracking_uri)
    version = client.get_model_version_by_alias("escalation-risk", "candidate")
    assert str(version.version) == trained.result.model_version
    run_data = client.get_run(trained.result.run_id).data
    for name in METRICS:
        assert f"test_{name}" in run_data.metrics
        assert f"baseline_test_{name}" in run_data.metrics
    assert run_data.params["split.test_fraction"] == "0.15"
    # The size-aware values the booster used, not only what the config said.
    used = trained.result.booster_params
    assert run_data.params["booster.min_child_samples"] == str(used["min_child_samples"])
    assert run_data.params["booster.min_data_per_group"] == str(used["min_data_per_group"])
    artifacts = {a.path for a in client.list_artifacts(trained.result.run_id, "plots")}
    assert artifacts == {f"plots/{n}.png" for n in ("roc", "pr", "calibration", "importance")}
    logged = {a.path for a in client.list_artifacts(trained.result.run_id)}
    assert {"config", "evaluation"} <= logged


def test_model_learns_signal_and_beats_chance(trained: Trained) -> None:
    metrics = trained.result.metrics
    assert metrics["roc_auc"] > 0.7
    assert 0 <= metrics["ece"] < 0.1
    assert 0 < trained.result.threshold < 1


def test_test_window_is_strictly_later_than_training(trained: Trained) -> None:
    client = store_client(trained.tracking_uri)
    params = client.get_run(trained.result.run_id).data.params
    assert pd.Timestamp(params["split.train_max"]) < pd.Timestamp(params["split.valid_min"])
    assert pd.Timestamp(params["split.valid_max"]) < pd.Timestamp(params["split.test_min"])


def test_segment_metrics_cover_category_channel_and_tenure(trained: Trained) -> None:
    segments = trained.result.segments
    assert set(segments["segment"]) == {"category", "channel", "tenure_band"}
    by_segment = segments.groupby("segment")["n"].sum()
    assert (by_segment == len(trained.result.test_window)).all()


def test_open_and_immature_tickets_are_counted_not_trained_on(trained: Trained) -> None:
    counts = trained.result.counts
    assert counts["n_open_excluded"] > 0
    assert (
        counts["n_labelled"] + counts["n_open_excluded"] + counts["n_immature_excluded"]
        + counts["n_unlabelled_excluded"] + counts["n_quarantined"] == counts["n_rows"]
    )
    assert counts["n_train"] + counts["n_valid"] + counts["n_test"] == counts["n_labelled"]


def test_registered_pyfunc_reproduces_training_scores(trained: Trained) -> None:
    use_store(trained.tracking_uri)  # tracking and registry: another test may have moved either
    uri = "models:/escalation-risk@candidate"
    window = trained.result.test_window
    model = load_escalation_model(uri)
    np.testing.assert_allclose(model.predict_proba(window), window["probability"], atol=1e-12)
    # MLflow's datetime columns are timezone-naive: pyfunc callers send UTC wall time.
    request = window.drop(columns=[LABEL, "probability"])
    request["created_at"] = request["created_at"].dt.tz_convert(None)
    served = mlflow.pyfunc.load_model(uri).predict(request)
    np.testing.assert_allclose(served["probability"], window["probability"], atol=1e-12)
    assert set(served["route"]) <= {"tier1", "tier2"}


def test_quarantined_and_unlabelled_tickets_are_recorded_in_the_run(
    small_sample_dir: Path, tmp_path: Path
) -> None:
    tickets = pd.read_parquet(small_sample_dir / "tickets.parquet")
    broken = tickets.copy()
    broken.loc[broken.index[:3], "created_at"] = pd.NaT
    # Two resolved tickets no rule can judge: no tier, no resolver, no reassignment count.
    unjudged = broken.index[broken["resolved_at"].notna()][10:12]
    broken.loc[unjudged, ["final_tier", "resolver_id", "reassignment_count"]] = None
    broken.to_parquet(tmp_path / "tickets.parquet")
    pd.read_parquet(small_sample_dir / "agents.parquet").to_parquet(tmp_path / "agents.parquet")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = small_config(tmp_path, uri, **{"data.quarantine": str(tmp_path / "bad.csv")})
    result = run(cfg)
    assert result.counts["n_quarantined"] == 3
    assert len(pd.read_csv(tmp_path / "bad.csv")) == 3
    assert result.counts["n_unlabelled_excluded"] == 2
    [warning] = result.warnings
    assert warning.startswith("2 resolved ticket(s) no label rule can judge are set aside")
    assert all(f"({i})" in warning for i in broken.loc[unjudged, "ticket_id"])  # named
    logged = MlflowClient(uri).get_run(result.run_id).data
    assert logged.metrics["n_quarantined"] == 3
    assert logged.metrics["n_unlabelled_excluded"] == 2
    assert "no label rule can judge" in logged.tags["data_warnings"]


def test_single_class_window_is_refused_with_the_window_named() -> None:
    frame = pd.DataFrame(
        {
            "created_at": pd.date_range("2024-01-01", periods=100, freq="D", tz="UTC"),
            LABEL: [True, False] * 40 + [False] * 20,
        }
    )
    with pytest.raises(TrainingDataError, match="test window .* only one class"):
        time_split(frame, 0.15, 0.15)



def test_baseline_stops_at_a_fixed_iteration_budget_without_warning(sample_dir: Path) -> None:
    """Its cost grows linearly with rows, whatever the data, and stopping short is silent."""
    config = small_config(sample_dir, "unused")
    split = time_split(prepare(config, Stages(show=False)).frame, 0.15, 0.15)
    builder = FeatureBuilder(config.features)
    x_train = builder.fit_transform(split.train)
    y_train = split.train[LABEL].to_numpy(int)
    to_convergence = make_pipeline(
        SimpleImputer(strategy="median", keep_empty_features=True),
        MaxAbsScaler(),
        LogisticRegression(max_iter=1000),
    ).fit(builder.one_hot(x_train), y_train)
    assert to_convergence[-1].n_iter_[0] > BASELINE_ITERATIONS  # so the budget binds here
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        baseline = fit_baseline(config, x_train, y_train, builder.one_hot)
    assert baseline[-1].n_iter_[0] == BASELINE_ITERATIONS


def test_baseline_leaves_the_matrices_it_is_given_untouched(sample_dir: Path) -> None:
    config = small_config(sample_dir, "unused")
    split = time_split(prepare(config, Stages(show=False)).frame, 0.15, 0.15)
    builder = FeatureBuilder(config.features)
    x_train, x_test = builder.fit_transform(split.train), builder.transform(split.test)
    assert np.isnan(x_test.data).any()  # history gaps the imputer fills
    x_test_csc, x_test_dense = x_test.tocsc(), x_test.toarray()  # forms scaled in place
    given = (x_train, x_test, x_test_csc, x_test_dense)
    before = [m.copy() for m in given]
    baseline = fit_baseline(config, x_train, split.train[LABEL].to_numpy(int), builder.one_hot)
    for matrix in given[1:]:
        baseline.predict_proba(matrix)
    for matrix, kept in zip(given, before, strict=True):
        np.testing.assert_array_equal(getattr(matrix, "data", matrix), getattr(kept, "data", kept))
