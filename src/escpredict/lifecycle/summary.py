"""A training run as the user reads it: metrics beside the yardsticks, what was chosen, timings.

``escpredict train`` and the demo print the same summary, so it lives here, beside the
``TrainResult`` it renders, rather than in either of them.
"""

from __future__ import annotations

import math

from rich import box
from rich.console import Console
from rich.table import Table

from escpredict.labels import leakage
from escpredict.lifecycle.train import LEAK_TAG, TrainResult

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
    table.add_column("plain reference", justify="right")
    for key in SUMMARY_METRICS:
        table.add_row(
            key, f"{result.metrics[key]:.4f}", f"{result.baseline_metrics[key]:.4f}",
            f"{result.reference_metrics[key]:.4f}" if result.reference_metrics else "—",
        )
    console.print(table)
    counts = ", ".join(f"{k.removeprefix('n_')} {v:,}" for k, v in result.counts.items())
    timings = ", ".join(f"{k} {v:.1f}s" for k, v in result.timings.items())
    console.print(f"routing threshold {result.threshold:.3f} | {counts}")
    params = result.booster_params
    chosen = ", ".join(f"{k} {params[k]}" for k in SIZED_PARAMS if k in params)
    console.print(f"booster: {chosen} | calibration: {result.calibration}")
    if result.search is not None:
        console.print(result.search.describe(), highlight=False, soft_wrap=True)
    for warning in result.warnings:
        console.print(f"[bold yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
    cut = result.maturity
    warn = "[bold yellow]warning:[/] " if cut.fallback else ""
    console.print(warn + cut.describe(), highlight=False, soft_wrap=True)
    if result.yardstick.beaten:
        console.print(result.yardstick.describe(), highlight=False)
    else:
        console.print(
            f"[bold red]warning:[/] {result.yardstick.describe()}; tagged "
            f"{', '.join(result.yardstick.failed_tags())}, and `escpredict promote` refuses "
            "it without --force",
            highlight=False, soft_wrap=True,
        )
    if result.suspects:
        console.print(
            f"[bold red]warning:[/] {leakage.describe(result.suspects)}: {leakage.CAUSE} "
            f"(tagged {LEAK_TAG})",
            highlight=False, soft_wrap=True,
        )
    if result.open_bands is not None:
        print_open_bands(console, result)
    elif result.open_notes:
        console.print(f"[yellow]note:[/] {result.open_notes[0]}", highlight=False, soft_wrap=True)
    console.print(f"stage times: {timings}")


def _pair(ours: float, theirs: float) -> str:
    """".819/.659": ours, then the yardstick's, narrow enough for an 80-column terminal."""
    return "/".join("—" if math.isnan(v) else f"{v:.3f}".removeprefix("0") for v in (ours, theirs))


def print_open_bands(console: Console, result: TrainResult) -> None:
    """Per age band on the test window: the open-ticket model/the at-creation model."""
    table = Table(
        title="Tickets still open, by age (test window): open-ticket model/at-creation",
        box=box.SIMPLE_HEAD,
    )
    for name in ("age", "open (esc.)", "ROC AUC", "ECE", "recall@10%", "recall@20%"):
        table.add_column(name, justify="left" if name == "age" else "right")
    for row in result.open_bands.to_dict("records"):
        table.add_row(
            row["age"], f"{row['n']:,} ({row['positives']:,})",
            *(_pair(row[m], row[f"creation_{m}"]) for m in (
                "roc_auc", "ece", "recall_at_10pct", "recall_at_20pct")),
        )
    console.print(table)
    choice = result.open_choice
    if choice is not None:
        structure, means = choice.attrs["structure"], choice.attrs["means"]
        console.print(
            f"open-ticket model: {structure.replace('_', ' ')} boosters (validation ROC AUC "
            f"weighted by escalations: shared {means['shared']:.4f}, per band "
            f"{means['per_band']:.4f}, at-creation ranking {means['creation']:.4f})",
            highlight=False,
        )
        kept = ", ".join(choice.loc[choice["uses"] == "fallback", "name"])
        if kept:
            console.print(
                f"[yellow]note:[/] at {kept} the booster did not beat the at-creation ranking "
                "on the validation window by a standard error on 30+ escalations "
                "(see evaluation/open_choice.csv): those ages keep the at-creation ranking, "
                "recalibrated for their age", highlight=False, soft_wrap=True,
            )
    pit = result.open_point_in_time
    if pit and pit.get("agent_unknown_share", 0) > 0:
        console.print(
            f"note: at creation the at-creation model reads the first handler, whom "
            f"{pit['agent_unknown_share']:.0%} of these tickets had not met yet (an event export "
            f"learns them at the first assignment); with only what was known then its ROC AUC "
            f"is {pit['roc_auc']:.3f} and ECE {pit['ece']:.3f}. After creation the open-ticket "
            "model and its yardstick read an agent only once assigned.",
            highlight=False, soft_wrap=True,
        )
    for note in result.open_notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False, soft_wrap=True)
