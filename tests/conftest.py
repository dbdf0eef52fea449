"""Shared fixtures: a small sample export and one model trained on it, built once per session."""

from __future__ import annotations

import os
import sqlite3
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow.store.db.utils
import pytest
from mlflow.tracking import MlflowClient

from benchmarks.timing import free_port, serving
from escpredict.config import TrainConfig, load_config
from escpredict.lifecycle.train import TrainResult, run
from escpredict.samples import default as sample_data
from escpredict.samples import realistic

#: Small enough to train in seconds, large enough for every time window to hold both classes.
SAMPLE_TICKETS = 6000
#: For tests of what training does around the model (registration, promotion, a dying
#: server), not of how good the model is: a third of the time to train.
SMALL_SAMPLE_TICKETS = 2000


#: Test files that share a session fixture too costly to build twice run on one xdist worker,
#: as if they were one file: the fixture is built once instead of once per worker.
SHARED_WORKER = {
    "test_hardening_registry.py": "mlflow server", "test_mlflow_server.py": "mlflow server",
    "test_open_model.py": "event-log model", "test_open_service.py": "event-log model",
}


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadfile`` (``make test``), with the files of SHARED_WORKER kept together.

    xdist's own ``loadgroup`` cannot do it here: on pytest 9.2 it loses its groups silently
    (pytest-xdist issue #1386).
    """
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class LoadFileOrShared(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            file = nodeid.split("::", 1)[0]
            return SHARED_WORKER.get(Path(file).name, file)

    return LoadFileOrShared(config, log)


def small_config(data_dir: Path, tracking_uri: str, **overrides: object) -> TrainConfig:
    """A fast training config over a sample written to ``data_dir``."""
    return load_config(
        None,
        {
            "data.tickets": str(data_dir / "tickets.parquet"),
            "data.agents": str(data_dir / "agents.parquet"),
            "features.word_max_features": 400,
            "features.char_max_features": 300,
            "features.min_df": 3,
            "model.num_boost_round": 150,
            "model.early_stopping_rounds": 20,
            # The structure search has tests of its own (test_search.py); elsewhere it would
            # multiply the cost of every training a test runs.
            "model.search.trials": 0,
            "registry.tracking_uri": tracking_uri,
            **overrides,
        },
    )


def store_client(uri: str) -> MlflowClient:
    """A client of one store for runs *and* registry.

    ``MlflowClient(uri)`` alone registers in the process-wide registry URI when one is set
    (any ``use_store`` by an earlier test), whatever ``uri`` it was given.
    """
    return MlflowClient(uri, registry_uri=uri)


@dataclass
class Trained:
    data_dir: Path
    tracking_uri: str
    config: TrainConfig
    result: TrainResult


@pytest.fixture(scope="session", autouse=True)
def _stores_start_migrated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Every new SQLite store a test opens in this process starts as a copy of one that MLflow
    migrated for real when the session started.

    MLflow builds each new store by running its ~50 schema migrations (about 1.2 s), and the
    suite opens a few dozen stores; a copy of the migrated file takes milliseconds and gives
    the same tables. Stores made by child processes (the CLI, the docs) still migrate.
    """
    template = tmp_path_factory.mktemp("store-template") / "mlflow.db"
    MlflowClient(f"sqlite:///{template}").search_experiments()  # the real migration, once
    migrate = mlflow.store.db.utils._initialize_tables

    def copy_template(engine: Any) -> None:
        if engine.url.get_backend_name() != "sqlite" or engine.url.database in (None, "", ":memory:"):
            migrate(engine)
            return
        with sqlite3.connect(template) as source, sqlite3.connect(engine.url.database) as target:
            source.backup(target)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(mlflow.store.db.utils, "_initialize_tables", copy_template)
        yield


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sample")
    sample_data.write(sample_data.generate(SAMPLE_TICKETS, seed=11), out, "parquet")
    return out


@pytest.fixture(scope="session")
def small_sample_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("small-sample")
    sample_data.write(sample_data.generate(SMALL_SAMPLE_TICKETS, seed=12), out, "parquet")
    return out


@pytest.fixture(scope="session")
def trained(sample_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """One candidate model registered in a throwaway SQLite store."""
    store = tmp_path_factory.mktemp("store")
    uri = f"sqlite:///{store / 'mlflow.db'}"
    cfg = small_config(sample_dir, uri)
    return Trained(sample_dir, uri, cfg, run(cfg))


#: The realistic profile's event log, small: enough open tickets at each age to calibrate.
OPEN_TICKETS, OPEN_DAYS = 3000, 60


@pytest.fixture(scope="session")
def events_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("events")
    realistic.write(realistic.generate(OPEN_TICKETS, seed=5, days=OPEN_DAYS), out, "csv")
    return out


@pytest.fixture(scope="session")
def trained_open(events_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """A model trained on an event export: the at-creation model and the open-ticket one."""
    store = tmp_path_factory.mktemp("open-store")
    uri = f"sqlite:///{store / 'mlflow.db'}"
    cfg = small_config(
        events_dir, uri,
        **{"data.tickets": str(events_dir / "events.csv"),
           "data.agents": str(events_dir / "agents.csv"),
           "data.mapping": "realistic-events", "labels.rules": ["tier_raised"]},
    )
    return Trained(events_dir, uri, cfg, run(cfg))


@pytest.fixture(scope="module")
def dask_client() -> Iterator[Any]:
    """A 2-worker LocalCluster for a Dask test file, closed when the file is done: an idle
    cluster costs 12% of a core, which the rest of the suite would pay for minutes."""
    from escpredict.scaleout.dask_engine import connect

    with connect(workers=2, memory_limit="1GiB") as client:
        yield client


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `mlflow server` on 127.0.0.1, shared: each test registers under its own name."""
    store = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    command = [
        sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
        "--backend-store-uri", f"sqlite:///{store / 'server.db'}",
        "--artifacts-destination", str(store / "artifacts"), "--workers", "1",
    ]
    url = f"http://127.0.0.1:{port}"
    with serving(command, {**os.environ, "MLFLOW_TRACKING_URI": ""}, f"{url}/health", 90):
        yield url
