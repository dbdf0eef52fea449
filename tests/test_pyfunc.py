"""The registered model through MLflow's own loaders takes what users pass and explains itself."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import mlflow
import numpy as np
import pandas as pd
import pytest

from benchmarks.timing import free_port, serving
from escpredict.contract import SCORING_FIELDS
from escpredict.ingest.loaders import load_tickets
from escpredict.lifecycle.batch import score_file
from escpredict.lifecycle.pyfunc import load_escalation_model
from escpredict.lifecycle.registry import use_store
from tests.conftest import Trained


def _uri(trained: Trained) -> str:
    return f"models:/{trained.result.model_name}/{trained.result.model_version}"


@pytest.fixture(scope="module")
def pyfunc_model(trained: Trained) -> Any:
    use_store(trained.tracking_uri)
    return mlflow.pyfunc.load_model(_uri(trained))


@pytest.fixture(scope="module")
def frame(trained: Trained) -> pd.DataFrame:
    """Tickets as load_tickets gives them: tz-aware UTC created_at, no history columns."""
    return trained.result.test_window[list(SCORING_FIELDS)].head(20).reset_index(drop=True)


def _timestamp_forms(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    utc = frame["created_at"]
    return {
        "tz-aware": frame,
        "other zone": frame.assign(created_at=utc.dt.tz_convert("America/New_York")),
        "naive": frame.assign(created_at=utc.dt.tz_convert(None)),
        "ISO ...Z": frame.assign(created_at=utc.dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")),
    }


def test_every_timestamp_form_gives_the_same_answers(
    pyfunc_model: Any, frame: pd.DataFrame, trained: Trained
) -> None:
    expected = load_escalation_model(_uri(trained)).predict_proba(frame)
    for form, variant in _timestamp_forms(frame).items():
        out = pyfunc_model.predict(variant)
        assert list(out.columns) == ["probability", "risk_tier", "route"], form
        np.testing.assert_array_equal(out["probability"].to_numpy(), expected, err_msg=form)


def test_reasons_come_back_as_json_text_when_asked(pyfunc_model: Any, frame: pd.DataFrame) -> None:
    out = pyfunc_model.predict(frame, params={"reasons": 3})

    assert list(out.columns) == ["probability", "risk_tier", "route", "reasons"]
    for text in out["reasons"]:
        reasons = json.loads(text)
        assert 1 <= len(reasons) <= 3
        assert {"field", "display_value", "contribution", "text"} <= set(reasons[0])
        sizes = [abs(r["contribution"]) for r in reasons]
        assert sizes == sorted(sizes, reverse=True)


def test_an_unreadable_creation_time_is_refused_naming_its_row(
    pyfunc_model: Any, frame: pd.DataFrame
) -> None:
    bad = frame.assign(created_at=frame["created_at"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
    bad.loc[2, "created_at"] = "last tuesday"
    with pytest.raises(Exception, match=r"created_at, row 2: 'last tuesday'"):
        pyfunc_model.predict(bad)


def test_the_readmes_example_scores_what_load_tickets_returns(
    pyfunc_model: Any, trained: Trained
) -> None:
    tickets = load_tickets(trained.data_dir / "tickets.parquet").tickets.head(5)
    assert tickets["initial_tier"].dtype == "Int64"  # what MLflow's double type refused

    out = pyfunc_model.predict(tickets)
    explained = pyfunc_model.predict(tickets, params={"reasons": 3})

    expected = load_escalation_model(_uri(trained)).score_table(tickets)
    pd.testing.assert_frame_equal(out, expected)
    assert all(1 <= len(json.loads(text)) <= 3 for text in explained["reasons"])


def test_a_frame_read_straight_from_parquet_scores_whatever_the_integer_type(
    pyfunc_model: Any, trained: Trained
) -> None:
    raw = pd.read_parquet(trained.data_dir / "tickets.parquet").head(40)
    raw["initial_tier"] = raw["initial_tier"].mask(raw.index % 3 == 0)  # Int64 with NA
    assert raw["initial_tier"].dtype == "Int64" and raw["initial_tier"].isna().any()
    assert set(raw.columns) - set(SCORING_FIELDS)  # resolved_at, final_tier...: not inputs

    out = pyfunc_model.predict(raw)

    as_floats = raw[list(SCORING_FIELDS)].astype({"initial_tier": "float64"})
    as_text = raw.astype({"initial_tier": "str"}).replace({"initial_tier": {"<NA>": None}})
    for variant in (as_floats, as_text):
        pd.testing.assert_frame_equal(pyfunc_model.predict(variant), out)
    bad = raw.astype({"initial_tier": "object"})
    bad.loc[4, "initial_tier"] = "two"
    with pytest.raises(Exception, match=r"initial_tier, row 4: 'two' is not a number"):
        pyfunc_model.predict(bad)


def test_batch_scoring_writes_reasons_when_asked(trained: Trained, tmp_path: Path) -> None:
    export = tmp_path / "tickets.parquet"
    trained.result.test_window[list(SCORING_FIELDS)].head(15).to_parquet(export)
    out = tmp_path / "scores.csv"

    written = score_file(export, out, _uri(trained), tracking_uri=trained.tracking_uri, n_reasons=2)

    scores = pd.read_csv(out)
    assert written == 15
    assert list(scores.columns) == ["ticket_id", "probability", "risk_tier", "route", "reasons"]
    assert all(len(json.loads(text)) == 2 for text in scores["reasons"])


@pytest.fixture(scope="module")
def served(trained: Trained) -> Iterator[str]:
    """``mlflow models serve`` on the registered version, in this environment."""
    port = free_port()
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", _uri(trained)]
    command += ["--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)]
    # MLflow execs `uvicorn` by name: the interpreter's own bin folder must come first on PATH.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": trained.tracking_uri, "PATH": path}
    url = f"http://127.0.0.1:{port}"
    with serving(command, env, f"{url}/ping", 120):
        yield url


def test_mlflow_models_serve_takes_json_timestamps_ending_in_z(
    served: str, frame: pd.DataFrame, pyfunc_model: Any
) -> None:
    records = _timestamp_forms(frame.head(4))["ISO ...Z"].to_dict("records")
    records = [{k: v for k, v in r.items() if not pd.isna(v)} for r in records]

    response = httpx.post(
        f"{served}/invocations",
        json={"dataframe_records": records, "params": {"reasons": 2}},
        timeout=60,
    )

    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    expected = pyfunc_model.predict(frame.head(4))
    assert [p["probability"] for p in predictions] == pytest.approx(
        expected["probability"].tolist(), abs=1e-12
    )
    assert all(len(json.loads(p["reasons"])) == 2 for p in predictions)


def test_the_score_command_writes_reasons_and_refuses_them_on_dask(
    trained: Trained, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from escpredict.cli import app

    export = tmp_path / "tickets.parquet"
    trained.result.test_window[list(SCORING_FIELDS)].head(5).to_parquet(export)
    common = ["--model", _uri(trained), "--tracking-uri", trained.tracking_uri]
    out = tmp_path / "scores.parquet"

    done = CliRunner().invoke(app, ["score", str(export), str(out), *common, "--reasons", "1"])
    refused = CliRunner().invoke(
        app, ["score", str(export), str(out), *common, "--reasons", "1", "--engine", "dask"]
    )

    assert done.exit_code == 0, done.output
    assert all(len(json.loads(text)) == 1 for text in pd.read_parquet(out)["reasons"])
    assert refused.exit_code == 2
    assert "--reasons needs --engine local" in refused.output
