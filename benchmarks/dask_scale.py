"""The Dask engine: same answers as the local engine, and how it scales (issue 20).

    python -m benchmarks.dask_scale agree --realistic 100000 \\
        --servicenow /tmp/servicenow-incident-events-full.csv \\
        --servicenow-sample tests/data/servicenow-incident-events-sample.csv
    python -m benchmarks.dask_scale scale --kind events --tickets 500000 --memory-limit 3GiB
    python -m benchmarks.dask_scale table          # rewrite the tables from the JSON

Not part of the test suite. Each command adds its rows to ``results/dask_scale.json`` (a
row per data set or per kind and size, replaced when rerun, so sizes can run one at a time)
and rewrites ``results/dask_scale.md``.

- ``agree`` trains the local engine and the Dask engine (2-worker LocalCluster) on the same
  export with the shipped defaults and prints test AUC and ECE of both, and |Δ|.
- ``scale`` writes an export of N tickets (``dask_data``: the realistic profile's event log
  as one CSV, or the default profile's ticket-level Parquet) and trains on it with the Dask
  engine on a LocalCluster whose workers each get ``--memory-limit``. It records wall time
  and CPU seconds per stage (of the workers, and of the client process, which also runs the
  scheduler), peak RSS per worker and per stage (psutil, sampled every 0.25 s, and of the
  client), and whether a worker was restarted (a nanny restarts a worker above 95% of its
  limit).
- The tables show growth exponents per stage between sizes (judged on CPU seconds) and the
  sizing model (``dask_sizing``) fitted to those figures.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

import dask
import pandas as pd
import psutil
from dask.distributed import Client
from dask.utils import format_bytes, parse_bytes
from distributed.comm import CommClosedError

from benchmarks import dask_data, dask_sizing, training
from benchmarks.run import RESULTS, _check, _context, machine, targets_table
from escpredict.config import load_config
from escpredict.lifecycle.registry import home
from escpredict.lifecycle.stages import Stages

RESULTS_JSON = RESULTS / "dask_scale.json"
RESULTS_MD = RESULTS / "dask_scale.md"
#: Issue 20's targets.
AGREEMENT = 0.005
AGREEMENT_SETS = ("realistic events 100,000", "ServiceNow full log")
MEMORY_TARGET_TICKETS = 2_000_000
#: Sizes between which growth is judged, per kind of export (the issue's scale runs).
GROWTH_SIZES = {"events": (500_000, 2_000_000), "tickets": (1_000_000, 5_000_000)}
#: Scale runs: the shipped defaults, but character n-grams off (they are most of the
#: defaults' non-zeros per ticket and of the transform time; the engine does not depend on
#: the choice) and a fixed 300 rounds (lightgbm.dask trains every round it is given).
SCALE_SETTINGS = {"features.char_max_features": 0, "model.num_boost_round": 300}


# --- measuring ----------------------------------------------------------------------------


class TimedStages(Stages):
    """Stages that also know which one is running (to put memory samples in it) and the CPU
    seconds each took on the workers and in the client process (which, on a LocalCluster,
    also runs the scheduler): unlike wall time, barely moved by neighbours on the cores."""

    def __init__(self) -> None:
        super().__init__(show=False)
        self.current = "setup"
        self.meter: Callable[[], tuple[float, float]] = lambda: (0.0, 0.0)
        self.worker_cpu: dict[str, float] = defaultdict(float)
        self.client_cpu: dict[str, float] = defaultdict(float)

    @contextmanager
    def stage(self, name: str, total: int = 1) -> Iterator[Callable[[int], None]]:
        self.current = name
        workers, own = self.meter()
        try:
            with super().stage(name, total) as advance:
                yield advance
        finally:
            workers_after, own_after = self.meter()
            self.worker_cpu[name] += workers_after - workers
            self.client_cpu[name] += own_after - own
            self.current = "between stages"


def _rss() -> int:
    return psutil.Process().memory_info().rss


def _cpu() -> float:
    times = psutil.Process().cpu_times()
    return times.user + times.system


def cpu_meter(client: Client) -> Callable[[], tuple[float, float]]:
    """CPU seconds so far of all workers together, and of this process."""
    return lambda: (sum(client.run(_cpu).values()), _cpu())


class Memory:
    """Peak RSS per worker, per stage and of the client, sampled while the block runs.

    A worker address seen that was not there at the start means a nanny restarted a
    worker (above 95% of its memory limit, or crashed).
    """

    def __init__(self, client: Client, stages: TimedStages, every: float = 0.25) -> None:
        self.client, self.stages, self.every = client, stages, every
        self.peak: dict[str, int] = {}
        self.by_stage: dict[str, int] = defaultdict(int)
        self.client_peak = 0
        self.started_with = set(client.scheduler_info()["workers"])
        self.seen: set[str] = set(self.started_with)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.wait(self.every):
            try:
                sampled = self.client.run(_rss)
            except (OSError, CommClosedError, TimeoutError):
                continue  # a worker being restarted cannot answer; the next poll sees it
            stage = self.stages.current
            for worker, rss in sampled.items():
                self.seen.add(worker)
                self.peak[worker] = max(self.peak.get(worker, 0), rss)
                self.by_stage[stage] = max(self.by_stage[stage], rss)
            self.client_peak = max(self.client_peak, _rss())

    @property
    def restarts(self) -> int:
        return len(self.seen - self.started_with)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


# --- runs ---------------------------------------------------------------------------------


def _config(overrides: dict[str, Any], uri: str) -> Any:
    shipped = home() / "pipelines" / "train.yaml"
    return load_config(shipped if shipped.exists() else None, overrides | {"registry.tracking_uri": uri})


def scale(kind: str, n: int, workdir: Path, workers: int, limit: int, chunk: int) -> dict[str, Any]:
    """One Dask training at one size; figures only (the model is registered and left)."""
    from escpredict.scaleout import dask_engine

    data = workdir / f"{kind}-{n}"
    print(f"writing {n:,} tickets ({kind}) to {data} ...", flush=True)
    written = dask_data.write(kind, n, data, chunk)
    print(f"  {written['rows']:,} rows, {format_bytes(written['frame_bytes'])} as frames, "
          f"{format_bytes(written['disk_bytes'])} on disk", flush=True)
    cfg = _config(dask_data.overrides(kind, data) | SCALE_SETTINGS, f"sqlite:///{data / 'mlflow.db'}")
    stages = TimedStages()
    # Pausing a worker at 80% could stall LightGBM, whose workers must all train at once.
    with dask.config.set({"distributed.worker.memory.pause": 0.9}), dask_engine.connect(
        workers=workers, memory_limit=limit, silence_logs=logging.WARNING
    ) as client, Memory(client, stages) as memory:
        stages.meter = cpu_meter(client)
        began = time.perf_counter()
        result = dask_engine.run(cfg, client, stages=stages)
        wall = time.perf_counter() - began
    return {
        "kind": kind, "n": n, "workers": workers, "memory_limit": limit, "written": written,
        "wall_s": wall, "stages_s": result.timings,
        "worker_cpu_s": dict(stages.worker_cpu), "client_cpu_s": dict(stages.client_cpu),
        "peak_rss": memory.peak, "peak_rss_by_stage": dict(memory.by_stage),
        "client_peak_rss": memory.client_peak, "restarts": memory.restarts,
        "counts": result.counts, "test_auc": result.metrics["roc_auc"],
        "test_ece": result.metrics["ece"], "cpu_count": os.cpu_count(),
        **{k: v for k, v in machine().items() if k in ("commit", "date_utc")},
    }


def agree(name: str, overrides: dict[str, Any], workdir: Path, workers: int) -> dict[str, Any]:
    """The local and the Dask engine on one export with the shipped defaults."""
    from escpredict.lifecycle.train import run
    from escpredict.scaleout import dask_engine

    folder = workdir / f"agree-{name}"
    folder.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    quarantine = overrides.pop("quarantine", None)
    print(f"{name}: local engine ...", flush=True)
    local_keys = {"data.quarantine": str(folder / "local-quarantine.csv")} if quarantine else {}
    began = time.perf_counter()
    local = run(_config(overrides | local_keys, uri))
    local_s = time.perf_counter() - began
    print(f"{name}: Dask engine ({workers} workers) ...", flush=True)
    dask_keys = {"registry.model_name": "escalation-risk-dask"}
    if quarantine:
        dask_keys["data.quarantine"] = str(folder / "dask-quarantine")
    with dask_engine.connect(workers=workers) as client:
        began = time.perf_counter()
        distributed = dask_engine.run(_config(overrides | dask_keys, uri), client)
        dask_s = time.perf_counter() - began
    return {
        "name": name,
        **{f"local_{k}": local.metrics[k] for k in ("roc_auc", "ece")},
        **{f"dask_{k}": distributed.metrics[k] for k in ("roc_auc", "ece")},
        "local_counts": local.counts, "dask_counts": distributed.counts,
        **same_tickets(local.test_window, distributed.test_window),
        "local_s": local_s, "dask_s": dask_s,
        **{k: v for k, v in machine().items() if k in ("commit", "date_utc")},
    }


def same_tickets(local: pd.DataFrame, distributed: pd.DataFrame) -> dict[str, Any]:
    """Whether both engines tested the same tickets, and how far apart their probabilities
    are on them (the largest and the median absolute difference)."""
    joined = local[["ticket_id", "probability"]].merge(
        distributed[["ticket_id", "probability"]], on="ticket_id", suffixes=("_local", "_dask"))
    gap = (joined["probability_local"] - joined["probability_dask"]).abs()
    return {
        "same_test_tickets": len(joined) == len(local) == len(distributed)
        and not joined["ticket_id"].duplicated().any(),
        "max_abs_dp": float(gap.max()), "median_abs_dp": float(gap.median()),
    }


def realistic_export(n: int, workdir: Path) -> dict[str, Any]:
    """The realistic profile's event log of n tickets (one desk: a sample as generated)."""
    data = workdir / f"realistic-{n}"
    dask_data.write("events", n, data, chunk=n)
    return dask_data.overrides("events", data)


def servicenow_export(path: Path, workdir: Path) -> dict[str, Any]:
    """The complete ServiceNow log with the shipped mapping, told the copy's date format.

    The copy was saved by a spreadsheet tool (README of the data: `29/2/2016 01:16`), so
    the shipped mapping's `29-02-2016` format is swapped for it in a copy of the mapping;
    three incidents have no caller and are quarantined, as locally.
    """
    mapping = workdir / "servicenow-events-full.yaml"
    shipped = (home() / "pipelines" / "mappings" / "servicenow-events.yaml").read_text()
    mapping.write_text(shipped.replace('"%d-%m-%Y %H:%M"', '"%d/%m/%Y %H:%M"'))
    return {"data.tickets": str(path), "data.mapping": str(mapping), "data.agents": None,
            "quarantine": True}


# --- results ------------------------------------------------------------------------------


def load_results() -> dict[str, Any]:
    if RESULTS_JSON.exists():
        return json.loads(RESULTS_JSON.read_text())
    return {"agreement": [], "scale": []}


def save(results: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    results["machine"] = machine()
    RESULTS_JSON.write_text(json.dumps(results, indent=2, default=str))
    RESULTS_MD.write_text(markdown(results))
    print(RESULTS_MD.read_text())


def _replace(rows: list[dict[str, Any]], row: dict[str, Any], *keys: str) -> list[dict[str, Any]]:
    kept = [r for r in rows if any(r[k] != row[k] for k in keys)]
    return [*kept, row]


def count_differences(row: dict[str, Any]) -> list[str]:
    """The run counts (windows, rows, quarantined, ignored) on which the engines differ."""
    local, distributed = row["local_counts"], row["dask_counts"]
    return sorted(k for k in local.keys() | distributed.keys() if local.get(k) != distributed.get(k))


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets over the kept rows, in ``benchmarks.run``'s form. A target is
    judged only on the data and size it names: one not measured shows "—", never a pass
    earned at another size."""
    out = []
    agreed = {a["name"]: a for a in results["agreement"]}
    for name in AGREEMENT_SETS:
        a = agreed.get(name)
        worst = a and max(abs(a["local_roc_auc"] - a["dask_roc_auc"]), abs(a["local_ece"] - a["dask_ece"]))
        out.append(_check(f"Dask vs local engine, {name}: larger of abs Δ AUC, abs Δ ECE",
                          worst, AGREEMENT, ".4f", "≤"))
        out.append(_check(f"Dask vs local engine, {name}: test tickets or run counts that differ",
                          a and (not a["same_test_tickets"]) + len(count_differences(a)), 0, ".0f", "≤"))
        out.append(_context(f"Dask vs local engine, {name}: max abs Δ probability on the test window",
                            a and a["max_abs_dp"], ".4f"))
    events = {r["n"]: r for r in results["scale"] if r["kind"] == "events"}
    largest = events.get(MEMORY_TARGET_TICKETS)
    out.append(_check(
        f"Dask, event log of {MEMORY_TARGET_TICKETS:,} tickets on 2 workers: highest worker RSS / "
        "its limit (a restarted worker counts as over)",
        largest and (max(largest["peak_rss"].values()) / largest["memory_limit"]
                     if not largest["restarts"] else float("inf")), 1.0, ".0%", "<"))
    for kind, (small, large) in GROWTH_SIZES.items():
        sized = [r for r in results["scale"] if r["kind"] == kind and r["n"] in (small, large)]
        judged = dask_sizing.growth(sized) if len(sized) == 2 else []
        out.append({"target": f"Dask, {kind}: every stage's CPU seconds from {small:,} to {large:,} "
                              "tickets (dask_scale.md)",
                    "limit": f"≤ {training.GROWTH_TOLERANCE}× n log n", "measured": None, "fmt": "",
                    "ok": all(g["ok"] for g in judged) if judged else None})
    return out


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        "# Dask engine: agreement with the local engine, scale, sizing", "",
        (f"Written {m['date_utc']} at {m['commit']} · {m['cpu']} · {m['cores']} cores · "
         f"{m['memory_gib']} GiB · each row measured at the commit it names"),
        "", "## Targets (issue 20)", "", *targets_table(targets(results)),
        "", "## Same answers as the local engine (test window, shipped defaults)", "",
        ("| data set | train / valid / test (local) | same test tickets, counts | AUC local "
         "| AUC dask | abs Δ AUC | ECE local | ECE dask | abs Δ ECE | max / median abs Δp "
         "| within 0.005 | wall local / dask (s) | commit |"),
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for a in results["agreement"]:
        d_auc, d_ece = abs(a["local_roc_auc"] - a["dask_roc_auc"]), abs(a["local_ece"] - a["dask_ece"])
        ok = "✅" if max(d_auc, d_ece) <= AGREEMENT else "❌"
        c, differ = a["local_counts"], count_differences(a)
        same = ("yes" if a["same_test_tickets"] else "no") + ", " + (
            "all equal" if not differ else "differ: " + ", ".join(differ))
        lines.append(
            f"| {a['name']} | {c['n_train']:,} / {c['n_valid']:,} / {c['n_test']:,} | {same} | "
            f"{a['local_roc_auc']:.4f} | {a['dask_roc_auc']:.4f} | {d_auc:.4f} | "
            f"{a['local_ece']:.4f} | {a['dask_ece']:.4f} | {d_ece:.4f} | "
            f"{a['max_abs_dp']:.4f} / {a['median_abs_dp']:.4f} | {ok} | "
            f"{a['local_s']:.0f} / {a['dask_s']:.0f} | {a.get('commit', '')} |")
    runs = sorted(results["scale"], key=lambda r: (r["kind"], r["n"]))
    stages = list(dict.fromkeys(s for r in runs for s in r["stages_s"]))
    lines += [
        "", "## Scale: wall time per stage (s) on a LocalCluster of this machine", "",
        "| export | tickets | rows | frame / worker limit | " + " | ".join(stages) + " | total | commit |",
        "|---" * (len(stages) + 6) + "|",
    ]
    for r in runs:
        w = r["written"]
        ratio = f"{format_bytes(w['frame_bytes'])} / {r['workers']} × {format_bytes(r['memory_limit'])}"
        cells = " | ".join(f"{r['stages_s'].get(s, 0):.1f}" for s in stages)
        lines.append(f"| {r['kind']} | {r['n']:,} | {w['rows']:,} | {ratio} | {cells} | {r['wall_s']:.0f} | {r.get('commit', '')} |")
    lines += ["", "## Peak memory per worker (RSS), and where", "",
              "| export | tickets | per worker | of its limit | highest stage | client | restarts |",
              "|---|---|---|---|---|---|---|"]
    for r in runs:
        peaks = ", ".join(format_bytes(v) for _, v in sorted(r["peak_rss"].items()))
        top = max(r["peak_rss_by_stage"], key=r["peak_rss_by_stage"].get)
        share = max(r["peak_rss"].values()) / r["memory_limit"]
        lines.append(f"| {r['kind']} | {r['n']:,} | {peaks} | {share:.0%} | {top} | "
                     f"{format_bytes(r['client_peak_rss'])} | {r['restarts']} |")
    lines += ["", "## CPU seconds per stage (workers + client)", "",
              "| export | tickets | " + " | ".join(stages) + " | total | of which client |",
              "|---" * (len(stages) + 4) + "|"]
    for r in runs:
        spent = dask_sizing.cpu(r)
        cells = " | ".join(f"{spent.get(s, 0):.1f}" for s in stages)
        lines.append(f"| {r['kind']} | {r['n']:,} | {cells} | {sum(spent.values()):.0f} | "
                     f"{sum(r['client_cpu_s'].values()):.0f} |")
    lines += ["", ("## Growth per stage: CPU seconds (judged: at most 1.25× the n log n ratio; "
                   f"stages under {training.MIN_GROWTH_SECONDS} s not judged), wall time beside"), "",
              "| export | stage | sizes | CPU × | CPU exponent | n log n × | wall exponent | |",
              "|---|---|---|---|---|---|---|---|"]
    for g in dask_sizing.growth(runs):
        mark = "✅" if g["ok"] else "❌"
        lines.append(f"| {g['kind']} | {g['stage']} | {g['from_n']:,} → {g['to_n']:,} | "
                     f"{g['time_ratio']:.2f} | {g['exponent']:.2f} | {g['nlogn_ratio']:.2f} | "
                     f"{g['wall_exponent']:.2f} | {mark} |")
    lines += ["", dask_sizing.markdown(runs)]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    agreeing = commands.add_parser("agree")
    agreeing.add_argument("--realistic", type=int, default=100_000, help="tickets (0: skip)")
    agreeing.add_argument("--servicenow-sample", type=Path, default=None,
                          help="the ServiceNow sample (tests/data), as it is shipped")
    agreeing.add_argument("--servicenow", type=Path, default=None,
                          help="the complete ServiceNow log, unpacked (.csv)")
    scaling = commands.add_parser("scale")
    scaling.add_argument("--kind", choices=dask_data.KINDS, required=True)
    scaling.add_argument("--tickets", type=int, required=True)
    scaling.add_argument("--memory-limit", default="3GiB", help="per worker")
    scaling.add_argument("--chunk", type=int, default=dask_data.CHUNK, help="tickets per desk")
    commands.add_parser("table")
    for command in (agreeing, scaling):
        command.add_argument("--workers", type=int, default=2)
        command.add_argument("--workdir", type=Path, default=None, help="keep the data here")
    args = parser.parse_args(argv)

    results = load_results()
    if args.command == "table":
        save(results)
        return
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="escpredict-dask-"))
    workdir.mkdir(parents=True, exist_ok=True)
    if args.command == "scale":
        row = scale(args.kind, args.tickets, workdir, args.workers,
                    parse_bytes(args.memory_limit), args.chunk)
        results["scale"] = _replace(results["scale"], row, "kind", "n")
    else:
        sets = {}
        if args.realistic:
            sets[f"realistic events {args.realistic:,}"] = realistic_export(args.realistic, workdir)
        if args.servicenow_sample:
            sets["ServiceNow sample"] = {"data.tickets": str(args.servicenow_sample),
                                         "data.mapping": "servicenow-events", "data.agents": None,
                                         "quarantine": True}
        if args.servicenow:
            sets["ServiceNow full log"] = servicenow_export(args.servicenow, workdir)
        for name, overrides in sets.items():
            row = agree(name, overrides, workdir, args.workers)
            results["agreement"] = _replace(results["agreement"], row, "name")
    save(results)


if __name__ == "__main__":
    main()
