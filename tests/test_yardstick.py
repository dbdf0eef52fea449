"""A booster that does not beat its logistic baseline or the plain reference is flagged by
training and refused by promote."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.exceptions import MlflowException
from typer.testing import CliRunner

from escpredict.cli import app
from escpredict.lifecycle.registry import Yardstick
from tests.conftest import Trained, store_client

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
    "model.search=off",  # the search would leave the structure NO_SPLITS sets on purpose
]


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

    client = store_client(uri)
    version = client.get_model_version_by_alias(NAME, "candidate")
    run = client.get_run(version.run_id).data
    yardstick = Yardstick.from_tags(version.tags)
    assert yardstick == Yardstick.from_tags(run.tags)
    assert yardstick is not None and not yardstick.beaten
    assert yardstick.booster_auc == pytest.approx(0.5)
    assert version.tags["beats_baseline"] == run.tags["beats_baseline"] == "false"
    assert version.tags["beats_reference"] == run.tags["beats_reference"] == "false"
    assert run.metrics["baseline_valid_roc_auc"] == pytest.approx(yardstick.baseline_auc)
    assert run.metrics["reference_valid_roc_auc"] == pytest.approx(yardstick.reference_auc)
    assert 0.5 < run.metrics["reference_test_roc_auc"] < 1
    said = " ".join(output.split())
    assert "does NOT beat the logistic baseline" in said
    assert "does NOT beat the plain reference" in said
    assert "tagged beats_baseline=false, beats_reference=false" in said

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
    client = store_client(trained.tracking_uri)
    version = client.get_model_version(NAME, trained.result.model_version)
    assert version.tags["beats_baseline"] == version.tags["beats_reference"] == "true"
    assert trained.result.yardstick.beaten
    assert float(version.tags["valid_roc_auc"]) > float(version.tags["baseline_valid_roc_auc"])
    assert float(version.tags["valid_roc_auc"]) > float(version.tags["reference_valid_roc_auc"])


def test_every_run_fits_the_plain_reference_and_logs_its_metrics(trained: Trained) -> None:
    run = store_client(trained.tracking_uri).get_run(trained.result.run_id).data
    reference = trained.result.reference_metrics
    assert run.metrics["reference_test_roc_auc"] == pytest.approx(reference["roc_auc"])
    assert run.metrics["reference_test_ece"] == pytest.approx(reference["ece"])
    assert run.metrics["reference_valid_roc_auc"] == pytest.approx(trained.result.yardstick.reference_auc)
    assert 0.5 < reference["roc_auc"] < trained.result.metrics["roc_auc"]


def test_a_booster_that_loses_only_to_the_plain_reference_is_refused_too(
    trained: Trained, tmp_path: Path
) -> None:
    """Tags as training sets them when the reference ranks better on the validation window."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = store_client(uri)
    client.create_registered_model(NAME)
    # The artifacts' own location: a `models:/m-…` source is looked up in the process-wide
    # tracking store, whichever an earlier test left set.
    source = store_client(trained.tracking_uri).get_model_version_download_uri(
        NAME, trained.result.model_version
    )
    losing = Yardstick(0.74, 0.70, 0.76)
    version = client.create_model_version(NAME, source, tags=losing.tags())
    client.set_registered_model_alias(NAME, "candidate", version.version)
    refused = runner.invoke(app, ["promote", "--tracking-uri", uri])
    message = " ".join(refused.output.split())
    assert "refused v1" in message
    assert "beats the logistic baseline" in message
    assert "does NOT beat the plain reference (ROC AUC 0.7400 vs 0.7600)" in message


def test_versions_from_before_the_check_carry_no_verdict() -> None:
    assert Yardstick.from_tags({"run_id": "abc"}) is None
    tie = Yardstick(0.71, 0.71)
    assert not tie.beaten and Yardstick.from_tags(tie.tags()) == tie
    # Trained before every run fitted the reference: judged on the baseline alone.
    older = Yardstick.from_tags(Yardstick(0.75, 0.70).tags())
    assert older == Yardstick(0.75, 0.70, None) and older.beaten
    tie_with_reference = Yardstick(0.75, 0.70, 0.75)
    assert not tie_with_reference.beaten
    assert Yardstick.from_tags(tie_with_reference.tags()) == tie_with_reference
