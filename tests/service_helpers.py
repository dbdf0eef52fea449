"""Shared set-up for the scoring-service tests: settings, keys and request bodies from real tickets."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from escpredict.contract import HISTORY_NAMES, SCORING_FIELDS
from escpredict.lifecycle.registry import use_store
from escpredict.service.settings import ServiceSettings
from tests.conftest import store_client

SCORING_KEY = "score-key-for-tests"
ADMIN_KEY = "admin-key-for-tests"
SCORING = {"X-API-Key": SCORING_KEY}
ADMIN = {"X-API-Key": ADMIN_KEY}


def pinned_uri(trained: Any) -> str:
    """The fixture's trained version, by number: other tests may move its aliases."""
    return f"models:/{trained.result.model_name}/{trained.result.model_version}"


def settings(trained: Any, **overrides: Any) -> ServiceSettings:
    values: dict[str, Any] = {
        "model_uri": pinned_uri(trained),
        "tracking_uri": trained.tracking_uri,
        "api_keys": (SCORING_KEY,),
        "admin_key": ADMIN_KEY,
    }
    return ServiceSettings(**{**values, **overrides})


def register_copy(trained: Any, name: str) -> str:
    """Register the fixture's model again under ``name``; returns the new version."""
    use_store(trained.tracking_uri)  # MLflow resolves a logged model's source in that store
    client = store_client(trained.tracking_uri)
    if not client.search_registered_models(f"name = '{name}'"):
        client.create_registered_model(name)
    source = client.get_model_version(trained.result.model_name, trained.result.model_version)
    return str(client.create_model_version(name, source.source, run_id=source.run_id).version)


def returning_customers(window: pd.DataFrame) -> pd.DataFrame:
    """Tickets whose history a request can state in full.

    A first ticket's "no previous ticket" (NaN days since last) cannot be sent: an omitted
    history field means "look it up in the snapshot".
    """
    return window[window["customer_days_since_last"].notna()]


def ticket_body(row: pd.Series | dict[str, Any], with_history: bool = False) -> dict[str, Any]:
    """A JSON request body for one canonical ticket row (history only if asked and known)."""
    body: dict[str, Any] = {}
    for name in SCORING_FIELDS:
        value = row[name]
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            continue
        body[name] = pd.Timestamp(value).isoformat() if name == "created_at" else value
    if with_history:
        body.update({name: float(row[name]) for name in HISTORY_NAMES if math.isfinite(row[name])})
    return body
