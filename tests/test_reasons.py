"""Reasons read right: one per input field, stated in the ticket's own values, summing to the margin."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd
import pytest

from escpredict.contract import HISTORY_NAMES
from escpredict.lifecycle.pyfunc import load_escalation_model
from escpredict.model.escalation import EscalationModel
from escpredict.model.offsets import margin
from tests.conftest import Trained

ALL = 1_000  # more reasons than fields: every field with a nonzero share


@pytest.fixture(scope="module")
def model(trained: Trained) -> EscalationModel:
    from escpredict.lifecycle.registry import use_store

    use_store(trained.tracking_uri)
    return load_escalation_model(
        f"models:/{trained.result.model_name}/{trained.result.model_version}"
    )


@pytest.fixture(scope="module")
def tickets(trained: Trained) -> list[dict[str, Any]]:
    """Test-window tickets as a caller sends them: history comes from the model's snapshot."""
    window = trained.result.test_window.head(40).drop(columns=list(HISTORY_NAMES))
    return window.to_dict("records")


def _by_field(reasons: list[Any]) -> dict[str, Any]:
    return {r.field: r for r in reasons}


def test_field_reasons_and_the_expected_value_add_up_to_the_margin(
    model: EscalationModel, tickets: list[dict[str, Any]]
) -> None:
    for record in tickets[:10]:
        full, _ = model.complete_record(record)
        row = model.builder.transform_record(full).toarray()
        expected = model.contributions(row)[0, -1]
        reasons = model.score_record(record, n_reasons=ALL).reasons
        total = sum(r.contribution for r in reasons) + expected
        assert total == pytest.approx(margin(model.booster, model.offsets, row)[0], abs=1e-9)
        assert len({r.field for r in reasons}) == len(reasons)  # one reason per field


def test_a_categorical_reason_states_the_tickets_own_value(
    model: EscalationModel, tickets: list[dict[str, Any]]
) -> None:
    for priority in ("low", "high", "urgent"):
        record = {**tickets[0], "priority": priority}
        reason = _by_field(model.score_record(record, n_reasons=ALL).reasons)["priority"]
        assert reason.text == f"priority = {priority}"
        assert reason.display_value == priority
        assert reason.name == "priority"
        assert np.isnan(reason.value)  # a level code or one-hot column means nothing to a reader


def test_a_ticket_without_an_agent_says_so_in_one_reason(
    model: EscalationModel, tickets: list[dict[str, Any]]
) -> None:
    record = {**tickets[0], "agent_id": None}
    reasons = model.score_record(record, n_reasons=ALL).reasons
    fields = _by_field(reasons)
    assert fields["agent_id"].text == "no agent known (agent: none given)"
    assert fields["agent_id"].display_value == "none given"
    assert not [f for f in fields if f.startswith("agent_") and f != "agent_id"]


def test_the_text_reason_names_whole_words_of_the_ticket_never_fragments(
    model: EscalationModel, tickets: list[dict[str, Any]]
) -> None:
    seen = 0
    for record in tickets:
        text_reason = _by_field(model.score_record(record, n_reasons=ALL).reasons).get("text")
        if text_reason is None or text_reason.display_value == "no telling words":
            continue
        words = re.findall(r"\w\w+", f"{record['subject']} {record['description']}".lower())
        for term in re.findall(r'"([^"]+)"', text_reason.display_value):
            assert f" {term} " in f" {' '.join(words)} ", (term, words)
        seen += 1
    assert seen > 0


def test_history_and_ticket_statistics_are_stated_plainly(
    model: EscalationModel, tickets: list[dict[str, Any]]
) -> None:
    record = {**tickets[0], "description": ""}
    fields = _by_field(model.score_record(record, n_reasons=ALL).reasons)
    assert fields["description_length"].text == "description: empty"
    assert fields["description_length"].display_value == "empty"
    if "agent_escalation_rate" in fields:
        assert re.fullmatch(
            r"agent's escalation rate \d+%, \d+ of \d+ earlier tickets \(overall \d+%\)"
            r"|agent has no escalation outcomes yet \(overall \d+%\)",
            fields["agent_escalation_rate"].text,
        )
    supplied = {**record, "agent_tenure_days": 12.0}
    tenure = _by_field(model.score_record(supplied, n_reasons=ALL).reasons).get("agent_tenure_days")
    assert tenure is None or tenure.text == "agent tenure 12 days"


def test_scoring_many_tickets_at_once_gives_each_its_single_answer(
    model: EscalationModel, tickets: list[dict[str, Any]]
) -> None:
    records = tickets[:8] + [{**tickets[8], "agent_id": None, "customer_id": None}]
    together = model.score_records(records, n_reasons=5)
    for record, score in zip(records, together, strict=True):
        alone = model.score_record(record, n_reasons=5)
        assert score.probability == alone.probability
        assert (score.tier, score.route, score.flags) == (alone.tier, alone.route, alone.flags)
        assert [(r.text, r.contribution) for r in score.reasons] == [
            (r.text, r.contribution) for r in alone.reasons
        ]


def test_frame_scoring_explains_like_the_single_ticket_path(
    model: EscalationModel, trained: Trained
) -> None:
    frame = trained.result.test_window.head(6)
    table = model.score_table(frame, n_reasons=3)
    for record, probability, reasons in zip(
        frame.to_dict("records"), table["probability"], table["reasons"], strict=True
    ):
        alone = model.score_record(record, n_reasons=3)
        assert probability == pytest.approx(alone.probability, abs=1e-12)
        assert [r.text for r in reasons] == [r.text for r in alone.reasons]
        np.testing.assert_allclose(
            [r.contribution for r in reasons], [r.contribution for r in alone.reasons], atol=1e-9
        )
    assert "reasons" not in model.score_table(frame).columns


def test_a_model_shipped_to_dask_workers_leaves_its_derived_layout_behind(model: EscalationModel) -> None:
    import pickle

    model.score_record({"created_at": pd.Timestamp("2025-01-01", tz="UTC")}, n_reasons=1)
    assert "reason_layout" in model.__dict__
    assert "reason_layout" not in pickle.loads(pickle.dumps(model)).__dict__
