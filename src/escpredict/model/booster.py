"""The booster: LightGBM's parameters for a data size, and one early-stopped fit.

Training and the structure search (``search.py``) fit boosters the same way, so both live
here: a candidate judged on past windows is trained exactly as the shipped model would be.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import lightgbm as lgb
import numpy as np
import scipy.sparse as sp

from escpredict.config import ModelConfig
from escpredict.model.offsets import Offset, total


def sized(n_train: int) -> dict[str, Any]:
    """LightGBM's leaf and categorical sizes for `n_train` training rows.

    Fixed leaf sizes fit one data size only: 40 tickets per leaf suits 20k+ training rows
    but on a few thousand (a two-month export) leaves no room to split on a product seen
    ten times. Leaf and categorical-group minimums grow with the data (about 0.2% and 0.1%
    of rows) within bounds; fewer leaves for small data keep trees from memorising it.
    """
    return {
        "num_leaves": int(np.clip(n_train // 250, 7, 31)),
        "min_child_samples": int(np.clip(n_train // 500, 5, 40)),
        # Native categoricals: a group of levels needs this many rows, and its rate is
        # shrunk towards the parent's by cat_smooth pseudo-rows (LightGBM's defaults 100/10
        # are tuned for large data).
        "min_data_per_group": int(np.clip(n_train // 1000, 5, 100)),
        "cat_smooth": 10.0,
        "cat_l2": 10.0,
        "max_cat_to_onehot": 4,
    }


def booster_params(model: ModelConfig, n_train: int) -> dict[str, Any]:
    """LightGBM parameters for `n_train` training rows: ``sized`` ones, then the keys set in
    `model.params`, which win."""
    return {**sized(n_train), **model.params, "metric": "auc"}


def train_booster(
    params: dict[str, Any], x_train: sp.csr_matrix, y_train: np.ndarray,
    x_valid: sp.csr_matrix, y_valid: np.ndarray, rounds: int, patience: int,
    offsets: Sequence[Offset] = (), categorical: list[int] | None = None,
    callbacks: Sequence[Callable[[Any], None]] = (),
) -> lgb.Booster:
    """LightGBM with early stopping on the validation window, starting from the offsets.

    `categorical` lists the matrix's native categorical columns (integer level codes).
    """
    categorical_feature: Any = categorical or "auto"
    train_set = lgb.Dataset(
        x_train, label=y_train, init_score=total(offsets, x_train), free_raw_data=True,
        categorical_feature=categorical_feature,
    )
    valid_set = lgb.Dataset(
        x_valid, label=y_valid, init_score=total(offsets, x_valid), reference=train_set,
        categorical_feature=categorical_feature,
    )
    return lgb.train(
        params,
        train_set,
        num_boost_round=rounds,
        valid_sets=[valid_set],
        callbacks=[lgb.early_stopping(patience, verbose=False), *callbacks],
    )
