"""What drives escalations: SHAP values aggregated globally, by group and per flagged cell.

Exact TreeSHAP costs a few milliseconds per ticket, so the report computes it on a random
sample of tickets (plus the escalated tickets of flagged cells) rather than on all of
them; every function here works on whatever rows it is given.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from escpredict.model import EscalationModel

_CHUNK = 500
_CHAR_NGRAM = re.compile(r"^text contains '(.*)'$")
_WORD = re.compile(r"^(?:word|phrase) '(.*)'$")
_FIELD = re.compile(r"^(category|channel|priority) = (.*)$")
_TOKEN = re.compile(r"\b\w\w+\b")


@dataclass(frozen=True)
class ShapSample:
    """SHAP values (log-odds) and feature values for some tickets; rows align with ``index``."""

    index: pd.Index
    values: np.ndarray  # (rows, features), expected-value column removed
    data: np.ndarray  # (rows, features) dense feature values
    base: np.ndarray  # (rows,) the model's expected log-odds


def shap_sample(model: EscalationModel, matrix: sp.csr_matrix, index: pd.Index) -> ShapSample:
    """Exact SHAP values for the rows of ``matrix``, in chunks (dense input is faster)."""
    data = matrix.toarray()
    contrib = np.vstack(
        [model.contributions(data[i : i + _CHUNK]) for i in range(0, len(data), _CHUNK)]
        or [np.zeros((0, matrix.shape[1] + 1))]
    )
    return ShapSample(index=index, values=contrib[:, :-1], data=data, base=contrib[:, -1])


def top_features(values: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the ``k`` features with the largest mean |SHAP|, largest first."""
    strength = np.abs(values).mean(axis=0) if len(values) else np.zeros(values.shape[1])
    return np.argsort(-strength, kind="stable")[:k]


def mean_abs_by(sample: ShapSample, groups: pd.Series, features: np.ndarray,
                names: Sequence[str]) -> pd.DataFrame:
    """Mean |SHAP| of ``features`` per group (rows: groups with their ticket count ``n``)."""
    frame = pd.DataFrame(np.abs(sample.values[:, features]), columns=[names[j] for j in features])
    keys = groups.loc[sample.index].astype(str).to_numpy()
    table = frame.groupby(keys, sort=True).mean()
    table.insert(0, "n", frame.groupby(keys, sort=True).size())
    table.index.name = groups.name
    return table


def cell_drivers(sample: ShapSample, rows: pd.Index, names: Sequence[str],
                 exclude: Sequence[int] = (), k: int = 3) -> list[str]:
    """Features pushing hardest towards escalation where present on ``rows``.

    A feature counts only on tickets where it is non-zero: "priority = low" being absent
    or a word not being written is no reason a manager can act on. ``exclude`` drops
    columns (the agent's own record) that the fairness comparison already neutralises.
    """
    at = sample.index.get_indexer(rows)
    if not len(at):
        return []
    pushed = np.where(sample.data[at] != 0.0, sample.values[at], 0.0).mean(axis=0)
    pushed[list(exclude)] = -np.inf
    order = np.argsort(-pushed, kind="stable")[:k]
    return [names[j] for j in order if pushed[j] > 0]


def word_counts(texts: Iterable[str]) -> Counter[str]:
    """Lower-case word frequencies, for naming character n-grams after real words."""
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(_TOKEN.findall(text.lower()))
    return counts


def display_name(readable: str, words: Counter[str]) -> str:
    """A manager-readable name: character n-grams become the commonest word containing them.

    ``text contains ' refu'`` (n-grams carry word-boundary spaces) reads as
    ``words like 'refund'``; other names are kept as the feature builder wrote them.
    """
    match = _CHAR_NGRAM.match(readable)
    if not match:
        return readable
    gram = match.group(1)
    hits = [(count, word) for word, count in words.items() if gram.strip() and gram in f" {word} "]
    return f"words like '{max(hits)[1]}'" if hits else f"text containing '{gram.strip()}'"


def short_name(name: str) -> str:
    """Compact form for one-line findings: "word 'refund'" → "'refund'", "priority = high" → "priority high"."""
    word = _WORD.match(name)
    if word:
        return f"'{word.group(1)}'"
    field = _FIELD.match(name)
    if field:
        return f"{field.group(1)} {field.group(2)}"
    return name


class DisplayNames:
    """Unique display names, looked up lazily (naming an n-gram scans the word counts).

    Two n-grams of one word ("refu", "fund") would both read "words like 'refund'"; the
    later one keeps its n-gram in brackets so tables and plots never merge two features.
    """

    def __init__(self, readable: Sequence[str], words: Counter[str]) -> None:
        self._readable = readable
        self._words = words
        self._cache: dict[int, str] = {}

    def __getitem__(self, j: int) -> str:
        if j not in self._cache:
            name = display_name(self._readable[j], self._words)
            if name in self._cache.values():
                name = f"{name} ({self._readable[j]})"
            self._cache[j] = name
        return self._cache[j]

    def __len__(self) -> int:
        return len(self._readable)
