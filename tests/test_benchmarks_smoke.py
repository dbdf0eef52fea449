"""The benchmark harness runs end to end on tiny sizes (no figure here is a benchmark)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from benchmarks import run

SHIPPED = Path(__file__).resolve().parents[1] / "pipelines" / "train.yaml"
#: The real ServiceNow sample stands in for the complete log the benchmark takes by path.
SERVICENOW = Path(__file__).parent / "data" / "servicenow-incident-events-sample.csv"


def test_harness_writes_every_section_and_the_targets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Training reads $ESCPREDICT_HOME/pipelines/train.yaml: the shipped one at a budget for a
    # test of the harness (the figures of this run are never a benchmark).
    config = yaml.safe_load(SHIPPED.read_text())
    config["features"].update(word_max_features=300, char_max_features=200, min_df=3)
    config["model"].update(num_boost_round=40, early_stopping_rounds=10)
    (tmp_path / "pipelines").mkdir()
    (tmp_path / "pipelines" / "train.yaml").write_text(yaml.safe_dump(config))
    monkeypatch.setenv("ESCPREDICT_HOME", str(tmp_path))
    out = tmp_path / "results"
    run.main([
        "--sizes", "2000,3000", "--quality-size", "3000", "--batch-size", "3000",
        "--tickets", "20", "--runs", "1", "--skip-http",
        "--profiles", "default,realistic,servicenow", "--realistic-size", "3000",
        "--realistic-seeds", "0", "--servicenow", str(SERVICENOW),  # averaging: unit-tested
        "--set", "model.search.trials=2", "--set", "model.search.folds=2",  # a smoke test's budget
        "--open-tickets", "--checkpoint-sizes", "2000,4000",
        "--workdir", str(tmp_path / "work"), "--out", str(out),
    ])

    results = json.loads((out / "results.json").read_text())
    assert [r["n"] for r in results["training"]] == [2000, 3000]
    assert {"load", "features", "fit", "calibration", "logging"} <= set(results["training"][0]["stages_s"])
    assert results["training"][1]["peak_rss_bytes"] > 0
    assert results["training"][1]["cpu_s"] > 0
    assert 0 < results["training"][1]["quality"]["oracle_auc"] <= 1
    for size in results["training"]:  # every run fits the plain reference
        assert 0 < size["quality"]["reference_auc"] <= 1
    realistic = results["realistic"]
    assert [(r["export"], r["seed"]) for r in realistic["runs"]] == [("events", 0)]
    assert 0 < realistic["mean"]["oracle_auc"] <= 1 and 0 < realistic["mean"]["reference_auc"] <= 1
    assert 0 <= realistic["mean"]["oracle_ece"] < 1
    assert 0 < realistic["mean"]["ceiling_auc"] <= 1  # the well-specified model, realistic only
    assert results["training"][1]["quality"]["ceiling_auc"] is None
    assert results["inprocess"]["ratio_median"] > 0
    assert results["batch"]["n"] == 3000
    assert {g["stage"] for g in results["growth"]} >= {"features", "fit", "total"}
    table = (out / "results.md").read_text()
    assert "## Targets" in table and "## 5. Quality" in table
    assert "not run" in table  # HTTP was skipped, and the targets table says so
    assert "realistic 3,000, mean of 1 seed: test AUC − plain reference AUC" in table
    assert "test AUC / well-specified model AUC | ≥ 0.990 |" in table
    assert "test AUC / oracle AUC | (context) |" in table
    assert "| realistic (events, seed 0) | 3,000 |" in table
    assert "realistic, mean" not in table  # a mean row only over two seeds or more
    opened = results["open_tickets"]
    servicenow = results["servicenow"]
    assert list(opened["bands"]) == [
        "realistic 3,000, mean of 1 seed", f"ServiceNow log ({servicenow['n']:,} tickets)"]
    for bands in opened["bands"].values():
        assert [b["age"] for b in bands] == ["creation", "1h", "4h", "1d", "3d", "7d"]
    assert [c["n"] for c in opened["checkpoints"]] == [2000, 4000]
    assert "## Open tickets (issue 17)" in table
    assert "| open tickets: HTTP p99 at 50 req/s, scoring with a state (ms) | < 10.0 | not run | — |" in table
    assert results["training"][1]["search"]["search.candidates"] == 2
    assert servicenow["quality"]["oracle_auc"] is None and 0 < servicenow["quality"]["reference_auc"] < 1
    assert "| ServiceNow log (real) |" in table
    assert f"ServiceNow log ({servicenow['n']:,} tickets): test AUC − plain reference AUC" in table
