"""Time split: train on the past, validate on the next slice, test on the most recent one.

Every engine and the dry run (``check``) cut windows here, so a ticket lands in the same
window whichever path looks at it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from escpredict.contract import LABEL


class TrainingDataError(ValueError):
    """The data cannot train a model (e.g. a window holds a single class)."""


@dataclass
class Split:
    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame

    def bounds(self) -> dict[str, str]:
        return {
            f"{name}_{edge}": str(getattr(part["created_at"], edge)())
            for name, part in (("train", self.train), ("valid", self.valid), ("test", self.test))
            for edge in ("min", "max")
        }


def time_split(frame: pd.DataFrame, valid_fraction: float, test_fraction: float) -> Split:
    """Train on the past, validate on the next slice, test on the most recent one.

    Cut points are creation-time quantiles, so tickets created at the same instant never
    straddle a boundary.
    """
    masks = window_masks(frame["created_at"], valid_fraction, test_fraction)
    parts = Split(**{name: frame[mask] for name, mask in masks.items()})
    for name in ("train", "valid", "test"):
        labels = getattr(parts, name)[LABEL]
        check_both_classes(name, len(labels), int(labels.sum()))
    return parts


def window_masks(
    created: pd.Series, valid_fraction: float, test_fraction: float
) -> dict[str, pd.Series]:
    """Which tickets fall in the train, valid and test windows (``time_split``'s cuts).

    Public so that a dry run reports per-window rates with the very cuts training uses.
    """
    valid_start = created.quantile(1 - valid_fraction - test_fraction)
    test_start = created.quantile(1 - test_fraction)
    return {
        "train": created < valid_start,
        "valid": (created >= valid_start) & (created < test_start),
        "test": created >= test_start,
    }


def check_both_classes(window: str, n: int, n_escalated: int) -> None:
    """A window with a single class can neither train, calibrate nor be evaluated."""
    if 0 < n_escalated < n:
        return
    only = "n/a" if n == 0 else n_escalated > 0
    raise TrainingDataError(
        f"the {window} window ({n} tickets) holds only one class (escalated={only}); "
        "widen the data or change split fractions"
    )
