"""Training against a real `mlflow server` process on 127.0.0.1, not the embedded store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow.utils.rest_utils
import pytest
from mlflow.tracking import MlflowClient

from escpredict.lifecycle.train import run
from tests.conftest import small_config

NAME = "remote-server-test"  # the server is shared: a model name of this test's own


def test_pipeline_trains_and_registers_on_a_remote_server(
    mlflow_server: str, small_sample_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoints: list[str] = []
    send = mlflow.utils.rest_utils.http_request

    def counted(host_creds: Any, endpoint: str, *args: Any, **kwargs: Any) -> Any:
        endpoints.append(endpoint)
        return send(host_creds, endpoint, *args, **kwargs)

    monkeypatch.setattr(mlflow.utils.rest_utils, "http_request", counted)
    result = run(small_config(small_sample_dir, mlflow_server, **{"registry.model_name": NAME}))
    client = MlflowClient(mlflow_server, registry_uri=mlflow_server)
    version = client.get_model_version_by_alias(NAME, "candidate")
    assert str(version.version) == result.model_version
    assert client.get_run(result.run_id).data.metrics["test_roc_auc"] == pytest.approx(
        result.metrics["roc_auc"]
    )

    # The logged model carries every metric of its run, sent in batches: not read back
    # from the server one metric at a time (about a hundred requests per training).
    logged = client.get_run(result.run_id).outputs.model_outputs
    model_metrics = {m.key for m in client.get_logged_model(logged[0].model_id).metrics}
    assert model_metrics == set(client.get_run(result.run_id).data.metrics)
    assert not [e for e in endpoints if "get-history" in e]
