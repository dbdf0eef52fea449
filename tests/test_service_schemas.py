"""Request bodies follow the contract and the served model's extra features."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from escpredict.contract import SCORING_FIELDS
from escpredict.service.schemas import request_models

BASE = {
    "created_at": "2025-06-02T09:15:00Z",
    "channel": "email",
    "category": "billing",
    "priority": "high",
    "customer_id": "C1",
}
EXTRAS = {"business_service": "categorical", "affected_users": "numeric", "vip": "boolean"}


def test_extra_features_are_optional_documented_fields_passed_to_the_model() -> None:
    ticket, _ = request_models(200, 5, 5, EXTRAS)

    record = ticket(**BASE, business_service="Payroll", affected_users=40).record()

    assert record["business_service"] == "Payroll"
    assert record["affected_users"] == 40.0
    assert record["vip"] is None
    assert set(SCORING_FIELDS) <= set(record)
    schema = ticket.model_json_schema()["properties"]
    assert "numeric feature declared in the model's mapping" in schema["affected_users"]["description"]


@pytest.mark.parametrize(
    ("field", "value"),
    [("affected_users", "40"), ("vip", "yes"), ("business_service", "   "), ("no_such_field", 1)],
)
def test_extra_feature_values_of_the_wrong_kind_and_unknown_fields_are_refused(
    field: str, value: object
) -> None:
    ticket, _ = request_models(200, 5, 5, EXTRAS)
    with pytest.raises(ValidationError, match=field):
        ticket(**BASE, **{field: value})


def test_without_extras_a_ticket_carries_exactly_the_contracts_scoring_fields() -> None:
    ticket, _ = request_models(200, 5)
    assert set(ticket(**BASE).record()) == set(SCORING_FIELDS)
