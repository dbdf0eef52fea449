"""Batch scoring of a ticket export with a registered model."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from escpredict.loaders import load_tickets
from escpredict.model import EscalationModel
from escpredict.pyfunc import load_escalation_model
from escpredict.registry import use_store


def score_frame(model: EscalationModel, tickets: pd.DataFrame) -> pd.DataFrame:
    """ticket_id, probability, risk_tier, route for every ticket of a canonical frame."""
    probability = model.predict_proba(tickets)
    return pd.DataFrame(
        {
            "ticket_id": tickets["ticket_id"].to_numpy(),
            "probability": probability,
            "risk_tier": [model.tier_of(p) for p in probability],
            "route": [model.route_of(p) for p in probability],
        }
    )


def score_file(
    input_path: Path, output_path: Path, model_uri: str, mapping: str = "generic",
    tracking_uri: str | None = None,
) -> int:
    """Score an export file and write the scores; returns the number of tickets written."""
    use_store(tracking_uri)
    model = load_escalation_model(model_uri)
    scores = score_frame(model, load_tickets(input_path, mapping=mapping).tickets)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    if output_path.suffix == ".csv":
        scores.to_csv(output_path, index=False)
    else:
        scores.to_parquet(output_path, index=False)
    return len(scores)
