"""The model for open tickets, as a triage bot and a team lead use it (issue 17).

One model trained on a small realistic event log (``trained_open``) serves every test.
"""

from __future__ import annotations

import json
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest

from escpredict.contract import SCORING_FIELDS
from escpredict.lifecycle.pyfunc import load_escalation_model
from escpredict.lifecycle.registry import use_store
from escpredict.model.escalation import EscalationModel, OpenScoringError
from escpredict.model.explain import Reason
from escpredict.model.open_ticket import MARGIN, open_reasons, state_frame, state_text
from tests.service_helpers import pinned_uri


@pytest.fixture(scope="module")
def model(trained_open: Any) -> EscalationModel:
    use_store(trained_open.tracking_uri)
    return load_escalation_model(pinned_uri(trained_open))


@pytest.fixture(scope="module")
def tickets(trained_open: Any) -> list[dict[str, Any]]:
    """Test-window tickets as records (their at-creation fields and history)."""
    window = trained_open.result.test_window.head(40)
    return [
        {k: (None if not isinstance(v, str) and pd.isna(v) else v) for k, v in row.items()}
        for row in window.drop(columns=["escalated", "probability"]).to_dict("records")
    ]


def at(ticket: dict[str, Any], hours: float) -> str:
    return (pd.Timestamp(ticket["created_at"]) + pd.Timedelta(hours=hours)).isoformat()


def events(ticket: dict[str, Any], *updates: tuple[float, str, str]) -> list[dict[str, Any]]:
    """The ticket's events: created at L1 in its queue, then (hours, status, queue) updates."""
    queue = ticket.get("initial_queue") or "G1"
    first = {"time": at(ticket, 0), "status": "Queued", "tier": 1, "queue": queue}
    return [first] + [{"time": at(ticket, h), "status": s, "tier": 1, "queue": q or queue,
                       "assignee": "R1"} for h, s, q in updates]


def test_training_on_an_event_export_reports_both_models_at_every_age(trained_open: Any) -> None:
    bands = trained_open.result.open_bands
    assert bands["age"].tolist() == ["creation", "1h", "4h", "1d", "3d", "7d"]
    creation = bands.iloc[0]
    assert creation["roc_auc"] == creation["creation_roc_auc"]  # the at-creation answer
    assert bands["n"].iloc[0] >= bands["n"].iloc[-1]  # fewer tickets are still open later
    run = mlflow.MlflowClient(trained_open.tracking_uri).get_run(trained_open.result.run_id)
    for name in ("open_test_1h_roc_auc", "creation_test_1h_roc_auc", "open_test_1h_ece",
                 "open_test_1h_recall_at_10pct", "creation_test_4h_recall_at_20pct"):
        assert name in run.data.metrics
    assert run.data.params["open_structure"] in ("shared", "per_band")


def test_at_creation_the_open_ticket_model_gives_the_at_creation_answer(
    model: EscalationModel, tickets: list[dict[str, Any]]
) -> None:
    ticket = tickets[0]
    plain = model.score_record(ticket)
    for state in ({"as_of": at(ticket, 0), "events": events(ticket)},
                  {"as_of": at(ticket, 0.5), "events": events(ticket, (0.2, "Accepted", None))}):
        scored = model.score_record({**ticket, "state": state})
        assert scored.probability == plain.probability
        assert scored.age_band == "creation"


def test_events_after_as_of_never_change_the_answer(
    model: EscalationModel, tickets: list[dict[str, Any]]
) -> None:
    ticket = tickets[1]
    so_far = events(ticket, (0.5, "Accepted", None), (3, "Accepted", "G-other"))
    later = so_far + [{"time": at(ticket, 30), "status": "Queued", "tier": 2, "queue": "G-L2"}]
    now = at(ticket, 26)
    first = model.score_record({**ticket, "state": {"as_of": now, "events": so_far}})
    again = model.score_record({**ticket, "state": {"as_of": now, "events": later}})
    assert (first.probability, first.age_band) == (again.probability, "1d")


def test_events_so_far_and_current_fields_are_the_same_state(
    model: EscalationModel, tickets: list[dict[str, Any]]
) -> None:
    ticket = tickets[2]
    queue = ticket.get("initial_queue") or "G1"
    from_events = {"as_of": at(ticket, 30),
                   "events": events(ticket, (0.5, "Accepted", None), (5, "Accepted", "G-east"))}
    current = {"as_of": at(ticket, 30), "status": "Accepted", "queue": "G-east", "tier": 1,
               "assigned": True, "events_so_far": 3, "assignee_changes": 0,
               "queue_changes": int(queue != "G-east"), "waiting_hours": 0.0,
               "last_update_at": at(ticket, 5), "queue_changed_at": at(ticket, 5)}
    one = model.score_record({**ticket, "state": from_events})
    other = model.score_record({**ticket, "state": current})
    assert one.probability == pytest.approx(other.probability, abs=1e-12)


def test_a_batch_scores_each_open_ticket_as_it_would_alone(
    model: EscalationModel, tickets: list[dict[str, Any]]
) -> None:
    states = [None if i % 3 == 0 else {"as_of": at(t, [0, 2, 30, 80][i % 4]),
                                        "events": events(t, (0.5, "Accepted", None))}
              for i, t in enumerate(tickets)]
    records = [{**t, "state": s} for t, s in zip(tickets, states, strict=True)]
    alone = [model.score_record(r).probability for r in records]
    together = [s.probability for s in model.score_records(records)]
    frame = pd.DataFrame(tickets)
    state = state_frame(frame["created_at"], states, model.open.waits)
    table = model.score_table(frame, 0, state)["probability"].tolist()
    assert together == pytest.approx(alone, abs=1e-12)
    assert table == pytest.approx(alone, abs=1e-12)


def test_the_risk_of_escalating_from_now_on_falls_as_tickets_age_like_the_base_rate(
    model: EscalationModel, tickets: list[dict[str, Any]], trained_open: Any
) -> None:
    """In this log the share of open tickets that escalate later falls after a day; the
    answer for a ticket sitting untouched at L1 follows it."""
    rates = trained_open.result.open_bands.set_index("age")
    assert (rates.loc["3d", "positives"] / rates.loc["3d", "n"]
            < rates.loc["creation", "positives"] / rates.loc["creation", "n"])
    mean = {age: np.mean([model.score_record(
        {**t, "state": {"as_of": at(t, h), "events": events(t, (0.3, "Accepted", None))}}
    ).probability for t in tickets]) for age, h in (("creation", 0), ("3d", 80))}
    assert mean["3d"] < mean["creation"]


def test_a_state_showing_the_escalation_is_flagged(
    model: EscalationModel, tickets: list[dict[str, Any]]
) -> None:
    ticket = {**tickets[3], "initial_tier": 1.0}
    state = {"as_of": at(ticket, 5), "events": events(ticket) + [
        {"time": at(ticket, 2), "status": "Queued", "tier": 2, "queue": "G-L2"}]}
    assert "already_escalated" in model.score_record({**ticket, "state": state}).flags


def test_a_model_trained_without_events_refuses_a_state(trained: Any) -> None:
    use_store(trained.tracking_uri)
    plain = load_escalation_model(pinned_uri(trained))
    assert plain.open is None
    ticket = trained.result.test_window.iloc[0][list(SCORING_FIELDS)].to_dict()
    with pytest.raises(OpenScoringError, match="needs a model trained on an event export"):
        plain.score_record({**ticket, "state": {"as_of": ticket["created_at"], "events": []}})


def test_the_pyfunc_takes_the_state_as_json_text(
    model: EscalationModel, tickets: list[dict[str, Any]], trained_open: Any
) -> None:
    use_store(trained_open.tracking_uri)
    pyfunc = mlflow.pyfunc.load_model(pinned_uri(trained_open))
    ticket = {name: tickets[4][name] for name in SCORING_FIELDS}  # history from the snapshot
    state = {"as_of": at(ticket, 30), "events": events(ticket, (0.5, "Accepted", None))}
    frame = pd.DataFrame([ticket, ticket])
    frame["state"] = [json.dumps(state), None]
    got = pyfunc.predict(frame)["probability"].tolist()
    assert got == pytest.approx([model.score_record({**ticket, "state": state}).probability,
                                 model.score_record(ticket).probability], abs=1e-12)
    frame["state"] = [json.dumps({"as_of": at(ticket, 1), "evnts": []}), None]
    with pytest.raises(Exception, match="state, row 0: unknown keys"):
        pyfunc.predict(frame)


def test_state_reasons_say_what_happened_in_plain_words() -> None:
    state = {"hours_since_update": 49.0, "queue_now": "Network L2", "queue_changes": 1.0,
             "hours_since_queue_change": 1.0, "waiting_hours": 0.0, "age_hours": 2.5,
             "status_now": "Awaiting User Info", "assigned_now": 0.0}
    assert state_text("hours_since_update", state)[1] == "no update for 2 days"
    assert state_text("queue_now", state)[1] == "moved to Network L2 an hour ago"
    assert state_text("status_now", state)[1] == "status: Awaiting User Info"
    assert state_text("assigned_now", state)[1] == "nobody assigned"


def test_open_reasons_still_add_up_to_the_margin() -> None:
    """At-creation reasons are rescaled by the booster's use of the margin; with the
    state's reasons they sum to the at-creation shift plus the booster's contributions."""
    creation = [Reason("priority", "priority", np.nan, 0.6, "priority", "high", "priority = high"),
                Reason("product", "product", np.nan, -0.2, "product", "P1", "product = P1")]
    names = [MARGIN, "hours_since_update", "queue_changes", "hours_since_queue_change",
             "queue_now"]
    contrib = np.array([0.2, 0.5, 0.1, 0.05, 0.1, -1.0])  # last: expected value
    state = {"hours_since_update": 49.0, "queue_now": "Q2", "queue_changes": 1.0,
             "hours_since_queue_change": 3.0}
    reasons = open_reasons(creation, contrib, names, state, 0.4, 10)
    assert sum(r.contribution for r in reasons) == pytest.approx(0.4 + contrib[:-1].sum())
    assert [r.field for r in reasons] == ["priority", "hours_since_update", "product", "queue_now"]
    assert reasons[0].contribution == pytest.approx(0.9)  # 0.6 x (1 + 0.2 / 0.4)


def test_the_report_shows_both_models_by_age_and_the_tickets_at_risk_now(
    trained_open: Any, tmp_path: Any
) -> None:
    from escpredict.report.build import build_report

    report = build_report(pinned_uri(trained_open), out=tmp_path,
                          tracking_uri=trained_open.tracking_uri)
    html = report.html.read_text()
    assert "Open tickets" in html and "Recall at workload by age" in html
    by_age = pd.read_csv(report.files["open_by_age.csv"])
    bands = trained_open.result.open_bands
    assert by_age["age"].tolist() == bands["age"].tolist()
    assert by_age["tickets open"].tolist() == bands["n"].tolist()
    assert by_age["ROC AUC (at-creation)"].tolist() == pytest.approx(
        bands["creation_roc_auc"].round(3).tolist(), nan_ok=True)
    assert "Tickets still open, by age" in html
    at_risk = pd.read_csv(report.files["at_risk_now.csv"])
    assert at_risk["rank"].tolist() == list(range(1, len(at_risk) + 1)) and len(at_risk) > 0
    truth = pd.read_csv(trained_open.data_dir / "tickets.csv")
    resolved = set(truth.loc[truth["resolved_at"].notna(), "ticket_id"])
    assert not set(at_risk["ticket_id"]) & resolved  # only tickets still open at the end


def test_an_export_with_too_few_open_tickets_trains_without_the_open_model(
    trained_open: Any, tmp_path: Any
) -> None:
    """No ticket is still open 1,000 days after creation: the at-creation model trains as
    ever, and the run says why there is no open-ticket model."""
    from escpredict.config import load_config
    from escpredict.lifecycle.train import run

    overrides = {key: value for key, value in trained_open.config.model_dump(mode="json").items()}
    cfg = load_config(None, {
        "data": overrides["data"], "labels": overrides["labels"],
        "features": overrides["features"], "model": overrides["model"],
        "open_tickets.ages": ["0", "1000d"], "model.num_boost_round": 20,
        "registry.tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}",
    })
    result = run(cfg)
    assert result.open_bands is None and result.metrics["roc_auc"] > 0.5
    assert result.open_notes and "no open-ticket model" in result.open_notes[0]


def test_the_open_ticket_model_is_saved_as_data_and_answers_the_same_after_loading(
    model: EscalationModel, tickets: list[dict[str, Any]], tmp_path: Any
) -> None:
    """No pickle: the open part is JSON plus LightGBM text models, and the model read back
    gives every open ticket the same risk, band and reasons."""
    from escpredict.model import artefact

    assert model.open is not None  # the registered model kept it
    artefact.save(model, tmp_path / "model")
    files = {p.name for p in (tmp_path / "model" / "open").iterdir()}
    assert "model.json" in files and all(f == "model.json" or f.endswith(".txt") for f in files)
    again = artefact.load(tmp_path / "model")
    records = [{**t, "state": {"as_of": at(t, hours), "events": events(
        t, (0.5, "Active", None), (hours - 1, "Awaiting User Info", "Q9"))}}
        for t, hours in zip(tickets[:12], [2, 6, 30, 80] * 3, strict=True)]
    got, want = again.score_records(records, 3), model.score_records(records, 3)
    assert [(s.probability, s.age_band) for s in got] == [(s.probability, s.age_band) for s in want]
    assert [[r.text for r in s.reasons] for s in got] == [[r.text for r in s.reasons] for s in want]
    assert {s.age_band for s in got} == {"1h", "4h", "1d", "3d"}
    assert again.open.metadata["test_bands"][0]["age"] == "creation"
