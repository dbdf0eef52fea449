"""The mapping language (docs/mappings.md): each feature, on exports the tests write themselves."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from escpredict.config import LabelConfig
from escpredict.contract import TICKET_FIELDS
from escpredict.ingest.loaders import load_tickets
from escpredict.ingest.mapping import MappingError, apply_mapping, load_mapping
from escpredict.ingest.validation import DataValidationError
from escpredict.labels.rules import label_tickets

UTC = "UTC"


def write(path: Path, text: str) -> Path:
    path.write_text(text.strip() + "\n", encoding="utf-8")
    return path


def load(tmp_path: Path, yaml: str, csv: str, **kwargs) -> pd.DataFrame:
    mapping = write(tmp_path / "m.yaml", yaml)
    path = write(tmp_path / "export.csv", csv)
    return load_tickets(path, str(mapping), **kwargs).tickets.set_index("ticket_id")


def problems(tmp_path: Path, yaml: str, csv: str) -> list:
    with pytest.raises(DataValidationError) as info:
        load(tmp_path, yaml, csv)
    return info.value.problems


def mapping_error(tmp_path: Path, yaml: str) -> str:
    path = write(tmp_path / "bad.yaml", yaml)
    with pytest.raises(MappingError) as info:
        load_mapping(str(path))
    assert "bad.yaml" in str(info.value)
    return str(info.value)


TICKETS = """
ticket_id,created_at,channel,category,priority,customer_id,resolved_at,subject
T1,2024-01-01 10:00,email,billing,high,C1,?,-
T2,2024-01-01 11:00,email,billing,NULL,C2,2024-01-02 10:00,Help
"""


# --- missing markers ----------------------------------------------------------------------


def test_missing_markers_make_values_absent_instead_of_unparseable(tmp_path):
    tickets = load(tmp_path, 'missing: ["?", "-"]\n', TICKETS.replace("NULL", "low"))
    assert pd.isna(tickets.loc["T1", "resolved_at"])  # '?' is "not resolved", not an error
    assert tickets.loc["T1", "subject"] == ""  # '-' is no subject
    assert tickets.loc["T2", "resolved_at"] == pd.Timestamp("2024-01-02 10:00", tz=UTC)


def test_without_markers_a_question_mark_is_an_unparseable_timestamp(tmp_path):
    [problem] = problems(tmp_path, "columns: {}\n", TICKETS.replace("NULL", "low"))
    assert (problem.rows, problem.field) == ([1], "resolved_at")
    assert "not a timestamp" in problem.message and "'?'" in problem.message


def test_a_column_can_override_the_mapping_markers(tmp_path):
    yaml = """
missing: ["?", "-"]
columns:
  subject: {column: subject, missing: []}
"""
    tickets = load(tmp_path, yaml, TICKETS.replace("NULL", "low"))
    assert tickets.loc["T1", "subject"] == "-"  # a real title here
    assert pd.isna(tickets.loc["T1", "resolved_at"])


def test_a_required_value_given_only_as_a_marker_is_reported_empty(tmp_path):
    [problem] = problems(tmp_path, 'missing: ["?", "NULL"]\n', TICKETS)
    assert (problem.rows, problem.field) == ([2], "priority")
    assert "required value is empty" in problem.message


def test_markers_apply_to_each_part_of_a_join(tmp_path):
    yaml = """
missing: ["?"]
columns:
  category: {join: [category, sub]}
"""
    csv = """
ticket_id,created_at,channel,category,sub,priority,customer_id
T1,2024-01-01 10:00,email,billing,?,high,C1
T2,2024-01-01 10:00,email,billing,refunds,high,C1
"""
    assert load(tmp_path, yaml, csv)["category"].tolist() == ["billing", "billing / refunds"]


# --- constants, value maps, id normalisation ---------------------------------------------

NO_CHANNEL = """
ticket_id,created_at,category,prio,customer_id,owner,resolver,resolved_at
T1,2024-01-01 10:00,billing,P1,Caller 7,Agent 3,Agent 3,2024-01-01 12:00
T2,2024-01-01 10:00,billing,p4,Caller 8,Agent 3,Agent 9,2024-01-01 12:00
"""


def test_a_constant_fills_a_required_column_the_export_lacks(tmp_path):
    yaml = """
columns:
  channel: {constant: phone}
  priority: {column: prio, values: {P1: urgent, P4: low}}
  initial_tier: {constant: 1}
"""
    tickets = load(tmp_path, yaml, NO_CHANNEL)
    assert tickets["channel"].tolist() == ["phone", "phone"]
    assert tickets["priority"].tolist() == ["urgent", "low"]  # case-insensitive keys
    assert tickets["initial_tier"].tolist() == [1, 1] and tickets["initial_tier"].dtype == "Int64"


def test_inline_and_top_level_value_maps_for_one_column_are_refused(tmp_path):
    yaml = "columns: {priority: {column: prio, values: {P1: urgent}}}\nvalues: {priority: {P2: high}}\n"
    assert "columns.priority.values and values.priority" in mapping_error(tmp_path, yaml)


def test_stripped_prefixes_make_ids_from_two_columns_comparable(tmp_path):
    yaml = """
columns:
  channel: {constant: phone}
  priority: prio
  customer_id: {column: customer_id, strip_prefix: "Caller "}
  agent_id: {column: owner, strip_prefix: ["Agent ", "Resolver "]}
  resolver_id: {column: resolver, extract: '(\\d+)$'}
"""
    tickets = load(tmp_path, yaml, NO_CHANNEL)
    assert tickets["customer_id"].tolist() == ["7", "8"]
    assert tickets["agent_id"].tolist() == ["3", "3"]
    assert tickets["resolver_id"].tolist() == ["3", "9"]
    labels = label_tickets(tickets, LabelConfig(rules=["resolver_differs"]))
    assert labels.tolist() == [False, True]


def test_extract_keeps_values_the_pattern_does_not_match(tmp_path):
    yaml = """
columns:
  channel: {constant: phone}
  priority: prio
  customer_id: {column: customer_id, extract: 'Caller (\\d+)'}
"""
    csv = NO_CHANNEL.replace("Caller 8", "anonymous")
    assert load(tmp_path, yaml, csv)["customer_id"].tolist() == ["7", "anonymous"]


@pytest.mark.parametrize(
    ("yaml", "complaint"),
    [
        ("columns: {customer_id: {column: c, extract: '\\d+'}}\n", "exactly one capture group"),
        ("columns: {customer_id: {column: c, extract: '(\\d+'}}\n", "not a regular expression"),
        (
            "columns: {customer_id: {column: c, extract: '(x)', strip_prefix: a}}\n",
            "strip_prefix or extract",
        ),
        ("columns: {customer_id: {colum: c}}\n", "columns.customer_id.column.colum"),
        ("datetime_format: '%d-%m-%Q'\n", "datetime_format"),
        ("datetime_format: dayfirst\n", "not ISO8601, mixed or a strftime format"),
        ("missing: ['?', NULL]\n", 'write it in quotes: "NULL"'),
        ("columns: {created_at: {column: o, datetime_format: '%Q'}}\n", "columns.created_at"),
    ],
)
def test_bad_modifiers_fail_naming_the_file_and_key(tmp_path, yaml, complaint):
    assert complaint in mapping_error(tmp_path, yaml)


# --- datetime formats ---------------------------------------------------------------------


def test_day_first_times_without_seconds_are_read_with_a_strftime_format(tmp_path):
    yaml = 'datetime_format: "%d-%m-%Y %H:%M"\ntimezone: Europe/Lisbon\n'
    csv = """
ticket_id,created_at,channel,category,priority,customer_id,resolved_at
T1,29-02-2016 01:16,email,billing,high,C1,05-03-2016 12:00
"""
    row = load(tmp_path, yaml, csv).loc["T1"]
    assert row["created_at"] == pd.Timestamp("2016-02-29 01:16", tz=UTC)  # Lisbon = UTC in winter
    assert row["resolved_at"] == pd.Timestamp("2016-03-05 12:00", tz=UTC)


def test_a_column_can_have_its_own_datetime_format(tmp_path):
    yaml = """
datetime_format: "%d-%m-%Y %H:%M"
columns:
  resolved_at: {column: resolved_at, datetime_format: "%m/%d/%Y %I:%M %p"}
"""
    csv = """
ticket_id,created_at,channel,category,priority,customer_id,resolved_at
T1,29-02-2016 01:16,email,billing,high,C1,03/05/2016 01:30 PM
"""
    row = load(tmp_path, yaml, csv).loc["T1"]
    assert row["resolved_at"] == pd.Timestamp("2016-03-05 13:30", tz=UTC)


def test_a_value_the_format_cannot_read_names_its_row_and_column(tmp_path):
    yaml = 'datetime_format: "%d-%m-%Y %H:%M"\ncolumns: {created_at: opened}\n'
    csv = """
ticket_id,opened,channel,category,priority,customer_id
T1,29-02-2016 01:16,email,billing,high,C1
T2,2016-02-29 01:16,email,billing,high,C1
"""
    [problem] = problems(tmp_path, yaml, csv)
    assert (problem.rows, problem.field) == ([2], "created_at")
    assert "(column 'opened')" in problem.message and "'2016-02-29 01:16'" in problem.message


# --- event exports: value maps, status and derive rules -----------------------------------

IT_SUPPORT = """
missing: ["-"]
level: events
datetime_format: "%Y/%m/%d %H:%M:%S"
columns:
  ticket_id: case_id
  channel: {constant: web}
  category: {column: category}
  priority: priority
  customer_id: customer
events:
  time: timestamp
  status: status
  assignee: {column: resource, strip_prefix: "Value "}
  tier: {column: level, values: {L1: 1, L2: 2, L3: 3}}
  queue: group
derive:
  resolved_at: {time: last, where: {status: [Completed, Resolved]}}
  escalated: {moved_to: {queue: [Experts]}}
  reopened: {count: {status: [Reopened]}}
  resolver_id: {value: assignee, at: last, where: {status: [Completed]}}
"""

# A: front line → moved to Experts at tier 2, completed, reopened, completed again.
# B: created in the Experts group, completed there (not moved).  C: still open.
IT_EVENTS = """
case_id,timestamp,status,resource,level,group,category,priority,customer
A,2024/01/01 09:00:00,Open,-,L1,Desk,network,high,K1
A,2024/01/01 09:10:00,Assigned,Value 1,L1,Desk,network,high,K1
A,2024/01/01 10:00:00,Assigned,Value 2,L2,Experts,network,high,K1
A,2024/01/01 12:00:00,Completed,Value 2,L2,Experts,network,high,K1
A,2024/01/02 08:00:00,Reopened,Value 2,L2,Experts,network,high,K1
A,2024/01/02 09:00:00,Completed,Value 2,L2,Experts,network,high,K1
B,2024/01/01 09:30:00,Open,Value 3,L2,Experts,storage,low,K2
B,2024/01/01 11:00:00,Completed,Value 3,L2,Experts,storage,low,K2
C,2024/01/03 09:00:00,Open,-,L1,Desk,network,low,K3
"""


def it_support(tmp_path: Path, yaml: str = IT_SUPPORT, csv: str = IT_EVENTS) -> pd.DataFrame:
    return load(tmp_path, yaml, csv)


def test_event_columns_take_value_maps_so_levels_become_tiers(tmp_path):
    tickets = it_support(tmp_path)
    assert (tickets.loc["A", "initial_tier"], tickets.loc["A", "final_tier"]) == (1, 2)
    assert tickets.loc["B", "initial_tier"] == 2


def test_resolution_time_is_the_last_event_in_a_resolved_status(tmp_path):
    tickets = it_support(tmp_path)
    assert tickets.loc["A", "resolved_at"] == pd.Timestamp("2024-01-02 09:00", tz=UTC)
    assert tickets.loc["B", "resolved_at"] == pd.Timestamp("2024-01-01 11:00", tz=UTC)
    assert pd.isna(tickets.loc["C", "resolved_at"])  # no Completed event: still open


def test_moved_to_a_group_marks_escalation_but_being_created_there_does_not(tmp_path):
    assert it_support(tmp_path)["escalated"].tolist() == [True, False, False]


def test_a_count_of_status_events_types_as_the_fields_boolean(tmp_path):
    assert it_support(tmp_path)["reopened"].tolist() == [True, False, False]


def test_value_at_the_last_matching_event_gives_a_comparable_resolver(tmp_path):
    tickets = it_support(tmp_path)
    assert pd.isna(tickets.loc["C", "agent_id"])  # never assigned
    assert (tickets.loc["A", "agent_id"], tickets.loc["A", "resolver_id"]) == ("1", "2")
    assert tickets.loc["B", "resolver_id"] == "3"
    labels = label_tickets(tickets, LabelConfig(rules=["resolver_differs"]))
    assert labels.tolist()[:2] == [True, False] and pd.isna(labels.iloc[2])


def test_first_assignment_time_and_presence_conditions(tmp_path):
    yaml = IT_SUPPORT.replace(
        "  escalated: {moved_to: {queue: [Experts]}}",
        "  created_at: {time: first, where: {assignee: true}}\n"
        "  escalated: {any: {tier: [3]}}\n"
        "  initial_queue: {value: queue, at: first, where: {assignee: true}}",
    )
    assigned = IT_EVENTS.replace(
        "C,2024/01/03 09:00:00,Open,-", "C,2024/01/03 09:00:00,Open,Value 4"
    )
    tickets = it_support(tmp_path, yaml, assigned)
    assert tickets.loc["A", "created_at"] == pd.Timestamp("2024-01-01 09:10", tz=UTC)
    assert tickets.loc["A", "initial_queue"] == "Desk"
    assert tickets["escalated"].tolist() == [False, False, False]


def test_a_required_field_a_rule_leaves_empty_names_the_tickets_first_row(tmp_path):
    yaml = IT_SUPPORT + "  created_at: {time: first, where: {assignee: true}}\n"
    [problem] = problems(tmp_path, yaml, IT_EVENTS)
    assert (problem.field, problem.rows) == ("created_at", [9])  # C was never assigned


def test_a_derived_value_map_is_applied_before_typing(tmp_path):
    yaml = IT_SUPPORT.replace(
        "  escalated: {moved_to: {queue: [Experts]}}",
        "  escalated: {value: status, at: last, values: {Completed: false, Open: true}}",
    )
    assert it_support(tmp_path, yaml)["escalated"].tolist() == [False, False, True]


def test_a_derived_value_of_the_wrong_kind_names_the_ticket_row_and_rule(tmp_path):
    yaml = IT_SUPPORT.replace(
        "  escalated: {moved_to: {queue: [Experts]}}",
        "  escalated: {value: status, at: last}",
    )
    problems_found = problems(tmp_path, yaml, IT_EVENTS)
    assert {(p.field, tuple(p.rows)) for p in problems_found} == {("escalated", (1, 7, 9))}
    assert "derive.escalated" in problems_found[0].message


REOPENED = "  reopened: {count: {status: [Reopened]}}"


@pytest.mark.parametrize(
    ("old", "new", "complaint"),
    [
        ("  status: status\n", "", "derive.resolved_at: 'status' is not an event column"),
        (REOPENED, "  reopened: {count: {time: [x]}}", "derive.reopened: 'time'"),
        (REOPENED, "  csat: {time: last}", "derive.csat: a TimeOf rule gives datetime"),
        (REOPENED, "  ticket_number: {time: last}", "derive.ticket_number: 'ticket_number'"),
        ("  customer_id: customer", "  customer_id: customer\n  reopened: r", "also under columns"),
        (REOPENED, "  reopened: {newest: status}", "a rule is one of"),
        (REOPENED, "  escalated: {moved_to: {queue: [X], tier: [2]}}", "derive.escalated"),
    ],
    ids=[
        "undefined-event-column",
        "time-as-condition",
        "wrong-kind",
        "unknown-field",
        "also-a-column",
        "unknown-rule",
        "moved-to-two-columns",
    ],
)
def test_bad_derive_rules_fail_naming_the_file_and_key(tmp_path, old, new, complaint):
    assert old in IT_SUPPORT
    assert complaint in mapping_error(tmp_path, IT_SUPPORT.replace(old, new))


def test_derive_needs_an_event_export(tmp_path):
    yaml = "derive: {resolved_at: {time: last}}\n"
    assert "derive: needs an 'events' section" in mapping_error(tmp_path, yaml)


# --- extra features -----------------------------------------------------------------------

FEATURES = """
missing: ["?"]
features:
  business_service: {column: u_service, kind: categorical}
  affected_users: {column: u_users, kind: numeric}
  vip: {column: caller_vip, kind: boolean}
  symptom: {column: u_symptom, kind: text}
"""

FEATURE_ROWS = """
ticket_id,created_at,channel,category,priority,customer_id,u_service,u_users,caller_vip,u_symptom
T1,2024-01-01 10:00,email,billing,high,C1,Payroll,12,yes,cannot log in
T2,2024-01-01 11:00,email,billing,high,C2,?,?,no,?
"""


def test_features_are_typed_extra_columns_after_the_contract(tmp_path):
    tickets = load(tmp_path, FEATURES, FEATURE_ROWS).reset_index()
    contract = [f.name for f in TICKET_FIELDS]
    assert list(tickets.columns) == contract + [
        "business_service",
        "affected_users",
        "vip",
        "symptom",
    ]
    assert (
        tickets["affected_users"].dtype == "float64" and tickets["affected_users"].iloc[0] == 12.0
    )
    assert tickets["vip"].dtype == "boolean" and tickets["vip"].tolist() == [True, False]
    assert tickets["business_service"].iloc[0] == "Payroll"
    assert pd.isna(tickets["business_service"].iloc[1]) and pd.isna(
        tickets["affected_users"].iloc[1]
    )


def test_extra_features_lists_names_and_kinds_in_declaration_order(tmp_path):
    mapping = load_mapping(str(write(tmp_path / "m.yaml", FEATURES)))
    assert mapping.extra_features() == {
        "business_service": "categorical",
        "affected_users": "numeric",
        "vip": "boolean",
        "symptom": "text",
    }
    assert load_mapping("generic").extra_features() == {}


def test_a_feature_value_of_the_wrong_kind_is_a_row_problem_and_can_be_quarantined(tmp_path):
    csv = FEATURE_ROWS.replace("Payroll,12,yes", "Payroll,many,yes")
    [problem] = problems(tmp_path, FEATURES, csv)
    assert (problem.rows, problem.field) == ([1], "affected_users")
    assert "not a number (column 'u_users')" in problem.message
    quarantine = tmp_path / "q.csv"
    kept = load(tmp_path, FEATURES, csv, quarantine=quarantine)
    assert kept.index.tolist() == ["T2"]
    assert "affected_users" in pd.read_csv(quarantine)["problem"].iloc[0]


def test_features_of_an_event_export_come_from_the_first_event(tmp_path):
    yaml = IT_SUPPORT + "features:\n  first_status: {column: status, kind: categorical}\n"
    assert it_support(tmp_path, yaml)["first_status"].tolist() == ["Open", "Open", "Open"]


def test_apply_mapping_keeps_features_too(tmp_path):
    path = write(tmp_path / "export.csv", FEATURE_ROWS)
    mapping = load_mapping(str(write(tmp_path / "m.yaml", FEATURES)))
    frame = apply_mapping(pd.read_csv(path, dtype=str), mapping, str(path))
    assert frame["affected_users"].tolist()[0] == 12.0


@pytest.mark.parametrize(
    ("yaml", "complaint"),
    [
        ("features: {channel: {column: c, kind: categorical}}\n", "features.channel: clashes"),
        ("features: {agent_tenure_days: {column: c, kind: numeric}}\n", "clashes"),
        ("features: {'my feature': {column: c, kind: numeric}}\n", "plain identifier"),
        ("features: {size: {column: c, kind: huge}}\n", "features.size.kind"),
        ("features: {size: {column: c}}\n", "features.size.kind"),
    ],
)
def test_bad_features_fail_naming_the_file_and_key(tmp_path, yaml, complaint):
    assert complaint in mapping_error(tmp_path, yaml)


# --- long (changelog) exports, per-row alternatives, defaults -----------------------------

CHANGELOG = """
case,at,field,to,priority,category,customer
K1,2024-01-01 09:00,,,high,billing,C1
K1,2024-01-01 09:05,assignee,ann,high,billing,C1
K1,2024-01-01 10:00,status,In Progress,high,billing,C1
K1,2024-01-01 11:00,assignee,sam,high,billing,C1
K1,2024-01-01 12:00,status,Done,high,billing,C1
K1,2024-01-01 12:05,labels,Done,high,billing,C1
"""

CHANGELOG_MAPPING = """
level: events
columns:
  ticket_id: case
  channel: {any_of: [channel], default: web}
  customer_id: customer
events:
  time: at
  status: {column: to, when: {field: [Status]}}
  assignee: {column: to, when: {field: [assignee]}}
derive:
  resolved_at: {time: last, where: {status: [Done]}}
  resolver_id: {value: assignee, at: last}
"""


def test_when_reads_a_changelog_column_only_on_rows_that_changed_that_field(tmp_path):
    row = load(tmp_path, CHANGELOG_MAPPING, CHANGELOG).loc["K1"]
    assert row["resolved_at"] == pd.Timestamp("2024-01-01 12:00", tz=UTC)  # not the label row
    assert (row["agent_id"], row["resolver_id"], row["reassignment_count"]) == ("ann", "sam", 1)


def test_a_default_also_stands_in_for_a_column_the_export_lacks(tmp_path):
    assert load(tmp_path, CHANGELOG_MAPPING, CHANGELOG).loc["K1", "channel"] == "web"


def test_any_of_takes_per_row_the_first_column_with_a_value(tmp_path):
    yaml = "columns: {resolved_at: {any_of: [solved_at, closed_at]}}\n"
    csv = """
ticket_id,created_at,channel,category,priority,customer_id,solved_at,closed_at
T1,2024-01-01 10:00,email,billing,high,C1,2024-01-01 11:00,2024-01-03 10:00
T2,2024-01-01 10:00,email,billing,high,C1,,2024-01-02 10:00
"""
    resolved = load(tmp_path, yaml, csv)["resolved_at"]
    assert resolved.dt.day.tolist() == [1, 2]


def test_the_example_in_docs_mappings_is_a_valid_mapping(tmp_path):
    doc = (Path(__file__).resolve().parents[1] / "docs" / "mappings.md").read_text()
    example = doc.split("## The whole format at a glance")[1].split("```yaml\n")[1].split("```")[0]
    mapping = load_mapping(str(write(tmp_path / "it-support.yaml", example)))
    assert mapping.extra_features() == {
        "business_service": "categorical",
        "affected_users": "numeric",
    }
    assert set(mapping.derive) == {"resolved_at", "escalated", "resolver_id", "reopened"}


def test_a_whole_file_check_reads_as_one_plain_sentence(tmp_path):
    yaml = "level: events\nevents: {time: t}\nderive: {resolved_at: {time: last, where: {status: [x]}}}\n"
    message = mapping_error(tmp_path, yaml)
    assert message.endswith(
        "bad.yaml: derive.resolved_at: 'status' is not an event column; name it under events.status"
    )
