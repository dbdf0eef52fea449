"""``escpredict report``: score a ticket window, build the tables, render and log the report.

Orchestration only; the tables come from the pure functions of ``kpis``, ``fairness``,
``underescalation`` and ``drivers``, the HTML from ``render``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from time import perf_counter
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import yaml
from mlflow.tracking import MlflowClient

from escpredict.config import TrainConfig
from escpredict.contract import HISTORY_NAMES, LABEL
from escpredict.metrics import tenure_band
from escpredict.model import EscalationModel
from escpredict.pyfunc import load_escalation_model
from escpredict.registry import use_store
from escpredict.report import drivers, fairness, figures, kpis, neutral, underescalation
from escpredict.report.render import ReportContent, Table, figure_uri, render_html, write_tables
from escpredict.stages import Stages
from escpredict.train import EVAL_WINDOW_ARTIFACT, prepare

DEFAULT_MODEL = "models:/escalation-risk@champion"
#: Per-agent and per-cell groupings of the training-gap section: (file name, keys, title).
GROUPINGS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("gaps_by_agent", ("agent_id",), "By agent"),
    ("gaps_by_team_category", ("team", "category"), "By team × category"),
    ("gaps_by_tenure_category", ("tenure_band", "category"), "By tenure band × category"),
)
_UNKNOWN = "(unknown)"


@dataclass
class Options:
    """Sampling choices, reported in the HTML so readers know what the numbers rest on."""

    shap_rows: int = 2000  # random labelled tickets for the SHAP summary
    cell_rows: int = 50  # extra escalated tickets per flagged cell for its drivers
    profiles: int = 5  # agent profiles averaged for the agent-neutral expectation
    top_features: int = 15
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
) -> ReportResult:
    """Write ``report.html`` plus CSV/JSON tables under ``out`` and log them to the model's run.

    Without ``tickets`` the report covers the run's test window: the training export named
    in the run's config, from the first test-window creation time on.
    """
    start = perf_counter()
    options = options or Options()
    use_store(tracking_uri)
    model = load_escalation_model(model_uri)
    run_id = mlflow.models.get_model_info(model_uri).run_id
    cfg = _config(run_id, tickets, agents, mapping)
    prepared = prepare(cfg, Stages(show=False))
    window = prepared.tickets.assign(**{LABEL: prepared.labels})
    since = None if tickets is not None else _test_window_start(run_id)
    if since is not None:
        window = window[window["created_at"] >= since]
    frame = _report_frame(window, prepared.frame, prepared.agents)
    content = assemble(model, window, frame, options, _source(model_uri, run_id, tickets, since))
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    out_dir = Path(out) / f"report-{stamp}"
    files = write_tables(content.tables, out_dir / "tables")
    html = out_dir / "report.html"
    html.write_text(render_html(content), encoding="utf-8")
    if run_id:
        MlflowClient().log_artifacts(run_id, str(out_dir), artifact_path=f"reports/{stamp}")
    return ReportResult(html, files, run_id, len(window), perf_counter() - start)


def _config(run_id: str | None, tickets: Path | None, agents: Path | None,
            mapping: str | None) -> TrainConfig:
    """The run's data, label and feature settings (what ``prepare`` reads), with overrides.

    Only those sections are taken: they define the labels and history the model was
    trained with, and the rest of a logged config is not needed here.
    """
    logged = (
        yaml.safe_load(mlflow.artifacts.load_text(f"runs:/{run_id}/config/train.yaml"))
        if run_id else {}
    )
    cfg = TrainConfig.model_validate(
        {key: logged[key] for key in ("data", "labels", "features") if key in logged}
    )
    data = cfg.data.model_copy(update={
        key: value for key, value in
        (("tickets", tickets), ("agents", agents), ("mapping", mapping)) if value is not None
    })
    return cfg.model_copy(update={"data": data})


def _test_window_start(run_id: str | None) -> pd.Timestamp | None:
    if not run_id:
        raise FileNotFoundError("the model has no training run: pass --tickets")
    local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=EVAL_WINDOW_ARTIFACT)
    return pd.read_parquet(local, columns=["created_at"])["created_at"].min()


def _report_frame(window: pd.DataFrame, labelled: pd.DataFrame,
                  agents: pd.DataFrame | None) -> pd.DataFrame:
    """Resolved tickets of the window with outcomes, history, team and tenure band."""
    rows = window.index.intersection(labelled.index)
    frame = window.loc[rows].join(labelled.loc[rows, list(HISTORY_NAMES)])
    teams = agents.set_index("agent_id")["team"] if agents is not None else pd.Series(dtype=str)
    return frame.assign(
        escalated=frame[LABEL].astype(bool),
        resolution_hours=kpis.resolution_hours(frame),
        team=frame["agent_id"].map(teams).fillna(_UNKNOWN).astype(str),
        agent_id=frame["agent_id"].fillna(_UNKNOWN).astype(str),
        category=frame["category"].fillna(_UNKNOWN).astype(str),
        tenure_band=tenure_band(frame["agent_tenure_days"]).astype(str),
    )


def _source(model_uri: str, run_id: str | None, tickets: Path | None,
            since: pd.Timestamp | None) -> dict[str, str]:
    return {
        "Model": model_uri,
        "Training run": run_id or "(none)",
        "Tickets": str(tickets) if tickets else f"the run's test window (created from {since:%Y-%m-%d})",
        "Generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def assemble(model: EscalationModel, window: pd.DataFrame, frame: pd.DataFrame,
             options: Options, facts: dict[str, str]) -> ReportContent:
    """Score the resolved tickets and build every table, figure and finding of the report."""
    matrix = model.matrix(frame)
    frame = frame.assign(probability=model.proba_from_matrix(matrix))
    neutral_p = neutral.agent_neutral_probability(model, matrix, options.profiles, options.seed)
    scale = fairness.peer_scale(frame["escalated"], pd.Series(neutral_p))
    frame = frame.assign(expected=neutral_p * scale)

    window = window.assign(resolution_hours=kpis.resolution_hours(window))
    monthly = kpis.monthly_kpis(window)
    gaps = {name: fairness.observed_expected(frame, keys) for name, keys, _ in GROUPINGS}
    under = underescalation.under_escalation(frame, model.threshold)

    rng = np.random.default_rng(options.seed)
    sample_rows = frame.index[rng.permutation(len(frame))[: options.shap_rows]]
    flagged = _flagged_rows(frame, gaps, options.cell_rows, rng)
    shap_rows = sample_rows.union(pd.Index(np.concatenate([r for *_, r in flagged] or [[]])))
    shap_rows = frame.index[frame.index.isin(shap_rows)]
    sample = drivers.shap_sample(model, matrix[frame.index.get_indexer(shap_rows)], shap_rows)
    texts = (frame.loc[shap_rows, "subject"] + " " + frame.loc[shap_rows, "description"]).tolist()
    agent_cols = neutral.agent_columns(model.builder.feature_names)
    names = drivers.DisplayNames(model.builder.readable_names, drivers.word_counts(texts))

    summary = _subset(sample, sample_rows)
    top = drivers.top_features(summary.values, options.top_features)
    by_category = drivers.mean_abs_by(summary, frame["category"], top[:12], names)
    by_tenure = drivers.mean_abs_by(summary, frame["tenure_band"], top[:12], names)
    findings = [
        fairness.finding(keys, row, [drivers.short_name(n) for n in
                                     drivers.cell_drivers(sample, rows, names, agent_cols)])
        for keys, row, rows in flagged
    ]
    recognition = _recognition(gaps["gaps_by_agent"], under)
    facts = {
        **facts,
        "Tickets in window": f"{len(window):,} ({len(frame):,} resolved, "
                             f"{len(window) - len(frame):,} still open)",
        "Escalations": f"{int(frame['escalated'].sum()):,} observed; model expected "
                       f"{neutral_p.sum():,.0f} with a typical agent (expectations scaled by "
                       f"{scale:.2f} so the window as a whole is 1.0×)",
        "SHAP sample": f"{len(sample_rows):,} random resolved tickets for the summary, plus up to "
                       f"{options.cell_rows} escalated tickets per flagged cell "
                       f"({len(shap_rows):,} tickets in all)",
    }
    tables = {
        "kpis_monthly": Table("Monthly KPIs", monthly, max_rows=60),
        "drivers_by_category": Table("Mean |SHAP| by category", _long(by_category)),
        "drivers_by_tenure": Table("Mean |SHAP| by agent tenure band", _long(by_tenure)),
        **{name: Table(title, gaps[name], _GAP_NOTE) for name, _, title in GROUPINGS},
        "top_resolvers": Table("Agents resolving the most escalated tickets",
                               fairness.top_resolvers(frame)),
        "below_expected": Table("Agents below expected escalations", recognition,
                                "'possible under-escalation' repeats their status in section 5: "
                                "a low escalation count is only good news if held tickets went well."),
        "under_escalation": Table("Bad outcomes on held high-risk tickets, by agent", under, _GAP_NOTE),
    }
    sections = _sections(monthly, summary, top, names, by_category, by_tenure, gaps, findings,
                         under, model.threshold)
    return ReportContent("Escalation report", facts, sections, tables)


Flagged = tuple[dict[str, Any], pd.Series, pd.Index]


def _flagged_rows(frame: pd.DataFrame, gaps: dict[str, pd.DataFrame], per_cell: int,
                  rng: np.random.Generator) -> list[Flagged]:
    """(keys, O/E row, escalated tickets to explain) for every flagged group."""
    out: list[Flagged] = []
    for name, keys, _ in GROUPINGS:
        for _, row in gaps[name][gaps[name]["flag"]].iterrows():
            values = {key: row[key] for key in keys}
            mask = frame["escalated"].to_numpy().copy()
            for key, value in values.items():
                mask &= (frame[key] == value).to_numpy()
            rows = frame.index[mask]
            out.append((values, row, rows[rng.permutation(len(rows))[:per_cell]]))
    return out


_GAP_NOTE = (
    "ratio = observed / expected; 95% exact Poisson interval; 'above expected' when the whole "
    f"interval is above 1. Fewer than {fairness.MIN_TICKETS} tickets or under "
    f"{fairness.MIN_EXPECTED:g} expected: not enough data, no ratio."
)


def _subset(sample: drivers.ShapSample, rows: pd.Index) -> drivers.ShapSample:
    at = sample.index.get_indexer(rows)
    return drivers.ShapSample(rows, sample.values[at], sample.data[at], sample.base[at])


def _long(by_group: pd.DataFrame) -> pd.DataFrame:
    """group, n, feature, mean_abs_shap: one row per cell, the shape BI tools pivot best."""
    group = by_group.index.name
    return (
        by_group.reset_index()
        .melt(id_vars=[group, "n"], var_name="feature", value_name="mean_abs_shap")
        .sort_values([group, "mean_abs_shap"], ascending=[True, False])
        .reset_index(drop=True)
    )


def _recognition(by_agent: pd.DataFrame, under: pd.DataFrame) -> pd.DataFrame:
    """Agents significantly below expected escalations, with their under-escalation status."""
    below = by_agent[by_agent["status"] == fairness.BELOW].drop(columns="flag")
    held = under[["agent_id", "status"]].rename(columns={"status": "possible_under_escalation"})
    merged = below.merge(held, on="agent_id", how="left")
    merged["possible_under_escalation"] = merged["possible_under_escalation"].map(
        {fairness.ABOVE: "yes", fairness.NOT_ENOUGH: fairness.NOT_ENOUGH}
    ).fillna("no")
    return merged.sort_values("ratio", kind="stable").reset_index(drop=True)


def _figure(fig: Any, alt: str, caption: str) -> dict[str, str]:
    return {"uri": figure_uri(fig), "alt": alt, "caption": caption}


def _sections(
    monthly: pd.DataFrame, summary: drivers.ShapSample, top: np.ndarray, names: Any,
    by_category: pd.DataFrame, by_tenure: pd.DataFrame, gaps: dict[str, pd.DataFrame],
    findings: list[str], under: pd.DataFrame, threshold: float,
) -> list[dict[str, Any]]:
    recognised = gaps["gaps_by_agent"]
    recognised = recognised[recognised["status"] == fairness.BELOW]
    held_flags = under[under["flag"]]
    return [
        {
            "id": "kpis", "title": "KPIs over time",
            "intro": (
                "By calendar month (UTC) of ticket creation. Escalation rate and first-contact "
                "resolution (not escalated, not reopened, one agent) are shares of resolved "
                "tickets; 'resolved without escalation' is a share of all tickets created, so a "
                "growing backlog shows as a drop. Times are medians; CSAT means use answered "
                "surveys only."
            ),
            "figures": [_figure(figures.kpi_figure(monthly), "KPI trends", "Monthly KPIs.")],
            "tables": ["kpis_monthly"],
        },
        {
            "id": "drivers", "title": "What drives escalations",
            "intro": (
                "SHAP values split each ticket's predicted escalation log-odds into the part each "
                "feature contributed (exact TreeSHAP from the model). Red points are tickets where "
                "the feature is high or present; points right of zero pushed towards escalation. "
                "Text n-grams are named after the commonest word containing them."
            ),
            "figures": [
                _figure(figures.beeswarm_figure(summary, top, names), "SHAP summary",
                        f"Strongest {len(top)} features on {len(summary.index):,} random tickets."),
                _figure(figures.heatmap_figure(by_category, "Mean |SHAP| by category"),
                        "Drivers by category", "What matters most differs by category."),
                _figure(figures.heatmap_figure(by_tenure, "Mean |SHAP| by agent tenure band"),
                        "Drivers by tenure band", "Tenure band of the assigned agent at creation."),
            ],
            "tables": [],
        },
        {
            "id": "gaps", "title": "Training gaps",
            "intro": (
                "Each agent and each team × category and tenure × category cell is compared with "
                "what the model expected for its own tickets with a typical agent (the model's "
                "probability averaged over random agent profiles, so tenure and past record do "
                "not excuse or condemn anyone), scaled so the whole window is 1.0×. Flagged cells "
                "are significantly above expected; drivers are the features pushing hardest "
                "towards escalation on their escalated tickets."
            ),
            "findings": findings,
            "no_findings": "No agent or cell is significantly above expected.",
            "figures": [_figure(
                figures.ratio_figure(gaps["gaps_by_agent"], "agent_id", "Escalations vs expected, by agent"),
                "Agent ratios", "Red: significantly above expected; green: below; grey: within noise.")],
            "tables": [name for name, _, _ in GROUPINGS],
        },
        {
            "id": "recognition", "title": "Recognition",
            "intro": ("Who takes the hard tickets, and who escalates less than their tickets "
                      "would predict (check section 5 before praising a low count)."),
            "findings": [fairness.finding({"agent_id": row["agent_id"]}, row, [])
                         for _, row in recognised.iterrows()],
            "good": True,
            "no_findings": "No agent is significantly below expected.",
            "figures": [],
            "tables": ["top_resolvers", "below_expected"],
        },
        {
            "id": "under", "title": "Possible under-escalation",
            "intro": (
                "Held high-risk tickets: the model would have routed them to tier 2 on arrival "
                f"(p ≥ {threshold:.2f}, its routing threshold) but they were not escalated. "
                "They went badly when "
                f"reopened, rated CSAT ≤ {underescalation.LOW_CSAT:g}, or resolved more than "
                f"{underescalation.SLOW_FACTOR:g}× slower than the category's median "
                "non-escalated ticket. Each agent's bad outcomes are compared with all agents' "
                "held high-risk tickets in the same categories."
            ),
            "findings": [
                fairness.finding({"agent_id": row["agent_id"]}, row, [],
                                 "bad outcomes on held high-risk tickets")
                + f" (reopened {row['reopened']}, low CSAT {row['low_csat']}, slow {row['slow']})"
                for _, row in held_flags.iterrows()
            ],
            "no_findings": "No agent has significantly more bad outcomes on held high-risk tickets.",
            "figures": [],
            "tables": ["under_escalation"],
        },
    ]
