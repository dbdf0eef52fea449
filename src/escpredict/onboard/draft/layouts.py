"""Known export layouts: which ticketing system wrote a header, and its column synonyms.

Every column name is compared in a normalised form (``normalise``), so an API export
(``CaseNumber``), a report export (``Case Number``) and a list export with display labels
(``Short description``) meet the same synonym. A layout is recognised by its *markers*:
groups of alternative names, each group counting once, so one system's renamed column does
not hide the whole layout. Synonyms are ordered, most specific first; the draft takes the
first one the export has.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from difflib import SequenceMatcher

Names = tuple[str, ...]

#: Share of a layout's marker groups an export must hit to be recognised as that system.
MIN_MARKER_SHARE = 0.5

#: Least similarity for an unknown header's column to stand in for a synonym.
MIN_FUZZY_RATIO = 0.8


def normalise(name: str) -> str:
    """``Date/Time Opened`` → ``date_time_opened``, ``CaseNumber`` → ``case_number``."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", str(name).strip())
    return re.sub(r"[^a-z0-9]+", "_", spaced.lower()).strip("_")


#: Structural wrappers around a field's name: an XES case attribute (``case:priority``), an
#: API envelope (``fields.priority.name``, ``fields.reporter.accountId``), a ServiceNow
#: custom field (``u_symptom``).
_PREFIXES = ("case_", "fields_", "u_")
_SUFFIXES = ("_name", "_account_id", "_display_value", "_value")


def bare(norm: str) -> str:
    """A normalised name without its structural prefix and suffix: ``priority``."""
    for prefix in _PREFIXES:
        if norm.startswith(prefix) and len(norm) > len(prefix):
            norm = norm[len(prefix):]
            break
    for suffix in _SUFFIXES:
        if norm.endswith(suffix) and len(norm) > len(suffix):
            return norm[: -len(suffix)]
    return norm


@dataclass(frozen=True)
class Layout:
    """One ticketing system's export: how to recognise it and where its fields live."""

    name: str
    title: str
    markers: tuple[Names, ...]
    columns: dict[str, Names] = field(default_factory=dict)  # canonical field → synonyms
    events: dict[str, Names] = field(default_factory=dict)  # event key → synonyms
    always_events: bool = False  # an event log has no ticket-level form


#: Synonyms any export may use, tried after the recognised layout's own.
COMMON_COLUMNS: dict[str, Names] = {
    # a row's own "id" comes last: in a history export it names the change, not the ticket
    "ticket_id": ("ticket_id", "case_id", "case_number", "incident_id", "incident_number",
                  "issue_key", "ticket_number", "request_id", "documentkey", "number", "id",
                  "key"),
    "created_at": ("created_at", "opened_at", "created", "created_date", "created_time",
                   "creation_date", "date_created", "opened", "open_date", "sys_created_on",
                   "submitted_at", "reported_at", "date_time_opened"),
    "channel": ("channel", "contact_type", "via_channel", "via", "source", "origin",
                "case_origin", "medium"),
    "category": ("category", "issue_type", "ticket_type", "type", "request_type",
                 "case_reason", "reason", "topic"),
    "priority": ("priority", "severity"),
    "subject": ("subject", "short_description", "summary", "title", "ticket_name",
                "issue_title"),
    "description": ("description", "body", "details", "problem_description"),
    "customer_id": ("customer_id", "caller_id", "requester_id", "requester", "contact_id",
                    "reporter", "customer", "caller", "requested_by", "contact_name",
                    "contact", "account_id", "email"),
    "agent_id": ("agent_id", "assigned_to", "assignee_id", "assignee", "agent", "owner_id",
                 "case_owner", "owner"),
    "product": ("product", "business_service", "u_business_service", "service",
                "product_name"),
    "configuration_item": ("configuration_item", "cmdb_ci", "affected_ci", "asset_id",
                           "asset", "ci"),
    "location": ("location", "site", "country", "region", "office"),
    "impact": ("impact",),
    "urgency": ("urgency",),
    "customer_segment": ("customer_segment", "segment", "company", "organization_id",
                         "organization", "company_name", "account_name", "account",
                         "business_unit"),
    "language": ("language", "locale", "lang"),
    # who created the record only where that is the service desk, not the customer (Jira's
    # creator and Zendesk's submitter are usually the customer)
    "first_responder_id": ("first_responder_id", "first_responder", "sys_created_by"),
    "resolver_id": ("resolver_id", "resolved_by", "resolver"),
    "resolved_at": ("resolved_at", "resolved", "solved_at", "resolved_time",
                    "resolution_date", "closed_at", "closed_date", "date_time_closed"),
    "escalated": ("escalated", "is_escalated", "escalation"),
    "initial_tier": ("initial_tier",),
    "final_tier": ("final_tier", "tier", "support_tier", "support_level", "level"),
    "initial_queue": ("initial_queue", "initial_group"),
    # a help desk's department is the queue that handles the ticket, not the customer's unit
    "final_queue": ("final_queue", "assignment_group", "group_id", "group", "queue", "team",
                    "department"),
    "reassignment_count": ("reassignment_count", "reassignments", "group_stations"),
    "agents_involved": ("agents_involved", "assignee_stations"),
    "csat": ("csat", "satisfaction_score", "satisfaction_rating_score", "satisfaction_rating",
             "satisfaction", "survey_results"),
    "reopened": ("reopened", "reopen_count", "reopens"),
    "tags": ("tags", "labels", "tag_list"),  # not a contract field: read for ``escalated``
}

#: Event-column synonyms (one row per update).
COMMON_EVENTS: dict[str, Names] = {
    "time": ("event_time", "sys_updated_on", "sys_updated_at", "updated_at", "timestamp",
             "time_timestamp", "complete_timestamp", "end_timestamp", "start_timestamp",
             "change_date_time", "datestamp", "date_stamp", "time"),
    "actor": ("actor", "sys_updated_by", "updated_by", "changed_by", "org_resource",
              "resource", "user"),
    "assignee": ("assignee", "assigned_to", "assignee_id", "owner", "agent"),
    "queue": ("queue", "assignment_group", "org_group", "group", "team"),
    "tier": ("tier", "support_tier", "support_level", "level", "line"),
    "status": ("status", "incident_state", "state", "activity", "concept_name",
               "incidentactivity_type", "event", "action"),
}

LAYOUTS: tuple[Layout, ...] = (
    Layout(
        "servicenow",
        "ServiceNow incident export",
        markers=(("number",), ("caller_id", "caller"), ("contact_type",),
                 ("assignment_group",), ("opened_at", "opened"), ("sys_created_by",
                 "sys_created_on", "sys_created_at"), ("sys_updated_on", "sys_updated_at",
                 "sys_updated_by", "updated", "updated_by"), ("cmdb_ci",),
                 ("incident_state", "state"), ("short_description",)),
        columns={"ticket_id": ("number",), "customer_id": ("caller_id", "caller"),
                 "category": ("category",), "first_responder_id": ("sys_created_by",
                 "opened_by"), "customer_segment": ("company",)},
        events={"time": ("sys_updated_on", "sys_updated_at", "updated"),
                "actor": ("sys_updated_by", "updated_by"),
                "status": ("incident_state", "state")},
    ),
    Layout(
        "zendesk",
        "Zendesk tickets export",
        markers=(("id",), ("requester_id", "requester"), ("assignee_id", "assignee"),
                 ("via_channel", "via"), ("group_id", "group"), ("solved_at",),
                 ("satisfaction_rating_score", "satisfaction_score", "satisfaction_rating"),
                 ("submitter_id", "submitter"), ("organization_id", "organization"),
                 ("tags",), ("ticket_type", "type"), ("assignee_stations", "group_stations",
                 "reopens")),
        columns={"ticket_id": ("id",), "customer_id": ("requester_id", "requester"),
                 "category": ("category", "ticket_type", "type"),
                 "customer_segment": ("organization_id", "organization")},
    ),
    Layout(
        "jira",
        "Jira (Service Management) issues export",
        markers=(("issue_key", "key"), ("issue_id",), ("issue_type", "issuetype"), ("summary",),
                 ("reporter",),
                 ("assignee",), ("created",), ("resolved",), ("project_key", "project_name"),
                 ("resolution",), ("component_s", "labels"), ("creator",)),
        columns={"ticket_id": ("issue_key", "key"), "created_at": ("created",),
                 "category": ("custom_field_customer_request_type",
                              "custom_field_request_type", "issue_type", "issuetype",
                              "component_s"),
                 "customer_id": ("reporter",), "resolved_at": ("resolved", "resolutiondate"),
                 "customer_segment": ("custom_field_organizations",),
                 "impact": ("custom_field_impact",), "urgency": ("custom_field_urgency",),
                 "csat": ("custom_field_satisfaction",
                          "custom_field_satisfaction_rating"),
                 "product": ("project_name", "project_key")},
    ),
    Layout(
        "freshdesk",
        "Freshdesk tickets export",
        markers=(("ticket_id",), ("created_time",), ("resolved_time",), ("closed_time",),
                 ("source",), ("agent",), ("group",), ("first_response_time_in_hrs",),
                 ("resolution_time_in_hrs",), ("agent_interactions", "customer_interactions"),
                 ("contact_id", "full_name"), ("company_name",), ("survey_results",),
                 ("due_by_time",)),
        columns={"created_at": ("created_time",), "channel": ("source",),
                 "customer_id": ("contact_id", "email", "full_name"), "agent_id": ("agent",),
                 "resolved_at": ("resolved_time", "closed_time"),
                 "customer_segment": ("company_name",)},
    ),
    Layout(
        "salesforce",
        "Salesforce Service Cloud cases export",
        markers=(("case_number",), ("origin", "case_origin"), ("contact_id", "contact_name"),
                 ("account_id", "account_name"), ("owner_id", "case_owner"),
                 ("created_date", "date_time_opened"), ("closed_date", "date_time_closed"),
                 ("is_escalated", "escalated"), ("reason", "case_reason"),
                 ("is_closed", "closed"), ("supplied_email", "web_email")),
        columns={"ticket_id": ("case_number",), "channel": ("origin", "case_origin"),
                 "created_at": ("created_date", "date_time_opened"),
                 "category": ("type", "reason", "case_reason"),
                 "customer_id": ("contact_id", "contact_name", "supplied_email",
                                 "account_id"),
                 "agent_id": ("owner_id", "case_owner"),
                 "resolved_at": ("closed_date", "date_time_closed"),
                 "customer_segment": ("account_name", "account_id"),
                 "product": ("product_c", "product")},
    ),
    Layout(
        "event-log",
        "process-mining event log",
        markers=(("case_id", "case_concept_name", "case", "caseid", "case_key"),
                 ("activity", "concept_name", "activity_name"),
                 ("timestamp", "time_timestamp", "complete_timestamp", "start_timestamp",
                  "end_timestamp"),
                 ("resource", "org_resource")),
        columns={"ticket_id": ("case_id", "case_concept_name", "case", "caseid", "case_key")},
        # the resource is who performed an activity: the actor. It is not mapped as the
        # assignee too: every hand-over between steps would count as a reassignment.
        events={"time": ("timestamp", "time_timestamp", "complete_timestamp",
                         "end_timestamp", "start_timestamp"),
                "actor": ("resource", "org_resource", "user"),
                "status": ("activity", "concept_name", "activity_name"),
                "queue": ("org_group", "group", "queue", "team")},
        always_events=True,
    ),
)


def marker_share(layout: Layout, names: set[str]) -> float:
    """Share of the layout's marker groups that the (normalised) header hits."""
    hits = sum(any(alt in names for alt in group) for group in layout.markers)
    return hits / len(layout.markers)


def detect(header: list[str]) -> tuple[Layout | None, float]:
    """The best-matching known layout and its marker share; None when no layout fits."""
    names = {normalise(c) for c in header} | {bare(normalise(c)) for c in header}
    scored = [(marker_share(layout, names), layout) for layout in LAYOUTS]
    share, best = max(scored, key=lambda pair: pair[0])
    return (best if share >= MIN_MARKER_SHARE else None), share


def synonyms(layout: Layout | None, key: str, events: bool = False) -> Names:
    """Names to look for, the layout's own first, then the common ones; a canonical field's
    own name always counts (an export already in contract names maps to itself)."""
    own = (layout.events if events else layout.columns).get(key, ()) if layout else ()
    common = (COMMON_EVENTS if events else COMMON_COLUMNS).get(key, ())
    return tuple(dict.fromkeys(own + common + (() if events else (key,))))


@dataclass(frozen=True)
class Match:
    column: str  # the export's own column name
    via: str  # the synonym it matched
    exact: bool  # False: found by similarity, worth a check


def find(header: list[str], names: Names, taken: set[str], fuzzy: bool) -> Match | None:
    """The export column for the first synonym it has; by similarity only when ``fuzzy``."""
    by_norm = {normalise(c): c for c in header if c not in taken}
    by_bare = {bare(n): c for n, c in reversed(by_norm.items())}  # the first column wins
    for table in (by_norm, by_bare):
        for name in names:
            if name in table:
                return Match(table[name], name, True)
    if not fuzzy:
        return None
    best: tuple[float, Match] | None = None
    for norm, column in by_norm.items():
        for name in names:
            score = similarity(norm, name)
            if score >= MIN_FUZZY_RATIO and (best is None or score > best[0]):
                best = (score, Match(column, name, False))
    return best[1] if best else None


def similarity(norm: str, name: str) -> float:
    """How alike a column and a synonym are (0 to 1); containing the synonym's words counts.

    ``u_caller_id`` holds ``caller_id`` and ``customer_email`` holds ``email``: wrapped in a
    custom-field prefix or an extra word, which character similarity alone would miss; so
    does an abbreviation such as ``prio``.
    """
    ratio = SequenceMatcher(None, norm, name).ratio()
    words = set(name.split("_"))
    if max(map(len, words)) >= 4 and words <= set(norm.split("_")):
        ratio = max(ratio, 0.85)
    if len(norm) >= 4 and name.startswith(norm):  # an abbreviation: prio, desc, cust
        ratio = max(ratio, MIN_FUZZY_RATIO)
    return ratio
