"""Training pipeline: export → labels → history → time split → features → model → MLflow.

``run`` is what ``escpredict train`` calls. Every choice comes from ``TrainConfig``; the
result is an MLflow run with metrics, plots and the evaluation window, and a registered
model version carrying the alias ``candidate``.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightgbm as lgb
import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd
import scipy.sparse as sp
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from sklearn.exceptions import ConvergenceWarning
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, MaxAbsScaler

from escpredict.config import ConfigError, TrainConfig
from escpredict.contract import HISTORY_NAMES, LABEL, SCORING_FIELDS
from escpredict.ingest.csvfile import ReadNotes
from escpredict.ingest.loaders import load_agents, load_tickets
from escpredict.ingest.mapping import Mapping, load_mapping
from escpredict.labels.history import HistorySnapshot, build_snapshot, history_features
from escpredict.labels.leakage import Suspect, describe, input_fields, suspects
from escpredict.labels.maturity import Maturity, maturity
from escpredict.labels.rules import label_tickets, resolved, unlabelled
from escpredict.labels.split import Split, time_split
from escpredict.lifecycle import open_train
from escpredict.lifecycle.open_train import OpenFit
from escpredict.lifecycle.pyfunc import log_model
from escpredict.lifecycle.registry import (
    CANDIDATE,
    CONFIG_ARTIFACT,
    RegistryError,
    Yardstick,
    ensure_experiment,
    home,
    set_alias,
    use_store,
)
from escpredict.lifecycle.stages import Stages
from escpredict.model import plots
from escpredict.model.booster import booster_params, train_booster
from escpredict.model.calibration import Calibrator
from escpredict.model.escalation import EscalationModel
from escpredict.model.features import FeatureBuilder, OneHotCodes
from escpredict.model.level_offset import LevelOffset
from escpredict.model.metrics import cost_threshold, evaluate, segment_metrics, tenure_band
from escpredict.model.offsets import Offset, margin, present
from escpredict.model.reference import PlainReference
from escpredict.model.search import SearchResult, choose
from escpredict.model.season import SeasonalOffset

EVAL_WINDOW_ARTIFACT = "evaluation/test_window.parquet"
#: Every candidate the structure search judged, with its fold scores and switches.
SEARCH_ARTIFACT = "search/candidates.csv"
#: Tag naming the input fields that alone almost separate the labels (``labels.leakage``).
LEAK_TAG = "leakage_suspects"


@dataclass
class Prepared:
    """Labelled tickets with point-in-time history, plus what was set aside and why.

    ``labels`` are every known outcome (history uses them); ``frame`` holds only mature
    resolved tickets, those ``maturity.labels`` keeps.
    """

    frame: pd.DataFrame
    tickets: pd.DataFrame
    labels: pd.Series
    agents: pd.DataFrame | None
    counts: dict[str, int]
    maturity: Maturity
    extras: dict[str, str] = field(default_factory=dict)
    #: What was set aside or ignored that the user should know of, one sentence each.
    warnings: list[str] = field(default_factory=list)
    #: Event exports: the typed events of the tickets (checkpoints of open tickets).
    events: pd.DataFrame | None = None
    #: The mapping the export was read with (its event columns build the checkpoints).
    mapping: Mapping | None = None


@dataclass
class TrainResult:
    run_id: str
    model_version: str
    model_name: str
    metrics: dict[str, float]
    baseline_metrics: dict[str, float]
    baseline_valid_metrics: dict[str, float]
    yardstick: Yardstick
    maturity: Maturity
    segments: pd.DataFrame
    threshold: float
    timings: dict[str, float]
    counts: dict[str, int]
    test_window: pd.DataFrame
    #: LightGBM parameters the booster was trained with (size-aware defaults + config).
    booster_params: dict[str, Any] = field(default_factory=dict)
    #: Calibration method applied (``auto`` resolves to the one the window chose).
    calibration: str = ""
    #: The plain reference (``model.reference``), calibrated as the booster, on both windows.
    reference_metrics: dict[str, float] = field(default_factory=dict)
    reference_valid_metrics: dict[str, float] = field(default_factory=dict)
    #: What the structure search judged and chose; None when ``model.search`` is off.
    search: SearchResult | None = None
    #: Input fields that alone almost separate the labels (``labels.leakage``).
    suspects: list[Suspect] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    #: Open-ticket model, per age band on the test window beside the at-creation model
    #: (``open_train.evaluate``); None when the export has no events.
    open_bands: pd.DataFrame | None = None
    #: ... and on the validation window, what each band uses (``OpenFit.choice``).
    open_choice: pd.DataFrame | None = None
    open_notes: list[str] = field(default_factory=list)
    #: The at-creation model at creation with only what was known then (``point_in_time``).
    open_point_in_time: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def resolve_path(path: Path | None) -> Path | None:
    """A config's relative paths are relative to the project home (``$ESCPREDICT_HOME``, else
    the current folder), so a config file means the same wherever a command runs. Paths
    typed on the command line are made absolute by the CLI first: those mean the current
    folder."""
    return path if path is None or path.is_absolute() else home() / path


def resolve_mapping(mapping: str) -> str:
    """``data.mapping`` as a path under the project home when it is a relative path to a
    YAML file, not a mapping name (names are looked up in ``pipelines/mappings/``)."""
    path = Path(mapping)
    if path.suffix.lower() not in (".yaml", ".yml") or path.is_absolute():
        return mapping
    return str(home() / path)


def model_inputs(tickets: pd.DataFrame, extras: dict[str, str]) -> pd.DataFrame:
    """The columns a model reads, as scoring sends them: an optional whole number such as
    initial_tier is a float (NaN when missing), the type MLflow's signature can hold."""
    return tickets[[*SCORING_FIELDS, *extras]].astype({"initial_tier": "float64"})


def prepare(cfg: TrainConfig, stages: Stages) -> Prepared:
    """Load and validate the export, label it and compute history as of each creation time."""
    mapping = load_mapping(resolve_mapping(cfg.data.mapping))  # read once, used by every step
    extras = mapping.extra_features()
    with stages.stage("load"):
        # Agents first: an event export's collapse needs their roles to skip dispatchers.
        agents_path = resolve_path(cfg.data.agents)
        agents = load_agents(agents_path, mapping) if agents_path else None
        loaded = load_tickets(
            resolve_path(cfg.data.tickets),
            mapping=mapping,
            quarantine=resolve_path(cfg.data.quarantine),
            agents=agents,
        )
    tickets = loaded.tickets
    with stages.stage("labels"):
        labels = label_tickets(tickets, cfg.labels, agents)
        left = unlabelled(tickets, labels)
        cut = maturity(tickets, labels, cfg.labels.maturity_days, cfg.split.fractions)
        judged = cut.labels(labels, tickets["created_at"])
    with stages.stage("history"):
        history = history_features(tickets, labels, agents, cfg.features.recent_window_days)
    known, kept = labels.notna().to_numpy(), judged.notna().to_numpy()
    frame = pd.concat([model_inputs(tickets, extras), history], axis=1)[kept].copy()
    frame[LABEL] = judged[kept].astype(bool).to_numpy()
    counts = {
        "n_rows": len(tickets) + loaded.quarantined,
        "n_quarantined": loaded.quarantined,
        "n_open_excluded": int((~resolved(tickets)).sum()),
        "n_unlabelled_excluded": len(left.rows),
        "n_immature_excluded": int((known & ~kept).sum()),
        "n_labelled": len(frame),
    }
    counts |= ignored_counts(loaded.notes)
    warnings = [left.describe(cfg.labels.max_unlabelled_share)] if left.rows else []
    return Prepared(frame, tickets, labels, agents, counts, cut, extras, warnings, loaded.events,
                    mapping)


def ignored_counts(read: ReadNotes) -> dict[str, int]:
    """A spreadsheet's empty trailing columns and rows: ignored, and counted in the run."""
    return {name: n for name, n in (("n_empty_columns_ignored", read.empty_columns),
                                    ("n_blank_rows_ignored", read.blank_rows)) if n}


def fit_season(
    cfg: TrainConfig, builder: FeatureBuilder, x_train: sp.csr_matrix, y_train: np.ndarray
) -> SeasonalOffset | None:
    """The annual starting score, if configured and the training window spans the year."""
    if not cfg.model.seasonal_offset or "day_of_year" not in builder.feature_names:
        return None
    return SeasonalOffset.fit(x_train, y_train, builder.feature_names.index("day_of_year"))


def fit_levels(
    cfg: TrainConfig, builder: FeatureBuilder, x_train: sp.csr_matrix, y_train: np.ndarray,
    x_valid: sp.csr_matrix, y_valid: np.ndarray,
) -> LevelOffset | None:
    """The per-level starting score of the categorical fields, if configured."""
    if not cfg.model.linear_offset:
        return None
    return LevelOffset.fit(
        x_train, y_train, x_valid, y_valid, builder.categorical_columns, list(builder.one_hot.sizes)
    )


def fit_booster(
    cfg: TrainConfig, x_train: sp.csr_matrix, y_train: np.ndarray,
    x_valid: sp.csr_matrix, y_valid: np.ndarray, advance: Any,
    offsets: tuple[Offset, ...] = (), categorical: list[int] | None = None,
) -> lgb.Booster:
    """LightGBM with early stopping on the validation window, starting from the offsets,
    with the parameters ``booster_params`` sizes for the training window."""
    return train_booster(
        booster_params(cfg.model, x_train.shape[0]), x_train, y_train, x_valid, y_valid,
        cfg.model.num_boost_round, cfg.model.early_stopping_rounds, offsets, categorical,
        callbacks=[lambda env: advance(1)],
    )


#: The baseline is a yardstick, not the product, so its cost is capped twice: at most this
#: many rows (an evenly spaced sample) ...
BASELINE_MAX_ROWS = 100_000
#: ... and a fixed budget of L-BFGS iterations. Run to convergence, the iteration count grew
#: with the data (10k → 100k rows took 21× the time, beyond n log n); a fixed budget keeps
#: the cost linear in rows and, as early stopping, regularises: test AUC rose at every size
#: (0.692 → 0.696 at 10k, 0.756 → 0.770 at 30k, 0.774 → 0.791 at 100k).
BASELINE_ITERATIONS = 50


def fit_baseline(
    cfg: TrainConfig, x_train: sp.csr_matrix, y_train: np.ndarray, one_hot: OneHotCodes
) -> Pipeline:
    """Logistic regression on the same features, categoricals one-hot: what a simple model
    would achieve. It takes the booster's matrix; `one_hot` (``builder.one_hot``) expands it.

    Fitted on an evenly spaced sample of at most BASELINE_MAX_ROWS training rows, so it
    covers the whole training window whatever the row order, for exactly
    BASELINE_ITERATIONS iterations (tol=0), so stopping short is the intent, not a warning.
    """
    step = -(-x_train.shape[0] // BASELINE_MAX_ROWS)  # ceiling division
    # The slice is a fresh copy, so imputing and scaling it in place spares two more copies
    # of the training matrix (-12% stage time at 100k tickets); once fitted, the steps copy
    # again, so predicting never alters a caller's matrix.
    pipeline = make_pipeline(
        FunctionTransformer(one_hot, accept_sparse=True),
        # An optional field the export lacks is an all-missing column: kept (as 0), not
        # dropped with a warning, so the baseline sees the layout the booster sees.
        SimpleImputer(strategy="median", copy=False, keep_empty_features=True),
        MaxAbsScaler(copy=False),
        LogisticRegression(C=cfg.model.baseline_C, max_iter=BASELINE_ITERATIONS, tol=0.0),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipeline.fit(x_train[::step], y_train[::step])
    return pipeline.set_params(simpleimputer__copy=True, maxabsscaler__copy=True)


def _segments(frame: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    columns = {
        name: tenure_band(frame["agent_tenure_days"]) if name == "tenure_band" else frame[name]
        for name in names
    }
    return pd.DataFrame(columns, index=frame.index)


@dataclass
class Fitted:
    """What an engine produced; `finish` turns it into a logged, registered candidate.

    Scores are margins (booster raw score plus offsets), so the local and the Dask engine share calibration,
    threshold, evaluation and logging however their scores were computed.
    """

    builder: FeatureBuilder
    booster: lgb.Booster
    season: SeasonalOffset | None
    levels: LevelOffset | None
    snapshot: HistorySnapshot
    y_valid: np.ndarray
    raw_valid: np.ndarray
    test: pd.DataFrame  # test window: SCORING_FIELDS + HISTORY_NAMES + LABEL (+ segments)
    raw_test: np.ndarray
    baseline_test: np.ndarray  # logistic baseline probability on the test window
    baseline_valid: np.ndarray  # ... and on the validation window, its yardstick
    reference_test: np.ndarray  # the plain reference's log-odds on the test window
    reference_valid: np.ndarray  # ... and on the validation window, the other yardstick
    bounds: dict[str, str]
    counts: dict[str, int]
    maturity: Maturity
    booster_params: dict[str, Any] = field(default_factory=dict)
    search: SearchResult | None = None
    suspects: list[Suspect] = field(default_factory=list)
    #: What the data lost or the run worked around, said in words (printed and tagged).
    warnings: list[str] = field(default_factory=list)
    #: The open-ticket model and its test snapshots (event exports only) ...
    open: OpenFit | None = None
    #: ... or why an event export trained none.
    open_skipped: str = ""


def fit_model(
    cfg: TrainConfig, builder: FeatureBuilder, x_train: sp.csr_matrix, y_train: np.ndarray,
    x_valid: sp.csr_matrix, y_valid: np.ndarray, advance: Callable[[int], None] = lambda n: None,
) -> tuple[SeasonalOffset | None, LevelOffset | None, lgb.Booster]:
    """The at-creation model's seasonal and level offsets and its booster on these rows."""
    season = fit_season(cfg, builder, x_train, y_train)
    levels = fit_levels(cfg, builder, x_train, y_train, x_valid, y_valid)
    booster = fit_booster(
        cfg, x_train, y_train, x_valid, y_valid, advance, present(season, levels),
        builder.categorical_columns,
    )
    return season, levels, booster


def open_tickets_wanted(cfg: TrainConfig, prepared: Prepared) -> bool:
    """Whether this run trains the open-ticket model: on by default for event exports."""
    return cfg.open_tickets.enabled is not False and prepared.events is not None


def fit_open(
    cfg: TrainConfig, prepared: Prepared, stages: Stages, split: Split, builder: FeatureBuilder,
    x: dict[str, sp.csr_matrix], y: dict[str, np.ndarray],
    predict: Callable[[sp.csr_matrix], np.ndarray], scored: dict[str, np.ndarray],
) -> OpenFit | str:
    """Checkpoints of the labelled tickets, then the open-ticket model (``open_train``); or,
    when the export has too few open tickets for it, why not (the at-creation model still
    trains: it does not need them).

    ``x``/``y``: the at-creation matrices and labels by window; ``predict`` the fitted
    at-creation margin, ``scored`` its margins already computed on valid and test (with
    the agent). Each ticket gets two margins, with its agent and without (a snapshot
    taken before its first assignment must not know who that will be); on the training
    window both are cross-fitted.
    """
    frame = prepared.frame
    with stages.stage("checkpoints"):
        snaps, notes = open_train.snapshots(
            cfg, prepared.tickets.loc[frame.index], frame[LABEL], prepared.events,
            prepared.mapping, prepared.agents,
        )
    windows = pd.concat([
        pd.Series(name, index=getattr(split, name).index) for name in open_train.WINDOWS
    ])

    def refit(rows: np.ndarray) -> Callable[[sp.csr_matrix], np.ndarray]:
        parts = fit_model(cfg, builder, x["train"][rows], y["train"][rows], x["valid"], y["valid"])
        return lambda m: margin(parts[2], present(*parts[:2]), m)

    with stages.stage("open model"):
        alone = {w: builder.transform(open_train.without_agent(getattr(split, w)))
                 for w in open_train.WINDOWS}
        seed = int(cfg.model.params.get("seed", 7))
        train = open_train.crossfit(refit, [x["train"], alone["train"]], seed)
        margins = pd.concat([
            pd.DataFrame({"with_agent": train[0], "without_agent": train[1]},
                         index=split.train.index),
            *(pd.DataFrame({"with_agent": scored[w], "without_agent": predict(alone[w])},
                           index=getattr(split, w).index) for w in ("valid", "test")),
        ])
        try:
            opened = open_train.fit(cfg, snaps, windows, margins)
        except open_train.TooFewOpenTickets as exc:
            return f"no open-ticket model: {exc}"
    opened.notes[:0] = notes
    return opened


def structure(
    cfg: TrainConfig, stages: Stages, train: pd.DataFrame, valid: pd.DataFrame,
    extras: dict[str, str], n_train: int | None = None,
) -> tuple[TrainConfig, SearchResult | None]:
    """The configuration the run trains with: `cfg` as it is when ``model.search`` is off,
    else with the structure the search chose on past windows of train + valid."""
    if not cfg.model.search.trials:
        return cfg, None
    with stages.stage("search"):
        found = choose(cfg, train, valid, extras, n_train)
    return found.config(cfg), found


def yardsticks(
    stages: Stages, train: pd.DataFrame, valid: pd.DataFrame, extras: dict[str, str]
) -> tuple[PlainReference, list[Suspect]]:
    """The plain reference, fitted beside the product, and the fields that leak on their own."""
    y_train, y_valid = (part[LABEL].to_numpy(int) for part in (train, valid))
    with stages.stage("reference"):
        reference = PlainReference.fit(train, valid, extras)
        found = suspects(train, y_train, valid, y_valid, input_fields(extras))
    return reference, found


def run(
    cfg: TrainConfig,
    tracking_uri: str | None = None,
    stages: Stages | None = None,
    run_name: str | None = None,
) -> TrainResult:
    """Train, evaluate, log and register one candidate model."""
    stages = stages or Stages(show=False)
    uri = use_store(tracking_uri or cfg.registry.tracking_uri)
    experiment_id = ensure_experiment(cfg.registry.experiment, uri)
    prepared = prepare(cfg, stages)
    split = time_split(prepared.frame, cfg.split.valid_fraction, cfg.split.test_fraction)
    y_train, y_valid = (part[LABEL].to_numpy(int) for part in (split.train, split.valid))
    cfg, searched = structure(cfg, stages, split.train, split.valid, prepared.extras)

    with stages.stage("features"):
        builder = FeatureBuilder(cfg.features, prepared.extras)
        x_train = builder.fit_transform(split.train)
        x_valid, x_test = (builder.transform(p) for p in (split.valid, split.test))
    with stages.stage("fit", total=cfg.model.num_boost_round) as advance:
        season, levels, booster = fit_model(
            cfg, builder, x_train, y_train, x_valid, y_valid, advance
        )
        offsets = present(season, levels)
    with stages.stage("baseline"):
        baseline = fit_baseline(cfg, x_train, y_train, builder.one_hot)
    reference, suspected = yardsticks(stages, split.train, split.valid, prepared.extras)
    with stages.stage("snapshot"):
        snapshot = build_snapshot(
            prepared.tickets, prepared.labels, prepared.agents, cfg.features.recent_window_days
        )
    sizes = {"n_train": len(split.train), "n_valid": len(split.valid), "n_test": len(split.test)}
    raw_valid, raw_test = margin(booster, offsets, x_valid), margin(booster, offsets, x_test)
    opened: OpenFit | str | None = None
    if open_tickets_wanted(cfg, prepared):
        opened = fit_open(
            cfg, prepared, stages, split, builder,
            {"train": x_train, "valid": x_valid, "test": x_test},
            {"train": y_train, "valid": y_valid},
            lambda m: margin(booster, offsets, m), {"valid": raw_valid, "test": raw_test},
        )
    fitted = Fitted(
        builder=builder,
        booster=booster,
        season=season,
        levels=levels,
        snapshot=snapshot,
        y_valid=y_valid,
        raw_valid=raw_valid,
        test=split.test,
        raw_test=raw_test,
        baseline_test=baseline.predict_proba(x_test)[:, 1],
        baseline_valid=baseline.predict_proba(x_valid)[:, 1],
        reference_test=reference.raw(split.test),
        reference_valid=reference.raw(split.valid),
        bounds=split.bounds(),
        counts={**prepared.counts, **sizes},
        booster_params=booster_params(cfg.model, x_train.shape[0]),
        maturity=prepared.maturity,
        search=searched,
        suspects=suspected,
        warnings=prepared.warnings,
        open=opened if isinstance(opened, OpenFit) else None,
        open_skipped=opened if isinstance(opened, str) else "",
    )
    return finish(cfg, fitted, stages, uri, experiment_id, run_name)


def finish(
    cfg: TrainConfig, fitted: Fitted, stages: Stages, uri: str, experiment_id: str,
    run_name: str | None,
) -> TrainResult:
    """Calibrate, pick the cost threshold, evaluate, log to MLflow and register `candidate`.

    `cfg` is what the model trained with (the structure search's choice applied).
    """
    y_valid, y_test = fitted.y_valid, fitted.test[LABEL].to_numpy(int)
    with stages.stage("calibration"):
        calibrator = Calibrator().fit(
            np.asarray(fitted.raw_valid, dtype=np.float64), y_valid, cfg.model.calibration
        )
        # The reference is calibrated the same way, so its ECE compares with the booster's.
        plain = Calibrator().fit(fitted.reference_valid, y_valid, cfg.model.calibration)
        model = EscalationModel(
            builder=fitted.builder,
            booster=fitted.booster,
            calibrator=calibrator,
            snapshot=fitted.snapshot,
            season=fitted.season,
            levels=fitted.levels,
            threshold=0.5,
            tiers=dict(cfg.routing.tiers),
            route_queue=cfg.routing.route_queue,
            default_queue=cfg.routing.default_queue,
        )
        p_valid = calibrator.apply(np.asarray(fitted.raw_valid, dtype=np.float64))
        model.threshold = cost_threshold(
            y_valid, p_valid, cfg.costs.missed_escalation, cfg.costs.unnecessary_route
        )
        try:
            model.tiers = cfg.routing.tiers_at(model.threshold)  # the route tier starts there
        except ValueError as exc:
            # A leaked outcome makes the model so sure that the threshold passes the tiers.
            why = f"; the model is that sure because {describe(fitted.suspects)}" if fitted.suspects else ""
            raise ConfigError(f"{exc}{why}") from exc

    with stages.stage("evaluate"):
        p_test = calibrator.apply(np.asarray(fitted.raw_test, dtype=np.float64))
        curves = {
            "lightgbm": p_test,
            "logistic baseline": fitted.baseline_test,
            "plain reference": plain.apply(fitted.reference_test),
        }
        evaluated = {
            "test": evaluate(y_test, p_test, model.threshold),
            "valid": evaluate(y_valid, p_valid, model.threshold),
            "baseline_test": evaluate(y_test, fitted.baseline_test, model.threshold),
            "baseline_valid": evaluate(y_valid, fitted.baseline_valid, model.threshold),
            "reference_test": evaluate(y_test, curves["plain reference"], model.threshold),
            "reference_valid": evaluate(
                y_valid, plain.apply(fitted.reference_valid), model.threshold),
        }
        metrics = evaluated["test"]
        yardstick = Yardstick.measure(
            y_valid, fitted.raw_valid, fitted.baseline_valid, fitted.reference_valid
        )
        segments = segment_metrics(
            y_test, p_test, _segments(fitted.test, cfg.segments), model.threshold
        )
        test_window = fitted.test.assign(probability=p_test)
        open_bands = None
        if fitted.open is not None:
            open_bands, workload = open_train.evaluate(fitted.open, calibrator)
            model.open = fitted.open.model
            model.open.metadata = open_metadata(fitted.open, open_bands, workload)
            model.open.metadata["creation_point_in_time"] = open_train.point_in_time(
                fitted.open, calibrator)
        model.metadata = {
            "test_metrics": metrics,
            "threshold": model.threshold,
            "best_iteration": fitted.booster.best_iteration,
            "split": fitted.bounds,
            "counts": fitted.counts,
            "maturity": fitted.maturity.params(),
            "yardstick": yardstick.tags(),
        }
        if model.open is not None:
            model.metadata["counts"] |= fitted.open.counts

    with stages.stage("logging"):
        try:
            run_id, version = _log_run(
                cfg, uri, experiment_id, run_name, model, fitted, evaluated, segments,
                test_window, stages.timings, {name: (y_test, p) for name, p in curves.items()},
            )
        except MlflowException as exc:  # the alias moves last: a failure never half-promotes
            raise RegistryError(
                f"MLflow at {uri} failed while logging or registering the model; "
                f"the {CANDIDATE!r} alias was not moved: {exc}"
            ) from exc
    return TrainResult(
        run_id=run_id,
        model_version=version,
        model_name=cfg.registry.model_name,
        metrics=metrics,
        baseline_metrics=evaluated["baseline_test"],
        baseline_valid_metrics=evaluated["baseline_valid"],
        yardstick=yardstick,
        maturity=fitted.maturity,
        segments=segments,
        threshold=model.threshold,
        timings=dict(stages.timings),
        counts=fitted.counts,
        test_window=test_window,
        booster_params=fitted.booster_params,
        calibration=calibrator.method,
        reference_metrics=evaluated["reference_test"],
        reference_valid_metrics=evaluated["reference_valid"],
        search=fitted.search,
        suspects=fitted.suspects,
        warnings=fitted.warnings,
        open_bands=open_bands,
        open_choice=fitted.open.choice if fitted.open is not None else None,
        open_notes=fitted.open.notes if fitted.open is not None else (
            [fitted.open_skipped] if fitted.open_skipped else []),
        open_point_in_time=model.open.metadata["creation_point_in_time"]
        if model.open is not None else {},
    )


def open_metadata(opened: OpenFit, bands: pd.DataFrame, curves: pd.DataFrame) -> dict[str, Any]:
    """What the served model says about its open-ticket part: per band test metrics, its
    recall-at-workload curves (the report draws them) and what each band uses."""
    uses = opened.choice["uses"]
    return {
        "structure": opened.model.structure,
        "uses": {opened.model.band_names[b]: u for b, u in uses.items()},
        "test_bands": bands.reset_index().to_dict("records"),
        "workload_curves": curves.to_dict("records"),
        "notes": list(opened.notes),
    }


def _log_open(opened: OpenFit, model: EscalationModel) -> dict[str, float]:
    """Log the open-ticket model's choices; return per age band its and the at-creation
    model's test metrics (``open_test_<age>_<metric>``, ``creation_test_<age>_<metric>``)."""
    bands = pd.DataFrame(model.open.metadata["test_bands"])
    skip = {"band", "age", "uses"}
    metrics = {}
    for row in bands.to_dict("records"):
        for key, value in row.items():
            if key in skip or not np.isfinite(value):
                continue
            who, name = ("creation", key.removeprefix("creation_")) if key.startswith(
                "creation_") else ("open", key)
            metrics[f"{who}_test_{row['age']}_{name}"] = float(value)
    pit = model.open.metadata["creation_point_in_time"]
    metrics |= {f"creation_test_point_in_time_{k}": float(v) for k, v in pit.items()
                if np.isfinite(v)}
    mlflow.log_param("open_structure", opened.model.structure)
    fallback = [name for name, use in model.open.metadata["uses"].items() if use == "fallback"]
    mlflow.set_tag("open_fallback_bands", ",".join(fallback) or "none")
    mlflow.log_text(bands.to_csv(index=False), "evaluation/open_bands.csv")
    curves = pd.DataFrame(model.open.metadata["workload_curves"])
    mlflow.log_text(curves.to_csv(index=False), "evaluation/open_workload.csv")
    mlflow.log_text(opened.choice.to_csv(), "evaluation/open_choice.csv")
    return metrics


def _flatten(prefix: str, value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(f"{prefix}.{key}" if prefix else str(key), item))
        return out
    return {prefix: value}


def _log_run(
    cfg: TrainConfig, uri: str, experiment_id: str, run_name: str | None,
    model: EscalationModel, fitted: Fitted, evaluated: dict[str, dict[str, float]],
    segments: pd.DataFrame, test_window: pd.DataFrame, timings: dict[str, float],
    curves_by_model: dict[str, tuple[np.ndarray, np.ndarray]],
) -> tuple[str, str]:
    """`evaluated`: metrics by prefix (test, valid, baseline_test, ...); `curves_by_model`:
    (labels, probabilities) on the test window by model name, the product's first."""
    y_test, p_test = curves_by_model["lightgbm"]
    config = cfg.model_dump(mode="json")
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as active:
        mlflow.log_params(_flatten("", config))
        mlflow.log_params({f"split.{k}": v for k, v in fitted.bounds.items()})
        # What the booster actually used: size-aware values are not in the config.
        mlflow.log_params({f"booster.{k}": v for k, v in fitted.booster_params.items()})
        # Configured is not applied: a window shorter than a year trains without the offset.
        mlflow.log_param("seasonal_offset_applied", model.season is not None)
        if model.levels is not None:
            mlflow.log_param("linear_offset_C", model.levels.strength)
        mlflow.log_param("calibration_applied", model.calibrator.method)
        mlflow.log_params(model.metadata["maturity"])
        if fitted.warnings:  # what the data lost or the run worked around, in words
            mlflow.set_tag("data_warnings", "\n".join(fitted.warnings)[:5000])
        mlflow.set_tags(model.metadata["yardstick"])
        if fitted.suspects:
            mlflow.set_tag(LEAK_TAG, ", ".join(s.describe() for s in fitted.suspects))
        if fitted.search is not None:
            mlflow.log_params(fitted.search.params())
            mlflow.log_text(fitted.search.table.to_csv(index=False), SEARCH_ARTIFACT)
        metrics = (
            {f"{prefix}_{k}": v for prefix, found in evaluated.items() for k, v in found.items()}
            | {k: float(v) for k, v in model.metadata["counts"].items()}
            | {f"time_{k}_s": v for k, v in timings.items()}
            | {"threshold": model.threshold, "best_iteration": float(model.booster.best_iteration)}
        )
        mlflow.log_dict(config, CONFIG_ARTIFACT)
        for name, figure in (
            ("roc", plots.roc_figure(curves_by_model)),
            ("pr", plots.pr_figure(curves_by_model)),
            ("calibration", plots.calibration_figure(y_test, p_test)),
            ("importance", plots.importance_figure(
                model.builder.readable_names, model.booster.feature_importance("gain"))),
        ):
            mlflow.log_figure(figure, f"plots/{name}.png")
            plt.close(figure)
        mlflow.log_text(segments.to_csv(index=False), "evaluation/segments.csv")
        if fitted.open is not None and model.open is not None:
            metrics |= _log_open(fitted.open, model)
        with tempfile.TemporaryDirectory() as tmp:
            window = Path(tmp) / "test_window.parquet"
            test_window.to_parquet(window)
            mlflow.log_artifact(str(window), "evaluation")
            example = test_window[list(SCORING_FIELDS) + list(HISTORY_NAMES)].head(3)
            # MLflow's datetime schema type is timezone-naive: send UTC wall time.
            example = example.assign(created_at=example["created_at"].dt.tz_convert(None))
            info = log_model(model, Path(tmp), example)
        # After the model, naming it: one batch for the run and the model alike. Logged
        # before, MLflow copies each of the ~100 metrics to the model with a request of
        # its own (seconds against a tracking server).
        mlflow.log_metrics(metrics, model_id=info.model_id)
        run_id = active.info.run_id
    client = MlflowClient(uri)
    # MLflow prints "Successfully registered model ..." and "Created version ..." straight to
    # stderr; the training summary names the version, and failures raise.
    with contextlib.redirect_stderr(io.StringIO()):
        version = mlflow.register_model(info.model_uri, cfg.registry.model_name).version
    for key, value in {"run_id": run_id, **model.metadata["yardstick"]}.items():
        client.set_model_version_tag(cfg.registry.model_name, version, key, value)
    set_alias(client, cfg.registry.model_name, CANDIDATE, version)
    return run_id, str(version)
