"""Training against a real `mlflow server` process on 127.0.0.1, not the embedded store."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from benchmarks.timing import free_port, serving
from escpredict.lifecycle.train import run
from tests.conftest import small_config


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    command = [
        sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
        "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
        "--artifacts-destination", str(tmp_path / "artifacts"), "--workers", "1",
    ]
    url = f"http://127.0.0.1:{port}"
    with serving(command, {**os.environ, "MLFLOW_TRACKING_URI": ""}, f"{url}/health", 90):
        yield url


def test_pipeline_trains_and_registers_on_a_remote_server(
    mlflow_server: str, sample_dir: Path
) -> None:
    result = run(small_config(sample_dir, mlflow_server))
    client = MlflowClient(mlflow_server)
    version = client.get_model_version_by_alias("escalation-risk", "candidate")
    assert str(version.version) == result.model_version
    assert client.get_run(result.run_id).data.metrics["test_roc_auc"] == pytest.approx(
        result.metrics["roc_auc"]
    )
