"""Scale-out on Dask: the training pipeline and batch scoring over a partitioned dataset.

Nothing here re-implements a pipeline step. The pure per-frame functions of the local engine
(`map_tickets`, `label_tickets`, `agent_history`, `customer_history`,
`FeatureBuilder.transform`, `snapshot_events`) run partition by partition; the shuffles that
make that exact (all events of a ticket, all tickets of an agent, then of a customer, in one
partition) are dask.dataframe's, and distributed training is `lightgbm.dask`. The result goes through
`train.finish`, so it is the same MLflow model, logged and registered the same way.

Only small things reach the client process: the vocabulary sample, validation labels and raw
scores, the test window (it is logged as the evaluation artifact) and the snapshot's
per-entity state.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
import scipy.sparse as sp
from dask.distributed import Client, Future, LocalCluster, futures_of, wait
from lightgbm.dask import DaskLGBMClassifier
from sklearn.metrics import roc_auc_score

from escpredict.config import ConfigError, LabelConfig, TrainConfig
from escpredict.contract import HISTORY_NAMES, LABEL, SCORING_FIELDS
from escpredict.ingest.loaders import load_agents
from escpredict.ingest.mapping import Mapping, load_mapping
from escpredict.ingest.validation import DataValidationError
from escpredict.labels.history import (
    agent_history,
    customer_history,
    fold_events,
    latest_known,
    snapshot_events,
    snapshot_from_events,
)
from escpredict.labels.maturity import Maturity, maturity
from escpredict.labels.rules import label_tickets
from escpredict.labels.split import check_both_classes
from escpredict.lifecycle.batch import score_frame
from escpredict.lifecycle.pyfunc import load_escalation_model
from escpredict.lifecycle.registry import ensure_experiment, use_store
from escpredict.lifecycle.stages import Stages
from escpredict.lifecycle.train import (
    Fitted,
    TrainResult,
    finish,
    fit_baseline,
    fit_levels,
    fit_season,
    ignored_counts,
    model_inputs,
    resolve_mapping,
    resolve_path,
    structure,
    yardsticks,
)
from escpredict.model.booster import booster_params
from escpredict.model.features import FeatureBuilder
from escpredict.model.offsets import Offset, margin, present, total
from escpredict.model.reference import PlainReference
from escpredict.scaleout.quantiles import exact_quantiles
from escpredict.scaleout.read import reading
from escpredict.scaleout.tickets import partitionwise, quarantined_rows, read_tickets

#: The vocabulary, category levels, seasonal and level offsets and logistic baseline are fitted on at
#: most this many training-window tickets, the best iteration is chosen on at most this many
#: validation tickets and the label-maturity horizon measured on at most this many
#: tickets (uniform samples): fitting n-gram vocabularies on tens of millions of texts
#: would need them on one process, and term frequencies, AUC and percentiles settle long
#: before that. Smaller windows are used whole, so results equal the local engine's.
FIT_SAMPLE_ROWS = 300_000

_SCORE_META = pd.DataFrame(
    {
        "ticket_id": pd.Series(dtype="str"),
        "probability": pd.Series(dtype="float64"),
        "risk_tier": pd.Series(dtype="str"),
        "route": pd.Series(dtype="str"),
    }
)


@contextmanager
def connect(scheduler: str | None = None, workers: int = 2, **cluster: Any) -> Iterator[Client]:
    """A client of an existing cluster (`scheduler` address), else of a LocalCluster.

    LocalCluster workers are processes: LightGBM's network layer is per process, so two
    workers sharing one process could not train together. Their logs are silenced below
    CRITICAL: a task's error reaches the client as an exception (a bad block of the export
    as one clear error), so a worker's own report of it would only repeat it as noise. The
    scheduler's HTTP routes take any free port: a second cluster on the machine is no warning.
    """
    if scheduler:
        with Client(scheduler) as client:
            yield client
        return
    options = {
        "threads_per_worker": 1, "dashboard_address": ":0", "silence_logs": logging.CRITICAL,
        **cluster,
    }
    with LocalCluster(n_workers=workers, processes=True, **options) as local, Client(local) as client:
        yield client


# -- data ----------------------------------------------------------------------------------
def window_columns(extras: dict[str, str]) -> list[str]:
    """What a training or evaluation window holds: model inputs, history and the label."""
    return [*SCORING_FIELDS, *extras, *HISTORY_NAMES, LABEL]


def _with_label(
    tickets: pd.DataFrame, cfg: LabelConfig, agents: pd.DataFrame | None, extras: dict[str, str]
) -> pd.DataFrame:
    """Only what later steps read: model inputs, resolution time and the derived label."""
    label = label_tickets(tickets, cfg, agents).to_numpy()
    return model_inputs(tickets, extras).assign(
        resolved_at=tickets["resolved_at"], **{LABEL: pd.array(label, "boolean")}
    )


def _with(frame: pd.DataFrame, columns: pd.DataFrame) -> pd.DataFrame:
    """Positional column assignment: partitions after a shuffle may repeat index values."""
    return frame.assign(**{name: columns[name].to_numpy() for name in columns})


def _agent_part(frame: pd.DataFrame, agents: pd.DataFrame | None, window: int) -> pd.DataFrame:
    return _with(frame, agent_history(frame, frame[LABEL], agents, window))


def _customer_part(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    return _with(frame, customer_history(frame, frame[LABEL]))[[*columns, "resolved_at"]]


def with_history(
    tickets: dd.DataFrame, cfg: TrainConfig, agents: pd.DataFrame | None,
    extras: dict[str, str] | None = None,
) -> dd.DataFrame:
    """Labels and point-in-time history for every ticket (open ones included, label NA).

    Agent columns are computed after shuffling by agent_id and customer columns after
    shuffling by customer_id: each depends only on its entity's tickets, so per-partition
    results equal those over the whole data.
    """
    extras = extras or {}
    window = cfg.features.recent_window_days
    labelled = partitionwise(tickets, _with_label, cfg.labels, agents, extras)
    by_agent = partitionwise(labelled.shuffle("agent_id"), _agent_part, agents, window)
    return partitionwise(by_agent.shuffle("customer_id"), _customer_part, window_columns(extras))


def persisted(client: Client, frame: dd.DataFrame) -> dd.DataFrame:
    """`frame` computed and held on the workers.

    A partition's error is raised here, in the stage that caused it, not by whichever later
    stage first reads that partition; data problems of every partition are raised together.
    """
    frame = client.persist(frame)
    futures = futures_of(frame)
    wait(futures)
    errors = [f.exception() for f in futures if f.status == "error"]
    if errors and all(isinstance(e, DataValidationError) for e in errors):
        raise DataValidationError([p for e in errors for p in e.problems])
    if errors:
        raise errors[0]
    return frame


def gathered(*frames: dd.DataFrame) -> Any:
    """Each frame on the client, its partitions sent one by one and joined here.

    ``compute`` would first join them on one worker, which then needs room for all of them
    beside its share of the data: at 2M tickets the snapshot's recent events (a third of
    the realistic profile's tickets, several streams each) did not fit a 2 GiB worker.
    """
    parts = dask.compute(*[frame.to_delayed() for frame in frames])
    joined = [
        pd.concat(chunks, ignore_index=True) if chunks else frame._meta
        for frame, chunks in zip(frames, parts, strict=True)
    ]
    return joined[0] if len(frames) == 1 else joined


def _sample(window: dd.DataFrame, n: int, rows: int) -> dd.DataFrame:
    """The whole window if it has at most `rows` tickets, else a uniform sample of about that."""
    return window if n <= rows else window.sample(frac=rows / n, random_state=7)


def labelled(
    every: dd.DataFrame, cut: Maturity, extras: dict[str, str] | None = None
) -> dd.DataFrame:
    """Mature resolved tickets only (what trains and evaluates), label as plain bool."""
    mature = ~every[LABEL].isna() & (every["created_at"] <= cut.cutoff)
    frame = every[mature][window_columns(extras or {})]
    return frame.assign(**{LABEL: frame[LABEL].astype(bool)})


# -- model matrices ------------------------------------------------------------------------
def _matrix(builder: FeatureBuilder, part: pd.DataFrame) -> sp.csr_matrix:
    """float32 values: a third less memory per non-zero, which bounds what a worker holds."""
    return builder.transform(part).astype(np.float32)


def _labels(part: pd.DataFrame) -> np.ndarray:
    return part[LABEL].to_numpy(dtype=np.int64)


def model_arrays(
    client: Client, window: dd.DataFrame, builder: FeatureBuilder
) -> tuple[da.Array, da.Array]:
    """X as a Dask Array of float32 scipy CSR chunks (one per non-empty partition), and y.

    The builder is broadcast to every worker once; lightgbm.dask takes CSR chunks as they are.
    """
    shared = client.scatter(builder, broadcast=True)
    n_features = len(builder.feature_names)
    meta = sp.csr_matrix((0, n_features), dtype=np.float32)
    x_parts, y_parts = [], []
    sizes = window.map_partitions(len).compute().tolist()
    for part, n in zip(window.to_delayed(), sizes, strict=True):
        if n:
            x = dask.delayed(_matrix)(shared, part)
            x_parts.append(da.from_delayed(x, (n, n_features), dtype=np.float32, meta=meta))
            y_parts.append(da.from_delayed(dask.delayed(_labels)(part), (n,), dtype=np.int64))
    return da.concatenate(x_parts), da.concatenate(y_parts)


def _scored(
    builder: FeatureBuilder, booster: Any, offsets: tuple[Offset, ...], baseline: Any,
    reference: PlainReference, part: pd.DataFrame, keep: list[str],
) -> pd.DataFrame:
    """`keep` columns plus the model's margin (calibration needs it), the baseline's
    probability and the plain reference's log-odds."""
    if not len(part):  # LightGBM refuses an empty matrix
        return part[keep].assign(_raw=np.empty(0), _baseline=np.empty(0), _reference=np.empty(0))
    x = builder.transform(part)
    return part[keep].assign(
        _raw=margin(booster, offsets, x), _baseline=baseline.predict_proba(x)[:, 1],
        _reference=reference.raw(part),
    )


# -- training ------------------------------------------------------------------------------
def run(
    cfg: TrainConfig,
    client: Client,
    tracking_uri: str | None = None,
    stages: Stages | None = None,
    run_name: str | None = None,
    fit_sample_rows: int = FIT_SAMPLE_ROWS,
) -> TrainResult:
    """`train.run` on a Dask cluster: same stages, same model, same registration.

    The at-creation model only: from an event export the open-ticket model is not built
    (``open_skipped``), and asking for it is refused before any work."""
    mapping = load_mapping(resolve_mapping(cfg.data.mapping))  # read once, used by every step
    open_skipped = _open_skipped(cfg, mapping)
    stages = stages or Stages(show=False)
    uri = use_store(tracking_uri or cfg.registry.tracking_uri)
    experiment_id = ensure_experiment(cfg.registry.experiment, uri)
    window_days = cfg.features.recent_window_days
    extras = mapping.extra_features()
    with stages.stage("load"):
        # Agents first: an event export's collapse needs their roles to skip dispatchers.
        agents_path = resolve_path(cfg.data.agents)
        agents = load_agents(agents_path, mapping) if agents_path else None
        source, quarantine = resolve_path(cfg.data.tickets), resolve_path(cfg.data.quarantine)
        with reading(source):
            loaded = read_tickets(source, mapping, agents, quarantine)
            tickets = persisted(client, loaded.tickets)
        n_quarantined = quarantined_rows(quarantine)
    with stages.stage("history"):
        every = persisted(client, with_history(tickets, cfg, agents, extras))
        del tickets  # every holds all the later stages read
        as_of = int(every.map_partitions(_latest_known, meta=(None, "int64")).max().compute())
    with stages.stage("snapshot"):
        cutoff = as_of - pd.Timedelta(days=window_days).value
        events = gathered(every.map_partitions(_snapshot_events, cutoff, meta=_EVENTS_META))
        snapshot = snapshot_from_events(fold_events(events, cutoff), as_of, agents, window_days)

    with stages.stage("split"):
        cut = _maturity(cfg, every, as_of, fit_sample_rows)
        windows, bounds, counts = _split(cfg, every, labelled(every, cut, extras), n_quarantined)
        counts |= ignored_counts(loaded.notes)
    train, valid, test = windows["train"], windows["valid"], windows["test"]

    with stages.stage("features"):
        sample, valid_sample = gathered(
            _sample(train, counts["n_train"], fit_sample_rows),
            _sample(valid, counts["n_valid"], fit_sample_rows),
        )
    # The structure is chosen on the samples, sized for the whole training window.
    cfg, searched = structure(cfg, stages, sample, valid_sample, extras, counts["n_train"])
    with stages.stage("features"):
        builder = FeatureBuilder(cfg.features, extras).fit(sample)
        x_sample, y_sample = builder.transform(sample), sample[LABEL].to_numpy(int)
        # From here on only the training matrix and the evaluation windows are needed: keep
        # those and let the full frame (texts of every ticket) go before LightGBM needs room.
        kept = client.persist([*model_arrays(client, train, builder), valid, test])
        wait(kept)
        x_train, y_train, valid, test = kept
        del every, train, windows
    with stages.stage("fit"):
        x_valid, y_valid = builder.transform(valid_sample), valid_sample[LABEL].to_numpy(int)
        season = fit_season(cfg, builder, x_sample, y_sample)
        levels = fit_levels(cfg, builder, x_sample, y_sample, x_valid, y_valid)
        params = booster_params(cfg.model, counts["n_train"])
        booster = fit_booster(
            cfg, client, x_train, y_train, x_valid, y_valid, present(season, levels),
            builder.categorical_columns,
        )
    with stages.stage("baseline"):
        baseline = fit_baseline(cfg, x_sample, y_sample, builder.one_hot)
    reference, suspected = yardsticks(stages, sample, valid_sample, extras)
    with stages.stage("scores"):
        models = client.scatter(
            [builder, booster, present(season, levels), baseline, reference], broadcast=True
        )
        valid_parts, test_parts = dask.compute(
            _score_parts(valid, models, [LABEL]),
            _score_parts(test, models, window_columns(extras)),
        )
        valid_scores = pd.concat(valid_parts, ignore_index=True)
        test_scores = pd.concat(test_parts, ignore_index=True)
    fitted = Fitted(
        builder=builder,
        booster=booster,
        season=season,
        levels=levels,
        snapshot=snapshot,
        y_valid=valid_scores[LABEL].to_numpy(int),
        raw_valid=valid_scores["_raw"].to_numpy(),
        test=test_scores.drop(columns=["_raw", "_baseline", "_reference"]).reset_index(drop=True),
        raw_test=test_scores["_raw"].to_numpy(),
        baseline_test=test_scores["_baseline"].to_numpy(),
        baseline_valid=valid_scores["_baseline"].to_numpy(),
        reference_test=test_scores["_reference"].to_numpy(),
        reference_valid=valid_scores["_reference"].to_numpy(),
        bounds=bounds,
        counts=counts,
        booster_params=params,
        maturity=cut,
        search=searched,
        suspects=suspected,
        warnings=_unlabelled_warning(counts["n_unlabelled_excluded"], counts["n_rows"]),
        open_skipped=open_skipped,
    )
    return finish(cfg, fitted, stages, uri, experiment_id, run_name)


#: Why a Dask run has no open-ticket model (issue 17: build the checkpoints, or say so).
NO_OPEN_MODEL = (
    "no open-ticket model: the Dask engine does not build checkpoints yet (each ticket's "
    "snapshots are cut from its whole event history); train with the local engine for it"
)


def _open_skipped(cfg: TrainConfig, mapping: Mapping) -> str:
    """The run's note that it trains no open-ticket model (event exports only); a config that
    asks for one (``open_tickets.enabled: true``) is refused in one line, before any work."""
    if cfg.open_tickets.enabled is False or mapping.events is None:
        return ""
    if cfg.open_tickets.enabled is True:
        raise ConfigError(f"open_tickets.enabled is true, but {NO_OPEN_MODEL}")
    return NO_OPEN_MODEL


_EVENTS_META = pd.DataFrame(
    {
        "stream": pd.Series(dtype="str"),
        "entity": pd.Series(dtype="str"),
        "time": pd.Series(dtype="int64"),
        "count": pd.Series(dtype="int64"),
    }
)


def _maturity(cfg: TrainConfig, every: dd.DataFrame, as_of: int, sample_rows: int) -> Maturity:
    """`maturity.maturity` on a uniform sample of at most `sample_rows` tickets.

    The very function the local engine calls, on creation and resolution times and labels
    only: a sample's dense span, 95th percentile and window counts (scaled by the sampling
    weight) are exact when the export fits, and within a fraction of a percent at 300,000.
    Dask's approximate quantile was 24% off on a few hundred escalations in four partitions.
    """
    times = every[["created_at", "resolved_at", LABEL]]
    n = int(times.shape[0].compute())
    sample = _sample(times, n, sample_rows).compute().reset_index(drop=True)
    return maturity(
        sample, sample[LABEL], cfg.labels.maturity_days, cfg.split.fractions,
        end=pd.Timestamp(as_of, tz="UTC"), weight=n / max(len(sample), 1),
    )


def _unlabelled_warning(n: int, n_rows: int) -> list[str]:
    """``rules.Unlabelled.describe`` without row numbers: each partition is labelled on its own
    (and held to labels.max_unlabelled_share on its own)."""
    if not n:
        return []
    text = (f"{n:,} resolved ticket(s) no label rule can judge are set aside like open "
            f"tickets ({n / n_rows:.2%} of {n_rows:,} tickets)")
    return [text]


def _latest_known(part: pd.DataFrame) -> pd.Series:
    return pd.Series([latest_known(part, part[LABEL])], dtype="int64")


def _snapshot_events(part: pd.DataFrame, cutoff: int) -> pd.DataFrame:
    return snapshot_events(part, part[LABEL], cutoff)


def _score_parts(window: dd.DataFrame, models: list[Future], keep: list[str]) -> list[Any]:
    """`_scored` per partition, delayed; the parts are joined on the client, not on a worker."""
    return [dask.delayed(_scored)(*models, part, keep) for part in window.to_delayed()]


def _split(
    cfg: TrainConfig, every: dd.DataFrame, frame: dd.DataFrame, n_quarantined: int = 0
) -> tuple[dict[str, dd.DataFrame], dict[str, str], dict[str, int]]:
    """Time windows at creation-time quantiles, exactly the local engine's cuts, with checks."""
    # The local engine's expressions (labels.split.window_masks), so the floats are the same.
    valid_q = 1 - cfg.split.valid_fraction - cfg.split.test_fraction
    test_q = 1 - cfg.split.test_fraction
    created = frame["created_at"]
    valid_start, test_start = exact_quantiles(created, [valid_q, test_q])
    windows = {
        "train": frame[created < valid_start],
        "valid": frame[(created >= valid_start) & (created < test_start)],
        "test": frame[created >= test_start],
    }
    stats = dask.compute(
        {
            name: (w.shape[0], w[LABEL].sum(), w["created_at"].min(), w["created_at"].max())
            for name, w in windows.items()
        },
        every.shape[0],
        (~every["resolved_at"].isna()).sum(),
        (~every[LABEL].isna()).sum(),
    )
    per_window, n_rows, n_resolved, n_known = stats
    for name, (n, n_escalated, _, _) in per_window.items():
        check_both_classes(name, int(n), int(n_escalated))
    bounds = {
        f"{name}_{edge}": str(value)
        for name, (_, _, low, high) in per_window.items()
        for edge, value in (("min", low), ("max", high))
    }
    n_labelled = sum(int(n) for n, *_ in per_window.values())
    counts = {
        "n_rows": int(n_rows) + n_quarantined,
        "n_quarantined": n_quarantined,
        "n_open_excluded": int(n_rows) - int(n_resolved),
        "n_unlabelled_excluded": int(n_resolved) - int(n_known),
        "n_immature_excluded": int(n_known) - n_labelled,
        "n_labelled": n_labelled,
        **{f"n_{name}": int(n) for name, (n, *_) in per_window.items()},
    }
    return windows, bounds, counts


def fit_booster(
    cfg: TrainConfig, client: Client, x_train: da.Array, y_train: da.Array,
    x_valid: sp.csr_matrix, y_valid: np.ndarray, offsets: tuple[Offset, ...] = (),
    categorical: list[int] | None = None,
) -> Any:
    """Distributed LightGBM from the offsets' start, cut back to where early stopping stops.

    lightgbm.dask has no early stopping (workers could disagree on when to stop), so all
    rounds are trained and `best_iteration` is found by replaying LightGBM's rule (stop
    after `early_stopping_rounds` rounds without a better validation AUC) on the
    validation sample.
    """
    params = {
        k: v for k, v in booster_params(cfg.model, x_train.shape[0]).items()
        if k not in ("num_threads", "n_jobs", "metric")
    }
    model = DaskLGBMClassifier(client=client, n_estimators=cfg.model.num_boost_round, **params)
    init_score = None if not offsets else x_train.map_blocks(
        lambda block: total(offsets, block), drop_axis=1, dtype=np.float64, meta=np.empty(0)
    )
    fitted = model.fit(
        x_train, y_train, init_score=init_score, categorical_feature=categorical or "auto"
    )
    booster = fitted.to_local().booster_
    booster.best_iteration = replay_early_stopping(
        booster, x_valid, y_valid, cfg.model.early_stopping_rounds, offsets
    )
    return booster


def replay_early_stopping(
    booster: Any, x: sp.csr_matrix, y: np.ndarray, patience: int,
    offsets: tuple[Offset, ...] = (),
) -> int:
    """The iteration `lgb.early_stopping(patience)` on AUC over (x, y) would have returned."""
    start = total(offsets, x)
    raw = np.zeros(x.shape[0]) if start is None else start
    best, best_auc = 0, -np.inf
    for i in range(booster.current_iteration()):
        raw += booster.predict(x, start_iteration=i, num_iteration=1, raw_score=True)
        auc = roc_auc_score(y, raw)
        if auc > best_auc:
            best, best_auc = i + 1, auc
        elif i + 1 - best >= patience:
            break
    return best


# -- scoring -------------------------------------------------------------------------------
def score_dataset(
    client: Client, input_path: Path, output_path: Path, model_uri: str,
    mapping: str | Mapping = "generic", tracking_uri: str | None = None,
    agents_path: Path | None = None,
) -> int:
    """Score an export of any supported format into a folder of Parquet files; returns
    tickets written. ``agents_path`` gives an event export's collapse its roles, as in
    training.

    The model is loaded once on the client and broadcast once to every worker, not
    shipped with each partition.
    """
    use_store(tracking_uri)
    mapping = load_mapping(mapping)  # read once, for the agents and the export
    agents = load_agents(agents_path, mapping) if agents_path else None
    model = client.scatter(load_escalation_model(model_uri), broadcast=True)
    with reading(Path(input_path)):
        parts = [
            dask.delayed(score_frame)(model, part)
            for part in read_tickets(input_path, mapping, agents).tickets.to_delayed()
        ]
        scores = dd.from_delayed(parts, meta=_SCORE_META, verify_meta=False)
        scores.to_parquet(str(output_path), write_index=False)
    return int(dd.read_parquet(str(output_path)).shape[0].compute())
