"""Training pipeline: export → labels → history → time split → features → model → MLflow.

``run`` is what ``escpredict train`` calls. Every choice comes from ``TrainConfig``; the
result is an MLflow run with metrics, plots and the evaluation window, and a registered
model version carrying the alias ``candidate``.
"""

from __future__ import annotations

import tempfile
import warnings
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

from escpredict.config import ModelConfig, TrainConfig
from escpredict.contract import HISTORY_NAMES, LABEL, SCORING_FIELDS
from escpredict.ingest.csvfile import ReadNotes
from escpredict.ingest.loaders import load_agents, load_tickets
from escpredict.ingest.mapping import load_mapping
from escpredict.labels.history import HistorySnapshot, build_snapshot, history_features
from escpredict.labels.maturity import Maturity, maturity
from escpredict.labels.rules import label_tickets, resolved, unlabelled
from escpredict.labels.split import time_split
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
from escpredict.model.calibration import Calibrator
from escpredict.model.escalation import EscalationModel
from escpredict.model.features import FeatureBuilder, OneHotCodes
from escpredict.model.level_offset import LevelOffset
from escpredict.model.metrics import cost_threshold, evaluate, segment_metrics, tenure_band
from escpredict.model.offsets import Offset, margin, present, total
from escpredict.model.season import SeasonalOffset

EVAL_WINDOW_ARTIFACT = "evaluation/test_window.parquet"


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
    extra: dict[str, Any] = field(default_factory=dict)
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


def declared_extras(mapping: str) -> dict[str, str]:
    """Extra at-creation features the mapping declares (name -> kind): the one place both
    engines learn which columns beyond the contract the model reads."""
    return load_mapping(mapping).extra_features()


def model_inputs(tickets: pd.DataFrame, extras: dict[str, str]) -> pd.DataFrame:
    """The columns a model reads, as scoring sends them: an optional whole number such as
    initial_tier is a float (NaN when missing), the type MLflow's signature can hold."""
    return tickets[[*SCORING_FIELDS, *extras]].astype({"initial_tier": "float64"})


def prepare(cfg: TrainConfig, stages: Stages) -> Prepared:
    """Load and validate the export, label it and compute history as of each creation time."""
    mapping = resolve_mapping(cfg.data.mapping)
    extras = declared_extras(mapping)
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
    return Prepared(frame, tickets, labels, agents, counts, cut, extras, warnings)


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


def booster_params(model: ModelConfig, n_train: int) -> dict[str, Any]:
    """LightGBM parameters for `n_train` training rows; keys set in `model.params` win.

    Fixed leaf sizes fit one data size only: 40 tickets per leaf suits 20k+ training rows
    but on a few thousand (a two-month export) leaves no room to split on a product seen
    ten times. Leaf and categorical-group minimums grow with the data (about 0.2% and 0.1%
    of rows) within bounds; fewer leaves for small data keep trees from memorising it.
    """
    sized = {
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
    return {**sized, **model.params, "metric": "auc"}


def fit_booster(
    cfg: TrainConfig, x_train: sp.csr_matrix, y_train: np.ndarray,
    x_valid: sp.csr_matrix, y_valid: np.ndarray, advance: Any,
    offsets: tuple[Offset, ...] = (), categorical: list[int] | None = None,
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
        booster_params(cfg.model, x_train.shape[0]),
        train_set,
        num_boost_round=cfg.model.num_boost_round,
        valid_sets=[valid_set],
        callbacks=[
            lgb.early_stopping(cfg.model.early_stopping_rounds, verbose=False),
            lambda env: advance(1),
        ],
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
    bounds: dict[str, str]
    counts: dict[str, int]
    maturity: Maturity
    booster_params: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


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

    with stages.stage("features"):
        builder = FeatureBuilder(cfg.features, prepared.extras)
        x_train = builder.fit_transform(split.train)
        x_valid, x_test = (builder.transform(p) for p in (split.valid, split.test))
    with stages.stage("fit", total=cfg.model.num_boost_round) as advance:
        season = fit_season(cfg, builder, x_train, y_train)
        levels = fit_levels(cfg, builder, x_train, y_train, x_valid, y_valid)
        offsets = present(season, levels)
        booster = fit_booster(
            cfg, x_train, y_train, x_valid, y_valid, advance, offsets, builder.categorical_columns
        )
    with stages.stage("baseline"):
        baseline = fit_baseline(cfg, x_train, y_train, builder.one_hot)
    with stages.stage("snapshot"):
        snapshot = build_snapshot(
            prepared.tickets, prepared.labels, prepared.agents, cfg.features.recent_window_days
        )
    sizes = {"n_train": len(split.train), "n_valid": len(split.valid), "n_test": len(split.test)}
    fitted = Fitted(
        builder=builder,
        booster=booster,
        season=season,
        levels=levels,
        snapshot=snapshot,
        y_valid=y_valid,
        raw_valid=margin(booster, offsets, x_valid),
        test=split.test,
        raw_test=margin(booster, offsets, x_test),
        baseline_test=baseline.predict_proba(x_test)[:, 1],
        baseline_valid=baseline.predict_proba(x_valid)[:, 1],
        bounds=split.bounds(),
        counts={**prepared.counts, **sizes},
        booster_params=booster_params(cfg.model, x_train.shape[0]),
        maturity=prepared.maturity,
        warnings=prepared.warnings,
    )
    return finish(cfg, fitted, stages, uri, experiment_id, run_name)


def finish(
    cfg: TrainConfig, fitted: Fitted, stages: Stages, uri: str, experiment_id: str,
    run_name: str | None,
) -> TrainResult:
    """Calibrate, pick the cost threshold, evaluate, log to MLflow and register `candidate`."""
    y_valid, y_test = fitted.y_valid, fitted.test[LABEL].to_numpy(int)
    with stages.stage("calibration"):
        calibrator = Calibrator().fit(
            np.asarray(fitted.raw_valid, dtype=np.float64), y_valid, cfg.model.calibration
        )
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
        model.tiers = cfg.routing.tiers_at(model.threshold)  # the route tier starts there

    with stages.stage("evaluate"):
        p_test = calibrator.apply(np.asarray(fitted.raw_test, dtype=np.float64))
        p_base = fitted.baseline_test
        metrics = evaluate(y_test, p_test, model.threshold)
        valid_metrics = evaluate(y_valid, p_valid, model.threshold)
        baseline_metrics = evaluate(y_test, p_base, model.threshold)
        baseline_valid_metrics = evaluate(y_valid, fitted.baseline_valid, model.threshold)
        yardstick = Yardstick.measure(y_valid, fitted.raw_valid, fitted.baseline_valid)
        segments = segment_metrics(
            y_test, p_test, _segments(fitted.test, cfg.segments), model.threshold
        )
        test_window = fitted.test.assign(probability=p_test)
        model.metadata = {
            "test_metrics": metrics,
            "threshold": model.threshold,
            "best_iteration": fitted.booster.best_iteration,
            "split": fitted.bounds,
            "counts": fitted.counts,
            "maturity": fitted.maturity.params(),
            "yardstick": yardstick.tags(),
        }

    with stages.stage("logging"):
        try:
            run_id, version = _log_run(
                cfg, uri, experiment_id, run_name, model, fitted, metrics, valid_metrics,
                baseline_metrics, baseline_valid_metrics, segments, test_window, stages.timings,
                (y_test, p_test, p_base),
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
        baseline_metrics=baseline_metrics,
        baseline_valid_metrics=baseline_valid_metrics,
        yardstick=yardstick,
        maturity=fitted.maturity,
        segments=segments,
        threshold=model.threshold,
        timings=dict(stages.timings),
        counts=fitted.counts,
        test_window=test_window,
        booster_params=fitted.booster_params,
        calibration=calibrator.method,
        warnings=fitted.warnings,
    )


def _flatten(prefix: str, value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(f"{prefix}.{key}" if prefix else str(key), item))
        return out
    return {prefix: value}


def _log_run(
    cfg: TrainConfig, uri: str, experiment_id: str, run_name: str | None,
    model: EscalationModel, fitted: Fitted, metrics: dict[str, float],
    valid_metrics: dict[str, float], baseline_metrics: dict[str, float],
    baseline_valid_metrics: dict[str, float], segments: pd.DataFrame, test_window: pd.DataFrame,
    timings: dict[str, float], curves: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> tuple[str, str]:
    y_test, p_test, p_base = curves
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
        mlflow.log_metrics(
            {f"test_{k}": v for k, v in metrics.items()}
            | {f"valid_{k}": v for k, v in valid_metrics.items()}
            | {f"baseline_test_{k}": v for k, v in baseline_metrics.items()}
            | {f"baseline_valid_{k}": v for k, v in baseline_valid_metrics.items()}
            | {k: float(v) for k, v in model.metadata["counts"].items()}
            | {f"time_{k}_s": v for k, v in timings.items()}
            | {"threshold": model.threshold, "best_iteration": float(model.booster.best_iteration)}
        )
        mlflow.log_dict(config, CONFIG_ARTIFACT)
        curves_by_model = {"lightgbm": (y_test, p_test), "logistic baseline": (y_test, p_base)}
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
        with tempfile.TemporaryDirectory() as tmp:
            window = Path(tmp) / "test_window.parquet"
            test_window.to_parquet(window)
            mlflow.log_artifact(str(window), "evaluation")
            example = test_window[list(SCORING_FIELDS) + list(HISTORY_NAMES)].head(3)
            # MLflow's datetime schema type is timezone-naive: send UTC wall time.
            example = example.assign(created_at=example["created_at"].dt.tz_convert(None))
            info = log_model(model, Path(tmp), example)
        run_id = active.info.run_id
    client = MlflowClient(uri)
    version = mlflow.register_model(info.model_uri, cfg.registry.model_name).version
    for key, value in {"run_id": run_id, **model.metadata["yardstick"]}.items():
        client.set_model_version_tag(cfg.registry.model_name, version, key, value)
    set_alias(client, cfg.registry.model_name, CANDIDATE, version)
    return run_id, str(version)
