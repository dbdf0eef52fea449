"""The well-specified model: what the realistic sample's size lets any learner reach.

The oracle AUC uses every ticket's true probability, including effects no learner can know
from a few tickets: each of ~400 products, ~80 groups, ~150 agents and thousands of
customers carries its own log-odds, and the generator scales their number with the sample,
so the tickets per level stay the same at any size. How close a model can come is limited
by estimating those effects, not by how it is built.

This yardstick is told the generator's formula (``sample_realistic._draw_tickets``): one
indicator per level of every field the true log-odds read (agent and customer included),
its two interactions (product × initial tier, group × high impact), the tenure curve, the
drift in time, night and weekend hours, and the words of the text. A logistic regression on
exactly those terms, its L2 penalty chosen on the validation window, is the best-specified
model there is for that truth; its test AUC over the oracle's says what fraction the data
supports. It is a benchmark yardstick, never part of the product, and it reads the sample
only through the same prepared tickets and time split as the product.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.preprocessing import OneHotEncoder

from escpredict.config import TrainConfig
from escpredict.contract import LABEL
from escpredict.lifecycle.train import Prepared, time_split

#: Fields whose every level has its own effect in the generator's log-odds.
LEVELS = (
    "product", "category", "initial_tier", "initial_queue", "impact", "urgency", "location",
    "business_unit", "agent_id", "customer_id",
)
#: The generator's tenure curve: 0.7 * exp(-tenure_days / 45).
TENURE_DAYS = 45.0
C_GRID = (0.03, 0.1, 0.3, 1.0)


def _terms(part: pd.DataFrame) -> pd.DataFrame:
    """Every level field as text, plus the two interactions and the hour flags."""
    terms = part[list(LEVELS)].astype("str")
    high_impact = part["impact"].isin(["High", "Major"]).astype("str")
    hour, weekday = part["created_at"].dt.hour, part["created_at"].dt.dayofweek
    return terms.assign(
        product_by_tier=terms["product"] + "|" + terms["initial_tier"],
        group_by_impact=terms["initial_queue"] + "|" + high_impact,
        night=((hour < 6) | (hour >= 22)).astype("str"),
        weekend=(weekday >= 5).astype("str"),
    )


def _numbers(part: pd.DataFrame, start: pd.Timestamp, span_days: float) -> np.ndarray:
    """Tenure curve and the share of the training window elapsed (the drift)."""
    tenure = part["agent_tenure_days"].astype("float64").fillna(np.inf).to_numpy()
    elapsed = (part["created_at"] - start).dt.total_seconds().to_numpy() / 86_400 / span_days
    return np.column_stack([np.exp(-tenure / TENURE_DAYS), elapsed])


def _texts(part: pd.DataFrame) -> list[str]:
    return (part["subject"].fillna("") + " " + part["description"].fillna("")).tolist()


def ceiling_auc(prepared: Prepared, cfg: TrainConfig) -> float:
    """Test ROC AUC of the well-specified logistic model on the pipeline's time split."""
    split = time_split(prepared.frame, cfg.split.valid_fraction, cfg.split.test_fraction)
    start = split.train["created_at"].min()
    span_days = (split.train["created_at"].max() - start).total_seconds() / 86_400
    levels = OneHotEncoder(handle_unknown="ignore").fit(_terms(split.train))
    words = CountVectorizer(ngram_range=(1, 2), min_df=3, binary=True).fit(_texts(split.train))
    x_train, x_valid, x_test = (
        sp.hstack(
            [levels.transform(_terms(p)), _numbers(p, start, span_days), words.transform(_texts(p))],
            format="csr",
        )
        for p in (split.train, split.valid, split.test)
    )
    y_train, y_valid = (p[LABEL].to_numpy(int) for p in (split.train, split.valid))
    fits = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for strength in C_GRID:
            glm = LogisticRegression(C=strength, max_iter=2_000).fit(x_train, y_train)
            fits.append((log_loss(y_valid, glm.predict_proba(x_valid)[:, 1]), strength, glm))
    _, _, best = min(fits, key=lambda fit: fit[0])
    return float(roc_auc_score(split.test[LABEL].to_numpy(int), best.predict_proba(x_test)[:, 1]))
