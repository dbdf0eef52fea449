"""What drives escalations: SHAP values grouped by input field, globally, by group and per cell.

The model's columns are one-hot levels and text n-grams; a column such as "priority = low"
carries a SHAP value on *every* ticket, most of which are not low priority, so listing it
as a driver reads as if they were. SHAP values add up, so the report sums each input
field's columns (``escpredict.model.explain.group_contributions`` over
``FeatureBuilder.feature_sources``) and names the field: "priority", "ticket text",
"agent escalation rate (smoothed)".

Exact TreeSHAP costs a few milliseconds per ticket, so the report computes it on a random
sample of tickets (plus the escalated tickets of flagged cells) rather than on all of
them; every function here works on whatever rows it is given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from escpredict.model.escalation import EscalationModel
from escpredict.model.explain import group_contributions
from escpredict.model.features import TEXT_SOURCE, FeatureBuilder

_CHUNK = 500
#: Name of the group of every text n-gram column.
TEXT_NAME = "ticket text"
#: A cell's commonest value of a field is named in its finding above this share of tickets.
MOSTLY = 0.5
OTHER = "other"
#: Standard errors by which a cell's mean SHAP must exceed the usual one to name the field.
SE_MARGIN = 2.0


@dataclass(frozen=True)
class ShapSample:
    """SHAP values (log-odds) per input field for some tickets; rows align with ``index``."""

    index: pd.Index
    values: np.ndarray  # (rows, fields), expected-value column removed
    data: np.ndarray  # (rows, fields) the field's value when it is one numeric column, else NaN
    base: np.ndarray  # (rows,) the model's expected log-odds
    sources: list[str]  # the field of each column of ``values`` (FeatureBuilder.feature_sources)
    names: list[str]  # its display name


def field_names(builder: FeatureBuilder, sources: Sequence[str]) -> list[str]:
    """Display name of each source field: a numeric column's readable name, else the field."""
    readable = dict(zip(builder.feature_names, builder.readable_names, strict=True))
    return [
        TEXT_NAME if source == TEXT_SOURCE
        else readable.get(source, source.replace("_", " "))
        for source in sources
    ]


def field_values(matrix: np.ndarray, builder: FeatureBuilder, sources: Sequence[str]) -> np.ndarray:
    """Per field, its column's value when the field is one numeric column, else NaN.

    A one-hot or text field has no single value to colour a beeswarm point by, and a
    LightGBM-native categorical column (``categorical_columns``, when the builder declares
    them) holds level codes, whose order means nothing.
    """
    column = {name: j for j, name in enumerate(builder.feature_names)}
    codes = set(getattr(builder, "categorical_columns", ()))
    counts = pd.Series(builder.feature_sources).value_counts()
    out = np.full((matrix.shape[0], len(sources)), np.nan)
    for g, source in enumerate(sources):
        j = column.get(source)
        if j is not None and j not in codes and counts.get(source, 0) == 1:
            out[:, g] = matrix[:, j]
    return out


def shap_sample(model: EscalationModel, matrix: sp.csr_matrix, index: pd.Index) -> ShapSample:
    """Exact SHAP values for the rows of ``matrix``, summed per source field."""
    data = matrix.toarray()  # dense input is faster for TreeSHAP
    contrib = np.vstack(
        [model.contributions(data[i : i + _CHUNK]) for i in range(0, len(data), _CHUNK)]
        or [np.zeros((0, matrix.shape[1] + 1))]
    )
    grouped, sources = group_contributions(contrib, model.builder.feature_sources)
    return ShapSample(
        index=index,
        values=grouped[:, :-1],
        data=field_values(data, model.builder, sources),
        base=grouped[:, -1],
        sources=sources,
        names=field_names(model.builder, sources),
    )


def subset(sample: ShapSample, rows: pd.Index) -> ShapSample:
    """The sample restricted to ``rows`` (which must be in it)."""
    at = sample.index.get_indexer(rows)
    return ShapSample(rows, sample.values[at], sample.data[at], sample.base[at],
                      sample.sources, sample.names)


def top_fields(values: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the ``k`` fields with the largest mean |SHAP|, largest first.

    Fields whose SHAP is zero on every ticket (the model never splits on them) are left
    out: a row of dots on zero reads as "weak driver", not as "unused". Only a model that
    uses no field at all keeps them, so the plots still have rows.
    """
    strength = np.abs(values).mean(axis=0) if len(values) else np.zeros(values.shape[1])
    order = np.argsort(-strength, kind="stable")
    used = order[strength[order] > 0]
    return (used if len(used) else order)[:k]


def top_levels(groups: pd.Series, n: int) -> tuple[pd.Series, list[str]]:
    """``groups`` with all but its ``n`` commonest values pooled, and the display order.

    700 products side by side make an unreadable strip; the top ones by volume and one
    pooled column, "other (k categories)", keep a heatmap legible and still account for
    every ticket. The order is by volume, the pooled column last.
    """
    volume = groups.value_counts(sort=True)
    keep = list(volume.index[:n])
    rest = len(volume) - len(keep)
    if rest == 0:
        return groups, keep
    label = f"{OTHER} ({rest:,} {'category' if rest == 1 else 'categories'})"
    return groups.where(groups.isin(keep), label), [*keep, label]


def mean_abs_by(sample: ShapSample, groups: pd.Series, fields: np.ndarray,
                order: Sequence[str] | None = None) -> pd.DataFrame:
    """Mean |SHAP| of ``fields`` per group (rows: groups with their ticket count ``n``).

    Rows follow ``order`` when given (groups absent from the sample are left out), else
    the groups sorted by name.
    """
    frame = pd.DataFrame(np.abs(sample.values[:, fields]), columns=[sample.names[j] for j in fields])
    keys = groups.loc[sample.index].astype(str).to_numpy()
    table = frame.groupby(keys, sort=True).mean()
    table.insert(0, "n", frame.groupby(keys, sort=True).size())
    if order is not None:
        table = table.reindex([g for g in order if g in table.index])
    table.index.name = groups.name
    return table


def cell_drivers(sample: ShapSample, rows: pd.Index, baseline: np.ndarray,
                 exclude: Sequence[str] = (), k: int = 3) -> list[int]:
    """Fields pushing ``rows`` towards escalation clearly more than usual, strongest first.

    ``baseline`` is each field's mean SHAP on escalated tickets in general: the ticket text
    pushes nearly every escalation, so naming it for every cell would say nothing about
    what sets this cell apart. A field counts only when its excess is over ``SE_MARGIN``
    standard errors, so 30 tickets' noise ("day of year") is not read out as a cause.
    ``exclude`` names source fields (the agent's own record) that the fairness comparison
    already neutralises. Returns column indices of ``sample.values``.
    """
    at = sample.index.get_indexer(rows)
    if len(at) < 2:
        return []
    values = sample.values[at]
    excess = values.mean(axis=0) - baseline
    clear = excess > SE_MARGIN * values.std(axis=0, ddof=1) / np.sqrt(len(at))
    excess = np.where(clear, excess, -np.inf)
    excess[[j for j, s in enumerate(sample.sources) if s in set(exclude)]] = -np.inf
    order = np.argsort(-excess, kind="stable")[:k]
    return [int(j) for j in order if np.isfinite(excess[j])]


def describe_driver(name: str, values: pd.Series | None, overall: pd.Series | None) -> str:
    """A driver for a finding: the field, with the cell's commonest value when it stands out.

    "priority (mostly urgent)" says what the cell's tickets have, and is only said when
    most of them have it and more often than ``overall`` (tickets in general) does; a bare
    "priority" is kept when values are spread, usual, or not labels (numbers, text).
    """
    if values is None or overall is None or values.empty or pd.api.types.is_numeric_dtype(values):
        return name
    shares = values.astype("string").value_counts(normalize=True, dropna=True)
    if shares.empty or shares.iloc[0] <= MOSTLY:
        return name
    top = shares.index[0]
    usual = (overall.astype("string") == top).mean()
    return f"{name} (mostly {top})" if shares.iloc[0] > usual else name
