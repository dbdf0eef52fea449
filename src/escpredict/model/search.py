"""The model's structure, chosen on the export's own past windows (``model.search``).

Which structure suits depends on the data: on the realistic sample profile pooling rare
levels, the linear start and small trees each helped; on a real IT-support log each of them
cost AUC, and a plain LightGBM beat the product. No fixed default holds on both, so before
training the run compares candidate structures on held-out past windows and trains with the
winner.

- **Switches**: linear start on/off, the rare-level pooling threshold, LightGBM's leaves,
  minimum leaf and categorical-group sizes, categorical smoothing, learning rate, feature and
  row sampling and L2. Not searched: calibration (``calibration.choose`` picks it per run)
  and the seasonal start, whose gain is calibration a season later, which neither ranking
  nor past windows shorter than a year can judge (switched off on the 30k sample, the
  search's pick doubled test ECE).
- **Candidates**: the configured structure (``default``), the plain reference's
  configuration (``reference``: no linear start, no pooling, LightGBM's defaults with 31
  leaves at rate 0.05) and three neighbours mixing the two are judged first; Optuna's TPE sampler,
  seeded with the booster's seed, proposes the rest of the ``trials`` budget. A maintained
  sampler and pruner beat a hand-written loop here: the space mixes switches, integers and
  rates, and a candidate already far behind on the first window is dropped (percentile
  pruning) before it costs two more fits.
- **Folds**: rolling origin within train + valid, never the test window. The first fold is
  the run's own split (train -> valid); each further fold validates on the slice of the
  same length just before and trains on everything earlier. A candidate's score is its mean
  validation ROC AUC over the folds.
- **Guard against lucky picks**: the default is left only for the best candidate, and only
  when it beats the default on average by more than ``MARGIN_SE`` standard errors of a mean
  fold-by-fold difference (the variance pooled over all candidates), and by at least
  ``MIN_GAIN``. A fold needs ``MIN_CLASS`` tickets of each class in its validation
  slice; with fewer than two such folds there is nothing to judge on and the configured
  structure trains as it is.
- **Bounded**: the search reads at most ``max_rows`` train + valid tickets (an evenly
  spaced sample in time), so it costs about the same at any export size; ``trials`` makes
  the choice reproducible, ``seconds`` caps a slow machine.

Candidates are judged on one feature matrix built without pooling; a candidate's pooling is
applied to the code columns fold by fold (a level seen fewer than ``min_level_count`` times
in the fold's training rows becomes the pooled level), as fitting the features on that fold
would. Text vocabularies are fitted once on the search's training rows: they are chosen
without labels, so no outcome leaks into a fold's validation slice.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import optuna
import pandas as pd
import scipy.sparse as sp

from escpredict.config import SearchConfig, TrainConfig
from escpredict.contract import LABEL
from escpredict.model.booster import booster_params, sized
from escpredict.model.features import OTHER, FeatureBuilder
from escpredict.model.level_offset import LevelOffset
from escpredict.model.offsets import present, total
from escpredict.model.reference import PARAMS as REFERENCE_PARAMS
from escpredict.model.season import SeasonalOffset

#: Optuna logs every trial; the run reports the search itself (``SearchResult.describe``).
optuna.logging.set_verbosity(optuna.logging.WARNING)

#: A fold's validation slice needs this many tickets of each class to rank candidates.
MIN_CLASS = 30
#: Leaving the configured structure must buy at least this much mean validation AUC (what
#: promotion counts as better, ``registry.promote_margin``) ...
MIN_GAIN = 0.002
#: ... and this many standard errors of a mean fold-by-fold difference. Of half a dozen
#: complete candidates all as good as the default, the best beats it by more than two
#: standard errors by luck alone about one time in ten.
MARGIN_SE = 2.0
#: A candidate in the bottom quarter on the first fold is dropped before its other folds
#: (Optuna keeps the top 75th percentile): first-fold differences are small and noisy, so
#: only the clearly worse go early.
PRUNE_PERCENTILE = 75.0
#: The booster's switches the search sets; the rest stay as configured. Minimum leaf and
#: categorical-group sizes are searched as multiples of what ``booster.sized`` gives the
#: training rows (SCALED), so a choice made on smaller past windows, or on a sample, means
#: the same at the final model's size.
SEARCHED = (
    "num_leaves", "child_scale", "group_scale", "cat_smooth", "learning_rate",
    "feature_fraction", "bagging_fraction", "lambda_l2",
)
SCALED = {"child_scale": "min_child_samples", "group_scale": "min_data_per_group"}
#: LightGBM's own values of the searched keys, for a config that leaves one unset.
LIGHTGBM_DEFAULTS = {
    "num_leaves": 31, "min_child_samples": 20, "min_data_per_group": 100, "cat_smooth": 10.0,
    "learning_rate": 0.1, "feature_fraction": 1.0, "bagging_fraction": 1.0, "lambda_l2": 0.0,
}
#: The plain reference's booster (``reference.py``): its leaves and rate, LightGBM's defaults
#: for the rest.
REFERENCE_BOOSTER = LIGHTGBM_DEFAULTS | {
    "num_leaves": REFERENCE_PARAMS["num_leaves"],
    "learning_rate": REFERENCE_PARAMS["learning_rate"],
}
#: Pooling thresholds tried (the configured one is added).
MIN_LEVEL_COUNTS = (1, 3, 10, 30)
#: Ranges of the booster's switches: (low, high, log scale), widened to hold the named candidates.
RANGES: dict[str, tuple[float, float, bool]] = {
    "num_leaves": (7, 63, True),
    "child_scale": (0.25, 4.0, True),
    "group_scale": (0.25, 8.0, True),
    "cat_smooth": (1.0, 50.0, True),
    "learning_rate": (0.025, 0.1, True),
    "feature_fraction": (0.5, 1.0, False),
    "bagging_fraction": (0.5, 1.0, False),
    "lambda_l2": (0.0, 10.0, False),
}


@dataclass(frozen=True)
class Structure:
    """The switches the search sets: starting offsets, pooling and booster parameters."""

    linear_offset: bool
    min_level_count: int
    params: dict[str, Any]  # the SEARCHED values

    def booster(self, n_train: int) -> dict[str, Any]:
        """LightGBM keys to set for `n_train` training rows: scaled sizes made absolute, row
        sampling off at a fraction of 1 (LightGBM's rule)."""
        base = sized(n_train)
        params = {k: v for k, v in self.params.items() if k not in SCALED}
        for scale, key in SCALED.items():
            params[key] = max(1, round(self.params[scale] * base[key]))
        return params | {"bagging_freq": int(self.params["bagging_fraction"] < 1.0)}

    def apply(self, cfg: TrainConfig, n_train: int) -> TrainConfig:
        """`cfg` with this structure for `n_train` training rows: what the run trains with."""
        features = cfg.features.model_copy(update={"min_level_count": self.min_level_count})
        model = cfg.model.model_copy(update={
            "linear_offset": self.linear_offset,
            "params": {**cfg.model.params, **self.booster(n_train)},
        })
        return cfg.model_copy(update={"features": features, "model": model})

    def describe(self, n_train: int) -> str:
        """``linear start off, levels pooled under 1 tickets, num_leaves 31, ...`` with the
        LightGBM values at `n_train` training rows."""
        switches = [
            f"linear start {'on' if self.linear_offset else 'off'}",
            f"levels pooled under {self.min_level_count} tickets",
        ]
        switches += [
            f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
            for k, v in self.booster(n_train).items() if k != "bagging_freq"
        ]
        return ", ".join(switches)

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> Structure:
        """The inverse of ``values`` (a row of the table, an Optuna trial's params)."""
        return cls(
            bool(values["linear_offset"]), int(values["min_level_count"]),
            {k: values[k] for k in SEARCHED},
        )

    def values(self) -> dict[str, Any]:
        """Flat name -> value, as Optuna and the run's params show them."""
        return {
            "linear_offset": self.linear_offset,
            "min_level_count": self.min_level_count,
            **self.params,
        }


def _as_searched(params: dict[str, Any], n_train: int) -> dict[str, Any]:
    """LightGBM parameters as the search holds them: sizes as multiples of ``sized``, no
    row sampling as a fraction of 1, unset L2 as 0."""
    base = sized(n_train)
    values = {k: params.get(k, LIGHTGBM_DEFAULTS[k]) for k in SEARCHED if k not in SCALED}
    values |= {scale: params[key] / base[key] for scale, key in SCALED.items()}
    if not params.get("bagging_freq", 0):
        values["bagging_fraction"] = 1.0
    return values


def configured(cfg: TrainConfig, n_train: int) -> Structure:
    """The structure `cfg` trains on `n_train` rows as it stands: its sizes are ``sized``'s
    (scale 1) unless `model.params` pins them."""
    params = booster_params(cfg.model, n_train)
    return Structure(
        cfg.model.linear_offset, cfg.features.min_level_count, _as_searched(params, n_train)
    )


def named_candidates(default: Structure, n_train: int) -> dict[str, Structure]:
    """Judged before the sampler proposes anything: the configured structure, the plain
    reference's (exactly its sizes at the final model's `n_train` rows), and the neighbours
    between them real logs disagreed on."""
    reference = Structure(False, 1, _as_searched(REFERENCE_BOOSTER | {"bagging_freq": 0}, n_train))
    return {
        "default": default,
        "reference": reference,
        "default without pooling": Structure(default.linear_offset, 1, default.params),
        "default without linear start": Structure(False, default.min_level_count, default.params),
        "reference booster, default offsets and pooling": Structure(
            default.linear_offset, default.min_level_count, reference.params),
    }


@dataclass
class SearchResult:
    """What the search judged and chose; ``table`` has one row per candidate."""

    chosen: Structure
    chosen_name: str
    default: Structure
    n_train: int  # rows the final model trains on: what the chosen sizes are scaled to
    table: pd.DataFrame  # name, state, mean_auc, fold_k_auc, gain (over the default), switches
    n_folds: int
    n_rows: int  # train + valid tickets the search read
    seconds: float
    gain: float = 0.0  # the chosen's (or, when the default stays, the best's) mean AUC gain
    margin: float = 0.0  # ... and the margin it had to clear
    timed_out: bool = False
    skipped: str = ""  # why nothing was searched (too few tickets, ...)

    @property
    def changed(self) -> bool:
        return self.chosen_name != "default"

    def config(self, cfg: TrainConfig) -> TrainConfig:
        """What the run trains with: `cfg` itself when the default stays."""
        return self.chosen.apply(cfg, self.n_train) if self.changed else cfg

    def params(self) -> dict[str, Any]:
        """MLflow params: the choice, its margin and the budget used."""
        out: dict[str, Any] = {
            "search.chosen": self.chosen_name,
            "search.folds": self.n_folds,
            "search.rows": self.n_rows,
            "search.candidates": len(self.table),
            "search.seconds": round(self.seconds, 1),
            "search.gain": round(self.gain, 5),
            "search.margin": round(self.margin, 5),
            "search.timed_out": self.timed_out,
        }
        if self.skipped:
            out["search.skipped"] = self.skipped
        return out | {f"search.{k}": v for k, v in self.chosen.values().items()}

    def describe(self) -> str:
        """One line for ``escpredict train``."""
        if self.skipped:
            return f"structure search skipped: {self.skipped}; trained the configured structure"
        judged = (
            f"{len(self.table)} candidates on {self.n_folds} past windows "
            f"({self.n_rows:,} tickets, {self.seconds:.0f}s{', time cap reached' if self.timed_out else ''})"
        )
        if self.changed:
            return (
                f"structure search: {judged} chose {self.chosen_name!r}: mean valid AUC "
                f"{self.gain:+.4f} over the configured structure (margin {self.margin:.4f}): "
                f"{self.chosen.describe(self.n_train)}"
            )
        return (
            f"structure search: {judged} kept the configured structure: no candidate beat it "
            f"by more than the margin ({self.margin:.4f}; best {self.gain:+.4f})"
        )


@dataclass
class _Fold:
    train: np.ndarray  # row indices into the search matrix
    valid: np.ndarray


@dataclass
class _Judge:
    """Scores structures on the folds. Candidates share a fold's binned LightGBM data
    whenever they pool and start alike, so only the boosting is paid per candidate."""

    cfg: TrainConfig
    x: sp.csr_matrix
    y: np.ndarray
    folds: list[_Fold]
    codes: slice  # the categorical code columns of `x` (contiguous)
    sizes: list[int]
    day_of_year: int | None
    _data: dict[tuple[Any, ...], tuple[lgb.Dataset, lgb.Dataset]] = field(default_factory=dict)
    _seasons: dict[int, SeasonalOffset | None] = field(default_factory=dict)

    def pooled(self, fold: int, k: int) -> sp.csr_matrix:
        """The search matrix with levels seen fewer than `k` times (at least once) in the
        fold's training rows pooled, as features fitted on that fold would code them."""
        codes = self.x[:, self.codes].toarray()
        train = codes[self.folds[fold].train]
        for j in range(codes.shape[1]):
            seen = train[:, j][~np.isnan(train[:, j])].astype(np.int64)
            counts = np.bincount(seen, minlength=self.sizes[j])
            column = codes[:, j]
            known = ~np.isnan(column)
            rare = counts[column[known].astype(np.int64)] < max(k, 1)
            column[np.flatnonzero(known)[rare]] = OTHER
        return sp.hstack(
            [self.x[:, : self.codes.start], sp.csr_matrix(codes), self.x[:, self.codes.stop :]],
            format="csr",
        )

    def data(self, fold: int, s: Structure) -> tuple[lgb.Dataset, lgb.Dataset]:
        """The fold's training and validation sets as `s` pools and starts them."""
        season = self.cfg.model.seasonal_offset and self.day_of_year is not None
        key = (fold, s.min_level_count, s.linear_offset)
        if key not in self._data:
            x = self.pooled(fold, s.min_level_count)
            train, valid = self.folds[fold].train, self.folds[fold].valid
            if season and fold not in self._seasons:
                self._seasons[fold] = SeasonalOffset.fit(x[train], self.y[train], self.day_of_year)
            levels = LevelOffset.fit(
                x[train], self.y[train], x[valid], self.y[valid], self.categorical, self.sizes
            ) if s.linear_offset else None
            offsets = present(self._seasons.get(fold) if season else None, levels)
            # Binned once and boosted by many candidates: leaf sizes must stay free to vary.
            shared = {"feature_pre_filter": False, "verbose": -1}
            train_set = lgb.Dataset(
                x[train], label=self.y[train], init_score=total(offsets, x[train]),
                categorical_feature=self.categorical or "auto", params=shared,
            ).construct()
            valid_set = lgb.Dataset(
                x[valid], label=self.y[valid], init_score=total(offsets, x[valid]),
                reference=train_set, categorical_feature=self.categorical or "auto",
                params=shared,
            ).construct()
            self._data[key] = (train_set, valid_set)
        return self._data[key]

    @property
    def categorical(self) -> list[int]:
        return list(range(self.codes.start, self.codes.stop))

    def fold_auc(self, fold: int, s: Structure) -> float:
        """Validation ROC AUC of structure `s` trained on the fold's training rows, at its
        early-stopping iteration (offsets included, as LightGBM scores the validation set)."""
        train_set, valid_set = self.data(fold, s)
        model = self.cfg.model.model_copy(
            update={"params": {**self.cfg.model.params, **s.booster(train_set.num_data())}})
        booster = lgb.train(
            # Row-wise histograms: the same trees, without LightGBM timing both layouts first
            # in every fit (about a tenth of a fit on the sample's sparse text columns).
            booster_params(model, train_set.num_data())
            | {"feature_pre_filter": False, "force_row_wise": True},
            train_set,
            num_boost_round=model.num_boost_round,
            valid_sets=[valid_set],
            callbacks=[lgb.early_stopping(model.early_stopping_rounds, verbose=False)],
        )
        return float(booster.best_score["valid_0"]["auc"])


def _evenly(frame: pd.DataFrame, share: float) -> pd.DataFrame:
    """About `share` of the rows, evenly spaced in creation time."""
    if share >= 1.0:
        return frame
    ordered = frame.sort_values("created_at", kind="stable")
    keep = np.unique(np.floor(np.arange(0, len(ordered), 1 / share)).astype(np.int64))
    return ordered.iloc[keep]


def make_folds(created: np.ndarray, n_train: int, n_folds: int) -> list[_Fold]:
    """Rolling-origin folds: rows [0, n_train) are the training window, the rest validation.

    Fold 1 is the run's own split. Fold k validates on the training rows of the validation
    window's length just before fold k-1's slice (cut at a creation time, so tickets created
    at the same instant stay together) and trains on every row before that.
    """
    rows = np.arange(created.size)
    folds = [_Fold(rows[:n_train], rows[n_train:])]
    past = created[:n_train]
    ordered = np.sort(past)
    length, upper = created.size - n_train, np.inf
    for k in range(1, n_folds):
        at = n_train - k * length
        if at <= 0:
            break
        cut = ordered[at]
        folds.append(_Fold(np.flatnonzero(past < cut), np.flatnonzero((past >= cut) & (past < upper))))
        upper = cut
    return folds


def choose(
    cfg: TrainConfig, train: pd.DataFrame, valid: pd.DataFrame, extras: Mapping[str, str],
    n_train: int | None = None,
) -> SearchResult:
    """Judge candidate structures on past windows of `train` + `valid`; the winner.

    `n_train` is the full training window's size when `train` is already a sample (the
    Dask engine): the configured structure is sized for it, as the final model will be.
    """
    budget: SearchConfig = cfg.model.search
    start = time.perf_counter()
    n_train = n_train or len(train)
    default = configured(cfg, n_train)
    share = min(1.0, budget.max_rows / (len(train) + len(valid)))
    train, valid = _evenly(train, share), _evenly(valid, share)
    n_rows = len(train) + len(valid)
    y = np.concatenate([train[LABEL].to_numpy(int), valid[LABEL].to_numpy(int)])
    created = pd.concat([train["created_at"], valid["created_at"]]).to_numpy(dtype="datetime64[ns]")
    folds = [
        f for f in make_folds(created.astype(np.int64), len(train), budget.folds)
        if _judgeable(y[f.train]) and _judgeable(y[f.valid])
    ]
    if len(folds) < 2:
        return SearchResult(
            default, "default", default, n_train,
            pd.DataFrame([{"name": "default", **default.values()}]),
            len(folds), n_rows, time.perf_counter() - start,
            skipped=f"fewer than 2 past windows hold {MIN_CLASS} tickets of each class",
        )
    builder = FeatureBuilder(cfg.features.model_copy(update={"min_level_count": 1}), extras)
    x = sp.vstack([builder.fit_transform(train), builder.transform(valid)], format="csr")
    columns = builder.categorical_columns  # contiguous, after the numeric columns
    judge = _Judge(
        cfg, x, y, folds,
        slice(columns[0], columns[-1] + 1) if columns else slice(0, 0),
        list(builder.one_hot.sizes),
        builder.feature_names.index("day_of_year") if "day_of_year" in builder.feature_names else None,
    )
    return _optimise(cfg, judge, default, n_train, n_rows, start)


def _judgeable(y: np.ndarray) -> bool:
    positives = int(y.sum())
    return min(positives, y.size - positives) >= MIN_CLASS


def _optimise(
    cfg: TrainConfig, judge: _Judge, default: Structure, n_train: int, n_rows: int, start: float
) -> SearchResult:
    budget = cfg.model.search
    named = named_candidates(default, n_train)
    ranges = {
        k: (
            min([low, *(s.params[k] for s in named.values())]),
            max([high, *(s.params[k] for s in named.values())]),
            log,
        )
        for k, (low, high, log) in RANGES.items()
    }
    pooling = sorted({*MIN_LEVEL_COUNTS, default.min_level_count})

    def structure(trial: optuna.Trial) -> Structure:
        params = {
            k: (trial.suggest_int(k, int(low), int(high), log=log) if k == "num_leaves"
                else trial.suggest_float(k, low, high, log=log))
            for k, (low, high, log) in ranges.items()
        }
        return Structure(
            trial.suggest_categorical("linear_offset", [True, False]),
            trial.suggest_categorical("min_level_count", pooling), params,
        )

    def objective(trial: optuna.Trial) -> float:
        s = structure(trial)
        aucs = []
        for fold in range(len(judge.folds)):
            aucs.append(judge.fold_auc(fold, s))
            trial.set_user_attr("folds", aucs)
            trial.report(aucs[-1], fold)
            if fold + 1 < len(judge.folds) and trial.should_prune():
                raise optuna.TrialPruned()
        return float(np.mean(aucs))

    seed = int(cfg.model.params.get("seed", 0))
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.PercentilePruner(PRUNE_PERCENTILE, n_startup_trials=len(named)),
    )
    for name, s in list(named.items())[: budget.trials]:
        study.enqueue_trial(s.values(), user_attrs={"name": name})
    study.optimize(objective, n_trials=budget.trials, timeout=budget.seconds)
    return _decide(study, judge, default, named, n_train, n_rows, start, budget.trials)


def _decide(
    study: optuna.Study, judge: _Judge, default: Structure, named: dict[str, Structure],
    n_train: int, n_rows: int, start: float, trials: int,
) -> SearchResult:
    """The best complete candidate if its mean gain over the default clears the margin, else
    the default. Each candidate's gain over the default is a column of the table."""
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    base = next(t for t in complete if t.user_attrs.get("name") == "default")
    gains = {t.number: np.subtract(t.user_attrs["folds"], base.user_attrs["folds"]) for t in complete}
    margin_ = _margin([d for n, d in gains.items() if n != base.number])
    rows = []
    for trial in study.trials:
        folds = trial.user_attrs.get("folds", [])
        rows.append({
            "name": trial.user_attrs.get("name", f"trial {trial.number}"),
            "state": trial.state.name.lower(),
            "mean_auc": float(np.mean(folds)) if trial in complete else np.nan,
            **{f"fold_{i + 1}_auc": a for i, a in enumerate(folds)},
            "gain": float(gains[trial.number].mean()) if trial in complete else np.nan,
            **trial.params,
        })
    best = max(complete, key=lambda t: (t.value, t is base))
    gain = float(gains[best.number].mean())
    if best is not base and gain > margin_:
        name = best.user_attrs.get("name", f"trial {best.number}")
        chosen = named[name] if name in named else Structure.from_values(best.params)
    else:
        name, chosen = "default", default
    return SearchResult(
        chosen, name, default, n_train, pd.DataFrame(rows), len(judge.folds), n_rows,
        time.perf_counter() - start, gain=gain, margin=margin_,
        timed_out=len(study.trials) < trials,
    )


def _margin(differences: list[np.ndarray]) -> float:
    """What the best candidate's mean gain over the default must clear: MARGIN_SE standard
    errors of a mean fold-by-fold difference, the variance pooled over every candidate (three
    folds alone give each candidate's own estimate two degrees of freedom), and MIN_GAIN."""
    if not differences:
        return MIN_GAIN
    folds = differences[0].size
    pooled = float(np.mean([np.var(d, ddof=1) for d in differences]))
    return max(MIN_GAIN, MARGIN_SE * float(np.sqrt(pooled / folds)))
