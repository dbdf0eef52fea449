"""Changelog exports: one row per *change*, naming the changed field and its new value.

Jira's flattened changelog (``item.field`` / ``item.toString``), Salesforce ``CaseHistory``
(``Field`` / ``NewValue``) and ServiceNow's ``sys_audit`` (``fieldname`` / ``newvalue``) say
what changed rather than the whole state after an update. Their event columns are read with
``when:`` (``docs/mappings.md``): the new value counts only on rows that changed that field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from escpredict.onboard.draft.guess import is_datetime, present
from escpredict.onboard.draft.layouts import Names, find, normalise

FIELD: Names = ("item_field", "field", "fieldname", "field_name", "changed_field")
NEW_TEXT: Names = ("item_to_string", "to_string", "new_value", "newvalue")
NEW_ID: Names = ("item_to", "to", "new_value", "newvalue")
TIME: Names = ("history_created", "change_date", "changed_at", "sys_created_on", "created_date",
               "timestamp")
ACTOR: Names = ("history_author_account_id", "author", "user", "created_by_id", "changed_by",
                "sys_created_by")
CREATED: Names = ("fields_created", "created", "opened_at")

#: Changed-field names (normalised) → the event key their new value feeds.
CHANGED: dict[str, str] = {
    "status": r"^(status|state|incident_state)$",
    "assignee": r"^(assignee|assigned_to|owner|owner_assignment|ownerassignment)$",
    "queue": r"^(assignment_group|group|queue|team)$",
    "tier": r"^(tier|level|support_level)$",
}


#: ServiceNow's sys_audit records the incident state as its code.
SERVICENOW_STATES = {"1": "New", "2": "In Progress", "3": "On Hold", "6": "Resolved",
                     "7": "Closed", "8": "Canceled"}


@dataclass
class Changelog:
    events: dict[str, Any]
    used: set[str] = field(default_factory=set)


def changelog_events(sample: pd.DataFrame, missing: list[str], taken: set[str]) -> Changelog | None:
    """The ``events:`` section of a changelog export, or None when it is not one."""
    header = [str(c) for c in sample.columns]
    field_col = find(header, FIELD, taken, fuzzy=False)
    time = find(header, TIME, taken, fuzzy=False)
    if field_col is None or time is None or not is_datetime(sample[time.column], missing):
        return None
    changed = present(sample[field_col.column], missing).str.strip().unique()
    log = Changelog({}, {field_col.column, time.column})
    log.events["time"] = _time(sample, header, time.column, taken, missing)
    if actor := find(header, ACTOR, taken, fuzzy=False):
        log.events["actor"] = actor.column
        log.used.add(actor.column)
    for key, pattern in CHANGED.items():
        names = sorted(v for v in changed if re.match(pattern, normalise(v)))
        value = find(header, NEW_ID if key == "assignee" else NEW_TEXT, taken, fuzzy=False)
        if names and value:
            log.events[key] = {"column": value.column, "when": {field_col.column: names}}
            log.used.add(value.column)
    _state_codes(sample, header, log, field_col.column, missing)
    return log if len(log.events) > 1 else None


def _state_codes(sample: pd.DataFrame, header: list[str], log: Changelog, field_col: str,
                 missing: list[str]) -> None:
    """Name ServiceNow's state codes (6 = Resolved) so resolution can be derived from them."""
    status = log.events.get("status")
    if status is None or "documentkey" not in {normalise(c) for c in header}:
        return
    changed = present(sample[field_col], missing).str.strip().str.lower()
    states = present(sample[status["column"]], missing).str.strip()
    codes = set(states[changed.reindex(states.index).isin(
        [n.lower() for n in status["when"][field_col]])])
    if codes and codes <= set(SERVICENOW_STATES):
        status["values"] = {c: SERVICENOW_STATES[c] for c in sorted(codes)}


def _time(sample: pd.DataFrame, header: list[str], change: str, taken: set[str],
          missing: list[str]) -> Any:
    """The change time; on rows without one (an issue's creation row) its creation time."""
    if present(sample[change], missing).size == len(sample):
        return change
    created = find(header, CREATED, taken | {change}, fuzzy=False)
    return {"any_of": [change, created.column]} if created else change
