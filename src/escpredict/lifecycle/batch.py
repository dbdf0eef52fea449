"""Batch scoring of a ticket export with a registered model."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd

from escpredict.ingest.loaders import load_agents, load_tickets
from escpredict.ingest.mapping import Mapping, load_mapping
from escpredict.lifecycle.pyfunc import load_escalation_model
from escpredict.lifecycle.registry import logged_config, use_store
from escpredict.model.escalation import EscalationModel
from escpredict.model.explain import reasons_json


def score_frame(model: EscalationModel, tickets: pd.DataFrame, n_reasons: int = 0) -> pd.DataFrame:
    """ticket_id, probability, risk_tier, route (and ``reasons`` as JSON text if asked) per ticket."""
    table = model.score_table(tickets, n_reasons)
    if n_reasons:
        table["reasons"] = [reasons_json(r) for r in table["reasons"]]
    table.insert(0, "ticket_id", tickets["ticket_id"].to_numpy())
    return table.reset_index(drop=True)


def needs_agent_roles(mapping: str | Mapping) -> bool:
    """Whether only an agents table can tell this export's coordinators from handlers.

    True for an event export whose assignee column has no role column beside it:
    collapsing it skips coordinators by role, so without agents a dispatcher who only
    routes a ticket becomes its agent_id. Ticket-level exports state agent_id themselves.
    """
    spec = load_mapping(mapping)
    named = spec.events.named() if spec.events is not None else {}
    return "assignee" in named and "assignee_role" not in named


def trained_agents(model_uri: str) -> str | None:
    """The agents table the model's training run read (its logged ``data.agents``), if any."""
    run_id = mlflow.models.get_model_info(model_uri).run_id
    return logged_config(run_id).get("data", {}).get("agents")


def score_file(
    input_path: Path, output_path: Path, model_uri: str, mapping: str = "generic",
    tracking_uri: str | None = None, n_reasons: int = 0, agents: Path | None = None,
) -> int:
    """Score an export file and write the scores; returns the number of tickets written.

    ``agents`` is the agents table training read: an event export is collapsed with its
    roles exactly as in training, so both agree on who each ticket's agent is (and so on
    every agent-history feature).
    """
    use_store(tracking_uri)
    model = load_escalation_model(model_uri)
    spec = load_mapping(mapping)
    roster = load_agents(agents, spec) if agents is not None else None
    tickets = load_tickets(input_path, mapping=spec, agents=roster).tickets
    scores = score_frame(model, tickets, n_reasons)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    if output_path.suffix == ".csv":
        scores.to_csv(output_path, index=False)
    else:
        scores.to_parquet(output_path, index=False)
    return len(scores)
