"""Batch scoring of a ticket export with a registered model."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from escpredict.explain import reasons_json
from escpredict.loaders import load_tickets
from escpredict.model import EscalationModel
from escpredict.pyfunc import load_escalation_model
from escpredict.registry import use_store


def score_frame(model: EscalationModel, tickets: pd.DataFrame, n_reasons: int = 0) -> pd.DataFrame:
    """ticket_id, probability, risk_tier, route (and ``reasons`` as JSON text if asked) per ticket."""
    table = model.score_table(tickets, n_reasons)
    if n_reasons:
        table["reasons"] = [reasons_json(r) for r in table["reasons"]]
    table.insert(0, "ticket_id", tickets["ticket_id"].to_numpy())
    return table.reset_index(drop=True)


def score_file(
    input_path: Path, output_path: Path, model_uri: str, mapping: str = "generic",
    tracking_uri: str | None = None, n_reasons: int = 0,
) -> int:
    """Score an export file and write the scores; returns the number of tickets written."""
    use_store(tracking_uri)
    model = load_escalation_model(model_uri)
    scores = score_frame(model, load_tickets(input_path, mapping=mapping).tickets, n_reasons)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    if output_path.suffix == ".csv":
        scores.to_csv(output_path, index=False)
    else:
        scores.to_parquet(output_path, index=False)
    return len(scores)
