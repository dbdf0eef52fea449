"""The README's first command: the whole product on the embedded sample data."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from rich.console import Console
from sklearn.metrics import roc_auc_score

from escpredict.config import load_config
from escpredict.contract import LABEL
from escpredict.lifecycle.promotion import promote
from escpredict.lifecycle.pyfunc import load_escalation_model
from escpredict.lifecycle.registry import home, model_uri, use_store
from escpredict.lifecycle.stages import Stages
from escpredict.lifecycle.summary import print_training_summary
from escpredict.lifecycle.train import run
from escpredict.model.escalation import EscalationModel
from escpredict.report.build import build_report
from escpredict.samples.profiles import write_profile


def oracle_auc(test_window: pd.DataFrame, oracle_path: Path) -> float:
    """Best achievable AUC on the test window: the generator's latent probabilities."""
    oracle = pd.read_parquet(oracle_path, columns=["ticket_id", "p_escalation"])
    joined = test_window[["ticket_id", LABEL]].merge(oracle, on="ticket_id", how="inner")
    return float(roc_auc_score(joined[LABEL].astype(int), joined["p_escalation"]))


def example_tickets(test_window: pd.DataFrame, n: int) -> pd.DataFrame:
    """A spread of risk: the riskiest, the safest and some in between."""
    ordered = test_window.sort_values("probability", ascending=False)
    picks = sorted({round(i * (len(ordered) - 1) / max(n - 1, 1)) for i in range(n)})
    return ordered.iloc[picks]


def print_examples(console: Console, model: EscalationModel, tickets: pd.DataFrame) -> None:
    """One block per ticket: the answer a triage bot gets, then its top reasons."""
    console.print("[bold]Example tickets scored by the champion[/] (reasons in log-odds)")
    for record in tickets.to_dict("records"):
        scored = model.score_record(record, n_reasons=3)
        actual = "escalated" if record[LABEL] else "not escalated"
        console.print(
            f"[bold]{record['ticket_id']}[/] {record['category']} / {record['priority']}: "
            f"p={scored.probability:.3f}, tier {scored.tier}, route {scored.route} "
            f"[dim](actually {actual})[/]",
            highlight=False,
        )
        for reason in scored.reasons:
            console.print(f"    {reason.contribution:+.2f}  {reason.text}", highlight=False)


def run_demo(console: Console, n_tickets: int, seed: int, examples: int) -> None:
    shipped = home() / "pipelines" / "train.yaml"
    config = shipped if shipped.exists() else None
    console.rule("1. sample data")
    with Stages(console) as stages:
        out = home() / "data" / "sample"
        paths = write_profile("default", n_tickets, seed, out, "parquet", stages)
    console.rule("2. train")
    data = {"data.tickets": str(paths["tickets"]), "data.agents": str(paths["agents"])}
    cfg = load_config(config, data)
    with Stages(console) as stages:
        result = run(cfg, None, stages)
    print_training_summary(console, result)
    oracle = oracle_auc(result.test_window, paths["oracle"])
    console.print(
        f"test ROC AUC {result.metrics['roc_auc']:.4f} vs oracle {oracle:.4f} "
        f"(ratio {result.metrics['roc_auc'] / oracle:.3f}); "
        f"baseline {result.baseline_metrics['roc_auc']:.4f}"
    )
    console.rule("3. promote")
    outcome = promote(
        result.model_name, cfg.registry.promote_metric, cfg.registry.promote_margin
    )
    console.print(outcome.reason, highlight=False)
    console.rule("4. score")
    use_store(None)
    champion = load_escalation_model(model_uri(result.model_name))
    print_examples(console, champion, example_tickets(result.test_window, examples))
    console.rule("5. report")
    report = build_report(model_uri(result.model_name), out=home() / "reports")
    console.print(f"manager report ({report.n_tickets:,} tickets): {report.html}")
    console.print(
        "Browse runs: mlflow ui --backend-store-uri sqlite:///models/mlflow.db", highlight=False
    )
