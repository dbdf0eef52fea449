"""Leakage guard: an input field that on its own almost separates the labels.

A column known only once the outcome is (a final group, a resolution code, a process
variant computed from the whole trace, a flag copied from the label) makes a model look
excellent in training and useless when a ticket arrives. Nothing at creation predicts
escalation that well in real support data, so a field whose single-field ROC AUC on the
validation window reaches ``THRESHOLD`` is named in ``check`` and ``train`` for a person to
look at. Categoricals score by their level's escalation rate in the training window (a
level training never saw scores the window's rate, so an id-like column cannot look
perfect); numbers by their value, a missing value below every other. Either direction
counts. Text is not judged (one field's words need a model to score), nor are ids.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from escpredict.contract import CATEGORY_FIELDS

#: Single-field ROC AUC (either direction) from which a field is suspected of leaking.
THRESHOLD = 0.95
#: Tickets of each class the validation window needs before a field is judged: on a
#: handful, a field with many levels separates them by chance.
MIN_CLASS = 10
_MISSING = "\0missing"


@dataclass(frozen=True)
class Suspect:
    field: str
    auc: float  # single-field ROC AUC on the validation window, in [0.5, 1]

    def describe(self) -> str:
        return f"{self.field} (AUC {self.auc:.3f})"


def input_fields(extras: Mapping[str, str]) -> dict[str, str]:
    """The at-creation fields judged: name -> "categorical" or "numeric". Extra features a
    mapping declares are judged by their kind (yes/no as categories; text is not)."""
    kinds = {"categorical": "categorical", "boolean": "categorical", "numeric": "numeric"}
    return {
        **dict.fromkeys(CATEGORY_FIELDS, "categorical"),
        "initial_tier": "numeric",
        **{name: kinds[kind] for name, kind in extras.items() if kind in kinds},
    }


def field_auc(
    kind: str, train: pd.Series, y_train: np.ndarray, valid: pd.Series, y_valid: np.ndarray
) -> float:
    """How well one field alone ranks the validation labels (max of AUC and 1 - AUC)."""
    if kind == "categorical":
        levels = train.astype("str").fillna(_MISSING)
        rates = pd.Series(y_train, index=levels.index, dtype="float64").groupby(levels).mean()
        scores = valid.astype("str").fillna(_MISSING).map(rates).fillna(float(np.mean(y_train)))
    else:
        values = pd.to_numeric(valid, errors="coerce").astype("float64")
        floor = values.min() - 1 if values.notna().any() else 0.0
        scores = values.fillna(floor)
    auc = float(roc_auc_score(y_valid, scores.to_numpy(dtype="float64")))
    return max(auc, 1.0 - auc)


def suspects(
    train: pd.DataFrame, y_train: np.ndarray, valid: pd.DataFrame, y_valid: np.ndarray,
    fields: Mapping[str, str], threshold: float = THRESHOLD,
) -> list[Suspect]:
    """Fields of `fields` (name -> kind) whose single-field AUC reaches `threshold`, worst
    first. Fields the frames lack or leave empty are not judged, nor is anything when the
    validation window holds fewer than MIN_CLASS tickets of a class."""
    positives = int(np.sum(y_valid))
    if min(positives, len(y_valid) - positives) < MIN_CLASS or len(np.unique(y_train)) < 2:
        return []
    found = []
    for name, kind in fields.items():
        if name not in train.columns or name not in valid.columns or train[name].isna().all():
            continue
        auc = field_auc(kind, train[name], np.asarray(y_train), valid[name], np.asarray(y_valid))
        if auc >= threshold:
            found.append(Suspect(name, auc))
    return sorted(found, key=lambda s: -s.auc)


def describe(found: list[Suspect]) -> str:
    """The warning ``check`` and ``train`` print (found is not empty)."""
    names = ", ".join(s.describe() for s in found)
    if len(found) == 1:
        return f"possible leakage: field {names} alone almost separates the validation labels"
    return f"possible leakage: fields {names} each alone almost separate the validation labels"


#: What to do about it, beside the warning.
CAUSE = (
    "is it known when a ticket arrives, or only once the outcome is (a final group, a "
    "resolution code, a copy of the label)? If the latter, remove it from the mapping's features"
)
