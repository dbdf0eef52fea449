"""The plain reference reads the raw at-creation fields only, as anyone handing them to LightGBM."""

from __future__ import annotations

import numpy as np
import pandas as pd

from escpredict.contract import LABEL
from escpredict.model.reference import PlainReference


def tickets(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    product = rng.choice(["router", "modem", "phone", "tv"], n)
    escalated = rng.random(n) < np.where(product == "router", 0.7, 0.15)
    return pd.DataFrame({
        "ticket_id": [f"T{seed}-{i}" for i in range(n)],
        "created_at": pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(np.arange(n), unit="h"),
        "channel": "email", "category": "billing", "priority": "low",
        "subject": "help", "description": "", "customer_id": [f"c{i % 30}" for i in range(n)],
        "agent_id": "a1", "initial_queue": "desk", "initial_tier": 1.0, "product": product,
        "configuration_item": None, "location": None, "impact": None, "urgency": None,
        "customer_segment": None, "language": None, LABEL: escalated,
    })


def test_it_learns_the_raw_fields_and_ignores_ids_and_text() -> None:
    train, valid = tickets(2000, 0), tickets(500, 1)
    reference = PlainReference.fit(train, valid, {})
    scores = reference.raw(valid)
    assert scores[valid["product"] == "router"].min() > scores[valid["product"] != "router"].max()
    renamed = valid.assign(customer_id="someone else", ticket_id="x", subject="URGENT refund!!")
    np.testing.assert_array_equal(reference.raw(renamed), scores)


def test_a_level_training_never_saw_scores_as_missing() -> None:
    train, valid = tickets(2000, 0), tickets(500, 1)
    reference = PlainReference.fit(train, valid, {})
    unseen = valid.head(3).assign(product="satellite")
    missing = valid.head(3).assign(product=None)
    np.testing.assert_array_equal(reference.raw(unseen), reference.raw(missing))
