"""The plain reference: LightGBM with native categoricals on the raw at-creation fields.

No text, no history, no offsets, no pooling, LightGBM's own defaults but for 31 leaves at
rate 0.05 with early stopping: what anyone gets in an afternoon by handing an export's
columns to LightGBM. Every training run fits it beside the logistic baseline, on the same
tickets and windows; a booster that does not beat it on the validation window is not
earning its features (``lifecycle.registry.Yardstick``). It is a yardstick, never served.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd

from escpredict.contract import CATEGORY_FIELDS, LABEL

#: Extra mapping features of these kinds are categorical too; text ones are left out.
_CATEGORY_KINDS = ("categorical", "boolean")
#: Everything else is LightGBM's default: min_child_samples 20, min_data_per_group 100,
#: cat_smooth 10, no bagging, no feature sampling, no L2.
PARAMS = {
    "objective": "binary",
    "metric": "auc",
    "learning_rate": 0.05,
    "num_leaves": 31,
    "verbose": -1,
    "num_threads": 2,
    "seed": 7,
}
ROUNDS, PATIENCE = 1000, 50
#: A yardstick's cost is capped, as the logistic baseline's is: at most this many training
#: rows and validation rows for early stopping (evenly spaced over each window). A few dozen
#: raw columns settle long before that.
MAX_ROWS = 100_000


def raw_fields(frame: pd.DataFrame, extras: Mapping[str, str]) -> pd.DataFrame:
    """The raw at-creation fields of model-input rows: categoricals as text (no ids: they
    are history's job), extras but free text, initial tier, hour and weekday of creation."""
    categorical = [*CATEGORY_FIELDS, *(n for n, kind in extras.items() if kind in _CATEGORY_KINDS)]
    numeric = [n for n, kind in extras.items() if kind == "numeric"]
    created = frame["created_at"]
    return pd.DataFrame(
        {
            **{name: frame[name].astype("str") for name in categorical},
            **{name: pd.to_numeric(frame[name]).astype("float64") for name in numeric},
            "initial_tier": pd.to_numeric(frame["initial_tier"]).astype("float64"),
            "hour_of_day": created.dt.hour.astype("float64"),
            "day_of_week": created.dt.day_of_week.astype("float64"),
        },
        index=frame.index,
    )


def _matrix(frame: pd.DataFrame, extras: Mapping[str, str], levels: dict[str, pd.Index]) -> pd.DataFrame:
    """Categoricals share the training window's levels (unseen ones become missing)."""
    fields = raw_fields(frame, extras)
    for name, known in levels.items():
        values = fields[name]
        fields[name] = pd.Categorical(values.where(values.isin(known)), categories=known)
    return fields


@dataclass
class PlainReference:
    """The fitted reference: a booster over ``raw_fields`` with the training window's levels."""

    booster: lgb.Booster
    extras: dict[str, str]
    #: Per categorical field, the levels training saw (others are missing to the booster).
    levels: dict[str, pd.Index]

    @classmethod
    def fit(
        cls, train: pd.DataFrame, valid: pd.DataFrame, extras: Mapping[str, str],
        max_rows: int = MAX_ROWS,
    ) -> PlainReference:
        """Fit on the training window, early stopping on the validation window."""
        sample, stopping = (part.iloc[:: -(-len(part) // max_rows)] for part in (train, valid))
        fields = raw_fields(sample, extras)
        levels = {
            name: pd.Index(fields[name].dropna().unique())
            for name in fields.columns if fields[name].dtype == "str"
        }
        train_set = lgb.Dataset(
            _matrix(sample, extras, levels), label=sample[LABEL].to_numpy(int),
            free_raw_data=True,
        )
        valid_set = lgb.Dataset(
            _matrix(stopping, extras, levels), label=stopping[LABEL].to_numpy(int),
            reference=train_set,
        )
        booster = lgb.train(
            PARAMS, train_set, num_boost_round=ROUNDS, valid_sets=[valid_set],
            callbacks=[lgb.early_stopping(PATIENCE, verbose=False)],
        )
        return cls(booster, dict(extras), levels)

    def raw(self, frame: pd.DataFrame) -> np.ndarray:
        """Log-odds of every row of `frame` (model-input columns) at the best iteration."""
        scores = self.booster.predict(
            _matrix(frame, self.extras, self.levels), raw_score=True,
            num_iteration=self.booster.best_iteration,
        )
        return np.asarray(scores, dtype=np.float64)
