"""Promotion: `champion` moves only to a candidate that wins on the same test window."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from escpredict.lifecycle.promotion import PromotionError, promote
from escpredict.lifecycle.train import run
from tests.conftest import small_config

NAME = "escalation-risk"


def champion(uri: str) -> str:
    return str(MlflowClient(uri).get_model_version_by_alias(NAME, "champion").version)


def test_promotion_rules(sample_dir: Path, tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with pytest.raises(PromotionError, match="no version with alias 'candidate'"):
        promote(NAME, tracking_uri=uri)

    run(small_config(sample_dir, uri))
    first = promote(NAME, tracking_uri=uri)
    assert first.promoted and "no champion yet" in first.reason
    assert champion(uri) == "1"

    again = promote(NAME, tracking_uri=uri)
    assert not again.promoted and "already the champion" in again.reason

    # A deliberately weak candidate (two stumps) loses even to its logistic baseline on the
    # validation window: refused before any comparison with the champion.
    run(small_config(sample_dir, uri, **{"model.num_boost_round": 2, "model.params.num_leaves": 2}))
    refused = promote(NAME, tracking_uri=uri, margin=0.0)
    assert not refused.promoted and refused.reason.startswith("refused v2")
    assert champion(uri) == "1"

    forced = promote(NAME, tracking_uri=uri, force=True)
    assert forced.promoted and "forced" in forced.reason
    assert champion(uri) == "2"

    # The good model trained again now beats the weak champion on the same window.
    run(small_config(sample_dir, uri))
    better = promote(NAME, tracking_uri=uri)
    assert better.promoted and better.candidate_metric > better.champion_metric
    assert champion(uri) == "3"

    # Its twin, trained on the same data, cannot win by the margin: the champion stays.
    run(small_config(sample_dir, uri))
    kept = promote(NAME, tracking_uri=uri, margin=0.002)
    assert not kept.promoted
    assert abs(kept.candidate_metric - kept.champion_metric) < 0.002
    assert "kept champion" in kept.reason and "test window" in kept.reason
    assert champion(uri) == "3"
