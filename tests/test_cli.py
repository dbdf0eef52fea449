"""The command line: the demo end to end, and user mistakes as one clear line with exit code 2."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from escpredict.cli import app

runner = CliRunner()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project folder as a new user would have it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ESCPREDICT_HOME", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


def test_sample_data_writes_export_agents_and_oracle(project: Path) -> None:
    result = runner.invoke(
        app, ["sample-data", "--tickets", "500", "--out", "out", "--format", "csv"]
    )
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(project / "out" / "tickets.csv")) == 500
    assert (project / "out" / "agents.csv").exists()
    assert (project / "out" / "oracle.parquet").exists()


def test_demo_trains_registers_promotes_and_scores(project: Path) -> None:
    result = runner.invoke(app, ["demo", "--tickets", "5000", "--examples", "3"])
    assert result.exit_code == 0, result.output
    assert "oracle" in result.output
    assert "promoted v1" in result.output
    assert "Example tickets" in result.output
    assert (project / "models" / "mlflow.db").exists()


def test_unknown_config_key_exits_2_naming_it(project: Path) -> None:
    result = runner.invoke(app, ["train", "--set", "split.tset_fraction=0.2"])
    assert result.exit_code == 2
    assert "split.tset_fraction" in result.output


def test_missing_export_exits_2_naming_the_file(project: Path) -> None:
    result = runner.invoke(app, ["train", "--tickets", "nowhere.csv"])
    assert result.exit_code == 2
    assert "nowhere.csv" in result.output


def test_unknown_mapping_exits_2_naming_it(project: Path) -> None:
    for command in (["train", "--mapping", "nosuch"], ["score", "in.csv", "out.csv", "--mapping", "nosuch"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 2, command
        assert "no mapping named 'nosuch'" in result.output


def test_scoring_with_a_model_the_store_lacks_exits_2_naming_it(project: Path) -> None:
    (project / "in.csv").write_text("ticket_id\nT1\n")
    result = runner.invoke(app, ["score", "in.csv", "out.csv", "--model", "models:/nosuch@champion"])
    assert result.exit_code == 2
    assert "cannot load model models:/nosuch@champion" in result.output
    assert not (project / "out.csv").exists()


def test_promote_without_candidate_says_train_first(project: Path) -> None:
    result = runner.invoke(app, ["promote"])
    assert result.exit_code == 2
    assert "train first" in result.output
