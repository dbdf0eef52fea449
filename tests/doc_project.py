"""The scratch project the README's and docs' examples run in: every file they name, small.

An example names files as a user would (``exports/incidents.csv``, ``export.jsonl``,
``data/sample/tickets.parquet``); this module writes each of them, in the layout of the system
the example says it comes from, from the embedded sample generators (and the real ServiceNow
sample under ``tests/data``). The project's own ``pipelines/train.yaml`` is the shipped one at
a smaller feature and round budget, so the examples' many trainings stay quick, and a champion
trained on ``data/sample`` is in the project's MLflow store before any example runs.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import yaml

from escpredict.config import load_config
from escpredict.ingest.loaders import load_tickets
from escpredict.lifecycle.promotion import promote
from escpredict.lifecycle.stages import Stages
from escpredict.lifecycle.train import run
from escpredict.samples import default, realistic

REPO = Path(__file__).resolve().parents[1]
SERVICENOW_SAMPLE = Path("tests/data/servicenow-incident-events-sample.csv")

#: Small, but every time window of every training example holds both classes.
SAMPLE_TICKETS = 3_000
EXPORT_TICKETS = 2_000
REALISTIC_TICKETS = 1_500

#: The shipped config at a budget for examples, not for quality.
SMALL_BUDGET = {
    "features": {"word_max_features": 400, "char_max_features": 300, "min_df": 3},
    "model": {"num_boost_round": 60, "early_stopping_rounds": 10,
              "search": {"trials": 2, "folds": 2}},  # the search runs, as shipped, on 2 candidates
}

#: ServiceNow's priority labels and sys_user titles for the canonical values (the inverse of
#: what pipelines/mappings/servicenow.yaml maps).
SN_PRIORITY = {"urgent": "1 - Critical", "high": "2 - High", "medium": "3 - Moderate",
               "low": "4 - Low"}
SN_TITLE = {"coordinator": "service desk coordinator", "dispatcher": "dispatcher",
            "agent": "service desk analyst", "senior": "senior engineer"}


def _stamp(times: pd.Series) -> pd.Series:
    """ServiceNow's list export: naive ``YYYY-MM-DD HH:MM:SS`` (the mapping's zone is UTC)."""
    return times.dt.tz_convert("UTC").dt.strftime("%Y-%m-%d %H:%M:%S")


def servicenow_incidents(tickets: pd.DataFrame) -> pd.DataFrame:
    """Canonical tickets as a ServiceNow incident list (the ``servicenow`` mapping's layout)."""
    return pd.DataFrame({
        "number": tickets["ticket_id"],
        "opened_at": _stamp(tickets["created_at"]),
        "contact_type": tickets["channel"],
        "category": tickets["category"],
        "subcategory": "",
        "priority": tickets["priority"].map(SN_PRIORITY),
        "short_description": tickets["subject"],
        "description": tickets["description"],
        "caller_id": tickets["customer_id"],
        "sys_created_by": tickets["first_responder_id"],
        "resolved_by": tickets["resolver_id"],
        "resolved_at": _stamp(tickets["resolved_at"]),
        "assignment_group": tickets["final_queue"],
        "reassignment_count": tickets["reassignment_count"],
        "reopen_count": tickets["reopened"].astype("Int64"),
    })


def servicenow_users(agents: pd.DataFrame) -> pd.DataFrame:
    """Canonical agents as a ServiceNow ``sys_user`` export."""
    return pd.DataFrame({
        "user_name": agents["agent_id"],
        "sys_created_on": _stamp(agents["hire_date"]),
        "department": agents["team"],
        "title": agents["role"].map(SN_TITLE),
    })


def _small_config(root: Path) -> Path:
    shipped = yaml.safe_load((REPO / "pipelines" / "train.yaml").read_text())
    for section, values in SMALL_BUDGET.items():
        shipped[section].update(values)
    path = root / "pipelines" / "train.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(yaml.safe_dump(shipped, sort_keys=False))
    return path


def _servicenow_files(root: Path) -> None:
    """``exports/``: an incident list, its sys_user export, a quarter of it, the event log."""
    sample = default.generate(EXPORT_TICKETS, seed=5)
    exports = root / "exports"
    exports.mkdir()
    incidents = servicenow_incidents(sample.tickets)
    incidents.to_csv(exports / "incidents.csv", index=False)
    quarter = sample.tickets["created_at"].dt.quarter == 3
    incidents[quarter.to_numpy()].to_csv(exports / "q3.csv", index=False)
    servicenow_users(sample.agents).to_csv(exports / "agents.csv", index=False)
    shutil.copy(REPO / SERVICENOW_SAMPLE, exports / "incident_events.csv")


def _check_files(root: Path) -> None:
    """docs/check.md's ``export.csv`` (the real ServiceNow event sample), ``sys_user.csv``
    naming its assignees, and ``my.yaml`` (a copy of the shipped events mapping); the
    transcript's own path under ``tests/data``."""
    (root / SERVICENOW_SAMPLE).parent.mkdir(parents=True)
    shutil.copy(REPO / SERVICENOW_SAMPLE, root / SERVICENOW_SAMPLE)
    shutil.copy(REPO / SERVICENOW_SAMPLE, root / "export.csv")
    agents = load_tickets(root / "export.csv", "servicenow-events").tickets["agent_id"]
    names = sorted(agents.dropna().unique())
    pd.DataFrame({
        "user_name": names,
        "sys_created_on": "2015-01-05 09:00:00",
        "department": "Service desk",
        "title": "service desk analyst",
    }).to_csv(root / "sys_user.csv", index=False)
    shutil.copy(REPO / "pipelines" / "mappings" / "servicenow-events.yaml", root / "my.yaml")


def _generic_files(root: Path) -> None:
    """``export.jsonl`` (canonical columns, one bad row to quarantine) and ``new_tickets.csv``."""
    default.write(default.generate(EXPORT_TICKETS, seed=6), root / "generic", "jsonl")
    lines = (root / "generic" / "tickets.jsonl").read_text().splitlines()
    bad = {**json.loads(lines[-1]), "ticket_id": "T-BAD-1", "created_at": "not a time"}
    (root / "export.jsonl").write_text("\n".join([*lines, json.dumps(bad)]) + "\n")
    default.write(default.generate(300, seed=7), root / "new", "csv")
    shutil.move(root / "new" / "tickets.csv", root / "new_tickets.csv")


def build(root: Path) -> Path:
    """Write the scratch project under ``root`` and train its champion; returns ``root``."""
    config = _small_config(root)
    default.write(default.generate(SAMPLE_TICKETS, seed=4), root / "data" / "sample", "parquet")
    realistic.write(realistic.generate(REALISTIC_TICKETS, seed=2), root / "data" / "realistic", "csv")
    _servicenow_files(root)
    _check_files(root)
    _generic_files(root)
    cfg = load_config(config, {
        "data.tickets": str(root / "data" / "sample" / "tickets.parquet"),
        "data.agents": str(root / "data" / "sample" / "agents.parquet"),
        "registry.tracking_uri": f"sqlite:///{root / 'models' / 'mlflow.db'}",
    })
    result = run(cfg, stages=Stages(show=False))
    promote(result.model_name, force=True, tracking_uri=cfg.registry.tracking_uri)
    return root
