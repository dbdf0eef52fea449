"""A booster that does not beat its logistic baseline is flagged by training and refused by promote."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from escpredict.cli import app
from escpredict.lifecycle.registry import Yardstick
from tests.conftest import Trained

NAME = "escalation-risk"
runner = CliRunner()

#: min_child_samples above any window's size: no tree can split, and with no starting offset
#: (seasonal or per-level) the booster's scores are constant (chance, AUC 0.5) while the
#: baseline learns from the same features.
NO_SPLITS = (
    (
        "model.params={objective: binary, min_child_samples: 1000000, verbose: -1, "
        "num_threads: 2, seed: 7}"
    ),
    "model.linear_offset=false",
)
SMALL = [
    "features.word_max_features=400", "features.char_max_features=300", "features.min_df=3",
    "model.num_boost_round=30", "model.early_stopping_rounds=5", "model.seasonal_offset=false",
]


def store(uri: str) -> MlflowClient:
    """A client of that store's registry too, not of the process-wide one the last run set."""
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def train(sample_dir: Path, uri: str, *sets: str) -> str:
    args = ["train", "--tickets", str(sample_dir / "tickets.parquet"),
            "--agents", str(sample_dir / "agents.parquet"), "--tracking-uri", uri]
    for pair in (*SMALL, *sets):
        args += ["--set", pair]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.output


def test_a_losing_booster_is_flagged_and_only_promoted_when_forced(
    sample_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"

    output = train(sample_dir, uri, *NO_SPLITS)

    client = store(uri)
    version = client.get_model_version_by_alias(NAME, "candidate")
    run = client.get_run(version.run_id).data
    yardstick = Yardstick.from_tags(version.tags)
    assert yardstick == Yardstick.from_tags(run.tags)
    assert yardstick is not None and not yardstick.beaten
    assert yardstick.booster_auc == pytest.approx(0.5)
    assert version.tags["beats_baseline"] == run.tags["beats_baseline"] == "false"
    assert run.metrics["baseline_valid_roc_auc"] == pytest.approx(yardstick.baseline_auc)
    assert "does NOT beat the logistic baseline" in " ".join(output.split())

    refused = runner.invoke(app, ["promote", "--tracking-uri", uri])
    message = " ".join(refused.output.split())
    assert f"{yardstick.booster_auc:.4f} vs {yardstick.baseline_auc:.4f}" in message
    assert "refused v1" in message and "--force" in message
    with pytest.raises(MlflowException, match="champion"):
        client.get_model_version_by_alias(NAME, "champion")

    forced = runner.invoke(app, ["promote", "--force", "--tracking-uri", uri])
    assert "promoted v1: forced" in forced.output
    assert client.get_model_version_by_alias(NAME, "champion").version == version.version


def test_a_booster_that_wins_is_tagged_so(trained: Trained) -> None:
    client = store(trained.tracking_uri)
    version = client.get_model_version(NAME, trained.result.model_version)
    assert version.tags["beats_baseline"] == "true"
    assert trained.result.yardstick.beaten
    assert float(version.tags["valid_roc_auc"]) > float(version.tags["baseline_valid_roc_auc"])


def test_versions_from_before_the_check_carry_no_verdict() -> None:
    assert Yardstick.from_tags({"run_id": "abc"}) is None
    tie = Yardstick(0.71, 0.71)
    assert not tie.beaten and Yardstick.from_tags(tie.tags()) == tie
