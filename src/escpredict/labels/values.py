"""One raw value or column as the label, history and open-ticket code read it.

Missing or not (``None``, NaN, NaT, ``pd.NA``; never an empty string), and date-times as UTC
epoch nanoseconds, the unit every point-in-time comparison is made in.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

#: How NaT looks as int64 nanoseconds.
NAT_NS = np.iinfo(np.int64).min


def missing(value: Any) -> bool:
    """True for None and NaN-likes; a string (even empty) is a value."""
    return value is None or (not isinstance(value, str) and bool(pd.isna(value)))


def epoch_ns(values: pd.Series) -> np.ndarray:
    """UTC epoch nanoseconds of a datetime column (naive times are UTC); NaT becomes NAT_NS."""
    stamps = pd.to_datetime(values, utc=True).dt.as_unit("ns")
    return stamps.to_numpy(dtype="datetime64[ns]").view(np.int64)
