"""``escpredict report``: score a period's tickets, build the tables, render and log the report.

Orchestration only; the tables come from the pure functions of ``kpis``, ``fairness``,
``underescalation`` and ``drivers``, the HTML from ``render``.

By default the report covers every ticket of the model's data, not only its test window:
one test month shows one KPI point and leaves most agents with too few tickets to judge.
The model has seen the older tickets in training, which makes it sharper on them (its
predictions sit closer to their outcomes), so on those tickets a group's expected count
moves towards its observed count and ratios shrink towards 1.0×: the comparison gets more
cautious, not harsher. Expectations are rescaled separately on the training-period
tickets and on later ones, so each part is 1.0× on its own and a difference in the
model's level between them cannot flag anyone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from time import perf_counter
from typing import Any, NamedTuple

import mlflow
import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from escpredict.config import TrainConfig
from escpredict.contract import HISTORY_NAMES, LABEL
from escpredict.labels.maturity import Maturity
from escpredict.lifecycle.pyfunc import load_escalation_model
from escpredict.lifecycle.registry import logged_config, use_store
from escpredict.lifecycle.stages import Stages
from escpredict.lifecycle.train import EVAL_WINDOW_ARTIFACT, prepare
from escpredict.model.escalation import EscalationModel
from escpredict.model.metrics import TENURE_BANDS, tenure_band
from escpredict.report import (
    drivers,
    fairness,
    kpis,
    neutral,
    open_tickets,
    sections,
    underescalation,
)
from escpredict.report.period import Period, choose_period
from escpredict.report.render import TABLES_DIR, ReportContent, Table, render_html, write_tables

DEFAULT_MODEL = "models:/escalation-risk@champion"


class Grouping(NamedTuple):
    """One table of the training-gap section."""

    name: str  # file name under tables/
    keys: tuple[str, ...]
    title: str


#: Per-agent, per-team and per-cell tables of the training-gap section.
GROUPINGS: tuple[Grouping, ...] = (
    Grouping("gaps_by_agent", ("agent_id",), "By agent"),
    Grouping("gaps_by_team", ("team",), "By team"),
    Grouping("gaps_by_team_category", ("team", "category"), "By team × category"),
    Grouping("gaps_by_tenure_category", ("tenure_band", "category"), "By tenure band × category"),
)
_UNKNOWN = "(unknown)"


@dataclass
class Options:
    """Sampling choices, reported in the HTML so readers know what the numbers rest on."""

    shap_rows: int = 2000  # random labelled tickets for the SHAP summary
    cell_rows: int = 50  # extra escalated tickets per flagged cell for its drivers
    profiles: int = 5  # agent profiles averaged for the agent-neutral expectation
    top_fields: int = 15  # input fields in the SHAP summary
    heatmap_fields: int = 12  # input fields (rows) of the mean |SHAP| heatmaps
    heatmap_categories: int = 12  # categories by volume in the heatmap; the rest are "other"
    table_rows: int = 25  # rows of a per-agent or per-cell table shown in the HTML
    findings: int = 5  # flagged groups spelled out per table (strongest evidence first)
    seed: int = 0


@dataclass
class ReportResult:
    html: Path
    files: dict[str, Path]
    run_id: str | None
    n_tickets: int
    seconds: float


def build_report(
    model_uri: str = DEFAULT_MODEL,
    tickets: Path | None = None,
    agents: Path | None = None,
    mapping: str | None = None,
    out: Path = Path("reports"),
    tracking_uri: str | None = None,
    options: Options | None = None,
    since: date | None = None,
    until: date | None = None,
) -> ReportResult:
    """Write ``report.html`` plus CSV/JSON tables under ``out`` and log them to the model's run.

    The report covers the tickets created from ``since`` to ``until`` (whole UTC days, both
    included) of ``tickets``, by default every ticket of the export named in the run's config.
    """
    start = perf_counter()
    options = options or Options()
    use_store(tracking_uri)
    model = load_escalation_model(model_uri)
    run_id = mlflow.models.get_model_info(model_uri).run_id
    cfg = _config(run_id, tickets, agents, mapping)
    prepared = prepare(cfg, Stages(show=False))
    data = prepared.tickets.assign(**{LABEL: prepared.labels})
    window, period = choose_period(data, since, until, str(cfg.data.tickets))
    test_start = _test_window_start(run_id)
    frame = _report_frame(window, prepared.frame, prepared.agents, test_start)
    content = assemble(model, window, frame, options, period, prepared.maturity,
                       _source(model_uri, run_id, cfg.data.tickets, test_start))
    opened = open_tickets.section(model, prepared, cfg, options.table_rows)
    if opened is not None:
        content.sections.append(opened[0])
        content.tables.update(opened[1])
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    out_dir = Path(out) / f"report-{stamp}"
    files = write_tables(content.tables, out_dir / TABLES_DIR)
    html = out_dir / "report.html"
    html.write_text(render_html(content), encoding="utf-8")
    if run_id:
        MlflowClient().log_artifacts(run_id, str(out_dir), artifact_path=f"reports/{stamp}")
    return ReportResult(html, files, run_id, len(window), perf_counter() - start)


def _config(run_id: str | None, tickets: Path | None, agents: Path | None,
            mapping: str | None) -> TrainConfig:
    """The run's data, label, split and feature settings (what ``prepare`` reads), with
    overrides.

    Only those sections are taken: they define the labels (the maturity cut keeps the
    split's windows viable) and history the model was trained with, and the rest of a
    logged config is not needed here.
    """
    logged = logged_config(run_id)
    cfg = TrainConfig.model_validate(
        {key: logged[key] for key in ("data", "labels", "split", "features", "open_tickets")
         if key in logged}
    )
    data = cfg.data.model_copy(update={
        key: value for key, value in
        (("tickets", tickets), ("agents", agents), ("mapping", mapping)) if value is not None
    })
    return cfg.model_copy(update={"data": data})


def _test_window_start(run_id: str | None) -> pd.Timestamp | None:
    """First creation time of the run's test window; earlier tickets trained or calibrated it."""
    if not run_id:
        return None
    local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=EVAL_WINDOW_ARTIFACT)
    return pd.read_parquet(local, columns=["created_at"])["created_at"].min()


def _report_frame(window: pd.DataFrame, labelled: pd.DataFrame, agents: pd.DataFrame | None,
                  test_start: pd.Timestamp | None) -> pd.DataFrame:
    """Mature resolved tickets of the window (those ``labelled`` holds) with outcomes,
    history, team, tenure band and whether they fall in the model's training period
    (before its test window)."""
    rows = window.index.intersection(labelled.index)
    frame = window.loc[rows].join(labelled.loc[rows, list(HISTORY_NAMES)])
    teams = agents.set_index("agent_id")["team"] if agents is not None else pd.Series(dtype=str)
    in_training = (
        frame["created_at"] < test_start if test_start is not None
        else pd.Series(False, index=frame.index)
    )
    return frame.assign(
        escalated=frame[LABEL].astype(bool),
        resolution_hours=kpis.resolution_hours(frame),
        team=frame["agent_id"].map(teams).astype(object).fillna(_UNKNOWN).astype(str),
        agent_id=frame["agent_id"].fillna(_UNKNOWN).astype(str),
        category=frame["category"].fillna(_UNKNOWN).astype(str),
        tenure_band=tenure_band(frame["agent_tenure_days"]).astype(str),
        in_training_period=in_training.astype(bool),
    )


def _source(model_uri: str, run_id: str | None, tickets: Any,
            test_start: pd.Timestamp | None) -> dict[str, str]:
    return {
        "Model": model_uri,
        "Training run": run_id or "(none)",
        "Model's test window": (f"from {test_start:%Y-%m-%d %H:%M} UTC (--since it for an "
                                "out-of-sample report)" if test_start is not None else "unknown"),
        "Tickets": str(tickets),
        "Generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def mature_tickets(window: pd.DataFrame, cut: Maturity) -> pd.DataFrame:
    """The window's tickets created by ``cut``'s cutoff: those the KPIs count.

    Near the data's end the resolved tickets are mostly the quick, unescalated ones, which
    would read as a drop in escalations. Masking their labels alone would count them as
    open instead, a drop in resolved tickets; leaving them out keeps every KPI on the
    tickets training judges.
    """
    return window[cut.mature(window["created_at"])]


def assemble(model: EscalationModel, window: pd.DataFrame, frame: pd.DataFrame,
             options: Options, period: Period, maturity: Maturity,
             facts: dict[str, str]) -> ReportContent:
    """Score the resolved tickets and build every table, figure and finding of the report.

    ``frame`` holds the window's mature resolved tickets with a boolean
    ``in_training_period``; ``maturity`` is training's label-maturity cut.
    """
    matrix = model.matrix(frame)
    frame = frame.assign(probability=model.proba_from_matrix(matrix))
    neutral_p = pd.Series(
        neutral.agent_neutral_probability(model, matrix, options.profiles, options.seed),
        index=frame.index,
    )
    scale = fairness.peer_scale(frame["escalated"], neutral_p, frame["in_training_period"])
    frame = frame.assign(expected=neutral_p * scale)

    freq = kpis.kpi_frequency(period.start, period.end)
    counted = mature_tickets(window, maturity)
    kpi_table = kpis.period_kpis(
        counted.assign(resolution_hours=kpis.resolution_hours(counted)), freq
    )
    gaps = {g.name: fairness.observed_expected(frame, g.keys, unknown=_UNKNOWN) for g in GROUPINGS}
    under = underescalation.under_escalation(frame, model.threshold)

    rng = np.random.default_rng(options.seed)
    sample_rows = frame.index[rng.permutation(len(frame))[: options.shap_rows]]
    flagged = _flagged_rows(frame, gaps, options.cell_rows, options.findings, rng)
    shap_rows = sample_rows.union(pd.Index(np.concatenate([r for *_, r in flagged] or [[]])))
    shap_rows = frame.index[frame.index.isin(shap_rows)]
    sample = drivers.shap_sample(model, matrix[frame.index.get_indexer(shap_rows)], shap_rows)

    summary = drivers.subset(sample, sample_rows)
    top = drivers.top_fields(summary.values, options.top_fields)
    heat = top[: options.heatmap_fields]
    categories, order = drivers.top_levels(frame["category"], options.heatmap_categories)
    by_category = drivers.mean_abs_by(summary, categories, heat, order)
    by_tenure = drivers.mean_abs_by(summary, frame["tenure_band"], heat, TENURE_BANDS)
    findings = _findings(flagged, gaps, sample, summary, frame)
    recognition = _recognition(gaps["gaps_by_agent"], under)
    in_training = frame["in_training_period"]
    maturity_text = sections.maturity_note(maturity, len(window) - len(counted))
    still_open = int(window[LABEL].isna().sum())
    facts = {
        **facts,
        "Period": period.describe() + (f". {period.note}" if period.note else ""),
        "Tickets in period": f"{len(window):,} ({len(frame):,} resolved, "
                             f"{len(window) - len(frame) - still_open:,} resolved but too "
                             f"recent to judge, {still_open:,} still open)",
        "Label maturity": maturity_text,
        "Model's own tickets": (
            f"{int(in_training.sum()):,} of the resolved tickets were created before the model's "
            "test window, so they trained or calibrated it; on them the model knows the outcomes "
            "a little, which makes observed/expected ratios more cautious (closer to 1.0×), not "
            "harsher"
        ),
        "Escalations": f"{int(frame['escalated'].sum()):,} observed; model expected "
                       f"{neutral_p.sum():,.0f} with a typical agent (expectations scaled so the "
                       "training-period tickets and the later ones are each 1.0×)",
        "SHAP sample": f"{len(sample_rows):,} random resolved tickets for the summary, plus up to "
                       f"{options.cell_rows} escalated tickets per flagged cell "
                       f"({len(shap_rows):,} tickets in all)",
    }
    cut = options.table_rows
    tables = {
        "kpis": Table(f"{sections.FREQ_WORD[freq].title()} KPIs", kpi_table, max_rows=60),
        "drivers_by_category": Table("Mean |SHAP| by category", _long(by_category)),
        "drivers_by_tenure": Table("Mean |SHAP| by agent tenure band", _long(by_tenure)),
        **{g.name: Table(g.title, gaps[g.name], sections.GAP_NOTE, cut) for g in GROUPINGS},
        "top_resolvers": Table("Agents resolving the most escalated tickets",
                               fairness.top_resolvers(frame)),
        "below_expected": Table("Agents below expected escalations", recognition,
                                "'possible under-escalation' repeats their status in section 5: "
                                "a low escalation count is only good news if held tickets went well.",
                                cut),
        "under_escalation": Table("Bad outcomes on held high-risk tickets, by agent", under,
                                  sections.GAP_NOTE, cut),
    }
    layout = sections.layout(
        kpi_table, freq, summary, top, by_category, by_tenure, gaps["gaps_by_agent"],
        [g.name for g in GROUPINGS], findings, under, model.threshold, recognition,
        options.findings, " ".join(filter(None, [maturity_text, period.note])),
    )
    return ReportContent("Escalation report", facts, layout, tables)


#: (table name, group keys, O/E row, escalated tickets to explain) of a flagged group.
Flagged = tuple[str, dict[str, Any], pd.Series, pd.Index]


def _findings(flagged: list[Flagged], gaps: dict[str, pd.DataFrame], sample: drivers.ShapSample,
              summary: drivers.ShapSample, frame: pd.DataFrame) -> list[str]:
    """One line per spelled-out flagged group, and per table how many more it flags."""
    escalated = frame["escalated"]
    in_sample = escalated.loc[summary.index].to_numpy()
    baseline = (summary.values[in_sample].mean(axis=0) if in_sample.any()
                else np.zeros(summary.values.shape[1]))
    overall = frame[escalated]
    lines: list[str] = []
    for g in GROUPINGS:
        cells = [(keys, row, rows) for table, keys, row, rows in flagged if table == g.name]
        lines += [fairness.finding(keys, row,
                                   _cell_drivers(sample, frame, overall, rows, baseline, g.keys))
                  for keys, row, rows in cells]
        lines += sections.more(len(cells), int(gaps[g.name]["flag"].sum()), "above expected", g.name)
    return lines


def _cell_drivers(sample: drivers.ShapSample, frame: pd.DataFrame, overall: pd.DataFrame,
                  rows: pd.Index, baseline: np.ndarray, keys: tuple[str, ...]) -> list[str]:
    """Named fields pushing a flagged cell's escalated tickets, with a standout value.

    The agent's own record and the cell's own keys (its category, the same on every
    ticket) are left out: the comparison neutralises the first, the finding names the second.
    """
    def values(source: str, tickets: pd.DataFrame) -> pd.Series | None:
        return tickets[source] if source in tickets.columns else None

    return [
        drivers.describe_driver(sample.names[j], values(sample.sources[j], frame.loc[rows]),
                                values(sample.sources[j], overall))
        for j in drivers.cell_drivers(sample, rows, baseline, (*neutral.AGENT_COLUMNS, *keys))
    ]


def _flagged_rows(frame: pd.DataFrame, gaps: dict[str, pd.DataFrame], per_cell: int,
                  per_table: int, rng: np.random.Generator) -> list[Flagged]:
    """The ``per_table`` strongest flagged groups of each table, with tickets to explain."""
    out: list[Flagged] = []
    for name, keys, *_ in GROUPINGS:
        for _, row in gaps[name][gaps[name]["flag"]].head(per_table).iterrows():
            values = {key: row[key] for key in keys}
            mask = frame["escalated"].to_numpy().copy()
            for key, value in values.items():
                mask &= (frame[key] == value).to_numpy()
            rows = frame.index[mask]
            out.append((name, values, row, rows[rng.permutation(len(rows))[:per_cell]]))
    return out


def _long(by_group: pd.DataFrame) -> pd.DataFrame:
    """group, n, field, mean_abs_shap: one row per cell, the shape BI tools pivot best.

    Stacked from the index, not melted from columns: a field may share the group's name
    (the "category" field in the by-category table).
    """
    group = by_group.index.name
    long = (
        by_group.drop(columns="n").rename_axis(index=group, columns="field")
        .stack().rename("mean_abs_shap").reset_index()
    )
    long.insert(1, "n", by_group["n"].reindex(long[group]).to_numpy())
    order = {name: i for i, name in enumerate(by_group.index)}  # the heatmap's column order
    return long.sort_values([group, "mean_abs_shap"], ascending=[True, False],
                            key=lambda c: c.map(order) if c.name == group else c,
                            kind="stable").reset_index(drop=True)


def _recognition(by_agent: pd.DataFrame, under: pd.DataFrame) -> pd.DataFrame:
    """Agents significantly below expected escalations, with their under-escalation status."""
    below = by_agent[by_agent["status"] == fairness.BELOW].drop(columns="flag")
    held = under[["agent_id", "status"]].rename(columns={"status": "possible_under_escalation"})
    merged = below.merge(held, on="agent_id", how="left")
    merged["possible_under_escalation"] = merged["possible_under_escalation"].map(
        {fairness.ABOVE: "yes", fairness.NOT_ENOUGH: fairness.NOT_ENOUGH}
    ).fillna("no")
    return merged.sort_values("z", kind="stable").reset_index(drop=True)  # strongest first
