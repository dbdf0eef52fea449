"""Registry faults: a corrupt or incompatible model version never replaces the serving one, and
an MLflow server that is unreachable, or dies during training, leaves nothing half-registered.

Complements tests/test_service_reload.py (a version whose artifact path does not exist) with
versions whose artifacts exist but are damaged, and with tracking-server failures.
"""

from __future__ import annotations

import json
import pickle
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import mlflow
import mlflow.pyfunc
import pytest
import yaml
from fastapi.testclient import TestClient
from mlflow.tracking import MlflowClient

from benchmarks.timing import free_port
from escpredict.lifecycle.registry import RegistryError, use_store
from escpredict.lifecycle.stages import Stages
from escpredict.lifecycle.train import run
from escpredict.service.app import create_app
from tests.conftest import small_config, store_client
from tests.hardening_helpers import Relay
from tests.service_helpers import ADMIN, SCORING, register_copy, settings, ticket_body

NAME = "hardening-registry"
DATA = Path("data/escalation_model")


def _garble(model_dir: Path) -> None:
    (model_dir / DATA / "booster.txt").write_text("tree\nnot a LightGBM model\n" * 100)


def _truncate(model_dir: Path) -> None:
    features = model_dir / DATA / "features.json"
    features.write_bytes(features.read_bytes()[: features.stat().st_size // 2])


def _table_missing(model_dir: Path) -> None:
    (model_dir / DATA / "history" / "events.parquet").unlink()


def _other_format(model_dir: Path) -> None:
    """A model saved by a later escpredict, in a format this one does not read."""
    header = model_dir / DATA / "format.json"
    header.write_text(json.dumps({**json.loads(header.read_text()), "format_version": 99}))


def _pickled(model_dir: Path) -> None:
    """What escpredict 0.1.0 registered: a cloudpickled PythonModel and a joblib artifact."""
    meta = yaml.safe_load((model_dir / "MLmodel").read_text())
    flavor = meta["flavors"]["python_function"]
    flavor.pop("data")
    flavor.update(
        loader_module="mlflow.pyfunc.model", python_model="python_model.pkl",
        artifacts={"escalation_model": {"path": "artifacts/escalation_model.joblib"}},
    )
    (model_dir / "MLmodel").write_text(yaml.safe_dump(meta))
    (model_dir / "python_model.pkl").write_bytes(pickle.dumps({"from": "escpredict 0.1.0"}))


def _bad_mlmodel(model_dir: Path) -> None:
    (model_dir / "MLmodel").write_text("flavors: [this is: not: valid yaml\n")


def _deleted(model_dir: Path) -> None:
    shutil.rmtree(model_dir)


CORRUPTIONS: dict[str, Callable[[Path], None]] = {
    "garbled booster": _garble,
    "truncated features": _truncate,
    "history table missing": _table_missing,
    "another format version": _other_format,
    "pickled by 0.1.0": _pickled,
    "broken MLmodel": _bad_mlmodel,
    "artifacts deleted": _deleted,
}
#: Models another escpredict wrote: refused with the command that retrains them.
RETRAIN = {"another format version", "pickled by 0.1.0"}


@pytest.fixture(autouse=True)
def _keep_the_process_store() -> Iterator[None]:
    """train.run points MLflow's process-wide store at its URI: later tests must not inherit a
    dead server (MLflow would retry it for minutes)."""
    tracking, registry = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    yield
    mlflow.set_tracking_uri(tracking)
    mlflow.set_registry_uri(registry)


@pytest.fixture(scope="module")
def registry(trained: Any) -> MlflowClient:
    use_store(trained.tracking_uri)
    return store_client(trained.tracking_uri)


@pytest.fixture(scope="module")
def good(trained: Any, registry: MlflowClient) -> str:
    return register_copy(trained, NAME)


@pytest.fixture(scope="module")
def client(trained: Any, registry: MlflowClient, good: str) -> Iterator[TestClient]:
    registry.set_registered_model_alias(NAME, "champion", good)
    app = create_app(settings(trained, model_uri=f"models:/{NAME}@champion"))
    with TestClient(app) as test_client:
        yield test_client


def corrupt_version(trained: Any, registry: MlflowClient, tmp_path: Path, kind: str) -> str:
    """Register a copy of the trained model's files damaged in the way ``kind`` says."""
    source = registry.get_model_version(trained.result.model_name, trained.result.model_version)
    local = Path(mlflow.artifacts.download_artifacts(source.source, dst_path=str(tmp_path / "m")))
    version = registry.create_model_version(NAME, local.as_uri(), run_id=source.run_id).version
    CORRUPTIONS[kind](local)
    return str(version)


@pytest.mark.parametrize("kind", sorted(CORRUPTIONS))
def test_a_damaged_version_is_refused_and_the_old_model_keeps_serving(
    client: TestClient, trained: Any, registry: MlflowClient, good: str, tmp_path: Path, kind: str
) -> None:
    bad = corrupt_version(trained, registry, tmp_path, kind)
    registry.set_registered_model_alias(NAME, "champion", bad)

    reload = client.post("/admin/reload", headers=ADMIN)
    status = client.get("/v1/model", headers=SCORING).json()
    scored = client.post(
        "/v1/score", json=ticket_body(trained.result.test_window.iloc[0]), headers=SCORING
    )

    assert reload.status_code == 502
    assert f"models:/{NAME}/{bad}" in reload.json()["detail"]
    if kind in RETRAIN:  # another escpredict's model: the error says what to do
        assert "`escpredict train`" in status["last_error"]["message"]
    assert status["version"] == good
    assert status["last_error"]["source"] == f"models:/{NAME}/{bad}"
    assert scored.status_code == 200
    assert scored.json()["model"]["version"] == good
    registry.set_registered_model_alias(NAME, "champion", good)
    assert client.post("/admin/reload", headers=ADMIN).json()["last_error"] is None


def test_training_against_an_unreachable_server_fails_at_once_naming_it(
    sample_dir: Path,
) -> None:
    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    stages = Stages(show=False)
    started = time.monotonic()

    with pytest.raises(RegistryError, match=rf"{uri} is unreachable"):
        run(small_config(sample_dir, uri), stages=stages)

    assert time.monotonic() - started < 10
    assert stages.timings == {}  # failed before loading any data


#: Where the tracking server dies: while the model's artifacts upload, as the version is
#: registered, or just before the ``candidate`` alias would move. ``mlflow.pyfunc`` is the
#: module itself (imported above): before that import it is MLflow's lazy proxy, and patching
#: the proxy patches nothing the training calls.
CUT_POINTS = {
    "logging artifacts": (mlflow.pyfunc, "log_model"),
    "registering": (mlflow, "register_model"),
    "moving the alias": (MlflowClient, "set_registered_model_alias"),
}


@pytest.mark.slow  # a real MLflow server and a training run per cut point
@pytest.mark.parametrize("cut_point", list(CUT_POINTS))
def test_a_server_dying_during_training_moves_no_alias_and_says_so(
    mlflow_server: str,
    small_sample_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    cut_point: str,
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    relay = Relay(int(mlflow_server.rsplit(":", 1)[1]))
    owner, name = CUT_POINTS[cut_point]
    original = getattr(owner, name)

    def die_first(*args: Any, **kwargs: Any) -> Any:
        relay.cut()
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, die_first)
    name = f"cut-{cut_point.replace(' ', '-')}"  # the server is shared: a name per cut point
    cfg = small_config(
        small_sample_dir, relay.url, **{"model.num_boost_round": 20, "registry.model_name": name}
    )

    with pytest.raises(
        RegistryError, match=rf"{relay.url} failed .* 'candidate' alias was not moved"
    ):
        run(cfg)

    server = MlflowClient(mlflow_server, registry_uri=mlflow_server)
    versions = server.search_model_versions(f"name = '{name}'")
    assert all("candidate" not in v.aliases for v in versions)
    if cut_point != "moving the alias":
        assert versions == []  # nothing registered at all
