"""Training against a real `mlflow server` process on 127.0.0.1, not the embedded store."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from escpredict.lifecycle.train import run
from tests.conftest import small_config

NAME = "remote-server-test"  # the server is shared: a model name of this test's own


def test_pipeline_trains_and_registers_on_a_remote_server(
    mlflow_server: str, small_sample_dir: Path
) -> None:
    result = run(small_config(small_sample_dir, mlflow_server, **{"registry.model_name": NAME}))
    client = MlflowClient(mlflow_server, registry_uri=mlflow_server)
    version = client.get_model_version_by_alias(NAME, "candidate")
    assert str(version.version) == result.model_version
    assert client.get_run(result.run_id).data.metrics["test_roc_auc"] == pytest.approx(
        result.metrics["roc_auc"]
    )
