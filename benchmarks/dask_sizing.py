"""Growth per stage, and a sizing model for exports this machine cannot hold.

Both read CPU seconds, not wall time: two cores shared with other work make wall time
swing twofold from one run to the next, while the CPU a stage costs barely moves. The model
is fitted to the scale runs' own figures, stage by stage, and says what it assumes:

- a stage's **worker CPU** (all workers together) divides evenly over the workers: its
  tasks are per partition, or per worker's share of rows (LightGBM's data-parallel
  training);
- its **client CPU** (the client process, which on a LocalCluster also runs the scheduler:
  calibration, evaluation and logging of the test window, the samples fitted on one
  process, scheduling) does not shrink with more workers;
- both grow with the tickets as the power law measured between the two largest sizes
  (exponents below 1 are raised to 1: a sublinear stage is taken as linear, to be safe);
- a worker of the cluster computes like one core of this machine and waits for nothing:
  no time is added for disk or network. A shuffle moves the data once over the network,
  three shuffles for an event log (events, then tickets twice), two for tickets, so on a
  real cluster add the shuffled bytes over the network's bandwidth (events: about
  0.3 KiB per event; tickets: about 0.6 KiB per ticket per shuffle);
- peak memory per worker is a fixed base plus a share proportional to its tickets, fitted
  on the measured sizes; the client's peak grows linearly with the tickets (it holds the
  test and validation windows and the samples).
"""

from __future__ import annotations

import itertools
import math
from typing import Any

from dask.utils import format_bytes

from benchmarks import training

#: Ticket counts the sizing table plans for, and the cluster sizes it tries for each.
TARGETS = {10_000_000: (4, 8, 16), 100_000_000: (16, 32, 64, 128)}


def cpu(run: dict[str, Any]) -> dict[str, float]:
    """CPU seconds per stage, workers and client together."""
    stages = run["stages_s"]
    return {s: run["worker_cpu_s"].get(s, 0.0) + run["client_cpu_s"].get(s, 0.0) for s in stages}


def growth(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per kind, consecutive sizes and smallest → largest: CPU seconds per stage judged by
    ``training.growth`` (≤ 1.25× the n log n ratio), beside the wall-time exponent."""
    out = []
    for kind in sorted({r["kind"] for r in runs}):
        sized = sorted((r for r in runs if r["kind"] == kind), key=lambda r: r["n"])
        pairs = list(itertools.pairwise(sized))
        if len(sized) > 2:
            pairs.append((sized[0], sized[-1]))
        for small, large in pairs:
            as_cpu = [{"n": r["n"], "stages_s": cpu(r), "total_s": sum(cpu(r).values())}
                      for r in (small, large)]
            as_wall = [{"n": r["n"], "stages_s": r["stages_s"], "total_s": r["wall_s"]}
                       for r in (small, large)]
            wall = {g["stage"]: g["exponent"] for g in training.growth(as_wall)}
            out += [g | {"kind": kind, "wall_exponent": wall.get(g["stage"], float("nan"))}
                    for g in training.growth(as_cpu)]
    return out


def _exponent(small: float, large: float, n_small: int, n_large: int) -> float:
    if small <= 0 or large <= 0:
        return 1.0
    return max(1.0, math.log(large / small) / math.log(n_large / n_small))


def fit(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The model's parameters for one kind of export, from its two largest sizes."""
    sized = sorted(runs, key=lambda r: r["n"])
    small, large = sized[-2], sized[-1]
    stages = {}
    for stage in large["stages_s"]:
        parts = {}
        for part in ("worker", "client"):
            key = f"{part}_cpu_s"
            parts[part] = large[key].get(stage, 0.0)
            parts[f"{part}_exp"] = _exponent(
                small[key].get(stage, 0.0), parts[part], small["n"], large["n"])
        stages[stage] = parts
    # Peak memory per worker = base + slope × tickets per worker (least squares over sizes).
    xs = [r["n"] / r["workers"] for r in sized]
    ys = [max(r["peak_rss"].values()) for r in sized]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / max(
        sum((x - mean_x) ** 2 for x in xs), 1e-9)
    base = max(mean_y - slope * mean_x, 0.0)
    return {"n": large["n"], "stages": stages, "memory_base": base, "memory_slope": slope,
            "client_per_ticket": large["client_peak_rss"] / large["n"]}


def predict(model: dict[str, Any], n: int, workers: int) -> dict[str, Any]:
    """Wall time per stage, memory per worker and of the client, for n tickets on `workers`."""
    scale = n / model["n"]
    serial = {stage: s["client"] * scale ** s["client_exp"] for stage, s in model["stages"].items()}
    per_stage = {
        stage: serial[stage] + s["worker"] * scale ** s["worker_exp"] / workers
        for stage, s in model["stages"].items()
    }
    return {
        "wall_s": sum(per_stage.values()), "stages_s": per_stage, "serial_s": serial,
        "memory": model["memory_base"] + model["memory_slope"] * n / workers,
        "client_memory": model["client_per_ticket"] * n,
    }


def markdown(runs: list[dict[str, Any]]) -> str:
    lines = ["## Sizing: 10M and 100M tickets (model fitted to the runs above)", ""]
    for kind in sorted({r["kind"] for r in runs}):
        of_kind = [r for r in runs if r["kind"] == kind]
        if len(of_kind) < 2:
            continue
        model = fit(of_kind)
        lines += [f"**{kind}** (fitted on {model['n']:,} tickets and the size below it)", "",
                  ("| tickets | workers | memory per worker | client memory | expected wall time "
                   "| slowest stage that more workers do not shorten |"), "|---|---|---|---|---|---|"]
        for n, clusters in TARGETS.items():
            for workers in clusters:
                p = predict(model, n, workers)
                limit = max(p["serial_s"], key=p["serial_s"].get)
                lines.append(
                    f"| {n:,} | {workers} | {format_bytes(p['memory'])} | "
                    f"{format_bytes(p['client_memory'])} | {_duration(p['wall_s'])} | "
                    f"{limit} ({_duration(p['serial_s'][limit])}) |")
        lines.append("")
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"
