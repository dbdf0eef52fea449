"""Which files training reads: a ticket export alone is enough."""

from __future__ import annotations

from pathlib import Path

from escpredict.config import SAMPLE_AGENTS, SAMPLE_TICKETS, load_config

REPO = Path(__file__).resolve().parents[1]


def test_the_sample_tickets_come_with_the_sample_agents_by_default():
    assert load_config(None).data.agents == SAMPLE_AGENTS
    assert load_config(REPO / "pipelines" / "train.yaml").data.agents == SAMPLE_AGENTS


def test_an_own_ticket_export_reads_no_agents_file_unless_given():
    cfg = load_config(REPO / "pipelines" / "train.yaml", {"data.tickets": "exports/mine.csv"})
    assert cfg.data.agents is None


def test_an_agents_file_given_is_used_with_any_tickets():
    cfg = load_config(None, {"data.tickets": "mine.csv", "data.agents": "people.csv"})
    assert cfg.data.agents == Path("people.csv")


def test_agents_can_be_switched_off_for_the_sample_too():
    cfg = load_config(None, {"data.tickets": str(SAMPLE_TICKETS), "data.agents": None})
    assert cfg.data.agents is None
