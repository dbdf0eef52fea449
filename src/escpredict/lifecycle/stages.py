"""Named, timed pipeline stages shown as rich progress rows.

The training pipeline reports wall time per stage to MLflow and the benchmarks, and shows
progress on the long ones; one small class does both so the two never disagree.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Self

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn


class Stages:
    def __init__(self, console: Console | None = None, show: bool = True) -> None:
        self.timings: dict[str, float] = {}
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description:<14}"),
            BarColumn(),
            TextColumn("{task.completed:>6.0f}/{task.total:<6.0f}"),
            TimeElapsedColumn(),
            console=console,
            disable=not show,
            transient=False,
        )

    def __enter__(self) -> Self:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    @contextmanager
    def stage(self, name: str, total: int = 1) -> Iterator[Callable[[int], None]]:
        """Time ``name``; yields ``advance(n)`` for stages that can report steps."""
        task = self._progress.add_task(name, total=total)
        start = time.perf_counter()
        try:
            yield lambda n=1: self._progress.advance(task, n)
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start
            self._progress.update(task, completed=total)
