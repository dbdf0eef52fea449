"""The model matrix: text n-grams, categorical fields, ticket statistics and history.

One fitted `FeatureBuilder` serves both training (`transform`, a whole frame) and the
scoring API (`transform_records`, a list of dicts). The two paths share every per-value
function, the derivation of model columns from raw inputs and the fitted vocabularies, so a
ticket gets the same features in both; the record path skips pandas and sklearn's per-call
validation because it runs on every request.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer

from escpredict.config import FeatureConfig
from escpredict.contract import CATEGORY_FIELDS, HISTORY_NAMES, TICKETS_BY_NAME
from escpredict.labels.values import NAT_NS, epoch_ns, missing
from escpredict.model.season import covers_year

#: Statistics of the ticket itself: (machine name, readable name).
_TICKET_STATS: tuple[tuple[str, str], ...] = (
    ("hour_of_day", "hour of day (UTC)"),
    ("day_of_week", "day of week (0 = Monday)"),
    ("is_weekend", "created at the weekend"),
    # Support load and difficulty follow the calendar (holiday rush, quiet summer); without
    # it the model blurs seasons together and is miscalibrated a season later. Only fed when
    # training covers the year (`season.covers_year`): else it is a clock (see fit).
    ("day_of_year", "day of year (UTC)"),
    ("subject_length", "subject length (characters)"),
    ("description_length", "description length (characters)"),
    ("exclamation_count", "exclamation marks"),
    ("caps_ratio", "share of capital letters"),
    ("urgency_word_count", "urgency words"),
)
_HISTORY_READABLE: dict[str, str] = {
    "agent_tenure_days": "agent tenure (days)",
    "agent_recent_tickets": "agent tickets per {window} days (recent)",
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
#: Contract fields fed as LightGBM native categoricals: one integer-code column each.
_CATEGORICAL: tuple[str, ...] = CATEGORY_FIELDS
#: Contract fields fed as numbers: a support tier is ordered, so a threshold on it is meaningful.
_NUMERIC: tuple[str, ...] = ("initial_tier",)
_TEXT_FIELDS: tuple[str, ...] = ("subject", "description")
#: Kinds an extra feature declared in a mapping may have.
EXTRA_KINDS: tuple[str, ...] = ("categorical", "numeric", "boolean", "text")
#: Code of the pooled level: every level seen fewer than ``features.min_level_count`` times in
#: training, and every level never seen. Missing values are NaN, not a level.
OTHER = 0
OTHER_LEVEL = "(other)"
_TRUE = frozenset({"true", "t", "yes", "y", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "0"})
#: Source of every text n-gram column: one "ticket text" reason, not hundreds of fragments.
TEXT_SOURCE = "text"
#: Cumulative counts only grow with time, so as raw features they act as a clock: on a
#: future window they lie beyond anything seen in training and shift the predicted level
#: (demo-size ECE 0.035 -> 0.019 without them, AUC unchanged). They reach the model only
#: through the smoothed rates above. The windowed ``agent_recent_tickets`` is scaled up
#: where the window reaches back before the export starts (see `_recent_rate`).
_CUMULATIVE: frozenset[str] = frozenset(
    name for _, _, escalated, total in _RATES for name in (escalated, total)
)
_MODEL_HISTORY: tuple[str, ...] = tuple(n for n in HISTORY_NAMES if n not in _CUMULATIVE)


def _text(value: Any) -> str:
    """Absent text is empty text: a ticket without a description still has features."""
    return "" if missing(value) else str(value)


def _number(value: Any) -> float:
    return np.nan if missing(value) else float(value)


def _boolean(value: Any, name: str) -> float:
    """1.0 / 0.0 for yes / no (bools, numbers or words such as "true", "N"); NaN if missing."""
    if missing(value):
        return np.nan
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE or word in _FALSE:
            return float(word in _TRUE)
        raise ValueError(f"{name}: {value!r} is not a yes/no value")
    return float(bool(value))


def _ns(value: Any) -> float:
    """UTC epoch nanoseconds as a float (NaN when missing); naive times are taken as UTC."""
    return np.nan if missing(value) else float(pd.Timestamp(value).value)


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
    if missing(when):
        return [np.nan] * _N_TIME_STATS
    stamp = pd.Timestamp(when)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    day = stamp.day_of_week
    return [float(stamp.hour), float(day), float(day >= 5), float(stamp.day_of_year)]


def _created(frame: pd.DataFrame) -> np.ndarray:
    """Creation times as float UTC nanoseconds (NaN when missing or absent)."""
    if "created_at" not in frame.columns:
        return np.full(len(frame), np.nan)
    ns = epoch_ns(frame["created_at"])
    return np.where(ns == NAT_NS, np.nan, ns.astype(np.float64))


def _time_columns(values: pd.Series) -> np.ndarray:
    stamps = pd.to_datetime(values, utc=True)
    day = stamps.dt.day_of_week.to_numpy(dtype=np.float64, na_value=np.nan)
    weekend = np.where(np.isnan(day), np.nan, (day >= 5).astype(np.float64))
    hour = stamps.dt.hour.to_numpy(dtype=np.float64, na_value=np.nan)
    of_year = stamps.dt.day_of_year.to_numpy(dtype=np.float64, na_value=np.nan)
    return np.column_stack([hour, day, weekend, of_year])


_NS_PER_DAY = 86_400 * 10**9


def _recent_rate(count: np.ndarray, created_ns: np.ndarray, start_ns: float, window: int) -> np.ndarray:
    """Tickets per `window` days, where the window may reach back before the export starts.

    Within the first `window` days of an export the count only grows with time, a clock that
    a later test window lies beyond. Dividing by the part of the window the export covers (at
    least a day) makes it a rate; later tickets, and every scoring request, are unchanged.
    """
    covered = np.clip((created_ns - start_ns) / _NS_PER_DAY, 1.0, window)
    covered = np.where(np.isnan(covered), window, covered)
    return count * (window / covered)


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


class _PerWord:
    """What `_compute` gives each distinct word of a text, computed once per word.

    char_wb n-grams never cross a word boundary, so whatever follows from a text's char
    n-grams follows from its words'. Ticket text repeats a few thousand words across
    millions of tickets. The cache is bounded, so a long-running server does not grow with
    every new word, and is not pickled.
    """

    _limit: int
    _cache: dict[str, Any]

    def _compute(self, word: str) -> Any:
        raise NotImplementedError

    def _per_word(self, text: str) -> list[Any]:
        out = []
        for word in text.lower().split():  # the same words sklearn's char_wb splits into
            value = self._cache.get(word)
            if value is None:
                value = self._compute(word)
                if len(self._cache) < self._limit:
                    self._cache[word] = value
            out.append(value)
        return out

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_cache": {}}


class _WordCachedNgrams(_PerWord):
    """sklearn's `char_wb` analyzer, cutting each distinct word into n-grams only once:
    a text's n-grams are its words' n-grams in order (re-cutting them was a third of the
    feature stage)."""

    def __init__(self, word_ngrams: Callable[[str], list[str]], limit: int = 200_000) -> None:
        self._word_ngrams = word_ngrams
        self._limit = limit
        self._cache: dict[str, list[str]] = {}

    def _compute(self, word: str) -> list[str]:
        return self._word_ngrams(word)

    def __call__(self, text: str) -> list[str]:
        return [gram for grams in self._per_word(text) for gram in grams]


class _WordColumns(_PerWord):
    """The matrix columns of a text's char n-grams, looked up once per distinct word: the
    union of its words' columns (looking every n-gram of every ticket up in the vocabulary
    was a third of building a batch's rows)."""

    def __init__(
        self,
        ngrams: Callable[[str], list[str]],
        vocab: Mapping[str, int],
        offset: int,
        limit: int = 200_000,
    ) -> None:
        self._ngrams = ngrams
        self._vocab = vocab
        self._offset = offset
        self._limit = limit
        self._cache: dict[str, np.ndarray] = {}

    def _compute(self, word: str) -> np.ndarray:
        return self._offset + _hits(self._vocab, self._ngrams(word))

    def __call__(self, text: str) -> list[np.ndarray]:
        return self._per_word(text)


def _hits(vocab: Mapping[str, int], terms: list[str]) -> np.ndarray:
    """Vocabulary indices of the known `terms`, each once."""
    found = set(map(vocab.get, terms))
    found.discard(None)
    return np.fromiter(found, dtype=np.int64, count=len(found))


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


def _word_vectorizer(cfg: FeatureConfig, **options: Any) -> CountVectorizer:
    """Word n-gram presence; ``options``: max_features and min_df to fit, or a vocabulary."""
    return CountVectorizer(
        ngram_range=(1, cfg.word_ngram_max), binary=True, dtype=np.float64, **options
    )


def _char_vectorizer(cfg: FeatureConfig, **options: Any) -> CountVectorizer:
    """Character n-gram presence within words (char_wb), each word cut once (`_WordCachedNgrams`)."""
    plain = CountVectorizer(analyzer="char_wb", ngram_range=tuple(cfg.char_ngram_range))
    return CountVectorizer(
        analyzer=_WordCachedNgrams(plain.build_analyzer()), binary=True, dtype=np.float64,
        **options,
    )


def _terms(vocab: Mapping[str, int]) -> list[str]:
    """A fitted vocabulary as its terms in column order (its indices are 0..n-1)."""
    terms = sorted(vocab, key=vocab.__getitem__)
    if [vocab[term] for term in terms] != list(range(len(terms))):
        raise ValueError("vocabulary indices are not 0..n-1")
    return terms


def _vocabulary(terms: Sequence[str]) -> dict[str, int]:
    """`_terms` inverted: term -> column."""
    vocab = {str(term): j for j, term in enumerate(terms)}
    if len(vocab) != len(terms):
        raise ValueError("a saved vocabulary lists a term twice")
    return vocab


@dataclass(frozen=True)
class OneHotCodes:
    """The model matrix with each categorical code column replaced by one indicator per level.

    The logistic baseline is a plain one-hot yardstick: it reads the booster's matrix through
    this, so both models see the same information without a second feature pipeline. A
    missing value (NaN code) has no indicator set.
    """

    columns: tuple[int, ...]  # code columns of the model matrix
    sizes: tuple[int, ...]  # levels per code column, the pooled level included

    def __call__(self, matrix: sp.spmatrix | np.ndarray) -> sp.csr_matrix:
        matrix = sp.csr_matrix(matrix, dtype=np.float64)
        n_rows, n_cols = matrix.shape
        codes = matrix[:, list(self.columns)].toarray()
        blocks = [matrix[:, np.setdiff1d(np.arange(n_cols), self.columns)]]
        for j, size in enumerate(self.sizes):
            known = np.flatnonzero(~np.isnan(codes[:, j]))
            levels = codes[known, j].astype(np.int64)
            blocks.append(
                sp.csr_matrix((np.ones(known.size), (known, levels)), shape=(n_rows, size))
            )
        return sp.hstack(blocks, format="csr", dtype=np.float64)


def _check_extras(extras: Mapping[str, str]) -> dict[str, str]:
    """Extra features must name a known kind and a column of their own."""
    taken = set(TICKETS_BY_NAME) | set(HISTORY_NAMES)
    for name, kind in extras.items():
        if kind not in EXTRA_KINDS:
            raise ValueError(f"extra feature {name!r}: kind {kind!r} is not one of {EXTRA_KINDS}")
        if name in taken:
            raise ValueError(f"extra feature {name!r} clashes with a contract column")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise ValueError(f"extra feature {name!r}: use letters, digits and underscores")
    return dict(extras)


def _readable(field: str) -> str:
    return field.replace("_", " ")


class FeatureBuilder:
    """Turns canonical ticket rows (SCORING_FIELDS + extras + HISTORY_NAMES) into a CSR matrix.

    Columns, in order: ticket statistics, numeric and yes/no fields, history as given,
    smoothed escalation rates, one integer-code column per categorical field (LightGBM
    native categoricals: `categorical_columns`; only fields training saw a level of), word
    n-grams, character n-grams. Rare and
    unseen levels share the pooled code `OTHER`; unseen terms give zeros; missing values stay
    NaN for LightGBM to route. `one_hot` gives the same matrix with indicator columns instead
    of codes, for linear models.
    """

    feature_names: list[str]
    readable_names: list[str]
    #: The input field each column comes from (a categorical's field, ``TEXT_SOURCE`` for
    #: n-grams, the column's own name otherwise): what reasons are grouped by.
    feature_sources: list[str]
    #: Indices of the categorical code columns (LightGBM's ``categorical_feature``).
    categorical_columns: list[int]
    #: Per categorical field, its levels by code: ``categories[field][code]``; code 0 is
    #: OTHER_LEVEL (rare or unseen levels), so a reason can state the ticket's level.
    categories: dict[str, list[str]]

    def __init__(self, cfg: FeatureConfig, extras: Mapping[str, str] | None = None) -> None:
        low, high = cfg.char_ngram_range
        if not 1 <= low <= high:
            raise ValueError(f"features.char_ngram_range must be 1 <= low <= high, got {low, high}")
        self.cfg = cfg
        #: Extra at-creation fields a mapping declared (name -> kind) that this model reads.
        self.extra_features = _check_extras(extras or {})
        self._urgency = _urgency_pattern(cfg.urgency_words)
        of_kind = {
            kind: tuple(n for n, k in self.extra_features.items() if k == kind)
            for kind in EXTRA_KINDS
        }
        self._categorical = _CATEGORICAL + of_kind["categorical"]
        self._numeric = _NUMERIC + of_kind["numeric"]
        self._boolean = of_kind["boolean"]
        self._text_fields = _TEXT_FIELDS + of_kind["text"]

    # -- fitting ----------------------------------------------------------------------------
    def fit(self, frame: pd.DataFrame) -> FeatureBuilder:
        """Learn vocabularies, category levels, the global rate and which stats to feed."""
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
        fitted = [
            _fit_vocabulary(vectorizer, texts) if limit else ({}, None)
            for vectorizer, limit in (
                (
                    _word_vectorizer(cfg, max_features=cfg.word_max_features, min_df=cfg.min_df),
                    cfg.word_max_features,
                ),
                (
                    _char_vectorizer(cfg, max_features=cfg.char_max_features, min_df=cfg.min_df),
                    cfg.char_max_features,
                ),
            )
        ]
        (word_vocab, _), (char_vocab, _) = fitted
        # A field with no level of its own in training (absent from the export, or only rare
        # levels) gets no column: it could tell at most whether it was filled in, and
        # distributed LightGBM crashes on an all-missing categorical (lightgbm 4.7).
        found = {field: self._levels(frame, field) for field in self._categorical}
        created = _created(frame)
        # A day of year beyond every training value (a window of weeks) is a clock, not a
        # season: fed only when training covers the year, the rule the seasonal offset uses.
        has_time = "created_at" in frame.columns
        of_year = _time_columns(frame["created_at"])[:, 3] if has_time else np.empty(0)
        self._set_fitted(
            word_vocab,
            char_vocab,
            categories={field: levels for field, levels in found.items() if len(levels) > 1},
            global_rate=_global_rate(frame),
            start_ns=float(np.nanmin(created)) if (~np.isnan(created)).any() else np.nan,
            stats=tuple(
                i for i, (name, _) in enumerate(_TICKET_STATS)
                if name != "day_of_year" or covers_year(of_year)
            ),
            # Fixed at fit time, so a registered model keeps its own column layout whatever
            # later code versions choose to feed new models.
            history_columns=_MODEL_HISTORY,
        )
        return [block for _, block in fitted if block is not None]

    def _set_fitted(
        self, word_vocab: dict[str, int], char_vocab: dict[str, int],
        categories: dict[str, list[str]], global_rate: float, start_ns: float,
        stats: tuple[int, ...], history_columns: tuple[str, ...],
    ) -> None:
        """Everything transform needs, from what fitting learnt (or a saved state holds).

        Fitting and loading both end here, so a builder rebuilt from its state transforms
        with the very objects a freshly fitted one does.
        """
        self._word_vocab, self._char_vocab = word_vocab, char_vocab
        self._word = _word_vectorizer(self.cfg, vocabulary=word_vocab or None)
        self._char = _char_vectorizer(self.cfg, vocabulary=char_vocab or None)
        self._word_analyzer = self._word.build_analyzer()
        self.__dict__.pop("_char_columns", None)  # built from an earlier vocabulary
        self.categories = categories
        self._codes = {
            field: {level: code for code, level in enumerate(levels) if code != OTHER}
            for field, levels in categories.items()
        }
        self._global_rate, self._start_ns = global_rate, start_ns
        self._stats, self._history_columns = stats, history_columns
        self._layout()

    # -- saved state ------------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        """The fitted builder as JSON-ready data: what `from_state` rebuilds it from.

        Columns are named, not numbered, so a later version that adds a statistic or a
        field still rebuilds this model's own layout (or refuses it: `from_state`).
        """
        self._check_fitted()
        return {
            "config": self.cfg.model_dump(mode="json"),
            "extra_features": dict(self.extra_features),
            "numeric": list(self._numeric),
            "boolean": list(self._boolean),
            "text": list(self._text_fields),
            "ticket_stats": [_TICKET_STATS[i][0] for i in self._stats],
            "history_columns": list(self._history_columns),
            "categories": self.categories,
            "word_vocabulary": _terms(self._word_vocab),
            "char_vocabulary": _terms(self._char_vocab),
            "global_rate": self._global_rate,
            "start_ns": None if np.isnan(self._start_ns) else self._start_ns,
            "feature_names": self.feature_names,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> FeatureBuilder:
        """The builder `to_state` describes, transforming bit for bit as the fitted one did.

        Raises ValueError (or KeyError) when this version cannot rebuild that layout.
        """
        builder = cls(FeatureConfig(**state["config"]), state["extra_features"])
        builder._numeric = tuple(state["numeric"])
        builder._boolean = tuple(state["boolean"])
        builder._text_fields = tuple(state["text"])
        stat_index = {name: i for i, (name, _) in enumerate(_TICKET_STATS)}
        start = state["start_ns"]
        builder._set_fitted(
            _vocabulary(state["word_vocabulary"]),
            _vocabulary(state["char_vocabulary"]),
            categories={field: list(levels) for field, levels in state["categories"].items()},
            global_rate=float(state["global_rate"]),
            start_ns=np.nan if start is None else float(start),
            stats=tuple(stat_index[name] for name in state["ticket_stats"]),
            history_columns=tuple(state["history_columns"]),
        )
        if builder.feature_names != list(state["feature_names"]):
            raise ValueError("the saved feature columns differ from the ones rebuilt from them")
        return builder

    def _levels(self, frame: pd.DataFrame, field: str) -> list[str]:
        """OTHER_LEVEL, then every level seen at least `min_level_count` times, sorted."""
        if field not in frame.columns:
            return [OTHER_LEVEL]
        counts = frame[field].dropna().astype(str).value_counts()
        return [OTHER_LEVEL, *sorted(counts.index[counts >= self.cfg.min_level_count])]

    def _layout(self) -> None:
        """Column offsets and the name lists, fixed once at fit time."""
        window = self.cfg.recent_window_days
        columns = [_TICKET_STATS[i] for i in self._stats]
        columns += [(n, _readable(n)) for n in self._numeric + self._boolean]
        columns += [(n, _HISTORY_READABLE[n].format(window=window)) for n in self._history_columns]
        columns += [(name, f"{text} (smoothed)") for name, text, *_ in _RATES]
        self.categorical_columns = list(range(len(columns), len(columns) + len(self.categories)))
        columns += [(n, _readable(n)) for n in self.categories]
        names = [name for name, _ in columns]
        readable = [text for _, text in columns]
        sources = list(names)
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

    @property
    def one_hot(self) -> OneHotCodes:
        """Model matrix -> the same with indicator columns per level (the baseline's view)."""
        self._check_fitted()
        return OneHotCodes(
            tuple(self.categorical_columns),
            tuple(len(levels) for levels in self.categories.values()),
        )

    # -- batch path -------------------------------------------------------------------------
    def _texts(self, frame: pd.DataFrame) -> list[str]:
        columns = [_column(frame, name) for name in self._text_fields]
        return [" ".join(map(_text, values)) for values in zip(*columns, strict=True)]

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
        """Numeric and code columns of `frame` followed by its word and char n-gram blocks."""
        raw = np.column_stack(
            [self._ticket_stats(frame)]
            + [_numbers(frame, name) for name in self._numeric]
            + [
                np.array([_boolean(v, name) for v in _column(frame, name)], dtype=np.float64)
                for name in self._boolean
            ]
            + [_numbers(frame, name) for name in HISTORY_NAMES]
            + [_created(frame)]
            + [self._code_column(frame, field) for field in self.categories]
        )
        blocks = [sp.csr_matrix(self._dense(raw)), *text_blocks]
        matrix = sp.hstack(blocks, format="csr", dtype=np.float64)
        matrix.sort_indices()
        return matrix

    def _raw_sizes(self) -> list[int]:
        """Widths of the raw input groups both paths gather: ticket statistics, numeric and
        yes/no fields, history, creation time (ns), categorical codes."""
        return [
            len(_TICKET_STATS), len(self._numeric), len(self._boolean), len(HISTORY_NAMES), 1,
            len(self.categories),
        ]

    def _dense(self, raw: np.ndarray) -> np.ndarray:
        """The columns before the n-grams, from the raw inputs of `_raw_sizes`.

        Frames and records gather their raw inputs each their own way (pandas columns, a
        loop over dicts); the model's columns are then derived from them here, once.
        """
        stats, numeric, boolean, history, created, codes = np.split(
            raw, np.cumsum(self._raw_sizes()[:-1]), axis=1
        )
        by_name = dict(zip(HISTORY_NAMES, history.T, strict=True))
        by_name["agent_recent_tickets"] = _recent_rate(
            by_name["agent_recent_tickets"], created[:, 0], self._start_ns,
            self.cfg.recent_window_days,
        )
        return np.column_stack(
            [stats[:, list(self._stats)], numeric, boolean]
            + [by_name[name] for name in self._history_columns]
            + [
                _smoothed(by_name[escalated], by_name[total], self._global_rate, self.cfg.smoothing)
                for _, _, escalated, total in _RATES
            ]
            + [codes]
        )

    def _ticket_stats(self, frame: pd.DataFrame) -> np.ndarray:
        """Every `_TICKET_STATS` column (the fitted selection is applied in `_dense`)."""
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

    def _code_column(self, frame: pd.DataFrame, field: str) -> np.ndarray:
        """Each row's level code (OTHER for rare or unseen levels), NaN where missing."""
        out = np.full(len(frame), np.nan)
        if field in frame.columns:
            values = frame[field]
            known = values.notna().to_numpy()
            codes = values[known].astype(str).map(self._codes[field])
            out[known] = codes.fillna(OTHER).to_numpy(dtype=np.float64)
        return out

    # -- serving path -----------------------------------------------------------------------
    def transform_records(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Dense rows of many tickets (dicts), equal to `transform` of a frame of them.

        The scoring path: pandas and sklearn's per-call validation cost more than the
        work for a few tickets, and the booster wants dense rows anyway (its SHAP runs
        faster on them than on CSR). One matrix for all tickets, filled in place.
        """
        self._check_fitted()
        texts = [[_text(record.get(name)) for name in self._text_fields] for record in records]
        raw = np.array(
            [self._raw(record, text) for record, text in zip(records, texts, strict=True)],
            dtype=np.float64,
        ).reshape(len(records), sum(self._raw_sizes()))
        width = len(self.feature_names)
        out = np.zeros((len(records), width))
        out[:, : self._word_offset] = self._dense(raw)
        flat = [i * width + self._text_columns(" ".join(text)) for i, text in enumerate(texts)]
        np.put(out, np.concatenate([np.empty(0, dtype=np.int64), *flat]), 1.0)
        return out

    def transform_record(self, record: Mapping[str, Any]) -> sp.csr_matrix:
        """One ticket as a 1-row CSR matrix: `transform_records` of one."""
        return sp.csr_matrix(self.transform_records([record]))

    def _raw(self, record: Mapping[str, Any], texts: list[str]) -> list[float]:
        """A record's raw inputs in `_raw_sizes` order (texts: its `_text_fields`)."""
        created = record.get("created_at")
        return [
            *_time_stats(created),
            *_text_stats(texts[0], texts[1], self._urgency),
            *[_number(record.get(name)) for name in self._numeric],
            *[_boolean(record.get(name), name) for name in self._boolean],
            *[_number(record.get(name)) for name in HISTORY_NAMES],
            _ns(created),
            *[self._code(field, record.get(field)) for field in self.categories],
        ]

    def _text_columns(self, text: str) -> np.ndarray:
        """Matrix columns of the word and char n-grams `text` contains (a column may repeat)."""
        words = (
            self._word_offset + _hits(self._word_vocab, self._word_analyzer(text))
            if self._word_vocab
            else np.empty(0, dtype=np.int64)
        )
        return np.concatenate([words, *self._char_columns(text)]) if self._char_vocab else words

    @cached_property
    def _char_columns(self) -> _WordColumns:
        # The plain char_wb analyzer: this cache already keeps one entry per word, so going
        # through the n-gram cache too would store every word's n-grams a second time.
        plain = self._char.analyzer._word_ngrams
        return _WordColumns(plain, self._char_vocab, self._char_offset)

    def __getstate__(self) -> dict[str, Any]:
        # Dask ships a builder to its workers by pickle: the lookup cache is rebuilt there
        # from the vocabulary rather than copied. (Saved models use `to_state`.)
        return {k: v for k, v in self.__dict__.items() if k != "_char_columns"}

    def _code(self, field: str, value: Any) -> float:
        return np.nan if missing(value) else float(self._codes[field].get(str(value), OTHER))

    def _check_fitted(self) -> None:
        if not hasattr(self, "feature_names"):
            raise RuntimeError("FeatureBuilder.fit must be called before transform")
