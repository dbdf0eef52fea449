"""The report's open-ticket section: how well open tickets are ranked by age, and which are at
risk now.

Shown when the model has an open-ticket part and the export has events: per age on the model's
test window, how well the open-ticket model ranks and is calibrated beside the at-creation model
on the same tickets, its recall-at-workload curves (the share of later escalations a team
catches reviewing the riskiest share of open tickets of each age), and the watch list as of the
data's end.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from escpredict.config import TrainConfig
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
    timing = Timing.of(cfg.labels, prepared.mapping)
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


#: The per-age metrics of the test window a manager reads, and their column titles (a
#: "share" is shown as a percentage).
BY_AGE = {"roc_auc": "ROC AUC", "ece": "ECE", "recall_at_10pct": "share caught in top 10%",
          "recall_at_20pct": "share caught in top 20%"}


def by_age(bands: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per age: tickets still open and not escalated, how many escalated later, and
    each metric of the open-ticket model beside the at-creation model's on those tickets."""
    frame = pd.DataFrame(bands)
    table = pd.DataFrame({"age": frame["age"], "tickets open": frame["n"],
                          "escalate later": frame["positives"]})
    for key, title in BY_AGE.items():
        # a metric undefined on a band (one class) is saved as null: NaN here
        table[title] = frame[key].astype(float).round(3)
        table[f"{title} (at-creation)"] = frame[f"creation_{key}"].astype(float).round(3)
    return table


def section(model: EscalationModel, prepared: Prepared, cfg: TrainConfig,
            rows: int) -> tuple[dict[str, Any], dict[str, Table]] | None:
    """The section and its tables, or None without an open-ticket model or events."""
    if model.open is None or prepared.events is None:
        return None
    curves = pd.DataFrame(model.open.metadata.get("workload_curves", []))
    bands = model.open.metadata.get("test_bands", [])
    labels = {b["age"]: f"{b['age']} ({b['n']:,} open, {b['positives']:,} escalate later)"
              for b in bands}
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
        f"calibrated for its age. The last table ranks the {len(table):,} tickets open and not "
        f"yet escalated as of the data's end ({end:%Y-%m-%d %H:%M} UTC), whatever period the "
        "report covers."
    )
    tables = {}
    if bands:
        tables["open_by_age"] = Table(
            "Tickets still open, by age (the model's test window)", by_age(bands),
            "Each age counts the tickets still open and not yet escalated then. Each metric "
            "of the open-ticket model is followed by the at-creation model's on the same "
            "tickets. Share caught in top 10%: of the tickets that escalated later, the share "
            "found by reviewing the riskiest 10% of those open at that age.", rows)
    tables["at_risk_now"] = Table(f"Open tickets at risk now ({end:%Y-%m-%d %H:%M} UTC)", table,
                                  "Risk: of escalating from now on; age since creation.", rows)
    return (
        {"id": "open", "title": "Open tickets", "intro": intro, "figures": figure,
         "tables": list(tables)},
        tables,
    )
