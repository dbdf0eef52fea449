"""``escpredict`` command line: a thin typer layer over the pipeline modules."""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    help="Predict support-ticket escalations: sample data, training, promotion, scoring.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()

DEFAULT_CONFIG = Path("pipelines/train.yaml")
DEFAULT_SAMPLE_DIR = Path("data/sample")
#: MLflow's own switches: no progress bars, only its errors logged. Read when MLflow is
#: imported (after this), and inherited by server and Dask worker processes; a value the
#: user set wins, so `MLFLOW_LOGGING_LEVEL=INFO escpredict train` shows them again.
QUIET_MLFLOW = {"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false", "MLFLOW_LOGGING_LEVEL": "ERROR"}


@app.callback()
def quiet_mlflow() -> None:
    """Every command prints its own progress; MLflow's bars and warnings between those lines
    are noise a user cannot act on. Warnings from escpredict (and other libraries) still show."""
    for name, value in QUIET_MLFLOW.items():
        os.environ.setdefault(name, value)
    warnings.filterwarnings("ignore", module=r"mlflow(\.|$)")


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the pipeline's own input errors into one red message and exit code 2."""
    from escpredict.config import ConfigError
    from escpredict.ingest.loaders import DataReadError
    from escpredict.ingest.mapping import MappingError
    from escpredict.ingest.validation import DataValidationError
    from escpredict.labels.rules import LabelError
    from escpredict.labels.split import TrainingDataError
    from escpredict.lifecycle.promotion import PromotionError
    from escpredict.lifecycle.registry import RegistryError
    from escpredict.lifecycle.watch import WatchError
    from escpredict.model.escalation import OpenScoringError
    from escpredict.report.period import PeriodError

    try:
        yield
    except (
        ConfigError, DataReadError, DataValidationError, LabelError, TrainingDataError,
        PromotionError, RegistryError, PeriodError, MappingError, FileNotFoundError,
        WatchError, OpenScoringError,
    ) as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from exc


def _overrides(pairs: list[str]) -> dict[str, Any]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise typer.BadParameter(f"--set expects key=value, got {pair!r}")
        out[key.strip()] = yaml.safe_load(value)
    return out


def _here(path: Path | None) -> Path | None:
    """A path typed on the command line means the current folder, whatever
    ``$ESCPREDICT_HOME`` says (that one anchors the relative paths *inside* a config file)."""
    return None if path is None else path.absolute()


def _mapping_here(mapping: str | None) -> str | None:
    """``--mapping``: a name stays a name; a path to a YAML file means the current folder."""
    if mapping is None or Path(mapping).suffix.lower() not in (".yaml", ".yml"):
        return mapping
    return str(Path(mapping).absolute())


def _config_file(config: Path | None) -> Path | None:
    """``--config`` as typed (the current folder); left out, the project's
    ``pipelines/train.yaml`` under ``$ESCPREDICT_HOME`` (else the current folder) when it
    exists, else None: the built-in defaults, which equal the shipped file."""
    if config is not None:
        return config.absolute()
    from escpredict.lifecycle.registry import home

    default = home() / DEFAULT_CONFIG
    return default if default.is_file() else None


CONFIG_HELP = (
    "Pipeline YAML [default: pipelines/train.yaml in $ESCPREDICT_HOME or the current folder, "
    "else built-in defaults]."
)


@app.command("sample-data")
def sample_data(
    tickets: Annotated[
        int | None,
        typer.Option(min=1, help="Number of tickets [default: 50000, realistic 20000]."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same data).")] = 0,
    out: Annotated[Path, typer.Option(help="Output folder.")] = DEFAULT_SAMPLE_DIR,
    fmt: Annotated[str, typer.Option("--format", help="parquet, csv or jsonl.")] = "parquet",
    profile: Annotated[
        str, typer.Option(help="default, or realistic: an IT-support event log (see README).")
    ] = "default",
    days: Annotated[
        int | None,
        typer.Option(min=1, help="Window length in days (realistic only) [default: 91]."),
    ] = None,
) -> None:
    """Generate a sample export (tickets, agents; events for realistic) and the oracle file."""
    from escpredict.samples.profiles import PROFILES

    if profile not in PROFILES:
        raise typer.BadParameter(f"--profile must be one of {', '.join(PROFILES)}, got {profile!r}")
    if days is not None and profile != "realistic":
        raise typer.BadParameter("--days goes with --profile realistic")
    default_n = 50_000 if profile == "default" else 20_000
    write_sample(default_n if tickets is None else tickets, seed, out, fmt, profile, days)


def write_sample(
    n: int, seed: int, out: Path, fmt: str, profile: str = "default", days: int | None = None
) -> dict[str, Path]:
    from escpredict.lifecycle.stages import Stages
    from escpredict.samples.profiles import write_profile

    with Stages(console) as stages:
        paths = write_profile(profile, n, seed, out, fmt, stages, days)
    for name, path in paths.items():
        console.print(f"  {name:<8} {path}")
    return paths


SCORE_AGENTS_HELP = (
    "Agents table (overrides data.agents): an event export needs its roles to skip "
    "dispatchers, as in training."
)
ENGINE_HELP = "local, dask (an existing cluster: --scheduler) or dask-local (--workers)."
SCHEDULER_HELP = "Dask scheduler address, e.g. tcp://scheduler:8786 (with --engine dask)."
WORKERS_HELP = "LocalCluster worker processes (with --engine dask-local)."


@app.command()
def train(
    config: Annotated[Path | None, typer.Option(help=CONFIG_HELP)] = None,
    tickets: Annotated[Path | None, typer.Option(help="Ticket export (overrides data.tickets).")] = None,
    agents: Annotated[Path | None, typer.Option(help="Agents table (overrides data.agents).")] = None,
    mapping: Annotated[str | None, typer.Option(help="Column mapping name or YAML path.")] = None,
    quarantine: Annotated[Path | None, typer.Option(help="Write bad rows here instead of failing.")] = None,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI.")] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Override any config key: a.b=value.")
    ] = None,
    run_name: Annotated[str | None, typer.Option(help="MLflow run name.")] = None,
    engine: Annotated[str, typer.Option(help=ENGINE_HELP)] = "local",
    scheduler: Annotated[str | None, typer.Option(help=SCHEDULER_HELP)] = None,
    workers: Annotated[int, typer.Option(min=1, help=WORKERS_HELP)] = 2,
) -> None:
    """Train, evaluate and register a candidate model (alias `candidate`).

    Relative paths given here mean the current folder; those inside the config file mean
    the project home ($ESCPREDICT_HOME, else the current folder).
    """
    run_training(
        _config_file(config), _here(tickets), _here(agents), _mapping_here(mapping),
        _here(quarantine), tracking_uri, set_ or [], run_name, engine, scheduler, workers,
    )


@contextmanager
def dask_client(engine: str, scheduler: str | None, workers: int) -> Iterator[Any]:
    """The Dask client an engine choice asks for; flags that do not fit are refused."""
    if engine not in ("dask", "dask-local"):
        raise typer.BadParameter(f"--engine must be local, dask or dask-local, got {engine!r}")
    if (engine == "dask") != (scheduler is not None):
        raise typer.BadParameter("--scheduler goes with --engine dask (and only with it)")
    from escpredict.scaleout.dask_engine import connect

    with connect(scheduler, workers) as client:
        yield client


def run_training(
    config: Path | None, tickets: Path | None = None, agents: Path | None = None,
    mapping: str | None = None, quarantine: Path | None = None,
    tracking_uri: str | None = None, sets: list[str] = (), run_name: str | None = None,
    engine: str = "local", scheduler: str | None = None, workers: int = 2,
) -> Any:
    from escpredict.config import load_config
    from escpredict.lifecycle.stages import Stages
    from escpredict.lifecycle.train import run

    overrides = _overrides(list(sets))
    for key, value in (("data.tickets", tickets), ("data.agents", agents),
                       ("data.mapping", mapping), ("data.quarantine", quarantine)):
        if value is not None:
            overrides[key] = str(value)
    with user_errors():
        cfg = load_config(config, overrides)
        with Stages(console) as stages:
            if engine == "local":
                result = run(cfg, tracking_uri, stages, run_name)
            else:
                from escpredict.scaleout import dask_engine

                with dask_client(engine, scheduler, workers) as client:
                    result = dask_engine.run(cfg, client, tracking_uri, stages, run_name)
    from escpredict.lifecycle.summary import print_training_summary

    print_training_summary(console, result)
    return result


@app.command()
def check(
    tickets: Annotated[Path | None, typer.Option(help="Ticket export (overrides data.tickets).")] = None,
    mapping: Annotated[str | None, typer.Option(help="Column mapping name or YAML path.")] = None,
    agents: Annotated[
        Path | None,
        typer.Option(help="Agents table (default: data.agents, unless --tickets is given)."),
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="Pipeline YAML (label rules, split). " + CONFIG_HELP)
    ] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Override any config key: a.b=value.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Dry-run an export before training: rows refused, label-rule shares, rates, warnings.

    Exit code 1 when training would refuse the export; warnings alone exit 0.
    """
    import json

    from escpredict.config import load_config
    from escpredict.lifecycle.train import resolve_mapping, resolve_path
    from escpredict.onboard.check import check_export

    tickets, agents, mapping = _here(tickets), _here(agents), _mapping_here(mapping)
    overrides = _overrides(set_ or [])
    if tickets is not None:  # another export: the configured agents file is not its agents
        overrides["data.tickets"] = str(tickets)
        overrides["data.agents"] = str(agents) if agents is not None else None
    elif agents is not None:
        overrides["data.agents"] = str(agents)
    if mapping is not None:
        overrides["data.mapping"] = mapping
    with user_errors():
        cfg = load_config(_config_file(config), overrides)
    data = cfg.data
    report = check_export(
        resolve_path(data.tickets), resolve_mapping(data.mapping), resolve_path(data.agents), cfg
    )
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2, allow_nan=False))
    else:
        print_check_report(report)
    if not report.ok:
        raise typer.Exit(1)


def print_check_report(report: Any) -> None:
    """The check report as rich tables, findings last so they are what the user reads."""
    console.print(
        f"[bold]{report.tickets_path}[/] via mapping [bold]{report.mapping}[/]: "
        f"{report.rows_read:,} rows read → {report.tickets:,} tickets "
        f"({report.resolved:,} resolved, {report.open:,} open"
        + (f", {report.unlabelled:,} resolved but unlabelled" if report.unlabelled else "")
        + "); "
        f"{report.quarantined_rows:,} rows would be quarantined",
        highlight=False,
    )
    if report.read:
        console.print(report.read, highlight=False, soft_wrap=True)
    if report.quarantined_by_field:
        table = Table("field", "rows quarantined", title="Quarantine by field")
        for name, rows in report.quarantined_by_field.items():
            table.add_row(name, f"{rows:,}")
        console.print(table)
    if report.rules:
        table = Table("rule", "judges", "fires", "share", "only this rule",
                      title="Label rules on all resolved tickets")
        for r in [*report.rules, report.combined]:
            share = "—" if r.share is None else f"{r.share:.1%}"
            only = "" if r.only is None else f"{r.only:,}"
            table.add_row(r.rule, f"{r.judged:,}", f"{r.fired:,}", share, only)
        console.print(table)
    for title, rates in (("Escalation rate by month", report.months),
                         ("Escalation rate by split window", report.windows)):
        if rates:
            table = Table("period", "from", "to", "tickets", "labelled", "escalated", "rate",
                          title=title)
            for r in rates:
                rate = "—" if r.rate is None else f"{r.rate:.1%}"
                table.add_row(r.period, r.start[:10], r.end[:10], f"{r.tickets:,}",
                              f"{r.labelled:,}", f"{r.escalated:,}", rate)
            console.print(table)
    if report.maturity:
        console.print(report.maturity.describe(), highlight=False, soft_wrap=True)
        table = Table("window", "labelled, no cut", "escalated", "kept by the cut", "escalated",
                      title="What the label-maturity cut keeps per window")
        for w in report.maturity.windows:
            table.add_row(w.window, f"{w.tickets_without:,}", _share(w.escalated_without,
                          w.tickets_without), f"{w.tickets:,}", _share(w.escalated, w.tickets))
        console.print(table)
    if report.columns_mapped:
        table = Table("field", "export column", "filled", title="Columns mapped")
        for c in report.columns_mapped:
            table.add_row(c.field, c.source, f"{c.filled:.0%}")
        console.print(table)
    for label, names in (("fields with no values", report.fields_empty),
                         ("export columns unused", report.columns_unused)):
        if names:
            console.print(f"{label}: {', '.join(names)}", highlight=False, soft_wrap=True)
    styles = {"error": "bold red", "warning": "yellow", "info": "cyan"}
    for f in sorted(report.findings, key=lambda f: list(styles).index(f.level)):
        cause = f"\n    [dim]{f.cause}[/]" if f.cause else ""
        console.print(f"[{styles[f.level]}]{f.level}:[/] {f.message}{cause}",
                      highlight=False, soft_wrap=True)


def _share(part: int, whole: int) -> str:
    return f"{part:,} ({part / whole:.1%})" if whole else "—"


@app.command()
def promote(
    model_name: Annotated[str, typer.Option(help="Registered model name.")] = "escalation-risk",
    metric: Annotated[str, typer.Option(help="roc_auc or pr_auc.")] = "roc_auc",
    margin: Annotated[float, typer.Option(help="Required gain over the champion.")] = 0.002,
    force: Annotated[bool, typer.Option(help="Promote regardless of metrics.")] = False,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI.")] = None,
) -> None:
    """Move alias `champion` to the candidate if it beats the champion; say why either way."""
    from escpredict.lifecycle.promotion import promote as do_promote

    with user_errors():
        outcome = do_promote(model_name, metric, margin, force, tracking_uri)
    colour = "green" if outcome.promoted else "yellow"
    console.print(f"[{colour}]{outcome.reason}[/]", highlight=False)


@app.command()
def score(
    input_path: Annotated[Path, typer.Argument(help="Ticket export to score.")],
    output_path: Annotated[Path, typer.Argument(help="Where to write scores (.parquet or .csv).")],
    model: Annotated[str, typer.Option(help="Model URI.")] = "models:/escalation-risk@champion",
    mapping: Annotated[
        str | None, typer.Option(help="Column mapping name or YAML path (overrides data.mapping).")
    ] = None,
    agents: Annotated[Path | None, typer.Option(help=SCORE_AGENTS_HELP)] = None,
    config: Annotated[
        Path | None,
        typer.Option(help="Pipeline YAML: data.mapping and data.agents as in training. "
                     + CONFIG_HELP),
    ] = None,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI.")] = None,
    engine: Annotated[str, typer.Option(help=ENGINE_HELP + " Dask writes a Parquet folder.")] = "local",
    scheduler: Annotated[str | None, typer.Option(help=SCHEDULER_HELP)] = None,
    workers: Annotated[int, typer.Option(min=1, help=WORKERS_HELP)] = 2,
    reasons: Annotated[
        int, typer.Option(min=0, help="Top K reasons per ticket, as JSON text (local engine).")
    ] = 0,
) -> None:
    """Batch-score an export: probability, risk tier and route (and reasons) per ticket."""
    from escpredict.config import load_config
    from escpredict.lifecycle.batch import needs_agent_roles, score_file, trained_agents
    from escpredict.lifecycle.registry import use_store
    from escpredict.lifecycle.train import resolve_mapping, resolve_path

    input_path, output_path, agents = _here(input_path), _here(output_path), _here(agents)
    # data.tickets is the scored export, so the sample's agents go only with the sample's
    # tickets, exactly as `train --tickets` resolves them.
    overrides = {"data.tickets": str(input_path)}
    if mapping is not None:
        overrides["data.mapping"] = _mapping_here(mapping)
    with user_errors():
        data = load_config(_config_file(config), overrides).data
        mapping = resolve_mapping(data.mapping)
        agents = agents if agents is not None else resolve_path(data.agents)
        if engine == "local":
            if agents is None and needs_agent_roles(mapping):
                use_store(tracking_uri)
                trained = trained_agents(model)
                if trained is not None:  # else training could not tell them apart either
                    console.print(
                        f"[bold yellow]warning:[/] no agents table, and the {mapping} mapping "
                        "gives assignees no role: coordinators and dispatchers cannot be "
                        "recognised, so one who only routed a ticket is scored as its agent; "
                        f"the model was trained with {trained}: pass --agents {trained}",
                        highlight=False, soft_wrap=True,
                    )
            written = score_file(
                input_path, output_path, model, mapping, tracking_uri, reasons, agents
            )
        elif reasons:
            raise typer.BadParameter("--reasons needs --engine local", param_hint="--reasons")
        else:
            from escpredict.scaleout.dask_engine import score_dataset

            with dask_client(engine, scheduler, workers) as client:
                written = score_dataset(
                    client, input_path, output_path, model, mapping, tracking_uri, agents
                )
    console.print(f"scored {written:,} tickets → {output_path}")


@app.command()
def watch(
    tickets: Annotated[Path, typer.Option(help="Event export (one row per update).")],
    as_of: Annotated[datetime | None, typer.Option(
        "--as-of", formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"],
        help="The moment to watch, UTC (default: the export's last event).")] = None,
    mapping: Annotated[
        str | None, typer.Option(help="Column mapping name or YAML path (overrides data.mapping).")
    ] = None,
    agents: Annotated[Path | None, typer.Option(help=SCORE_AGENTS_HELP)] = None,
    model: Annotated[str, typer.Option(help="Model URI.")] = "models:/escalation-risk@champion",
    out: Annotated[Path, typer.Option(help="The ranked list (.csv or .parquet).")] = Path(
        "watchlist.csv"),
    top: Annotated[int, typer.Option(min=0, help="Tickets printed.")] = 10,
    reasons: Annotated[int, typer.Option(min=0, help="Top K reasons per ticket.")] = 3,
    quarantine: Annotated[Path | None, typer.Option(
        help="Set tickets with bad rows aside here instead of failing.")] = None,
    config: Annotated[Path | None, typer.Option(help=CONFIG_HELP)] = None,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI.")] = None,
) -> None:
    """Rank every ticket open and not yet escalated at --as-of by its risk of escalating next."""
    import pandas as pd

    from escpredict.config import load_config
    from escpredict.lifecycle.train import resolve_mapping, resolve_path
    from escpredict.lifecycle.watch import watch_file

    tickets, out = _here(tickets), _here(out)
    overrides = {"data.tickets": str(tickets)}
    if mapping is not None:
        overrides["data.mapping"] = _mapping_here(mapping)
    moment = None if as_of is None else pd.Timestamp(as_of, tz="UTC")
    with user_errors():
        data = load_config(_config_file(config), overrides).data
        roster = _here(agents) if agents is not None else resolve_path(data.agents)
        table, moment = watch_file(
            tickets, out, model, resolve_mapping(data.mapping), moment, roster, tracking_uri,
            reasons, _here(quarantine),
        )
    print_watch(table.head(top), moment, len(table), out)


def print_watch(top: Any, moment: Any, total: int, out: Path) -> None:
    """The top of a watch list: rank, ticket, risk, age, status, queue and its first reason."""
    import json

    from escpredict.model.open_ticket import hours_text

    table = Table("#", "ticket", "risk", "age", "status", "queue", "top reason",
                  title=f"Open tickets most likely to escalate, as of {moment:%Y-%m-%d %H:%M} UTC")
    for row in top.to_dict("records"):
        first = json.loads(row["reasons"])[:1] if "reasons" in row else []
        table.add_row(
            str(row["rank"]), str(row["ticket_id"]), f"{row['probability']:.0%}",
            hours_text(row["age_hours"]), str(row["status_now"] or ""), str(row["queue_now"] or ""),
            first[0]["text"] if first else "",
        )
    console.print(table)
    console.print(f"{total:,} open tickets ranked → {out}")


@app.command()
def serve(
    model: Annotated[str | None, typer.Option(help="Model URI (default: models:/escalation-risk@champion).")] = None,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI.")] = None,
    no_auth: Annotated[bool, typer.Option("--no-auth", help="Serve without API keys (demo only).")] = False,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
) -> None:
    """Real-time scoring API for triage bots (keys: ESCPREDICT_API_KEYS, see serving/README.md)."""
    from escpredict.service.server import serve as run_server

    with user_errors():
        run_server(model, host, port, tracking_uri, no_auth, workers)


@app.command()
def report(
    model: Annotated[str, typer.Option(help="Model URI (alias or version).")] = "models:/escalation-risk@champion",
    tickets: Annotated[Path | None, typer.Option(help="Ticket export (default: the training run's).")] = None,
    agents: Annotated[Path | None, typer.Option(help="Agents table (default: the run's).")] = None,
    mapping: Annotated[str | None, typer.Option(help="Column mapping name or YAML path.")] = None,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("reports"),
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI.")] = None,
    since: Annotated[datetime | None, typer.Option(
        formats=["%Y-%m-%d"], help="First day covered, UTC (default: the data's first).")] = None,
    until: Annotated[datetime | None, typer.Option(
        formats=["%Y-%m-%d"], help="Last day covered, UTC, included (default: the data's last).")] = None,
) -> None:
    """Manager report: KPIs, escalation drivers, fair per-agent comparisons (HTML + CSV/JSON)."""
    from escpredict.report.build import build_report

    with user_errors():
        result = build_report(model, _here(tickets), _here(agents), _mapping_here(mapping),
                              out, tracking_uri,
                              since=since.date() if since else None,
                              until=until.date() if until else None)
    console.print(f"report for {result.n_tickets:,} tickets in {result.seconds:.1f}s → {result.html}")


@app.command()
def demo(
    tickets: Annotated[int, typer.Option(help="Sample tickets to generate.")] = 30_000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    examples: Annotated[int, typer.Option(help="Example tickets to score and print.")] = 5,
) -> None:
    """The whole product on the embedded sample: data → train → promote → score examples."""
    from escpredict.demo import run_demo

    with user_errors():
        run_demo(console, tickets, seed, examples)


mapping_app = typer.Typer(help="Column mappings: draft one for a new export.", no_args_is_help=True)
app.add_typer(mapping_app, name="mapping")


@mapping_app.command("init")
def mapping_init(
    tickets: Annotated[Path, typer.Option(help="The export to draft a mapping for.")],
    out: Annotated[Path | None, typer.Option(help="Write the draft here (default: stdout).")] = None,
    agents: Annotated[Path | None, typer.Option(help="Agents table, for the check.")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing --out file.")] = False,
    run_check: Annotated[
        bool, typer.Option("--check/--no-check", help="Dry-run the draft with `check`.")
    ] = True,
) -> None:
    """Draft a mapping YAML from the export's header and values, then check it.

    The draft recognises ServiceNow, Zendesk, Jira, Freshdesk, Salesforce, changelog and
    event-log layouts, guesses datetime formats and missing markers, and comments every
    guess to review. Only the YAML goes to stdout; the check report goes to stderr.
    """
    import tempfile

    from escpredict.onboard.draft import draft_yaml

    if out is not None and out.exists() and not force:
        # a mapping the user has already edited must not be lost to a new draft
        raise typer.BadParameter(f"{out} exists; pass --force to overwrite it", param_hint="--out")
    with user_errors():
        text = draft_yaml(tickets)
    if out is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        Console(stderr=True).print(f"draft mapping written to {out}", highlight=False)
    if not run_check:
        return
    if out is not None:
        check_drafted(out, tickets, agents)
        return
    with tempfile.TemporaryDirectory() as scratch:
        draft = Path(scratch) / f"{tickets.stem}.yaml"
        draft.write_text(text, encoding="utf-8")
        check_drafted(draft, tickets, agents)


def check_drafted(mapping: Path, tickets: Path, agents: Path | None = None) -> None:
    """`escpredict check --tickets T --mapping M` on the draft, its report on stderr.

    The draft's next step is the user's: the same command, so its findings read alike.
    """
    # the shared console writes to whatever sys.stdout is at print time
    with redirect_stdout(sys.stderr):
        check(tickets=tickets, mapping=str(mapping), agents=agents)
