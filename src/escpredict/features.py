"""The model matrix: text n-grams, one-hot fields, ticket statistics and history.

One fitted `FeatureBuilder` serves both training (`transform`, a whole frame) and the
scoring API (`transform_record`, one dict). The two paths share every per-value function
and the fitted vocabularies, so a ticket gets the same features in both; the record path
skips pandas and sklearn's per-call validation because it runs on every request.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer

from escpredict.config import FeatureConfig
from escpredict.contract import HISTORY_NAMES

#: Statistics of the ticket itself: (machine name, readable name).
_TICKET_STATS: tuple[tuple[str, str], ...] = (
    ("hour_of_day", "hour of day (UTC)"),
    ("day_of_week", "day of week (0 = Monday)"),
    ("is_weekend", "created at the weekend"),
    # Support load and difficulty follow the calendar (holiday rush, quiet summer); without
    # it the model blurs seasons together and is miscalibrated a season later.
    ("day_of_year", "day of year (UTC)"),
    ("subject_length", "subject length (characters)"),
    ("description_length", "description length (characters)"),
    ("exclamation_count", "exclamation marks"),
    ("caps_ratio", "share of capital letters"),
    ("urgency_word_count", "urgency words"),
)
_HISTORY_READABLE: dict[str, str] = {
    "agent_tenure_days": "agent tenure (days)",
    "agent_recent_tickets": "agent tickets in the last {window} days",
    "customer_days_since_last": "days since the customer's last ticket",
}
#: Smoothed rates: (machine name, readable name, escalated column, denominator column).
_RATES: tuple[tuple[str, str, str, str], ...] = (
    (
        "agent_escalation_rate",
        "agent escalation rate",
        "agent_prior_escalated",
        "agent_prior_resolved",
    ),
    # The contract has no customer_prior_resolved: tickets still open count in the denominator.
    (
        "customer_escalation_rate",
        "customer escalation rate",
        "customer_prior_escalated",
        "customer_prior_tickets",
    ),
)
_CATEGORICAL: tuple[str, ...] = ("category", "channel", "priority")
#: Source of every text n-gram column: one "ticket text" reason, not hundreds of fragments.
TEXT_SOURCE = "text"
#: Cumulative counts only grow with time, so as raw features they act as a clock: on a
#: future window they lie beyond anything seen in training and shift the predicted level
#: (demo-size ECE 0.035 -> 0.019 without them, AUC unchanged). They reach the model only
#: through the smoothed rates above.
_CUMULATIVE: frozenset[str] = frozenset(
    name for _, _, escalated, total in _RATES for name in (escalated, total)
)
_MODEL_HISTORY: tuple[str, ...] = tuple(n for n in HISTORY_NAMES if n not in _CUMULATIVE)


def _missing(value: Any) -> bool:
    return value is None or (not isinstance(value, str) and bool(pd.isna(value)))


def _text(value: Any) -> str:
    """Absent text is empty text: a ticket without a description still has features."""
    return "" if _missing(value) else str(value)


def _category(value: Any) -> str | None:
    return None if _missing(value) else str(value)


def _number(value: Any) -> float:
    return np.nan if _missing(value) else float(value)


def _column(frame: pd.DataFrame, name: str) -> list[Any]:
    """A column's values, or all-missing when the frame lacks it (like a record lacking the key)."""
    return frame[name].tolist() if name in frame.columns else [None] * len(frame)


def _numbers(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name not in frame.columns:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[name]).to_numpy(dtype=np.float64, na_value=np.nan)


def _urgency_pattern(words: Iterable[str]) -> re.Pattern[str]:
    """Whole-word, case-insensitive match of any urgency word or phrase (longest first)."""
    alternatives = sorted({w.lower() for w in words if w.strip()}, key=len, reverse=True)
    if not alternatives:
        return re.compile(r"(?!x)x")  # matches nothing
    return re.compile(
        r"(?<!\w)(?:" + "|".join(map(re.escape, alternatives)) + r")(?!\w)", re.IGNORECASE
    )


def _text_stats(subject: str, description: str, urgency: re.Pattern[str]) -> list[float]:
    """Length, shouting and urgency signals; caps ratio is NaN when there are no letters."""
    text = f"{subject} {description}"
    letters = sum(map(str.isalpha, text))
    caps = sum(map(str.isupper, text)) / letters if letters else np.nan
    return [
        float(len(subject)),
        float(len(description)),
        float(text.count("!")),
        caps,
        float(len(urgency.findall(text))),
    ]


_N_TIME_STATS = 4


def _time_stats(when: Any) -> list[float]:
    """Hour, weekday, weekend flag and day of year in UTC (naive times are taken as UTC)."""
    if _missing(when):
        return [np.nan] * _N_TIME_STATS
    stamp = pd.Timestamp(when)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    day = stamp.day_of_week
    return [float(stamp.hour), float(day), float(day >= 5), float(stamp.day_of_year)]


def _time_columns(values: pd.Series) -> np.ndarray:
    stamps = pd.to_datetime(values, utc=True)
    day = stamps.dt.day_of_week.to_numpy(dtype=np.float64, na_value=np.nan)
    weekend = np.where(np.isnan(day), np.nan, (day >= 5).astype(np.float64))
    hour = stamps.dt.hour.to_numpy(dtype=np.float64, na_value=np.nan)
    of_year = stamps.dt.day_of_year.to_numpy(dtype=np.float64, na_value=np.nan)
    return np.column_stack([hour, day, weekend, of_year])


def _smoothed(escalated: np.ndarray, total: np.ndarray, prior: float, weight: float) -> np.ndarray:
    """(escalated + weight * prior) / (total + weight): few outcomes pull towards the prior."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return (escalated + weight * prior) / (total + weight)


def _global_rate(frame: pd.DataFrame) -> float:
    """Share of earlier outcomes that were escalations, as the history columns report them.

    Agent history counts resolved tickets exactly, so it is preferred; customer history is
    the fallback for exports without agents, and 0.0 when nothing has been resolved.
    """
    for _, _, escalated_name, total_name in _RATES:
        escalated, total = _numbers(frame, escalated_name), _numbers(frame, total_name)
        both = ~np.isnan(escalated) & ~np.isnan(total)
        if total[both].sum() > 0:
            return float(escalated[both].sum() / total[both].sum())
    return 0.0


class _WordCachedNgrams:
    """sklearn's `char_wb` analyzer, cutting each distinct word into n-grams only once.

    char_wb n-grams never cross a word boundary, so a text's n-grams are its words' n-grams
    in order. Ticket text repeats a few thousand words across millions of tickets, and
    re-cutting them was a third of the feature stage. The cache is bounded, so a
    long-running server does not grow with every new word, and is not pickled.
    """

    def __init__(self, word_ngrams: Callable[[str], list[str]], limit: int = 200_000) -> None:
        self._word_ngrams = word_ngrams
        self._limit = limit
        self._cache: dict[str, list[str]] = {}

    def __call__(self, text: str) -> list[str]:
        out: list[str] = []
        for word in text.lower().split():  # the same words sklearn's char_wb splits into
            grams = self._cache.get(word)
            if grams is None:
                grams = self._word_ngrams(word)
                if len(self._cache) < self._limit:
                    self._cache[word] = grams
            out.extend(grams)
        return out

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_cache": {}}


def _fit_vocabulary(
    vectorizer: CountVectorizer, texts: list[str]
) -> tuple[dict[str, int], sp.csr_matrix | None]:
    """Fitted vocabulary and the fitting texts' matrix (sklearn builds it to fit anyway);
    empty and None when no term reaches min_df (sklearn refuses to fit then)."""
    try:
        matrix = vectorizer.fit_transform(texts)
    except ValueError:  # empty vocabulary / no terms remain / fewer documents than min_df
        return {}, None
    return {term: int(j) for term, j in vectorizer.vocabulary_.items()}, matrix


class FeatureBuilder:
    """Turns canonical ticket rows (SCORING_FIELDS + HISTORY_NAMES) into a float64 CSR matrix.

    Columns, in order: ticket statistics, history as given, smoothed escalation rates,
    one-hot category/channel/priority, word n-grams, character n-grams. Unknown categories
    and unseen terms give zeros; missing numbers stay NaN for LightGBM to route.
    """

    feature_names: list[str]
    readable_names: list[str]
    #: The input field each column comes from (a one-hot level's field, ``TEXT_SOURCE`` for
    #: n-grams, the column's own name otherwise): what reasons are grouped by.
    feature_sources: list[str]

    def __init__(self, cfg: FeatureConfig) -> None:
        low, high = cfg.char_ngram_range
        if not 1 <= low <= high:
            raise ValueError(f"features.char_ngram_range must be 1 <= low <= high, got {low, high}")
        self.cfg = cfg
        self._urgency = _urgency_pattern(cfg.urgency_words)

    # -- fitting ----------------------------------------------------------------------------
    def fit(self, frame: pd.DataFrame) -> FeatureBuilder:
        """Learn vocabularies, category levels and the global escalation rate from `frame`."""
        self._fit(frame)
        return self

    def fit_transform(self, frame: pd.DataFrame) -> sp.csr_matrix:
        """`fit(frame).transform(frame)`, cutting each text into n-grams once instead of twice.

        N-gram counting is most of the feature stage (~60% at 100k tickets), and fitting a
        vocabulary already counts every training text.
        """
        return self._assemble(frame, self._fit(frame))

    def _fit(self, frame: pd.DataFrame) -> list[sp.csr_matrix]:
        """Fit everything; return the text blocks of `frame` that fitting produced."""
        cfg = self.cfg
        texts = self._texts(frame)
        self._word = CountVectorizer(
            ngram_range=(1, cfg.word_ngram_max),
            max_features=cfg.word_max_features,
            min_df=cfg.min_df,
            binary=True,
            dtype=np.float64,
        )
        self._char = CountVectorizer(
            analyzer=_WordCachedNgrams(
                CountVectorizer(analyzer="char_wb", ngram_range=tuple(cfg.char_ngram_range))
                .build_analyzer()
            ),
            max_features=cfg.char_max_features,
            min_df=cfg.min_df,
            binary=True,
            dtype=np.float64,
        )
        fitted = [
            _fit_vocabulary(vectorizer, texts) if limit else ({}, None)
            for vectorizer, limit in (
                (self._word, cfg.word_max_features),
                (self._char, cfg.char_max_features),
            )
        ]
        (self._word_vocab, _), (self._char_vocab, _) = fitted
        self._word_analyzer = self._word.build_analyzer()
        self._char_analyzer = self._char.build_analyzer()
        self._levels = {
            name: sorted({c for c in map(_category, _column(frame, name)) if c is not None})
            for name in _CATEGORICAL
        }
        self._global_rate = _global_rate(frame)
        # Fixed at fit time, so a registered model keeps its own column layout whatever
        # later code versions choose to feed new models.
        self._history_columns = _MODEL_HISTORY
        self._layout()
        return [block for _, block in fitted if block is not None]

    def _layout(self) -> None:
        """Column offsets, the one-hot lookup and both name lists, fixed once at fit time."""
        names = [name for name, _ in _TICKET_STATS] + list(self._history_columns)
        window = self.cfg.recent_window_days
        readable = [text for _, text in _TICKET_STATS]
        readable += [_HISTORY_READABLE[n].format(window=window) for n in self._history_columns]
        names += [name for name, *_ in _RATES]
        readable += [f"{text} (smoothed)" for _, text, *_ in _RATES]
        self._n_dense = len(names)
        sources = list(names)
        self._onehot: dict[tuple[str, str], int] = {}
        for field in _CATEGORICAL:
            for j, level in enumerate(self._levels[field]):
                self._onehot[field, level] = len(names)
                names.append(f"{field}_{j}")
                readable.append(f"{field} = {level}")
                sources.append(field)
        self._word_offset = len(names)
        for term, j in sorted(self._word_vocab.items(), key=lambda item: item[1]):
            names.append(f"word_{j}")
            readable.append(f"phrase '{term}'" if " " in term else f"word '{term}'")
        self._char_offset = len(names)
        for term, j in sorted(self._char_vocab.items(), key=lambda item: item[1]):
            names.append(f"char_{j}")
            readable.append(f"text contains '{term}'")
        sources += [TEXT_SOURCE] * (len(names) - len(sources))
        self.feature_names, self.readable_names = names, readable
        self.feature_sources = sources

    # -- batch path -------------------------------------------------------------------------
    def _texts(self, frame: pd.DataFrame) -> list[str]:
        subjects, descriptions = _column(frame, "subject"), _column(frame, "description")
        return [f"{_text(s)} {_text(d)}" for s, d in zip(subjects, descriptions, strict=True)]

    def transform(self, frame: pd.DataFrame) -> sp.csr_matrix:
        """The model matrix for every row of `frame` (float64 CSR, columns = feature_names)."""
        self._check_fitted()
        texts = self._texts(frame)
        text_blocks = [
            vectorizer.transform(texts)
            for vocab, vectorizer in ((self._word_vocab, self._word), (self._char_vocab, self._char))
            if vocab
        ]
        return self._assemble(frame, text_blocks)

    def _assemble(self, frame: pd.DataFrame, text_blocks: list[sp.csr_matrix]) -> sp.csr_matrix:
        """Numeric and one-hot columns of `frame` followed by its word and char n-gram blocks."""
        dense = np.column_stack(
            [self._ticket_stats(frame)]
            + [_numbers(frame, name) for name in self._history_columns]
            + [
                _smoothed(
                    _numbers(frame, escalated),
                    _numbers(frame, total),
                    self._global_rate,
                    self.cfg.smoothing,
                )
                for _, _, escalated, total in _RATES
            ]
        )
        blocks = [sp.csr_matrix(dense), self._onehot_block(frame), *text_blocks]
        matrix = sp.hstack(blocks, format="csr", dtype=np.float64)
        matrix.sort_indices()
        return matrix

    def _ticket_stats(self, frame: pd.DataFrame) -> np.ndarray:
        subjects, descriptions = _column(frame, "subject"), _column(frame, "description")
        text = [
            _text_stats(_text(s), _text(d), self._urgency)
            for s, d in zip(subjects, descriptions, strict=True)
        ]
        when = (
            _time_columns(frame["created_at"])
            if "created_at" in frame.columns
            else np.full((len(frame), _N_TIME_STATS), np.nan)
        )
        return np.hstack([when, np.array(text, dtype=np.float64).reshape(len(frame), 5)])

    def _onehot_block(self, frame: pd.DataFrame) -> sp.csr_matrix:
        rows, cols = [], []
        for field in _CATEGORICAL:
            for i, value in enumerate(map(_category, _column(frame, field))):
                j = self._onehot.get((field, value))
                if j is not None:
                    rows.append(i)
                    cols.append(j - self._n_dense)
        return sp.csr_matrix(
            (np.ones(len(rows)), (rows, cols)), shape=(len(frame), len(self._onehot))
        )

    # -- serving path -----------------------------------------------------------------------
    def transform_record(self, record: Mapping[str, Any]) -> sp.csr_matrix:
        """One ticket as a 1-row matrix, equal to `transform` of a one-row frame."""
        self._check_fitted()
        subject, description = _text(record.get("subject")), _text(record.get("description"))
        history = [_number(record.get(name)) for name in HISTORY_NAMES]
        by_name = dict(zip(HISTORY_NAMES, history, strict=True))
        rates = [
            float(
                _smoothed(
                    np.float64(by_name[escalated]),
                    np.float64(by_name[total]),
                    self._global_rate,
                    self.cfg.smoothing,
                )
            )
            for _, _, escalated, total in _RATES
        ]
        dense = (
            _time_stats(record.get("created_at"))
            + _text_stats(subject, description, self._urgency)
            + [by_name[name] for name in self._history_columns]
            + rates
        )
        indices = [j for j, v in enumerate(dense) if v != 0.0]  # NaN != 0: kept, as in batch
        data = [dense[j] for j in indices]
        for field in _CATEGORICAL:
            j = self._onehot.get((field, _category(record.get(field))))
            if j is not None:
                indices.append(j)
                data.append(1.0)
        text = f"{subject} {description}"
        for analyzer, vocab, offset in (
            (self._word_analyzer, self._word_vocab, self._word_offset),
            (self._char_analyzer, self._char_vocab, self._char_offset),
        ):
            if vocab:
                hits = sorted({vocab[t] for t in analyzer(text) if t in vocab})
                indices.extend(offset + j for j in hits)
                data.extend([1.0] * len(hits))
        return sp.csr_matrix(
            (
                np.array(data, dtype=np.float64),
                np.array(indices, dtype=np.int32),
                np.array([0, len(indices)], dtype=np.int32),
            ),
            shape=(1, len(self.feature_names)),
        )

    def _check_fitted(self) -> None:
        if not hasattr(self, "feature_names"):
            raise RuntimeError("FeatureBuilder.fit must be called before transform")
