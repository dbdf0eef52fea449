"""The plain reference: LightGBM with native categoricals on the raw at-creation fields.

No text, no history, no feature engineering: what anyone gets in an afternoon by handing
the export's columns to LightGBM. The product's model has to beat the logistic baseline *and*
match this on the same tickets and the same time split, or its features are not earning
their keep. It is a yardstick here, never part of the product.
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from escpredict.config import TrainConfig
from escpredict.contract import LABEL, TICKET_FIELDS
from escpredict.ingest.mapping import load_mapping
from escpredict.lifecycle.train import Prepared, time_split

#: Ids and free text are left out: ids are history's job, text the n-grams'.
_NOT_RAW = {"ticket_id", "customer_id", "agent_id", "subject", "description"}
CATEGORICAL: tuple[str, ...] = tuple(
    f.name for f in TICKET_FIELDS
    if f.known_at_creation and f.kind == "str" and f.name not in _NOT_RAW
)
#: Extra mapping features of these kinds are categorical too; text ones are left out.
_CATEGORY_KINDS = ("categorical", "boolean")
PARAMS = {
    "objective": "binary",
    "metric": "auc",
    "learning_rate": 0.05,
    "num_leaves": 31,
    "verbose": -1,
    "num_threads": 2,
    "seed": 7,
}
ROUNDS, EARLY_STOPPING = 1000, 50


def raw_fields(prepared: Prepared, extras: dict[str, str]) -> pd.DataFrame:
    """The labelled tickets' raw at-creation fields (with the mapping's extra features but
    their free text), creation time and label."""
    tickets = prepared.tickets.loc[prepared.frame.index]
    created = prepared.frame["created_at"]
    categorical = [*CATEGORICAL, *(n for n, kind in extras.items() if kind in _CATEGORY_KINDS)]
    numeric = [n for n, kind in extras.items() if kind == "numeric"]
    return pd.DataFrame(
        {
            **{name: tickets[name].astype("str") for name in categorical},
            **{name: tickets[name].astype("float64") for name in numeric},
            "initial_tier": pd.to_numeric(tickets["initial_tier"]).astype("float64"),
            "hour_of_day": created.dt.hour.astype("float64"),
            "day_of_week": created.dt.day_of_week.astype("float64"),
            "created_at": created,
            LABEL: prepared.frame[LABEL],
        },
        index=prepared.frame.index,
    )


def _matrix(part: pd.DataFrame, levels: dict[str, pd.Index]) -> pd.DataFrame:
    """Categoricals share the training window's levels (unseen ones become missing)."""
    cats = {name: pd.Categorical(part[name], categories=known) for name, known in levels.items()}
    numbers = [c for c in part.columns if c not in levels and c not in ("created_at", LABEL)]
    return pd.DataFrame(cats, index=part.index).join(part[numbers])


def reference_auc(prepared: Prepared, cfg: TrainConfig) -> float:
    """Test ROC AUC of the plain reference on the pipeline's own time split."""
    frame = raw_fields(prepared, load_mapping(cfg.data.mapping).extra_features())
    split = time_split(frame, cfg.split.valid_fraction, cfg.split.test_fraction)
    levels = {
        name: pd.Index(split.train[name].dropna().unique())
        for name in frame.columns if frame[name].dtype == "str"
    }
    x_train, x_valid, x_test = (_matrix(p, levels) for p in (split.train, split.valid, split.test))
    train_set = lgb.Dataset(x_train, label=split.train[LABEL].to_numpy(int))
    valid_set = lgb.Dataset(x_valid, label=split.valid[LABEL].to_numpy(int), reference=train_set)
    booster = lgb.train(
        PARAMS, train_set, num_boost_round=ROUNDS, valid_sets=[valid_set],
        callbacks=[lgb.early_stopping(EARLY_STOPPING, verbose=False)],
    )
    scores = booster.predict(x_test, num_iteration=booster.best_iteration)
    return float(roc_auc_score(split.test[LABEL].to_numpy(int), np.asarray(scores)))
