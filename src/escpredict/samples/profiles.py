"""The sample profiles by name: generate one and write it, reporting progress as stages.

The CLI's ``sample-data`` and the demo both write samples through ``write_profile``, so the
two never differ in what they generate or how they show it.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol

from escpredict.samples import default, realistic

PROFILES = ("default", "realistic")


class StageTimer(Protocol):
    """What ``write_profile`` needs of a progress display (``lifecycle.stages.Stages``)."""

    def stage(self, name: str, total: int = 1) -> AbstractContextManager[Callable[[int], None]]:
        ...


def write_profile(
    profile: str, n: int, seed: int, out: Path, fmt: str, stages: StageTimer,
    days: int | None = None,
) -> dict[str, Path]:
    """Generate ``n`` tickets of ``profile`` and write them under ``out``; the files by name."""
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {', '.join(PROFILES)}, got {profile!r}")
    module = realistic if profile == "realistic" else default
    window = {} if days is None else {"days": days}
    with stages.stage("generate", total=module.PROGRESS_STEPS) as advance:
        sample = module.generate(n, seed=seed, progress=lambda _done: advance(1), **window)
    with stages.stage("write"):
        return module.write(sample, out, fmt)
