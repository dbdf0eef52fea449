"""`escpredict mapping init`: a draft mapping from an export's header and sample values.

Each export below is built in the real column layout of its ticketing system (header names
as the system writes them), a few rows long, and written to a file as a user would have it.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from escpredict.cli import app
from escpredict.ingest.loaders import load_tickets
from escpredict.ingest.mapping import load_mapping
from escpredict.onboard.draft import draft_mapping, draft_yaml, guess, read_sample
from escpredict.onboard.draft.layouts import detect, normalise

#: The header of the real ServiceNow incident event log sample, as exported.
SERVICENOW_EVENTS_LINE = (
    "number,incident_state,active,reassignment_count,reopen_count,sys_mod_count,made_sla,"
    "caller_id,opened_by,opened_at,sys_created_by,sys_created_at,sys_updated_by,sys_updated_at,"
    "contact_type,location,category,subcategory,u_symptom,cmdb_ci,impact,urgency,priority,"
    "assignment_group,assigned_to,knowledge,u_priority_confirmation,notify,problem_id,rfc,vendor,"
    "caused_by,closed_code,resolved_by,resolved_at,closed_at"
)
SERVICENOW_EVENTS_HEADER = next(csv.reader([SERVICENOW_EVENTS_LINE]))


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def servicenow_event(number: str, state: str, mod: int, updated_at: str, updated_by: str,
                     group: str, assignee: str, **other: str) -> list[str]:
    values = {
        "number": number, "incident_state": state, "active": "TRUE", "reassignment_count": "0",
        "reopen_count": "0", "sys_mod_count": str(mod), "made_sla": "TRUE",
        "caller_id": "Caller 2403", "opened_by": "Opened by  8", "opened_at": "29-02-2016 01:16",
        "sys_created_by": "Created by 6", "sys_created_at": "29-02-2016 01:23",
        "sys_updated_by": updated_by, "sys_updated_at": updated_at, "contact_type": "Phone",
        "location": "Location 143", "category": "Category 55", "subcategory": "Subcategory 170",
        "u_symptom": "Symptom 72", "cmdb_ci": "?", "impact": "2 - Medium", "urgency": "2 - Medium",
        "priority": "3 - Moderate", "assignment_group": group, "assigned_to": assignee,
        "knowledge": "TRUE", "u_priority_confirmation": "FALSE", "notify": "Do Not Notify",
        "problem_id": "?", "rfc": "?", "vendor": "?", "caused_by": "?", "closed_code": "code 5",
        "resolved_by": "Resolved by 149", "resolved_at": "29-02-2016 11:29",
        "closed_at": "05-03-2016 12:00",
    } | other
    return [values[h] for h in SERVICENOW_EVENTS_HEADER]


@pytest.fixture
def servicenow_events(tmp_path: Path) -> Path:
    rows = [
        servicenow_event("INC0000045", "New", 0, "29-02-2016 01:23", "Updated by 21", "Group 56", "?"),
        servicenow_event("INC0000045", "Active", 1, "29-02-2016 08:53", "Updated by 642", "Group 56",
                         "Resolver 31"),
        servicenow_event("INC0000045", "Resolved", 2, "29-02-2016 11:29", "Updated by 804",
                         "Group 70", "Resolver 89"),
        servicenow_event("INC0000045", "Closed", 3, "05-03-2016 12:00", "Updated by 908", "Group 70",
                         "Resolver 89"),
        servicenow_event("INC0000047", "New", 0, "13-03-2016 14:41", "Updated by 21", "Group 24", "?",
                         u_symptom="Symptom 4", knowledge="FALSE"),
        servicenow_event("INC0000047", "Awaiting User Info", 1, "14-03-2016 09:02", "Updated by 5",
                         "Group 24", "Resolver 31", u_symptom="Symptom 4", knowledge="FALSE"),
    ]
    return write_csv(tmp_path / "incident_events.csv", SERVICENOW_EVENTS_HEADER, rows)


def draft_of(path: Path) -> tuple[dict, str]:
    """The draft's data (as a reader of its YAML sees it) and its text."""
    text = draft_yaml(path)
    return yaml.safe_load(text), text


# --- recognising layouts ------------------------------------------------------------------


def test_column_names_are_compared_in_one_normal_form() -> None:
    assert normalise("Date/Time Opened") == "date_time_opened"
    assert normalise("CaseNumber") == "case_number"
    assert normalise("Custom field (Impact)") == "custom_field_impact"
    assert normalise("case:concept:name") == "case_concept_name"


def test_servicenow_event_export_becomes_an_event_mapping(servicenow_events: Path) -> None:
    tree, text = draft_of(servicenow_events)
    assert "ServiceNow" in text
    assert tree["level"] == "events"
    assert tree["datetime_format"] == "%d-%m-%Y %H:%M"
    assert tree["missing"] == ["?"]
    assert "No column feeds a label rule" not in text
    assert tree["events"] == {
        "time": "sys_updated_at", "status": "incident_state", "assignee": "assigned_to",
        "queue": "assignment_group",
    }
    assert tree["columns"]["ticket_id"] == "number"
    assert tree["columns"]["created_at"] == "opened_at"
    assert tree["columns"]["category"] == {"join": ["category", "subcategory"], "sep": " / "}
    assert tree["columns"]["priority"] == "priority"  # always filled: no default
    # fields the events derive are not mapped twice
    assert not {"agent_id", "final_queue", "first_responder_id"} & set(tree["columns"])
    assert tree["values"]["priority"]["3 - Moderate"] == "medium"


def test_event_export_resolution_comes_from_the_last_resolved_status(
    servicenow_events: Path,
) -> None:
    tree, _ = draft_of(servicenow_events)
    assert tree["derive"]["resolved_at"] == {"time": "last", "where": {"status": ["Resolved"]}}
    assert "resolved_at" not in tree["columns"]


def test_closed_stands_for_resolved_only_when_no_status_says_resolved() -> None:
    assert guess.resolving_statuses(["New", "Resolved", "Closed"]) == ["Resolved"]
    assert guess.resolving_statuses(["Open", "Closed", "Closed - duplicate"]) == [
        "Closed", "Closed - duplicate"]
    assert guess.resolving_statuses(["Open", "Pending"]) == []


def test_resolver_in_another_id_namespace_is_taken_from_the_assignee(
    servicenow_events: Path,
) -> None:
    """'Resolved by 149' never equals 'Resolver 89': comparing them would call every ticket
    escalated, so the resolver becomes the assignee at resolution, and the draft says why."""
    tree, text = draft_of(servicenow_events)
    assert tree["derive"]["resolver_id"]["value"] == "assignee"
    assert "'resolved_by' shares no id with 'assigned_to'" in text


def test_actor_ids_that_never_meet_the_assignee_ids_are_left_out(servicenow_events: Path) -> None:
    """'Updated by 21' as first responder of an unassigned ticket would differ from its
    resolver and mark it escalated."""
    tree, text = draft_of(servicenow_events)
    assert "actor" not in tree["events"]
    assert "events.actor not mapped: 'sys_updated_by' shares no id with 'assigned_to'" in text


def servicenow_list_export(folder: Path) -> Path:
    header = ["number", "opened_at", "short_description", "description", "caller_id",
              "category", "subcategory", "priority", "impact", "urgency", "state",
              "assignment_group", "assigned_to", "contact_type", "cmdb_ci", "location",
              "company", "sys_created_by", "resolved_by", "resolved_at", "reassignment_count",
              "reopen_count", "u_business_service"]
    rows = [
        ["INC0010001", "2024-03-01 14:05:09", "VPN drops", "VPN drops every hour", "abel.tuter",
         "Network", "VPN", "2 - High", "2 - Medium", "1 - High", "Resolved", "Network L2",
         "beth.anglin", "email", "vpn-gw-01", "Paris", "ACME", "service.desk", "beth.anglin",
         "2024-03-02 09:00:00", "1", "0", "Remote access"],
        ["INC0010002", "2024-03-01 15:10:00", "Outlook slow", "", "fred.luddy", "Software",
         "Email", "4 - Low", "3 - Low", "3 - Low", "New", "Service Desk", "", "self-service",
         "", "Lyon", "ACME", "service.desk", "", "", "0", "0", "Email"],
    ]
    return write_csv(folder / "incident.csv", header, rows)


def test_servicenow_list_export_stays_one_row_per_ticket(tmp_path: Path) -> None:
    tree, text = draft_of(servicenow_list_export(tmp_path))
    assert "ServiceNow" in text
    assert "try `--mapping servicenow` first" in text
    assert tree["level"] == "tickets"
    assert tree["datetime_format"] == "ISO8601"
    assert tree["columns"]["subject"] == "short_description"
    assert tree["columns"]["agent_id"] == "assigned_to"
    assert "the assignee at export time" in text
    assert tree["columns"]["product"] == "u_business_service"
    assert tree["values"]["channel"] == {"self-service": "web"}  # "email" is already canonical
    assert tree["values"]["priority"] == {"2 - High": "high", "4 - Low": "low"}


def zendesk_export(folder: Path) -> Path:
    records = [
        {"id": 35436, "created_at": "2024-03-01T14:05:09Z", "subject": "Help, my printer is on fire!",
         "description": "The fire is very colorful.", "priority": "high", "status": "solved",
         "type": "incident", "requester_id": 20978392, "submitter_id": 76872, "assignee_id": 235323,
         "organization_id": 509974, "group_id": 98738, "tags": ["enterprise", "escalated"],
         "via": {"channel": "web"}, "satisfaction_rating": {"score": "good"}},
        {"id": 35437, "created_at": "2024-03-02T08:00:00Z", "subject": "Refund", "description": "",
         "priority": "normal", "status": "open", "type": "question", "requester_id": 20978393,
         "submitter_id": 20978393, "assignee_id": None, "organization_id": None, "group_id": 98738,
         "tags": [], "via": {"channel": "email"}, "satisfaction_rating": {"score": "unoffered"}},
    ]
    path = folder / "tickets.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_zendesk_api_export_is_recognised_through_its_nested_fields(tmp_path: Path) -> None:
    tree, text = draft_of(zendesk_export(tmp_path))
    assert "Zendesk" in text
    assert tree["columns"]["ticket_id"] == "id"
    assert tree["columns"]["channel"] == "via.channel"
    assert tree["columns"]["customer_id"] == "requester_id"
    assert tree["columns"]["category"] == "type"
    assert tree["values"]["priority"] == {"normal": "medium"}
    assert tree["values"]["csat"] == {"good": 1.0, "unoffered": None}  # offered, not answered
    assert tree["columns"]["escalated"] == {"column": "tags", "contains": "escalated"}
    assert "first_responder_id" not in tree["columns"]  # the submitter is usually the customer
    assert tree["datetime_format"] == "ISO8601"


def jira_export(folder: Path) -> Path:
    header = ["Summary", "Issue key", "Issue id", "Issue Type", "Status", "Project key",
              "Project name", "Priority", "Resolution", "Assignee", "Reporter", "Creator",
              "Created", "Updated", "Resolved", "Component/s", "Description",
              "Custom field (Impact)", "Custom field (Urgency)"]
    rows = [
        ["Cannot log in", "HELP-101", "10101", "Incident", "Done", "HELP", "IT Help", "Highest",
         "Done", "jsmith", "customer1", "customer1", "12/Mar/24 2:15 PM", "13/Mar/24 9:00 AM",
         "13/Mar/24 9:00 AM", "Access", "SSO loop", "Extensive / Widespread", "Critical"],
        ["New laptop", "HELP-102", "10102", "Service Request", "Open", "HELP", "IT Help",
         "Medium", "", "", "customer2", "customer2", "25/Mar/24 11:40 AM", "25/Mar/24 11:40 AM",
         "", "Hardware", "", "Minor / Localized", "Low"],
    ]
    return write_csv(folder / "jira.csv", header, rows)


def test_jira_export_gets_its_day_month_name_format_and_a_constant_channel(
    tmp_path: Path,
) -> None:
    tree, text = draft_of(jira_export(tmp_path))
    assert "Jira" in text
    assert tree["columns"]["ticket_id"] == "Issue key"
    assert tree["datetime_format"] == "%d/%b/%y %I:%M %p"
    assert tree["columns"]["resolved_at"] == "Resolved"
    assert tree["columns"]["customer_id"] == "Reporter"
    assert tree["columns"]["impact"] == "Custom field (Impact)"
    assert tree["columns"]["channel"] == {"constant": "unknown"}
    assert "the export has no channel column; check" in text
    assert tree["values"]["priority"] == {"Highest": "urgent", "Medium": "medium"}
    assert "Issue id" not in str(tree.get("features"))  # an id is never proposed as a feature


def freshdesk_export(folder: Path) -> Path:
    header = ["Ticket ID", "Subject", "Description", "Status", "Priority", "Source", "Type",
              "Agent", "Group", "Created time", "Due by Time", "Resolved time", "Closed time",
              "Last update time", "First response time (in hrs)", "Resolution time (in hrs)",
              "Agent interactions", "Customer interactions", "Tags", "Survey results",
              "Product", "Company Name", "Full name", "Contact ID"]
    rows = [
        ["1", "Order late", "Where is it", "Closed", "Medium", "Email", "Question", "Ann",
         "Billing", "2024-03-12 14:05:09", "2024-03-15 14:05:09", "2024-03-13 10:00:00",
         "2024-03-14 10:00:00", "2024-03-14 10:00:00", "1.5", "20", "2", "2", "", "N/A",
         "Shop", "Globex", "Homer Simpson", "501"],
        ["2", "Refund", "Please refund", "Open", "Urgent", "Portal", "Refund", "", "Billing",
         "2024-03-13 09:00:00", "2024-03-14 09:00:00", "", "", "2024-03-13 09:00:00", "",
         "", "0", "1", "", "N/A", "Shop", "Initech", "Peter Gibbons", "502"],
    ]
    return write_csv(folder / "freshdesk.csv", header, rows)


def test_freshdesk_export_maps_its_source_to_channels(tmp_path: Path) -> None:
    tree, text = draft_of(freshdesk_export(tmp_path))
    assert "Freshdesk" in text
    assert tree["columns"]["ticket_id"] == "Ticket ID"
    assert tree["columns"]["created_at"] == "Created time"
    assert tree["columns"]["channel"] == "Source"
    assert tree["values"]["channel"] == {"Email": "email", "Portal": "web"}
    assert tree["columns"]["customer_id"] == "Contact ID"
    assert tree["columns"]["customer_segment"] == "Company Name"
    assert "N/A" in tree["missing"]


def salesforce_export(folder: Path) -> Path:
    header = ["Case Number", "Case Owner", "Subject", "Description", "Status", "Priority",
              "Case Origin", "Date/Time Opened", "Date/Time Closed", "Account Name",
              "Contact Name", "Escalated", "Case Reason", "Type"]
    rows = [
        ["00001026", "Jane Doe", "Engine fault", "Generator GC5060 fails", "Closed", "High",
         "Phone", "3/12/2024 2:05 PM", "3/25/2024 9:30 AM", "Edge Communications",
         "Rose Gonzalez", "1", "Performance", "Mechanical"],
        ["00001027", "John Roe", "Manual missing", "", "New", "Low", "Web",
         "3/25/2024 11:15 AM", "", "United Oil", "Sean Forbes", "0", "Instructions not clear",
         "Other"],
    ]
    return write_csv(folder / "cases.csv", header, rows)


def test_salesforce_case_report_gets_a_us_format_with_am_pm(tmp_path: Path) -> None:
    tree, text = draft_of(salesforce_export(tmp_path))
    assert "Salesforce" in text
    assert tree["columns"]["ticket_id"] == "Case Number"
    assert tree["columns"]["channel"] == "Case Origin"
    assert tree["columns"]["agent_id"] == "Case Owner"
    assert tree["columns"]["escalated"] == "Escalated"
    assert tree["columns"]["resolved_at"] == "Date/Time Closed"
    assert tree["datetime_format"] == "%m/%d/%Y %I:%M %p"


def test_a_customer_column_with_gaps_falls_back_to_the_next_candidate() -> None:
    """A Salesforce case without a contact still belongs to an account."""
    sample = pd.DataFrame({"CaseNumber": ["00001001", "00001002"], "ContactId": ["003X", ""],
                           "AccountId": ["001X", "001Y"], "Origin": ["Phone", "Web"],
                           "CreatedDate": ["2024-03-01T09:00:00.000Z"] * 2, "OwnerId": ["a", "b"],
                           "IsEscalated": ["true", "false"], "ClosedDate": ["", ""]})
    columns = draft_mapping(sample, "Case").tree["columns"]
    assert columns["customer_id"] == {"any_of": ["ContactId", "AccountId"]}


def test_salesforce_api_names_are_recognised_too() -> None:
    header = ["Id", "CaseNumber", "ContactId", "AccountId", "OwnerId", "Origin", "Status",
              "Priority", "Subject", "CreatedDate", "ClosedDate", "IsEscalated", "IsClosed",
              "Reason", "Type"]
    layout, share = detect(header)
    assert layout is not None and layout.name == "salesforce" and share > 0.8


def event_log_export(folder: Path) -> Path:
    header = ["Case ID", "Activity", "Timestamp", "Resource", "Group", "Tier", "Product",
              "Customer", "Channel", "Category", "Priority"]
    rows = [
        ["C1", "Open", "12.03.2024 14:05:09", "R10", "Service Desk", "L1", "Router X",
         "K7", "phone", "Network", "P2"],
        ["C1", "Escalate", "12.03.2024 15:00:00", "R20", "Network", "Tier 2", "Router X",
         "K7", "phone", "Network", "P2"],
        ["C1", "Completed", "13.03.2024 08:00:00", "R20", "Network", "Tier 2", "Router X",
         "K7", "phone", "Network", "P2"],
        ["C2", "Open", "14.03.2024 09:00:00", "R11", "Service Desk", "L1", "NULL",
         "K8", "email", "Access", "P4"],
    ]
    return write_csv(folder / "eventlog.csv", header, rows)


def test_process_mining_event_log_gets_tiers_and_a_completion_time(tmp_path: Path) -> None:
    tree, text = draft_of(event_log_export(tmp_path))
    assert "event log" in text
    assert tree["level"] == "events"
    assert tree["datetime_format"] == "%d.%m.%Y %H:%M:%S"
    assert tree["events"]["time"] == "Timestamp"
    assert tree["events"]["status"] == "Activity"
    assert tree["events"]["queue"] == "Group"
    assert tree["events"]["actor"] == "Resource"
    assert "assignee" not in tree["events"]  # a hand-over between steps is no reassignment
    assert tree["derive"]["resolver_id"] == {
        "value": "actor", "at": "last", "where": {"status": ["Completed"]}}
    assert tree["events"]["tier"] == {"column": "Tier", "values": {"L1": 1, "Tier 2": 2}}
    assert tree["derive"]["resolved_at"] == {"time": "last", "where": {"status": ["Completed"]}}
    assert tree["missing"] == ["NULL"]
    assert tree["values"]["priority"] == {"P2": "high", "P4": "low"}


def unknown_export(folder: Path) -> Path:
    header = ["TicketNum", "OpenedOn", "Prio", "Cust_Caller_ID", "Topic", "Notes"]
    rows = [["A-1", "2024-03-01 10:00", "high", "u1", "billing", "x"],
            ["A-2", "2024-03-02 11:00", "low", "u2", "access", "y"]]
    return write_csv(folder / "custom.csv", header, rows)


def test_unknown_layout_falls_back_to_similar_names_and_says_so(tmp_path: Path) -> None:
    tree, text = draft_of(unknown_export(tmp_path))
    assert "Layout not recognised" in text
    assert tree["columns"]["ticket_id"] == "TicketNum"
    assert tree["columns"]["customer_id"] == "Cust_Caller_ID"
    assert "guessed from 'TicketNum'; check" in text
    assert tree["columns"]["category"] == "Topic"
    assert tree["columns"]["priority"] == "Prio"  # an abbreviation


def test_other_help_desks_are_matched_by_name_similarity(tmp_path: Path) -> None:
    """osTicket: a layout the draft does not know."""
    header = ["Ticket Number", "Date Created", "Subject", "From", "From Email", "Priority",
              "Department", "Help Topic", "Source", "Current Status", "Last Updated",
              "Assigned To", "Team Assigned", "Thread Count"]
    rows = [["104553", "3/14/24 9:12 AM", "Printer jam", "Kim Lee", "kim@x.io", "Normal",
             "Support", "Hardware", "Email", "Closed", "3/15/24 1:00 PM", "Ann Smith", "", "4"],
            ["104554", "3/14/24 10:40 AM", "VPN down", "Bo Chan", "bo@y.io", "High", "IT",
             "Network", "Phone", "Open", "3/14/24 10:41 AM", "", "Network Team", "1"]]
    tree, text = draft_of(write_csv(tmp_path / "osticket.csv", header, rows))
    columns = tree["columns"]
    assert (columns["ticket_id"], columns["created_at"]) == ("Ticket Number", "Date Created")
    assert tree["datetime_format"] == "%m/%d/%y %I:%M %p"
    assert (columns["category"], columns["customer_id"]) == ("Help Topic", "From Email")
    assert columns["final_queue"] == "Department"  # the desk's department, not the customer's
    assert "No column feeds a label rule" in text
    assert tree["values"]["priority"] == {"High": "high", "Normal": "medium"}


# --- what the draft proposes beyond columns ------------------------------------------------


def test_unused_columns_are_listed_and_creation_time_ones_proposed_as_features(
    servicenow_events: Path,
) -> None:
    tree, text = draft_of(servicenow_events)
    features = tree["features"]
    assert features["symptom"] == {"column": "u_symptom", "kind": "categorical"}
    assert features["knowledge"] == {"column": "knowledge", "kind": "boolean"}
    # outcomes are never proposed: they are not known when the ticket arrives
    assert not {"closed_code", "made_sla", "sys_mod_count", "closed_at"} & set(features)
    unused = text.split("Export columns this draft does not read:")[1]
    assert "closed_code" in unused and "made_sla" in unused
    assert "resolved_by" in unused  # replaced by a derive rule: unused after all


def test_draft_is_written_with_its_comments_as_valid_yaml(servicenow_events: Path) -> None:
    text = draft_yaml(servicenow_events)
    assert text.startswith("# Draft mapping written by `escpredict mapping init`")
    assert "['?']  # seen as whole values: '?' in 6 columns" in text  # a short doubt: beside it
    assert "\n  # same ids as the assignee; 'resolved_by'" in text  # a long one: above it
    assert yaml.safe_load(text)["name"] == "incident_events"


def test_a_sample_keeps_the_head_and_draws_from_the_rest(tmp_path: Path) -> None:
    n = 5000
    path = tmp_path / "big.csv"
    pd.DataFrame({"ticket_id": range(n)}).to_csv(path, index=False)
    sample = read_sample(path)
    assert len(sample) == 4000
    assert sample["ticket_id"].head(2000).tolist() == [str(i) for i in range(2000)]
    assert sample["ticket_id"].astype(int).iloc[2000:].min() >= 2000


# --- value guesses ----------------------------------------------------------------------


def test_day_first_format_without_seconds_is_found() -> None:
    found = guess.datetime_format(pd.Series(["29-02-2016 01:16", "?", "05-03-2016 12:00"]), ["?"])
    assert found == guess.DatetimeGuess("%d-%m-%Y %H:%M")


def test_ambiguous_day_month_order_is_reported() -> None:
    found = guess.datetime_format(pd.Series(["01/02/2024 10:00", "03/04/2024 11:30"]), [])
    assert found is not None
    assert {found.format, *found.also} >= {"%d/%m/%Y %H:%M", "%m/%d/%Y %H:%M"}


def test_a_column_mixing_formats_is_read_per_value() -> None:
    found = guess.datetime_format(pd.Series(["2024-03-01 10:00", "March 3, 2024 10:00"]), [])
    assert found == guess.DatetimeGuess("mixed")


def test_numbers_are_not_mistaken_for_timestamps() -> None:
    assert guess.datetime_format(pd.Series(["2016", "2403", "17"]), []) is None
    assert not guess.is_datetime(pd.Series(["2016", "2403"]), [])


def test_missing_markers_are_frequent_whole_values_only() -> None:
    sample = pd.DataFrame({"a": ["?", "x", "?"], "b": ["N/A", "y", "z"], "c": ["a-b", "c", "d"],
                           "d": ["none", "1", "2"]})
    # "a-b" holds "-" but is not "-"
    assert guess.missing_markers(sample) == {"?": ["a"], "N/A": ["b"], "none": ["d"]}


@pytest.mark.parametrize(
    ("value", "tier"),
    [("L1", 1), ("Tier 2", 2), ("level 3", 3), ("2nd line", 2), ("Second line", 2), ("3", 3),
     ("Service Desk", None)],
)
def test_tier_strings_become_numbers(value: str, tier: int | None) -> None:
    assert guess.tier_number(value) == tier


def test_draft_mapping_works_on_a_frame_without_a_file() -> None:
    sample = pd.DataFrame({"ticket_id": ["1", "2"], "created_at": ["2024-01-01", "2024-01-02"],
                           "channel": ["email", "chat"], "category": ["a", "b"],
                           "priority": ["low", "high"], "customer_id": ["c1", "c2"]})
    draft = draft_mapping(sample, "plain")
    assert draft.tree["columns"]["ticket_id"] == "ticket_id"
    assert "values" not in draft.tree or not draft.tree["values"].get("priority")


# --- the command ---------------------------------------------------------------------------


def test_mapping_init_prints_only_the_yaml_on_stdout(servicenow_events: Path) -> None:
    result = CliRunner().invoke(app, ["mapping", "init", "--tickets", str(servicenow_events),
                                      "--no-check"])
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(result.stdout)["level"] == "events"


def test_mapping_init_writes_the_draft_file(servicenow_events: Path, tmp_path: Path) -> None:
    out = tmp_path / "mappings" / "mine.yaml"
    result = CliRunner().invoke(app, ["mapping", "init", "--tickets", str(servicenow_events),
                                      "--out", str(out), "--no-check"])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert yaml.safe_load(out.read_text())["events"]["time"] == "sys_updated_at"


def test_mapping_init_never_overwrites_a_mapping_unless_forced(
    servicenow_events: Path, tmp_path: Path
) -> None:
    out = tmp_path / "mine.yaml"
    out.write_text("# edited by hand\n", encoding="utf-8")
    args = ["mapping", "init", "--tickets", str(servicenow_events), "--out", str(out), "--no-check"]
    refused = CliRunner().invoke(app, args)
    assert refused.exit_code == 2 and "pass --force" in refused.output
    assert out.read_text() == "# edited by hand\n"
    assert CliRunner().invoke(app, [*args, "--force"]).exit_code == 0
    assert yaml.safe_load(out.read_text())["level"] == "events"


def test_mapping_init_refuses_an_export_without_rows(tmp_path: Path) -> None:
    path = tmp_path / "header_only.csv"
    path.write_text("ticket_id,created_at,channel\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["mapping", "init", "--tickets", str(path)])
    assert result.exit_code == 2
    assert "header_only.csv: no data rows" in result.output


def test_an_export_in_contract_names_maps_every_column_to_itself() -> None:
    from escpredict.contract import TICKET_FIELDS

    names = [f.name for f in TICKET_FIELDS]
    sample = pd.DataFrame({n: ["2024-01-01" if "_at" in n else f"{n}-{i}" for i in range(2)]
                           for n in names})
    columns = draft_mapping(sample, "canonical").tree["columns"]
    assert all(columns[n] == n for n in names if n in columns)
    assert "first_responder_role" in columns


def test_mapping_init_reads_a_semicolon_separated_export(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_text("Ticket;Created;Priority\n1;01.03.2024;High\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["mapping", "init", "--tickets", str(path), "--no-check"])
    assert result.exit_code == 0, result.output
    assert "Created" in result.output and "Ticket;Created" not in result.output


def test_mapping_init_names_an_unreadable_export(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["mapping", "init", "--tickets", str(tmp_path / "nope.csv")])
    assert result.exit_code == 2
    assert "nope.csv" in result.output


def test_an_export_without_customers_makes_each_ticket_its_own_customer(tmp_path: Path) -> None:
    """One constant customer would give every ticket the whole export as its history."""
    tree, _ = draft_of(event_log_export(tmp_path))
    assert tree["columns"]["customer_id"] == "Customer"  # when there is one, it is used
    sample = pd.DataFrame({"Case ID": ["7", "7"], "Activity": ["Open", "Completed"],
                           "Timestamp": ["2024-03-01T09:00:00Z", "2024-03-01T12:00:00Z"],
                           "Resource": ["r1", "r2"]})
    draft = draft_mapping(sample, "log")
    assert draft.tree["columns"]["customer_id"] == "Case ID"
    assert "each ticket is its own customer" in draft.comments[("columns", "customer_id")]


def jira_changelog_export(folder: Path) -> Path:
    """Jira REST issues with their changelog flattened to one row per change item."""
    def issue(key: str, created: str) -> dict:
        return {"key": key, "fields": {
            "created": created, "issuetype": {"name": "Bug"}, "priority": {"name": "High"},
            "summary": f"{key} summary", "reporter": {"accountId": "cust-1"},
            "project": {"key": "SUP"}, "resolutiondate": None}}

    def change(base: dict, at: str, author: str, field: str, to: str, to_string: str) -> dict:
        return {**base, "history": {"created": at, "author": {"accountId": author}},
                "item": {"field": field, "to": to, "toString": to_string}}

    sup1, sup2 = issue("SUP-1", "2024-03-01T09:00:00.000+0000"), issue(
        "SUP-2", "2024-03-02T09:00:00.000+0100")
    rows = [sup1,
            change(sup1, "2024-03-01T09:05:00.000+0000", "lead", "assignee", "ann", "Ann"),
            change(sup1, "2024-03-01T11:00:00.000+0000", "ann", "assignee", "sam", "Sam"),
            change(sup1, "2024-03-01T15:00:00.000+0000", "sam", "status", "10001", "Done"),
            sup2]
    path = folder / "jira.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_a_changelog_reads_each_event_column_from_the_rows_that_changed_it(
    tmp_path: Path,
) -> None:
    tree, text = draft_of(jira_changelog_export(tmp_path))
    assert "Jira" in text and tree["level"] == "events"
    events = tree["events"]
    assert events["time"] == {"any_of": ["history.created", "fields.created"]}
    assert events["status"] == {"column": "item.toString", "when": {"item.field": ["status"]}}
    assert events["assignee"] == {"column": "item.to", "when": {"item.field": ["assignee"]}}
    assert events["actor"] == "history.author.accountId"
    assert tree["derive"]["resolved_at"] == {"time": "last", "where": {"status": ["Done"]}}
    # the row setting Done names no assignee: its author is the resolver
    assert tree["derive"]["resolver_id"]["value"] == "actor"


def salesforce_case_history_export(folder: Path) -> Path:
    header = ["Id", "CaseId", "CreatedById", "CreatedDate", "Field", "OldValue", "NewValue"]
    rows = [["017A1", "500A1", "005U1", "2024-03-01T09:00:00.000Z", "created", "", ""],
            ["017A2", "500A1", "005U1", "2024-03-01T09:10:00.000Z", "Owner", "005U1", "005U2"],
            ["017A3", "500A1", "005U2", "2024-03-01T17:30:00.000Z", "Status", "New", "Closed"],
            ["017A4", "500A2", "005U1", "2024-03-02T09:00:00.000Z", "created", "", ""]]
    return write_csv(folder / "CaseHistory.csv", header, rows)


def servicenow_audit_export(folder: Path) -> Path:
    """sys_audit rows of incidents: state as its code, people as user names."""
    header = ["sys_id", "documentkey", "tablename", "fieldname", "oldvalue", "newvalue", "user",
              "sys_created_on", "record_checkpoint"]
    rows = [["a1", "46d44a", "incident", "state", "", "1", "abel.tuter", "2024-03-01 09:00:00", "1"],
            ["a2", "46d44a", "incident", "assigned_to", "", "beth.anglin", "abel.tuter",
             "2024-03-01 09:05:00", "2"],
            ["a3", "46d44a", "incident", "state", "1", "6", "beth.anglin", "2024-03-01 15:00:00", "3"],
            ["a4", "46d44a", "incident", "state", "6", "7", "system", "2024-03-04 15:00:00", "4"],
            ["a5", "57e55b", "incident", "state", "", "1", "abel.tuter", "2024-03-02 10:00:00", "1"]]
    return write_csv(folder / "sys_audit.csv", header, rows)


def test_servicenow_audit_states_are_named_so_resolution_can_be_derived(tmp_path: Path) -> None:
    tree, _ = draft_of(servicenow_audit_export(tmp_path))
    assert tree["columns"]["ticket_id"] == "documentkey"
    status = tree["events"]["status"]
    assert status == {"column": "newvalue", "when": {"fieldname": ["state"]},
                      "values": {"1": "New", "6": "Resolved", "7": "Closed"}}
    assert tree["derive"]["resolved_at"]["where"] == {"status": ["Resolved"]}


def test_salesforce_case_history_is_a_changelog_too(tmp_path: Path) -> None:
    tree, _ = draft_of(salesforce_case_history_export(tmp_path))
    events = tree["events"]
    assert tree["columns"]["ticket_id"] == "CaseId"
    assert events["status"] == {"column": "NewValue", "when": {"Field": ["Status"]}}
    assert events["assignee"] == {"column": "NewValue", "when": {"Field": ["Owner"]}}
    assert tree["derive"]["resolved_at"]["where"] == {"status": ["Closed"]}


# --- the draft in the pipeline: the mapping loader and `escpredict check` read it ---------

REAL_SAMPLE = Path(__file__).parent / "data" / "servicenow-incident-events-sample.csv"


@pytest.mark.parametrize(
    "build",
    [
        servicenow_list_export,
        zendesk_export,
        jira_export,
        freshdesk_export,
        salesforce_export,
        event_log_export,
        unknown_export,
        jira_changelog_export,
        salesforce_case_history_export,
        servicenow_audit_export,
    ],
)
def test_every_draft_is_a_valid_mapping_that_loads_its_export(build, tmp_path: Path) -> None:
    export = build(tmp_path)
    path = tmp_path / "draft.yaml"
    path.write_text(draft_yaml(export), encoding="utf-8")
    mapping = load_mapping(str(path))
    loaded = load_tickets(export, mapping, quarantine=tmp_path / "bad.csv")
    assert loaded.quarantined == 0, loaded.problems
    assert len(loaded.tickets) > 0
    assert set(mapping.extra_features()) <= set(loaded.tickets.columns)


def test_servicenow_event_draft_collapses_to_one_row_per_incident(
    servicenow_events: Path, tmp_path: Path
) -> None:
    path = tmp_path / "draft.yaml"
    path.write_text(draft_yaml(servicenow_events), encoding="utf-8")
    tickets = load_tickets(servicenow_events, load_mapping(str(path))).tickets.set_index("ticket_id")
    assert sorted(tickets.index) == ["INC0000045", "INC0000047"]
    assert str(tickets.loc["INC0000045", "resolved_at"]) == "2016-02-29 11:29:00+00:00"
    assert pd.isna(tickets.loc["INC0000047", "resolved_at"])  # never reached a resolved status
    assert tickets.loc["INC0000045", "resolver_id"] == "Resolver 89"
    assert tickets.loc["INC0000045", "agent_id"] == "Resolver 31"


def test_mapping_init_checks_its_draft(servicenow_events: Path, tmp_path: Path) -> None:
    out = tmp_path / "draft.yaml"
    result = CliRunner().invoke(app, ["mapping", "init", "--tickets", str(servicenow_events),
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Label rules on all resolved tickets" in result.stderr


def test_real_servicenow_sample_gets_a_draft_that_check_accepts(tmp_path: Path) -> None:
    out = tmp_path / "servicenow.yaml"
    result = CliRunner().invoke(app, ["mapping", "init", "--tickets", str(REAL_SAMPLE),
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    tree = yaml.safe_load(out.read_text())
    assert tree["level"] == "events"
    assert tree["datetime_format"] == "%d-%m-%Y %H:%M"
    assert tree["missing"] == ["?"]


def test_a_large_csv_is_sampled_from_its_head_only(tmp_path: Path, monkeypatch) -> None:
    from escpredict.onboard import draft

    path = tmp_path / "big.csv"
    pd.DataFrame({"ticket_id": range(300), "note": ["NULL"] * 300}).to_csv(path, index=False)
    monkeypatch.setattr(draft, "WHOLE_FILE_BYTES", 100)
    monkeypatch.setattr(draft, "HEAD_ROWS", 50)
    sample = read_sample(path)
    assert sample["ticket_id"].tolist() == [str(i) for i in range(50)]
    assert sample["note"].eq("NULL").all()  # text as written: markers are the draft's to find


def test_a_large_spreadsheet_csv_is_read_from_its_head_as_a_small_one_is(
    tmp_path: Path, monkeypatch
) -> None:
    """Semicolons and cp1252, as a spreadsheet in many locales writes them, whatever the size."""
    from escpredict.onboard import draft

    path = tmp_path / "big.csv"
    rows = "".join(f"{i};Caf\u00e9 {i}\n" for i in range(300))
    path.write_bytes(("ticket_id;Café\n" + rows).encode("cp1252"))
    monkeypatch.setattr(draft, "WHOLE_FILE_BYTES", 100)
    monkeypatch.setattr(draft, "HEAD_ROWS", 50)
    sample = read_sample(path)
    assert list(sample.columns) == ["ticket_id", "Café"]
    assert sample["Café"].iloc[0] == "Café 0"


def test_a_required_field_empty_on_some_rows_gets_a_default() -> None:
    """Refusing every ticket without a category would drop real tickets from training."""
    sample = pd.DataFrame({"ticket_id": ["1", "2", "3", "4"], "category": ["a", "?", "b", "a"],
                           "subcategory": ["x", "?", "y", "?"], "channel": ["", "chat", "web", ""],
                           "created_at": ["2024-01-01"] * 4, "priority": ["low"] * 4,
                           "customer_id": ["c1"] * 4})
    draft = draft_mapping(sample, "gaps")
    columns = draft.tree["columns"]
    assert columns["category"] == {"join": ["category", "subcategory"], "sep": " / ",
                                   "default": "unknown"}
    assert draft.comments[("columns", "category")] == "empty on 25% of sampled rows"
    assert columns["channel"] == {"column": "channel", "default": "unknown"}


def test_tier_names_of_a_ticket_export_become_numbers() -> None:
    sample = pd.DataFrame({"ticket_id": ["1", "2"], "created_at": ["2024-01-01"] * 2,
                           "channel": ["email"] * 2, "category": ["a"] * 2,
                           "priority": ["low"] * 2, "customer_id": ["c"] * 2,
                           "final_tier": ["L1", "Level 3"], "initial_tier": ["1", "1"]})
    values = draft_mapping(sample, "tiers").tree["values"]
    assert values == {"final_tier": {"L1": 1, "Level 3": 3}}  # plain numbers need no map


def test_a_resolver_column_in_another_id_namespace_is_not_mapped() -> None:
    sample = pd.DataFrame({"number": ["1", "2"], "opened_at": ["2024-01-01", "2024-01-02"],
                           "contact_type": ["phone", "email"], "category": ["a", "b"],
                           "priority": ["low", "high"], "caller_id": ["c1", "c2"],
                           "assigned_to": ["Resolver 3", "Resolver 4"],
                           "resolved_by": ["Resolved by 3", "Resolved by 9"],
                           "assignment_group": ["g", "h"], "short_description": ["s", "t"]})
    draft = draft_mapping(sample, "anonymised")
    assert "resolver_id" not in draft.tree["columns"]
    assert any("columns.resolver_id not mapped: 'resolved_by'" in n for n in draft.notes)


def test_xes_names_and_case_attributes_are_read_through_their_prefixes(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text(
        "case:concept:name,concept:name,time:timestamp,org:resource,org:group,case:priority,"
        "case:category\n"
        "C1,Open ticket,2024-03-01 09:00:00,desk1,Desk,high,network\n"
        "C1,Resolve ticket,2024-03-01 12:00:00,expert7,Experts,high,network\n"
        "C1,Close ticket,2024-03-02 12:00:00,system,Desk,high,network\n",
        encoding="utf-8",
    )
    tree, _ = draft_of(path)
    assert tree["columns"]["ticket_id"] == "case:concept:name"
    assert (tree["columns"]["priority"], tree["columns"]["category"]) == (
        "case:priority", "case:category")
    assert tree["events"]["status"] == "concept:name"
    assert tree["derive"]["resolved_at"]["where"] == {"status": ["Resolve ticket"]}  # not the close


def test_jira_api_field_names_are_recognised() -> None:
    header = ["key", "fields.summary", "fields.issuetype.name", "fields.reporter.accountId",
              "fields.created", "fields.resolutiondate", "fields.project.key",
              "fields.priority.name", "fields.assignee.accountId", "fields.status.name"]
    layout, _ = detect(header)
    assert layout is not None and layout.name == "jira"


def test_mapping_init_leaves_the_cli_usable_for_the_next_command(
    servicenow_events: Path, tmp_path: Path
) -> None:
    """The check report goes to stderr without rebinding the CLI's console for good."""
    out = tmp_path / "draft.yaml"
    CliRunner().invoke(app, ["mapping", "init", "--tickets", str(servicenow_events),
                             "--out", str(out)])
    again = CliRunner().invoke(app, ["check", "--tickets", str(servicenow_events),
                                     "--mapping", str(out)])
    assert again.exit_code == 0, again.output
    assert "Label rules on all resolved tickets" in again.stdout
