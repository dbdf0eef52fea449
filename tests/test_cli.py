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
    # The project's config, as a user may keep one: the structure search on a test's budget.
    (project / "pipelines").mkdir()
    (project / "pipelines" / "train.yaml").write_text("model: {search: {trials: 2, folds: 2}}\n")
    result = runner.invoke(app, ["demo", "--tickets", "5000", "--examples", "3"])
    assert result.exit_code == 0, result.output
    assert "structure search: 2 candidates on 2 past windows" in result.output
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


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """The project home ($ESCPREDICT_HOME) and the current folder are two folders."""
    home, here = tmp_path / "home", tmp_path / "here"
    home.mkdir()
    here.mkdir()
    monkeypatch.chdir(here)
    monkeypatch.setenv("ESCPREDICT_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return home, here


def small_export(path: Path) -> Path:
    """Six resolved tickets, none escalated: readable, too small to train."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [f"T{i},2024-01-0{i + 1} 10:00,email,billing,low,C{i},2024-01-0{i + 1} 12:00,1,1"
            for i in range(6)]
    header = "ticket_id,created_at,channel,category,priority,customer_id,resolved_at,"
    path.write_text(header + "initial_tier,final_tier\n" + "\n".join(rows) + "\n")
    return path


def checked(args: list[str]) -> dict:
    import json

    result = runner.invoke(app, ["check", "--json", *args])
    return json.loads(result.output)


def test_paths_typed_on_the_command_line_mean_the_current_folder(
    elsewhere: tuple[Path, Path],
) -> None:
    home, here = elsewhere
    small_export(here / "log.csv")
    (here / "mine.yaml").write_text("name: mine\n")
    report = checked(["--tickets", "log.csv", "--mapping", "mine.yaml"])
    assert (report["tickets_path"], report["rows_read"]) == (str(here / "log.csv"), 6)
    assert report["mapping"] == str(here / "mine.yaml")
    # train reads it too: it gets as far as the split, not "file not found" under the home
    result = runner.invoke(app, ["train", "--tickets", "log.csv", "--quarantine", "bad.csv"])
    assert result.exit_code == 2 and "holds only one class" in result.output, result.output
    assert (here / "bad.csv").exists() and not (home / "bad.csv").exists()


def test_paths_inside_a_config_file_mean_the_project_home(elsewhere: tuple[Path, Path]) -> None:
    home, here = elsewhere
    small_export(home / "exports" / "log.csv")
    (home / "pipelines").mkdir()
    (home / "pipelines" / "train.yaml").write_text("data: {tickets: exports/log.csv}\n")
    report = checked([])  # the home's pipelines/train.yaml, its relative path under the home
    assert (report["tickets_path"], report["rows_read"]) == (str(home / "exports/log.csv"), 6)
    (here / "other.yaml").write_text("data: {tickets: exports/log.csv}\n")
    report = checked(["--config", "other.yaml"])  # a config typed here, its paths still home's
    assert report["tickets_path"] == str(home / "exports/log.csv")
