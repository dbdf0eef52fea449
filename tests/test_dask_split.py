"""The Dask engine cuts the time windows exactly where the local engine does."""

from __future__ import annotations

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest

from escpredict.scaleout.quantiles import exact_quantiles

QS = [1 - 0.15 - 0.15, 1 - 0.15, 0.0, 0.5, 1.0]


@pytest.mark.parametrize(
    ("n", "span_hours", "parts"), [(1, 1, 1), (2, 1, 2), (997, 2, 5), (5000, 24 * 90, 7)]
)
def test_exact_quantiles_equal_pandas_on_the_gathered_column(n: int, span_hours: int, parts: int) -> None:
    rng = np.random.default_rng(n)
    start = pd.Timestamp("2024-03-01", tz="UTC").value
    created = pd.Series(pd.to_datetime(start + rng.integers(0, span_hours * 3600 * 10**9, n), utc=True))
    created = pd.concat([created, created.iloc[: n // 3]])  # tickets created at one instant
    shuffled = dd.from_pandas(created.sample(frac=1, random_state=1), npartitions=parts)
    assert exact_quantiles(shuffled, QS) == [created.quantile(q) for q in QS]
