"""Dask engine at scale: train on N sample tickets on a LocalCluster whose workers each get
less memory than the data set, and print wall time per stage and peak memory per worker.

    python -m benchmarks.dask_scale --tickets 5000000 --memory-limit 1.5GiB

Not part of the test suite. The data is written as a folder of Parquet files (one per
``--rows-per-file`` tickets), the form ``escpredict train --engine dask`` reads. Peak memory
is each worker process's RSS, sampled every half second.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Self

import dask
import psutil
from dask.distributed import Client
from dask.utils import format_bytes, parse_bytes

from escpredict.config import load_config
from escpredict.samples import default as sample_data
from escpredict.scaleout import dask_engine


def write_partitioned(n: int, out: Path, rows_per_file: int, seed: int = 0) -> int:
    """Sample tickets as out/tickets/part-*.parquet plus out/agents.parquet; in-memory bytes."""
    sample = sample_data.generate(n, seed=seed)
    (out / "tickets").mkdir(parents=True)
    for i, start in enumerate(range(0, n, rows_per_file)):
        chunk = sample.tickets.iloc[start : start + rows_per_file]
        chunk.to_parquet(out / "tickets" / f"part-{i:04d}.parquet", index=False)
    sample.agents.to_parquet(out / "agents.parquet", index=False)
    return int(sample.tickets.memory_usage(deep=True).sum())


def _rss() -> int:
    return psutil.Process().memory_info().rss


class PeakMemory:
    """Highest RSS seen per worker while the block runs (polled from the client)."""

    def __init__(self, client: Client, every: float = 0.5) -> None:
        self.client, self.every = client, every
        self.peak: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.wait(self.every):
            for worker, rss in self.client.run(_rss).items():
                self.peak[worker] = max(self.peak.get(worker, 0), rss)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=5_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--memory-limit", default="1.5GiB", help="per worker")
    parser.add_argument("--rows-per-file", type=int, default=250_000)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="escpredict-dask-"))
    started = time.perf_counter()
    data_bytes = write_partitioned(args.tickets, workdir / "data", args.rows_per_file)
    on_disk = sum(f.stat().st_size for f in (workdir / "data" / "tickets").iterdir())
    print(f"{args.tickets:,} tickets: {format_bytes(data_bytes)} as pandas frame, "
          f"{format_bytes(on_disk)} as Parquet; written in {time.perf_counter() - started:.0f}s")
    limit = parse_bytes(args.memory_limit)
    below = "below" if limit < data_bytes else "NOT below"
    print(f"{args.workers} workers x {format_bytes(limit)} memory limit, "
          f"each {below} the data's {format_bytes(data_bytes)}")
    cfg = load_config(
        None,
        {
            "data.tickets": str(workdir / "data" / "tickets"),
            "data.agents": str(workdir / "data" / "agents.parquet"),
            # Word n-grams only: character n-grams bring most of the defaults' 194 non-zeros
            # per ticket and of the transform time; the engine does not depend on the choice.
            "features.word_max_features": 1000,
            "features.char_max_features": 0,
            "model.num_boost_round": 200,
            "model.early_stopping_rounds": 20,
            "registry.tracking_uri": f"sqlite:///{workdir / 'mlflow.db'}",
        },
    )
    # Pausing a worker at 80% could stall LightGBM, whose workers must all train at once.
    with dask.config.set({"distributed.worker.memory.pause": 0.9}), dask_engine.connect(
        workers=args.workers, memory_limit=limit
    ) as client:
        began = time.perf_counter()
        with PeakMemory(client) as memory:
            result = dask_engine.run(cfg, client)
        wall = time.perf_counter() - began

    print(f"\nwall time {wall:.0f}s  (test AUC {result.metrics['roc_auc']:.4f}, "
          f"{result.counts['n_train']:,} training tickets)")
    for stage, seconds in result.timings.items():
        print(f"  {stage:<12} {seconds:8.1f}s")
    print("peak RSS per worker:")
    for worker, peak in sorted(memory.peak.items()):
        print(f"  {worker}  {format_bytes(peak)}  ({peak / limit:.0%} of its limit)")
    if args.workdir is None:
        shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
