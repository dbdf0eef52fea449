"""A training run as the user reads it: metrics beside the yardsticks, what was chosen, timings.

``escpredict train`` and the demo print the same summary, so it lives here, beside the
``TrainResult`` it renders, rather than in either of them.
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from escpredict.lifecycle.train import TrainResult

SUMMARY_METRICS = (
    "roc_auc", "pr_auc", "brier", "ece", "recall_top10",
    "precision_at_threshold", "recall_at_threshold",
)
SIZED_PARAMS = ("learning_rate", "num_leaves", "min_child_samples", "min_data_per_group", "cat_smooth")


def print_training_summary(console: Console, result: TrainResult) -> None:
    table = Table(title=f"{result.model_name} v{result.model_version} (run {result.run_id[:8]})")
    table.add_column("test metric")
    table.add_column("lightgbm", justify="right")
    table.add_column("logistic baseline", justify="right")
    for key in SUMMARY_METRICS:
        table.add_row(key, f"{result.metrics[key]:.4f}", f"{result.baseline_metrics[key]:.4f}")
    console.print(table)
    counts = ", ".join(f"{k.removeprefix('n_')} {v:,}" for k, v in result.counts.items())
    timings = ", ".join(f"{k} {v:.1f}s" for k, v in result.timings.items())
    console.print(f"routing threshold {result.threshold:.3f} | {counts}")
    params = result.booster_params
    chosen = ", ".join(f"{k} {params[k]}" for k in SIZED_PARAMS if k in params)
    console.print(f"booster: {chosen} | calibration: {result.calibration}")
    for warning in result.warnings:
        console.print(f"[bold yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
    cut = result.maturity
    warn = "[bold yellow]warning:[/] " if cut.fallback else ""
    console.print(warn + cut.describe(), highlight=False, soft_wrap=True)
    if result.yardstick.beaten:
        console.print(result.yardstick.describe(), highlight=False)
    else:
        console.print(
            f"[bold red]warning:[/] {result.yardstick.describe()}; tagged beats_baseline=false, "
            "and `escpredict promote` refuses it without --force",
            highlight=False, soft_wrap=True,
        )
    console.print(f"stage times: {timings}")
