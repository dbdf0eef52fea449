"""The watch list: every ticket open and unescalated at a moment, ranked by its risk from then on.

A team lead asks each morning which open tickets are most likely to escalate next. The
export is read as it stood at ``as_of`` (events after it are left out, so a ticket resolved
later is still open here), each ticket open and not yet escalated then is scored by the
open-ticket model with its state at ``as_of``, and the list is ranked. It needs events: a
ticket-level export says nothing about how a ticket has evolved.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd

from escpredict.config import LabelConfig
from escpredict.ingest.loaders import load_agents, load_tickets
from escpredict.ingest.mapping import Mapping, load_mapping
from escpredict.labels.checkpoints import Timing, open_at
from escpredict.lifecycle.pyfunc import load_escalation_model
from escpredict.lifecycle.registry import logged_config, use_store
from escpredict.model.escalation import NO_OPEN_MODEL, EscalationModel
from escpredict.model.explain import reasons_json

#: The state columns a watch list shows beside each ticket's risk.
SHOWN_STATE = (
    "age_hours", "status_now", "queue_now", "tier_now", "hours_since_update", "waiting_hours",
    "assignee_changes", "queue_changes",
)


class WatchError(ValueError):
    """The export or the model cannot give a watch list; the message says why."""


def needs_events(mapping: Mapping) -> None:
    """Refuse a ticket-level mapping: open-ticket scoring needs each ticket's updates."""
    if mapping.events is None:
        raise WatchError(
            f"open-ticket scoring needs events: the mapping {mapping.name or '(given)'!r} reads "
            "one row per ticket, which says nothing about how a ticket evolved. Export the "
            "tickets' updates (one row per change) and map them with `level: events` "
            "(docs/mappings.md)"
        )


def trained_labels(model_uri: str) -> LabelConfig:
    """The label rules the model was trained with (its run's logged config): they say when a
    ticket counts as escalated, so which tickets are still watched."""
    run_id = mlflow.models.get_model_info(model_uri).run_id
    return LabelConfig.model_validate(logged_config(run_id).get("labels", {}))


def watch_list(
    model: EscalationModel,
    tickets: pd.DataFrame,
    events: pd.DataFrame,
    timing: Timing,
    as_of: pd.Timestamp,
    agents: pd.DataFrame | None = None,
    n_reasons: int = 3,
) -> pd.DataFrame:
    """Tickets open and unescalated at ``as_of`` (``tickets``/``events`` as the export stood
    then), highest risk first: rank, ticket_id, probability, risk_tier, route, age_band,
    the state (``SHOWN_STATE``) and ``reasons`` (JSON text) when asked."""
    if model.open is None:
        raise WatchError(NO_OPEN_MODEL)
    live = open_at(tickets, events, timing, as_of, model.open.waits, agents)
    columns = ["rank", "ticket_id", "probability", "risk_tier", "route", "age_band",
               *SHOWN_STATE, *(["reasons"] if n_reasons else [])]
    if live.empty:
        return pd.DataFrame(columns=columns)
    chosen = tickets.loc[live["ticket"]].reset_index(drop=True)
    state = live.drop(columns="ticket")
    scores = model.score_table(chosen, n_reasons, state)
    bands = model.open.band_of(state["age_hours"].to_numpy())
    out = pd.concat(
        [
            chosen[["ticket_id"]],
            scores[["probability", "risk_tier", "route"]].reset_index(drop=True),
            pd.DataFrame({"age_band": [model.open.band_names[b] for b in bands]}),
            state[list(SHOWN_STATE)],
        ],
        axis=1,
    )
    if n_reasons:
        out["reasons"] = [reasons_json(r) for r in scores["reasons"]]
    out = out.sort_values("probability", ascending=False, kind="stable").reset_index(drop=True)
    out.insert(0, "rank", range(1, len(out) + 1))
    return out[columns]


def watch_file(
    tickets_path: Path,
    output_path: Path,
    model_uri: str,
    mapping: str | Mapping,
    as_of: pd.Timestamp | None = None,
    agents: Path | None = None,
    tracking_uri: str | None = None,
    n_reasons: int = 3,
    quarantine: Path | None = None,
) -> tuple[pd.DataFrame, pd.Timestamp]:
    """`watch_list` of an export file as it stood at ``as_of`` (default: its last event),
    written to ``output_path`` (.csv or .parquet); returns the list and the moment. Bad rows
    refuse the export, or go to ``quarantine`` with their whole ticket."""
    spec = load_mapping(mapping)
    needs_events(spec)
    use_store(tracking_uri)
    model = load_escalation_model(model_uri)
    if model.open is None:
        raise WatchError(NO_OPEN_MODEL)
    roster = load_agents(agents, spec) if agents is not None else None
    loaded = load_tickets(tickets_path, spec, quarantine, roster, until=as_of)
    assert loaded.events is not None
    if loaded.tickets.empty:
        raise WatchError(f"{tickets_path}: no ticket of the export was created by {as_of}")
    if as_of is None:  # the data's end: its latest event
        as_of = loaded.events["event_time"].max()
    timing = Timing.of(trained_labels(model_uri), spec)
    table = watch_list(model, loaded.tickets, loaded.events, timing, as_of, roster, n_reasons)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    if output_path.suffix == ".parquet":
        table.to_parquet(output_path, index=False)
    else:
        table.to_csv(output_path, index=False)
    return table, as_of
