"""The registered model is data: saved without a pickle, loaded without running anything it ships,
scoring exactly as the model training held in memory, and refused in one line when another
escpredict wrote it."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from escpredict.cli import app
from escpredict.contract import HISTORY_NAMES, SCORING_FIELDS
from escpredict.lifecycle.pyfunc import load_escalation_model
from escpredict.lifecycle.registry import RegistryError, use_store
from escpredict.model import artefact
from escpredict.model.escalation import EscalationModel
from tests.conftest import Trained

#: Every file a registered model holds: MLflow's description of it (and of the registered
#: version, written on download), and the data.
MLFLOW_FILES = {
    "MLmodel", "conda.yaml", "python_env.yaml", "requirements.txt", "input_example.json",
    "serving_input_example.json", "registered_model_meta",
}
DATA_FILES = {
    "format.json", "booster.txt", "features.json", "calibrator.json", "offsets.json",
    "routing.json", "metadata.json", "history/snapshot.json", "history/agents.parquet",
    "history/customers.parquet", "history/events.parquet",
}
DATA = Path("data/escalation_model")


def _uri(trained: Trained) -> str:
    return f"models:/{trained.result.model_name}/{trained.result.model_version}"


@pytest.fixture(scope="module")
def model_dir(trained: Trained, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local copy of the registered version's files."""
    use_store(trained.tracking_uri)
    out = tmp_path_factory.mktemp("registered")
    return Path(mlflow.artifacts.download_artifacts(_uri(trained), dst_path=str(out)))


@pytest.fixture(scope="module")
def model(trained: Trained) -> EscalationModel:
    use_store(trained.tracking_uri)
    return load_escalation_model(_uri(trained))


def _files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def test_the_registered_model_holds_only_data(model_dir: Path) -> None:
    files = _files(model_dir)
    assert files == MLFLOW_FILES | {(DATA / name).as_posix() for name in DATA_FILES}
    for name in files:
        head = (model_dir / name).read_bytes()[:2]
        assert not head.startswith(b"\x80"), f"{name} is a pickle"
    flavor = yaml.safe_load((model_dir / "MLmodel").read_text())["flavors"]["python_function"]
    assert flavor["loader_module"] == "escpredict.lifecycle.pyfunc"
    assert "python_model" not in flavor and "cloudpickle_version" not in flavor
    header = json.loads((model_dir / DATA / "format.json").read_text())
    assert header == {
        "format": artefact.FORMAT,
        "format_version": artefact.FORMAT_VERSION,
        "escpredict_version": artefact.escpredict_version(),
    }
    assert "joblib" not in (model_dir / "requirements.txt").read_text()


def test_the_registered_model_scores_exactly_as_training_did(
    trained: Trained, model: EscalationModel
) -> None:
    window = trained.result.test_window
    np.testing.assert_array_equal(model.predict_proba(window), window["probability"].to_numpy())


def assert_same_scores(got: EscalationModel, want: EscalationModel, frame: pd.DataFrame) -> None:
    """Matrices, probabilities, tiers, routes and reasons of both paths, exactly."""
    np.testing.assert_array_equal(got.matrix(frame).toarray(), want.matrix(frame).toarray())
    records = frame.head(40).to_dict("records")
    np.testing.assert_array_equal(
        got.builder.transform_records(records), want.builder.transform_records(records)
    )
    pd.testing.assert_frame_equal(got.score_table(frame, 3), want.score_table(frame, 3))
    assert got.score_records(records, 3) == want.score_records(records, 3)


def round_trip(model: EscalationModel, folder: Path) -> EscalationModel:
    artefact.save(model, folder)
    return artefact.load(folder)


def test_a_save_and_load_round_trip_scores_the_same(
    trained: Trained, model: EscalationModel, tmp_path: Path
) -> None:
    again = round_trip(model, tmp_path / "model")
    tickets = trained.result.test_window[list(SCORING_FIELDS)]  # history from the snapshot
    assert_same_scores(again, model, tickets)
    assert again.builder.readable_names == model.builder.readable_names
    assert again.builder.feature_sources == model.builder.feature_sources
    assert (again.threshold, again.tiers) == (model.threshold, model.tiers)
    assert again.metadata == model.metadata


def test_loading_runs_nothing_the_model_folder_ships(
    trained: Trained, model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pickles and Python files planted beside the data, and an MLmodel that names a code
    folder, are never executed: loading still works and leaves no marker."""
    marker = tmp_path / "ran"
    planted = tmp_path / "planted"
    _copy(model_dir, planted)
    payload = f"open({str(marker)!r}, 'w').write('ran')\n"
    evil = pickle.dumps(_Runs(marker))
    for folder in (planted, planted / DATA, planted / DATA / "history"):
        (folder / "python_model.pkl").write_bytes(evil)
        (folder / "__init__.py").write_text(payload)
    (planted / "code").mkdir()
    (planted / "code" / "lightgbm.py").write_text(payload)  # would shadow the real one
    meta = yaml.safe_load((planted / "MLmodel").read_text())
    meta["flavors"]["python_function"]["code"] = "code"
    (planted / "MLmodel").write_text(yaml.safe_dump(meta))
    uri = _register(trained, planted, "planted")

    def refuse(*_: Any, **__: Any) -> Any:
        raise AssertionError("loading unpickled something")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    loaded = load_escalation_model(uri)

    assert not marker.exists()
    window = trained.result.test_window
    np.testing.assert_array_equal(loaded.predict_proba(window), window["probability"].to_numpy())


class _Runs:
    """Writes the marker file when unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.write_text, (self.marker, "ran"))


def _copy(source: Path, target: Path) -> None:
    for name in _files(source):
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        (target / name).write_bytes((source / name).read_bytes())


def _register(trained: Trained, folder: Path, name: str) -> str:
    client = MlflowClient(trained.tracking_uri)
    if not client.search_registered_models(f"name = '{name}'"):
        client.create_registered_model(name)
    version = client.create_model_version(name, folder.as_uri()).version
    return f"models:/{name}/{version}"


@pytest.fixture(scope="module")
def pickled_uri(trained: Trained, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """A model registered the way escpredict 0.1.0 did: a cloudpickled PythonModel and a
    joblib artifact. Unpickling it would write the marker."""
    use_store(trained.tracking_uri)
    scratch = tmp_path_factory.mktemp("pickled")
    marker = scratch / "unpickled"
    joblib_file = scratch / "escalation_model.joblib"
    joblib_file.write_bytes(pickle.dumps(_Runs(marker)))
    experiment = MlflowClient(trained.tracking_uri).create_experiment(
        "pickled", artifact_location=(scratch / "artifacts").as_uri()
    )
    with mlflow.start_run(experiment_id=experiment):
        info = mlflow.pyfunc.log_model(
            name="model", python_model=_OldPyfunc(marker), artifacts={"escalation_model": str(joblib_file)}
        )
    version = mlflow.register_model(info.model_uri, "pickled-escalation-risk").version
    marker.unlink(missing_ok=True)  # MLflow copies the object while logging it
    return f"models:/pickled-escalation-risk/{version}", marker


class _OldPyfunc(mlflow.pyfunc.PythonModel):
    """0.1.0's pyfunc in shape; unpickling it writes the marker."""

    _skip_type_hint_validation = True  # MLflow would warn that predict has no type hints

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __setstate__(self, state: dict[str, Any]) -> None:
        Path(state["marker"]).write_text("unpickled")

    def predict(self, context, model_input, params=None):  # as 0.1.0's: no type hints
        return model_input


def test_a_pickled_model_of_an_earlier_version_is_refused_in_one_line(
    pickled_uri: tuple[str, Path],
) -> None:
    uri, marker = pickled_uri
    with pytest.raises(RegistryError) as refused:
        load_escalation_model(uri)
    message = str(refused.value)
    assert "\n" not in message
    assert uri in message and "escpredict 0.1.0" in message and "`escpredict train`" in message
    assert not marker.exists()


def test_the_cli_says_so_in_red_and_exits_2(
    trained: Trained, pickled_uri: tuple[str, Path], tmp_path: Path
) -> None:
    uri, marker = pickled_uri
    export = tmp_path / "tickets.parquet"
    trained.result.test_window[list(SCORING_FIELDS)].head(3).to_parquet(export)
    done = CliRunner().invoke(app, [
        "score", str(export), str(tmp_path / "scores.csv"), "--model", uri,
        "--tracking-uri", trained.tracking_uri,
    ])
    assert done.exit_code == 2
    assert "error:" in done.output and "escpredict train" in done.output
    assert not marker.exists()


def test_a_model_of_another_format_version_names_who_wrote_it(
    trained: Trained, model_dir: Path, tmp_path: Path
) -> None:
    future = tmp_path / "future"
    _copy(model_dir, future)
    header = future / DATA / "format.json"
    header.write_text(json.dumps({
        "format": artefact.FORMAT, "format_version": artefact.FORMAT_VERSION + 1,
        "escpredict_version": "9.0.0",
    }))
    uri = _register(trained, future, "future-escalation-risk")
    with pytest.raises(RegistryError, match=r"saved by escpredict 9\.0\.0 in model format 2.*"
                       r"`escpredict train`") as refused:
        load_escalation_model(uri)
    assert "\n" not in str(refused.value)


def test_mlflow_loads_it_with_pickle_loading_switched_off(
    trained: Trained, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")
    pyfunc = mlflow.pyfunc.load_model(_uri(trained))
    assert isinstance(pyfunc.get_raw_model(), EscalationModel)
    rows = trained.result.test_window.head(10)
    served = pyfunc.predict(rows[list(SCORING_FIELDS) + list(HISTORY_NAMES)])
    np.testing.assert_array_equal(served["probability"], rows["probability"])
