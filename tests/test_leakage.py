"""The leakage guard: a field that alone almost separates the labels is named in check and train."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from escpredict.cli import app
from escpredict.config import TrainConfig
from escpredict.labels.leakage import THRESHOLD, field_auc, suspects
from escpredict.lifecycle.train import LEAK_TAG
from escpredict.onboard.check import check_export
from tests.conftest import store_client

runner = CliRunner()
START = pd.Timestamp("2024-01-01")
N = 600


def export(tmp_path: Path, n: int = N, seed: int = 0, wrong: float = 0.0) -> tuple[Path, Path]:
    """Tickets about a third of which are escalated (tier raised), with `outcome` copying the
    label (but for a share `wrong` of tickets) and `team` an honest, predictive field; plus a
    mapping declaring both as features."""
    rng = np.random.default_rng(seed)
    team = rng.choice(["a", "b", "c"], n)
    escalated = rng.random(n) < np.where(team == "a", 0.6, 0.2)
    created = START + pd.to_timedelta(np.arange(n) * 6, unit="h")
    frame = pd.DataFrame({
        "ticket_id": [f"T{i}" for i in range(n)],
        "created_at": created.astype(str),
        "channel": "email",
        "category": rng.choice(["billing", "login", "outage"], n),
        "priority": "low",
        "customer_id": [f"c{i % 40}" for i in range(n)],
        "agent_id": [f"a{i % 5}" for i in range(n)],
        "resolver_id": [f"a{i % 5}" for i in range(n)],
        "resolved_at": (created + pd.Timedelta(hours=5)).astype(str),
        "initial_tier": 1,
        "final_tier": np.where(escalated, 2, 1),
        "reassignment_count": 0,
        "outcome": np.where(escalated != (rng.random(n) < wrong), "raised", "kept"),
        "team": team,
    })
    tickets = tmp_path / "tickets.csv"
    frame.to_csv(tickets, index=False)
    mapping = tmp_path / "with-outcome.yaml"
    mapping.write_text(
        "name: with-outcome\nlevel: tickets\ntimezone: UTC\ncolumns: {}\n"
        "features:\n  outcome: {column: outcome, kind: categorical}\n"
        "  team: {column: team, kind: categorical}\n"
    )
    return tickets, mapping


def test_a_copy_of_the_label_separates_perfectly_whatever_its_kind() -> None:
    y = np.array([0, 1] * 50)
    words = pd.Series(np.where(y == 1, "yes", "no"))
    assert field_auc("categorical", words, y, words, y) == 1.0
    assert field_auc("numeric", pd.Series(y * 3.0), y, pd.Series(y * 3.0), y) == 1.0
    # Reversed, it separates just as well.
    assert field_auc("numeric", pd.Series(-y * 1.0), y, pd.Series(-y * 1.0), y) == 1.0


def test_a_value_filled_in_only_once_escalated_is_a_leak_through_its_missingness() -> None:
    y = np.array([0, 1] * 50)
    closed_at = pd.Series(np.where(y == 1, 5.0, np.nan))
    assert field_auc("numeric", closed_at, y, closed_at, y) == 1.0


def test_ids_never_seen_in_training_cannot_look_perfect() -> None:
    y = np.array([0, 1] * 100)
    ids = pd.Series([f"id{i}" for i in range(200)])
    assert field_auc("categorical", ids[:100], y[:100], ids[100:], y[100:]) == 0.5


def test_only_fields_past_the_threshold_are_named_worst_first() -> None:
    rng = np.random.default_rng(1)
    y = (rng.random(400) < 0.3).astype(int)
    frame = pd.DataFrame({
        "copy": np.where(y == 1, "up", "down"),
        "noisy_copy": np.where(rng.random(400) < 0.97, y, 1 - y).astype(float),
        "honest": np.where(y == 1, rng.choice(["a", "b"], 400, p=[0.7, 0.3]), rng.choice(["a", "b"], 400)),
    })
    fields = {"copy": "categorical", "noisy_copy": "numeric", "honest": "categorical"}
    found = suspects(frame[:200], y[:200], frame[200:], y[200:], fields)
    assert [s.field for s in found] == ["copy", "noisy_copy"]
    assert found[0].auc == 1.0 and THRESHOLD <= found[1].auc < 1.0


def test_a_window_with_too_few_of_a_class_is_not_judged() -> None:
    y = np.array([0] * 95 + [1] * 5)
    frame = pd.DataFrame({"copy": y.astype(str)})
    assert suspects(frame, y, frame, y, {"copy": "categorical"}) == []


def test_check_names_the_column_that_copies_the_label(tmp_path: Path) -> None:
    tickets, mapping = export(tmp_path)
    report = check_export(tickets, str(mapping), None, TrainConfig())
    warnings = [f for f in report.findings if f.level == "warning" and "leakage" in f.message]
    assert len(warnings) == 1
    assert "field outcome (AUC 1.000)" in warnings[0].message
    assert "team" not in warnings[0].message
    assert "mapping" in warnings[0].cause


def train(tmp_path: Path, tickets: Path, mapping: Path, *sets: str) -> str:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    args = ["train", "--tickets", str(tickets), "--mapping", str(mapping), "--tracking-uri", uri,
            "--set", "model.num_boost_round=30"]
    return runner.invoke(app, [*args, *(a for pair in sets for a in ("--set", pair))])


def test_train_warns_and_tags_the_run_naming_the_column(tmp_path: Path) -> None:
    tickets, mapping = export(tmp_path, wrong=0.01)
    # A model that sure routes above the default `high` tier's boundary (see the test below).
    result = train(tmp_path, tickets, mapping, "routing.tiers={low: 0.0, medium: 0.2, high: 0.99}")
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "possible leakage: field outcome (AUC 0.9" in output
    assert "team" not in output.split("possible leakage")[1]
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = store_client(uri)
    run = client.get_run(client.get_model_version_by_alias("escalation-risk", "candidate").run_id)
    assert run.data.tags[LEAK_TAG].startswith("outcome (AUC 0.9")


def test_a_model_too_sure_to_route_names_the_leak_that_made_it_so(tmp_path: Path) -> None:
    tickets, mapping = export(tmp_path)
    result = train(tmp_path, tickets, mapping)
    assert result.exit_code == 2
    output = " ".join(result.output.split())
    assert "routing threshold" in output
    assert "because possible leakage: field outcome (AUC 1.000)" in output
