"""Sections 3 and 5: training wall time per stage, peak RSS and model quality, per data size.

Each size trains in a fresh process (``python -m benchmarks.training N DIR``) so its peak RSS
is the training's own, not what earlier sizes or the data generator left behind. Quality is
read off the same runs: test AUC beside the oracle AUC that the generator's latent
probabilities reach on the same test window.
"""

from __future__ import annotations

import itertools
import json
import math
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from escpredict import sample_data

MODEL_NAME = "escalation-risk"
#: Stages slower than this at the larger size are judged for growth; below it, timer noise
#: and fixed costs dominate and the exponent means nothing.
MIN_GROWTH_SECONDS = 0.5
#: Allowance over the n log n ratio for a noisy shared machine.
GROWTH_TOLERANCE = 1.25


def data_dir(workdir: Path, n: int) -> Path:
    return workdir / f"n{n}"


def tracking_uri(workdir: Path, n: int) -> str:
    return f"sqlite:///{data_dir(workdir, n) / 'mlflow.db'}"


def write_sample(workdir: Path, n: int, seed: int = 0) -> dict[str, Any]:
    """Generate and write `n` sample tickets once; reused if a previous run left them."""
    out = data_dir(workdir, n)
    if (out / "oracle.parquet").exists():
        return {"n": n, "generate_s": None, "reused": True}
    start = time.perf_counter()
    sample_data.write(sample_data.generate(n, seed=seed), out, "parquet")
    return {"n": n, "generate_s": time.perf_counter() - start, "reused": False}


def train_in_subprocess(workdir: Path, n: int) -> dict[str, Any]:
    """Train on the `n`-ticket sample in a child process; its JSON report, parsed."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.training", str(n), str(workdir)],
        capture_output=True, text=True, check=False, cwd=Path(__file__).parents[1],
    )
    if done.returncode != 0:
        raise RuntimeError(f"training at n={n} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _cpu_seconds() -> float:
    """CPU time of this process (user + system): unlike wall time, barely moved by neighbours
    competing for the cores, so it says what the run costs on a quiet machine."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _train(workdir: Path, n: int) -> dict[str, Any]:
    """One end-to-end `train.run` on the shipped pipeline defaults, then quality figures."""
    from mlflow.tracking import MlflowClient

    from escpredict.config import load_config
    from escpredict.demo import oracle_auc
    from escpredict.registry import CHAMPION, home, set_alias
    from escpredict.stages import Stages
    from escpredict.train import run

    folder = data_dir(workdir, n)
    shipped = home() / "pipelines" / "train.yaml"
    cfg = load_config(
        shipped if shipped.exists() else None,
        {
            "data.tickets": str(folder / "tickets.parquet"),
            "data.agents": str(folder / "agents.parquet"),
            "registry.tracking_uri": tracking_uri(workdir, n),
        },
    )
    start, cpu_start = time.perf_counter(), _cpu_seconds()
    result = run(cfg, stages=Stages(show=False))
    total, cpu = time.perf_counter() - start, _cpu_seconds() - cpu_start
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    # Section 2 serves `models:/...@champion`, as a user following the README would.
    set_alias(MlflowClient(tracking_uri(workdir, n)), result.model_name, CHAMPION, result.model_version)
    oracle = oracle_auc(result.test_window, folder / "oracle.parquet")
    return {
        "n": n,
        "total_s": total,
        "cpu_s": cpu,
        "stages_s": result.timings,
        "peak_rss_bytes": peak_rss,
        "counts": result.counts,
        "model_uri": f"models:/{result.model_name}/{result.model_version}",
        "tracking_uri": tracking_uri(workdir, n),
        "quality": {
            "test_auc": result.metrics["roc_auc"],
            "oracle_auc": oracle,
            "auc_ratio": result.metrics["roc_auc"] / oracle,
            "ece": result.metrics["ece"],
            "baseline_auc": result.baseline_metrics["roc_auc"],
        },
    }


def growth(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per stage and pair of consecutive sizes: time ratio beside the n log n ratio.

    A stage passes when its time grows by at most GROWTH_TOLERANCE x the n log n ratio, or
    when it is too short at the larger size to judge (MIN_GROWTH_SECONDS).
    """
    out = []
    ordered = sorted(runs, key=lambda r: r["n"])
    for small, large in itertools.pairwise(ordered):
        size_ratio = large["n"] / small["n"]
        nlogn = size_ratio * math.log(large["n"]) / math.log(small["n"])
        timed = {**large["stages_s"], "total": large["total_s"]}
        for stage, seconds in timed.items():
            before = small["total_s"] if stage == "total" else small["stages_s"].get(stage)
            if not before:
                continue
            ratio = seconds / before
            out.append({
                "stage": stage,
                "from_n": small["n"],
                "to_n": large["n"],
                "time_ratio": ratio,
                "exponent": math.log(ratio) / math.log(size_ratio) if ratio > 0 else float("nan"),
                "nlogn_ratio": nlogn,
                "ok": seconds < MIN_GROWTH_SECONDS or ratio <= GROWTH_TOLERANCE * nlogn,
            })
    return out


if __name__ == "__main__":
    print(json.dumps(_train(Path(sys.argv[2]), int(sys.argv[1]))))
