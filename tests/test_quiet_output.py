"""escpredict's commands print their own lines only: MLflow's progress bars, logs and warnings
are off, while a warning from escpredict itself (or another library) still shows."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from escpredict.cli import QUIET_MLFLOW, quiet_mlflow

MLFLOW_NOISE = (
    "Downloading artifacts",  # the progress bar of every model load
    "Passing a Python object as `python_model`",  # the pickle warning of every training run
    "INFO mlflow", "WARNING mlflow",
    "Successfully registered model", "Created version",  # MLflow's own prints on registering
)


def escpredict(*args: str, cwd: Path) -> str:
    """A command's stdout and stderr, run as a user runs it (MLflow's switches unset)."""
    env = {k: v for k, v in os.environ.items() if k not in QUIET_MLFLOW}
    done = subprocess.run(
        [sys.executable, "-m", "escpredict", *args], cwd=cwd, env=env, capture_output=True,
        text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


def test_train_and_score_print_no_mlflow_noise(small_sample_dir: Path, tmp_path: Path) -> None:
    store = ["--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"]
    small = [f"--set={key}={value}" for key, value in {
        "model.num_boost_round": 30, "features.word_max_features": 200,
        "features.char_max_features": 200, "model.search": "off",
    }.items()]
    export = str(small_sample_dir / "tickets.parquet")

    trained = escpredict(
        "train", "--tickets", export, "--agents", str(small_sample_dir / "agents.parquet"),
        *store, *small, cwd=tmp_path,
    )
    scored = escpredict(
        "score", export, str(tmp_path / "scores.csv"),
        "--model", "models:/escalation-risk@candidate", *store, cwd=tmp_path,
    )

    assert "escalation-risk v1" in trained and "scored 2,000 tickets" in scored
    for noise in MLFLOW_NOISE:
        assert noise not in trained and noise not in scored, noise


def test_only_mlflows_warnings_are_muted(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in QUIET_MLFLOW:  # restored after the test, whatever the command sets
        monkeypatch.setenv(name, "unset")
        monkeypatch.delenv(name)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        quiet_mlflow()
        for text, module in (("MLflow's", "mlflow.models.utils"), ("ours", "escpredict.model.features"),
                             ("pandas'", "pandas.core.frame")):
            warnings.warn_explicit(text, FutureWarning, f"{module}.py", 1, module=module)

    assert [str(w.message) for w in seen] == ["ours", "pandas'"]
    assert os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] == "false"
