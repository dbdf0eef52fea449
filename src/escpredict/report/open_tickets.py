"""The report's open-ticket section: how well open tickets are ranked by age, and which are at
risk now.

Shown when the model has an open-ticket part and the export has events: the recall-at-workload
curves of the model's test window (the share of later escalations a team catches reviewing
the riskiest share of open tickets of each age), and the watch list as of the data's end.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from escpredict.config import TrainConfig
from escpredict.ingest.mapping import load_mapping
from escpredict.labels.checkpoints import Timing
from escpredict.lifecycle.train import Prepared
from escpredict.lifecycle.watch import watch_list
from escpredict.model.escalation import EscalationModel
from escpredict.model.open_ticket import hours_text
from escpredict.report import figures
from escpredict.report.render import Table, figure_uri

#: Reasons per ticket in the at-risk table.
REASONS = 2


def at_risk_now(model: EscalationModel, prepared: Prepared, cfg: TrainConfig) -> tuple[
        pd.DataFrame, pd.Timestamp]:
    """The watch list as of the data's end (its last event), in words a manager reads."""
    assert prepared.events is not None
    end = prepared.events["event_time"].max()
    timing = Timing.of(cfg.labels, load_mapping(cfg.data.mapping))
    listed = watch_list(model, prepared.tickets, prepared.events, timing, end, prepared.agents,
                        REASONS)
    reasons = ["; ".join(r["text"] for r in json.loads(text)) for text in listed["reasons"]]
    table = pd.DataFrame({
        "rank": listed["rank"],
        "ticket_id": listed["ticket_id"],
        "risk": listed["probability"].map("{:.0%}".format),
        "age": listed["age_hours"].map(hours_text),
        "status": listed["status_now"],
        "queue": listed["queue_now"],
        "no update for": listed["hours_since_update"].map(hours_text),
        "top reasons": reasons,
    })
    return table, end


def section(model: EscalationModel, prepared: Prepared, cfg: TrainConfig,
            rows: int) -> tuple[dict[str, Any], dict[str, Table]] | None:
    """The section and its table, or None without an open-ticket model or events."""
    if model.open is None or prepared.events is None:
        return None
    curves = pd.DataFrame(model.open.metadata.get("workload_curves", []))
    labels = {b["age"]: f"{b['age']} ({b['n']:,} open, {b['positives']:,} escalate later)"
              for b in model.open.metadata.get("test_bands", [])}
    table, end = at_risk_now(model, prepared, cfg)
    figure = [] if curves.empty else [{
        "uri": figure_uri(figures.workload_figure(curves, labels)),
        "alt": "Recall at workload by age",
        "caption": "On the model's test window: for tickets still open at each age, the share "
                   "of those that escalated later that a team finds by reviewing the riskiest "
                   "share of them. Solid: the open-ticket model; dashed: the at-creation model "
                   "on the same tickets.",
    }]
    intro = (
        "A ticket's risk changes while it is open: the open-ticket model re-scores it with what "
        "has happened since creation (status, queue moves, waits, time without an update), "
        f"calibrated for its age. The table ranks the {len(table):,} tickets open and not yet "
        f"escalated as of the data's end ({end:%Y-%m-%d %H:%M} UTC), whatever period the "
        "report covers."
    )
    return (
        {"id": "open", "title": "Open tickets", "intro": intro, "figures": figure,
         "tables": ["at_risk_now"]},
        {"at_risk_now": Table(f"Open tickets at risk now ({end:%Y-%m-%d %H:%M} UTC)", table,
                              "Risk: of escalating from now on; age since creation.", rows)},
    )
