"""Each shipped mapping loads a small export written in that system's own column layout."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from escpredict.config import LabelConfig
from escpredict.ingest.loaders import load_tickets
from escpredict.ingest.mapping import load_mapping, mapping_dirs
from escpredict.labels.rules import label_tickets

UTC = "UTC"
SHIPPED = Path(__file__).resolve().parents[1] / "pipelines" / "mappings"


def write(path: Path, text: str) -> Path:
    path.write_text(text.strip() + "\n", encoding="utf-8")
    return path


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("path", sorted(SHIPPED.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_mapping_is_valid_and_found_by_name(path):
    assert load_mapping(path.stem).name == path.stem
    assert SHIPPED in [d.resolve() for d in mapping_dirs()]


# --- Jira: issues with a flattened changelog ----------------------------------------------


def jira_issue(key: str, created: str, **fields) -> dict:
    return {
        "key": key,
        "fields": {
            "created": created,
            "issuetype": {"name": fields.get("type", "Bug")},
            "priority": {"name": fields.get("priority", "Medium")},
            "summary": f"{key} summary",
            "description": "It broke",
            "reporter": {"accountId": fields.get("reporter", "cust-1")},
            "creator": {"accountId": "svc-desk"},
            "project": {"key": "SUP"},
            "resolutiondate": fields.get("resolved"),
        },
    }


def jira_change(issue: dict, at: str, author: str, field: str, to: str, to_string: str) -> dict:
    item = {"field": field, "fieldtype": "jira", "from": None, "fromString": None}
    return {
        **issue,
        "history": {"id": "1", "created": at, "author": {"accountId": author}},
        "item": {**item, "to": to, "toString": to_string},
    }


def test_jira_changelog_rows_become_one_ticket_with_comparable_people(tmp_path):
    sup1 = jira_issue(
        "SUP-1",
        "2024-03-01T09:00:00.000+0000",
        priority="Highest",
        resolved="2024-03-01T15:00:00.000+0000",
    )
    sup2 = jira_issue("SUP-2", "2024-03-02T09:00:00.000+0100", type="Task")
    rows = [
        sup1,
        jira_change(sup1, "2024-03-01T09:05:00.000+0000", "lead", "assignee", "ann", "Ann"),
        jira_change(sup1, "2024-03-01T10:00:00.000+0000", "ann", "status", "3", "In Progress"),
        jira_change(sup1, "2024-03-01T11:00:00.000+0000", "ann", "assignee", "sam", "Sam"),
        jira_change(sup1, "2024-03-01T15:00:00.000+0000", "sam", "status", "10001", "Done"),
        sup2,  # never changed: still a ticket, still open
    ]
    tickets = load_tickets(write_jsonl(tmp_path / "jira.jsonl", rows), "jira").tickets
    tickets = tickets.set_index("ticket_id")
    one = tickets.loc["SUP-1"]
    assert (one["priority"], one["category"], one["channel"]) == ("urgent", "Bug", "web")
    assert one["created_at"] == pd.Timestamp("2024-03-01 09:00", tz=UTC)
    assert (one["agent_id"], one["resolver_id"], one["reassignment_count"]) == ("ann", "sam", 1)
    assert one["resolved_at"] == pd.Timestamp("2024-03-01 15:00", tz=UTC)
    assert tickets.loc["SUP-2", "created_at"] == pd.Timestamp("2024-03-02 08:00", tz=UTC)
    labels = label_tickets(tickets, LabelConfig())
    assert labels.loc["SUP-1"] and pd.isna(labels.loc["SUP-2"])  # handed over: escalated


# --- Freshdesk tickets export -------------------------------------------------------------

FRESHDESK = """
Ticket ID,Subject,Description,Status,Priority,Source,Type,Agent,Group,Created time,Due by Time,Resolved time,Closed time,Last update time,Tags,Survey results,Product,Full name,Email,Contact ID,Company Name
1001,Refund,Charged twice,Closed,Urgent,Email,Refund,Ann Lee,Billing,2024-03-01 09:00:00,2024-03-02 09:00:00,2024-03-01 12:00:00,2024-03-03 12:00:00,2024-03-03 12:00:00,"vip,escalated",Unhappy,Payments,Kim,kim@x.io,77,Acme
1002,Login,Cannot log in,Open,Low,Portal,,,,2024-03-02 09:00:00,2024-03-03 09:00:00,,,2024-03-02 09:00:00,,,,Lou,lou@y.io,78,
"""


def test_freshdesk_export_maps_sources_priorities_tags_and_surveys(tmp_path):
    tickets = load_tickets(write(tmp_path / "tickets.csv", FRESHDESK), "freshdesk").tickets
    assert tickets["channel"].tolist() == ["email", "web"]
    assert tickets["priority"].tolist() == ["urgent", "low"]
    assert tickets["category"].tolist() == ["Refund", "unknown"]
    assert tickets["customer_id"].tolist() == ["77", "78"]
    assert tickets["escalated"].iloc[0] and pd.isna(tickets["escalated"].iloc[1])
    assert tickets["resolved_at"].iloc[0] == pd.Timestamp("2024-03-01 12:00", tz=UTC)
    assert tickets["csat"].iloc[0] == 0.0
    assert (tickets["agent_id"].iloc[0], tickets["final_queue"].iloc[0]) == ("Ann Lee", "Billing")


# --- Salesforce Service Cloud cases -------------------------------------------------------

SALESFORCE = """
Id,CaseNumber,CreatedDate,ClosedDate,Origin,Type,Reason,Priority,Subject,Description,AccountId,ContactId,OwnerId,Status,IsEscalated,IsClosed
500A1,00001001,2024-03-01T09:00:00.000Z,2024-03-01T17:30:00.000Z,Phone,Problem,Performance,High,Slow,App is slow,001X,003X,005U1,Closed,true,true
500A2,00001002,2024-03-02T09:00:00.000Z,,Web,,,Low,Question,How to?,001Y,,00GQ1,New,false,false
"""


def test_salesforce_cases_keep_numbers_and_use_the_escalation_flag(tmp_path):
    tickets = load_tickets(write(tmp_path / "Case.csv", SALESFORCE), "salesforce").tickets
    assert tickets["ticket_id"].tolist() == ["00001001", "00001002"]  # leading zeros kept
    assert tickets["category"].tolist() == ["Problem / Performance", "unknown"]
    assert tickets["channel"].tolist() == ["phone", "web"]
    assert tickets["customer_id"].tolist() == ["003X", "001Y"]  # contact, else account
    assert tickets["escalated"].tolist() == [True, False]
    assert tickets["resolved_at"].iloc[0] == pd.Timestamp("2024-03-01 17:30", tz=UTC)
    assert label_tickets(tickets, LabelConfig()).iloc[0]


# --- generic process-mining event log -----------------------------------------------------

XES_LOG = """
case:concept:name,concept:name,time:timestamp,org:resource,org:group,case:priority,case:category
C1,Open ticket,2024-03-01 09:00:00,desk1,Desk,high,network
C1,Assign,2024-03-01 09:10:00,desk1,Desk,high,network
C1,Escalate,2024-03-01 10:00:00,expert7,Experts,high,network
C1,Resolve ticket,2024-03-01 12:00:00,expert7,Experts,high,network
C1,Close ticket,2024-03-02 12:00:00,system,Desk,high,network
C2,Open ticket,2024-03-01 11:00:00,desk2,Desk,low,mail
C2,Resolve ticket,2024-03-01 11:30:00,desk2,Desk,low,mail
C3,Open ticket,2024-03-02 08:00:00,desk1,Desk,low,mail
"""


def test_an_xes_style_event_log_derives_resolution_and_resolver_from_activities(tmp_path):
    tickets = load_tickets(write(tmp_path / "log.csv", XES_LOG), "event-log").tickets
    tickets = tickets.set_index("ticket_id")
    c1 = tickets.loc["C1"]
    assert c1["resolved_at"] == pd.Timestamp("2024-03-01 12:00", tz=UTC)  # not the close
    assert (c1["first_responder_id"], c1["resolver_id"]) == ("desk1", "expert7")
    assert (c1["channel"], c1["customer_id"]) == ("unknown", "C1")
    assert pd.isna(tickets.loc["C3", "resolved_at"])
    labels = label_tickets(tickets, LabelConfig())
    assert labels.loc["C1"] and not labels.loc["C2"]
    assert pd.isna(labels.loc["C3"])


PLAIN_LOG = """
Case ID,Activity,Timestamp,Resource,level
7,Open,2024-03-01T09:00:00Z,r1,L1
7,Move to L2,2024-03-01T10:00:00Z,r2,L2
7,Completed,2024-03-01T12:00:00Z,r2,L2
"""


def test_a_plain_event_log_with_levels_gets_tiers(tmp_path):
    tickets = load_tickets(write(tmp_path / "log.csv", PLAIN_LOG), "event-log").tickets
    row = tickets.iloc[0]
    assert (row["ticket_id"], row["initial_tier"], row["final_tier"]) == ("7", 1, 2)
    assert row["resolved_at"] == pd.Timestamp("2024-03-01 12:00", tz=UTC)
    assert label_tickets(tickets, LabelConfig()).iloc[0]
