"""YAML mappings: how each export format becomes the canonical ticket frame."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from escpredict.contract import TICKET_FIELDS
from escpredict.ingest.loaders import load_agents, load_tickets
from escpredict.ingest.mapping import MappingError, apply_mapping, load_mapping
from escpredict.ingest.validation import DataValidationError

UTC = "UTC"


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text.strip() + "\n", encoding="utf-8")
    return path


def write_yaml(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --- finding and checking mapping files ---------------------------------------------------


def test_shipped_mappings_load_by_name():
    names = ("generic", "servicenow", "servicenow-events", "zendesk", "jira", "freshdesk")
    names += ("salesforce", "event-log")
    assert {load_mapping(n).name for n in names} == set(names)


def test_escpredict_home_mappings_win_over_the_shipped_ones(tmp_path, monkeypatch):
    folder = tmp_path / "pipelines/mappings"
    folder.mkdir(parents=True)
    write_yaml(folder / "generic.yaml", "timezone: Europe/Paris\n")
    monkeypatch.setenv("ESCPREDICT_HOME", str(tmp_path))
    assert load_mapping("generic").timezone == "Europe/Paris"


def test_a_mapping_can_be_given_as_a_path(tmp_path):
    path = write_yaml(tmp_path / "mine.yaml", "columns: {ticket_id: key}\n")
    mapping = load_mapping(str(path))
    assert (mapping.name, mapping.columns["ticket_id"]) == ("mine", "key")


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("columns: {ticket_number: number}\n", "not canonical column names"),
        ("timezone: Mars/Olympus\n", "unknown timezone"),
        ("level: events\n", "needs an 'events' section"),
        ("colums: {}\n", "colums"),
        ("events: {time: t, assignee: a}\ncolumns: {agent_id: owner}\n", "derived from events"),
    ],
)
def test_invalid_mappings_fail_naming_the_file_and_key(tmp_path, text, complaint):
    path = write_yaml(tmp_path / "bad.yaml", text)
    with pytest.raises(MappingError, match=complaint) as info:
        load_mapping(str(path))
    assert "bad.yaml" in str(info.value)


def test_unknown_mapping_name_says_where_it_looked():
    with pytest.raises(MappingError, match="no mapping named 'remedy'.*pipelines/mappings"):
        load_mapping("remedy")


# --- generic ------------------------------------------------------------------------------


def test_generic_output_has_every_contract_column_with_contract_types(tmp_path):
    path = write_csv(
        tmp_path / "t.csv",
        """
ticket_id,created_at,channel,category,priority,customer_id,reassignment_count,escalated,csat
007,2024-01-01 10:00,email,billing,high,C1,2,yes,4.5
""",
    )
    tickets = load_tickets(path).tickets
    assert list(tickets.columns) == [f.name for f in TICKET_FIELDS]
    row = tickets.iloc[0]
    assert row["ticket_id"] == "007"  # ids stay text
    assert str(tickets["created_at"].dtype) == "datetime64[ns, UTC]"
    assert tickets["reassignment_count"].dtype == "Int64" and row["reassignment_count"] == 2
    assert tickets["escalated"].dtype == "boolean" and row["escalated"]
    assert tickets["csat"].dtype == "float64"
    assert (row["subject"], row["description"]) == ("", "")
    assert tickets["resolved_at"].isna().all() and tickets["final_tier"].isna().all()


def test_mixed_naive_and_aware_times_use_the_mapping_timezone(tmp_path):
    mapping = write_yaml(tmp_path / "berlin.yaml", "timezone: Europe/Berlin\n")
    path = write_csv(
        tmp_path / "t.csv",
        """
ticket_id,created_at,channel,category,priority,customer_id
T1,2024-01-15 10:00:00,email,x,low,C1
T2,2024-01-15T10:00:00Z,email,x,low,C1
T3,2024-07-15T10:00:00-04:00,email,x,low,C1
""",
    )
    created = load_tickets(path, str(mapping)).tickets["created_at"]
    assert created.tolist() == [
        pd.Timestamp("2024-01-15 09:00", tz=UTC),  # Berlin is UTC+1 in winter
        pd.Timestamp("2024-01-15 10:00", tz=UTC),
        pd.Timestamp("2024-07-15 14:00", tz=UTC),
    ]


# --- servicenow ---------------------------------------------------------------------------

SERVICENOW = """
number,opened_at,sys_created_by,assigned_to,assignment_group,resolved_by,resolved_at,reassignment_count,category,subcategory,impact,urgency,priority,short_description,description,caller_id,contact_type,reopen_count
INC0001,2024-02-01 08:00:00,disp.ann,bob,Network,bob,2024-02-01 12:00:00,1,Network,VPN,2,2,1 - Critical,VPN down,Cannot connect,cust9,self-service,0
INC0002,2024-02-02 08:00:00,bob,bob,Service Desk,bob,,0,Inquiry,,3,3,4 - Low,How to,Question,cust8,email,2
"""


def test_servicenow_export_maps_names_and_values(tmp_path):
    path = write_csv(tmp_path / "incident.csv", SERVICENOW)
    tickets = load_tickets(path, "servicenow").tickets.set_index("ticket_id")
    assert tickets["priority"].tolist() == ["urgent", "low"]
    assert tickets["category"].tolist() == ["Network / VPN", "Inquiry"]
    assert tickets["channel"].tolist() == ["web", "email"]
    assert tickets["first_responder_id"].tolist() == ["disp.ann", "bob"]
    assert tickets.loc["INC0001", "subject"] == "VPN down"
    assert tickets["reopened"].tolist() == [False, True]
    assert tickets["resolved_at"].isna().tolist() == [False, True]


def test_servicenow_agents_export_maps_titles_to_roles(tmp_path):
    path = write_csv(
        tmp_path / "sys_user.csv",
        """
user_name,sys_created_on,department,title
disp.ann,2020-01-01 00:00:00,Service Desk,Service Desk Coordinator
bob,2021-06-01 00:00:00,Network,Senior Engineer
""",
    )
    agents = load_agents(path, "servicenow")
    assert agents["role"].tolist() == ["coordinator", "senior"]
    assert agents["hire_date"].iloc[1] == pd.Timestamp("2021-06-01", tz=UTC)


# --- zendesk ------------------------------------------------------------------------------


def test_zendesk_json_lines_with_nested_objects_and_tags(tmp_path):
    records = [
        {
            "id": 101,
            "created_at": "2024-03-01T09:00:00Z",
            "via": {"channel": "voice"},
            "type": "incident",
            "tags": ["vip", "escalated"],
            "priority": "normal",
            "subject": "Outage",
            "description": "All down",
            "requester_id": 5,
            "assignee_id": 77,
            "group_id": 3,
            "solved_at": "2024-03-01T11:00:00Z",
            "satisfaction_rating": {"score": "bad"},
            "reopens": 1,
        },
        {
            "id": 102,
            "created_at": "2024-03-02T09:00:00Z",
            "via": {"channel": "web"},
            "type": "question",
            "tags": ["escalation-review"],
            "priority": "low",
            "subject": "Hi",
            "description": "?",
            "requester_id": 6,
            "assignee_id": None,
            "group_id": 3,
            "solved_at": None,
            "satisfaction_rating": {"score": "offered"},
            "reopens": 0,
        },
    ]
    path = tmp_path / "tickets.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    tickets = load_tickets(path, "zendesk").tickets
    assert tickets["ticket_id"].tolist() == ["101", "102"]
    assert tickets["channel"].tolist() == ["phone", "web"]
    assert tickets["priority"].tolist() == ["medium", "low"]
    assert tickets["category"].tolist() == ["incident", "question"]
    assert tickets["escalated"].tolist() == [True, False]  # whole tags only
    assert tickets["csat"].iloc[0] == 0.0 and pd.isna(tickets["csat"].iloc[1])
    assert tickets["agent_id"].iloc[0] == "77" and pd.isna(tickets["agent_id"].iloc[1])
    assert tickets["reopened"].tolist() == [True, False]


# --- event exports ------------------------------------------------------------------------

EVENTS_MAPPING = """
level: events
timezone: UTC
columns:
  ticket_id: case
  channel: via
  category: topic
  priority: prio
  customer_id: customer
  resolved_at: closed_at
events:
  time: at
  actor: by
  assignee: owner
  tier: tier
  queue: queue
  actor_role: by_role        # optional: this export may carry the actor's role
  coordinator_roles: [coordinator, dispatcher]
"""

# C1: a dispatcher creates it (owning it in triage) and assigns it to a1; a1 hands it to
#     senior s1 at tier 2; s1 solves it.
# C2: agent a2 picks it up and solves it.  C3: still open after a reassignment.
EVENTS = """
case,at,by,owner,tier,queue,via,topic,prio,customer,closed_at
C1,2024-01-01 09:00,disp,disp,1,triage,email,billing,high,K1,
C2,2024-01-01 10:00,a2,a2,1,front,chat,login,low,K2,
C1,2024-01-01 09:05,disp,a1,1,front,email,billing,high,K1,
C1,2024-01-01 11:00,a1,s1,2,experts,phone,billing,urgent,K1,
C1,2024-01-01 15:00,s1,s1,2,experts,phone,billing,urgent,K1,2024-01-01 15:00
C2,2024-01-01 10:30,a2,a2,1,front,chat,login,low,K2,2024-01-01 10:30
C3,2024-01-02 08:00,a1,a1,1,front,web,other,low,K3,
C3,2024-01-02 09:00,a1,a3,1,front,web,other,low,K3,
"""


def events_mapping(tmp_path: Path) -> str:
    return str(write_yaml(tmp_path / "events.yaml", EVENTS_MAPPING))


def load_events(tmp_path: Path, csv_text: str = EVENTS, **kwargs) -> pd.DataFrame:
    path = write_csv(tmp_path / "events.csv", csv_text)
    agents = pd.DataFrame(
        {
            "agent_id": ["disp", "a1", "a2", "a3", "s1"],
            "role": ["dispatcher", "agent", "agent", "agent", "senior"],
        }
    )
    result = load_tickets(path, events_mapping(tmp_path), agents=agents, **kwargs)
    return result.tickets.set_index("ticket_id")


def test_event_export_collapses_to_one_row_per_ticket(tmp_path):
    tickets = load_events(tmp_path)
    assert sorted(tickets.index) == ["C1", "C2", "C3"]
    c1 = tickets.loc["C1"]
    assert c1["created_at"] == pd.Timestamp("2024-01-01 09:00", tz=UTC)  # first event
    assert (c1["channel"], c1["priority"]) == ("email", "high")  # as at creation
    assert c1["first_responder_id"] == "a1"  # disp only routed it: no response
    assert c1["first_responder_role"] == "agent"
    assert c1["agent_id"] == "a1"  # first assignee who is not a coordinator
    assert c1["resolver_id"] == "s1"  # the actor who closed it
    assert c1["resolved_at"] == pd.Timestamp("2024-01-01 15:00", tz=UTC)
    assert (c1["reassignment_count"], c1["agents_involved"]) == (2, 3)  # disp → a1 → s1
    assert (c1["initial_tier"], c1["final_tier"]) == (1, 2)
    assert (c1["initial_queue"], c1["final_queue"]) == ("triage", "experts")


def test_event_export_simple_and_open_tickets(tmp_path):
    tickets = load_events(tmp_path)
    c2, c3 = tickets.loc["C2"], tickets.loc["C3"]
    assert (c2["agent_id"], c2["resolver_id"], c2["reassignment_count"]) == ("a2", "a2", 0)
    assert pd.isna(c3["resolved_at"]) and pd.isna(c3["resolver_id"])
    assert (c3["agent_id"], c3["reassignment_count"], c3["agents_involved"]) == ("a1", 1, 2)


def test_event_roles_from_the_export_beat_the_agents_table(tmp_path):
    text = """
case,at,by,by_role,owner,via,topic,prio,customer,closed_at
C1,2024-01-01 09:00,disp,agent,disp,email,billing,high,K1,2024-01-01 10:00
C2,2024-01-01 09:00,a2,,a2,email,billing,high,K2,2024-01-01 10:00
"""
    tickets = load_events(tmp_path, text)
    assert tickets.loc["C1", "first_responder_role"] == "agent"  # the export's own role
    assert tickets.loc["C2", "first_responder_role"] == "agent"  # from the agents table
    assert pd.isna(tickets.loc["C1", "agent_id"])  # disp, as assignee, is a dispatcher


# C1: created by an unknown actor ("?"), routed by a dispatcher, answered by a1.
# C2: only ever touched by unknown actors and the dispatcher: nobody responded.
UNKNOWN_FIRST = """
case,at,by,owner,via,topic,prio,customer,closed_at
C1,2024-01-01 09:00,?,?,email,billing,high,K1,?
C1,2024-01-01 09:05,disp,a1,email,billing,high,K1,?
C1,2024-01-01 09:30,a1,a1,email,billing,high,K1,2024-01-01 09:30
C2,2024-01-01 10:00,?,?,chat,login,low,K2,?
C2,2024-01-01 10:05,disp,?,chat,login,low,K2,?
"""


def test_first_responder_is_the_first_known_actor_who_is_no_coordinator(tmp_path):
    mapping = write_yaml(tmp_path / "m.yaml", EVENTS_MAPPING + 'missing: ["?"]\n')
    path = write_csv(tmp_path / "events.csv", UNKNOWN_FIRST)
    agents = pd.DataFrame({"agent_id": ["disp", "a1"], "role": ["dispatcher", "agent"]})

    tickets = load_tickets(path, str(mapping), agents=agents).tickets.set_index("ticket_id")

    assert (tickets.loc["C1", "first_responder_id"], tickets.loc["C1", "agent_id"]) == ("a1", "a1")
    assert tickets.loc["C1", "first_responder_role"] == "agent"
    assert pd.isna(tickets.loc["C2", "first_responder_id"])
    assert pd.isna(tickets.loc["C2", "first_responder_role"])


def test_without_roles_the_first_known_actor_responds_even_a_dispatcher(tmp_path):
    mapping = write_yaml(tmp_path / "m.yaml", EVENTS_MAPPING + 'missing: ["?"]\n')
    path = write_csv(tmp_path / "events.csv", UNKNOWN_FIRST)

    tickets = load_tickets(path, str(mapping)).tickets.set_index("ticket_id")

    assert tickets["first_responder_id"].to_dict() == {"C1": "disp", "C2": "disp"}


def test_an_event_export_needs_its_time_column(tmp_path):
    path = write_csv(tmp_path / "events.csv", EVENTS.replace("case,at,", "case,when,"))
    with pytest.raises(DataValidationError, match="event_time.*expected 'at'"):
        load_tickets(path, events_mapping(tmp_path))


def test_apply_mapping_on_a_raw_frame_matches_load_tickets(tmp_path):
    path = write_csv(tmp_path / "incident.csv", SERVICENOW)
    raw = pd.read_csv(path, dtype=str)
    mapped = apply_mapping(raw, load_mapping("servicenow"), str(path))
    pd.testing.assert_frame_equal(mapped, load_tickets(path, "servicenow").tickets)
