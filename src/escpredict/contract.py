"""The ticket-export data contract: canonical column names, types and meaning.

Every loader maps a customer's export onto these names (see ``pipelines/mappings/``);
everything downstream (labels, features, training, serving, reports) reads only these
names. Keeping the contract in one module is what lets a new export format be supported
with a YAML mapping instead of code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["str", "datetime", "float", "int", "bool"]


@dataclass(frozen=True)
class Field:
    """One canonical column."""

    name: str
    kind: Kind
    required: bool
    known_at_creation: bool
    doc: str


TICKET_FIELDS: tuple[Field, ...] = (
    Field("ticket_id", "str", True, True, "Unique ticket id."),
    Field("created_at", "datetime", True, True, "When the ticket was opened (stored as UTC)."),
    Field("channel", "str", True, True, "email, chat, phone, web, ..."),
    Field("category", "str", True, True, "Product/issue category at creation."),
    Field("priority", "str", True, True, "low, medium, high, urgent (free text is kept)."),
    Field("subject", "str", False, True, "Short title; empty if the export has none."),
    Field("description", "str", False, True, "Ticket body as first submitted."),
    Field("customer_id", "str", True, True, "Who raised the ticket."),
    Field(
        "agent_id",
        "str",
        False,
        True,
        "Agent the ticket was first assigned to (first non-coordinator handler).",
    ),
    # Optional fields that common exports carry at creation; each feeds the model when present.
    Field("product", "str", False, True, "Product or business service the ticket is about."),
    Field("configuration_item", "str", False, True, "Configuration item / asset affected."),
    Field("location", "str", False, True, "Site or location of the requester."),
    Field("impact", "str", False, True, "Impact as the export states it (e.g. 2 - Medium)."),
    Field("urgency", "str", False, True, "Urgency as the export states it (e.g. 1 - High)."),
    Field(
        "customer_segment",
        "str",
        False,
        True,
        "Customer organisation, unit or segment (e.g. enterprise, smb).",
    ),
    Field("language", "str", False, True, "Language of the ticket or requester."),
    Field(
        "first_responder_id",
        "str",
        False,
        False,
        "Whoever touched the ticket first; may be a dispatcher/coordinator.",
    ),
    Field("first_responder_role", "str", False, False, "Role of the first responder."),
    Field("resolver_id", "str", False, False, "Who resolved the ticket."),
    Field("resolved_at", "datetime", False, False, "When it was resolved; empty if still open."),
    Field("escalated", "bool", False, False, "Explicit escalation flag, if the export has one."),
    Field("initial_tier", "int", False, True, "Support tier at creation (1 = front line)."),
    Field("final_tier", "int", False, False, "Highest tier the ticket reached."),
    Field("initial_queue", "str", False, True, "Queue/assignment group at creation."),
    Field("final_queue", "str", False, False, "Queue/assignment group at resolution."),
    Field("reassignment_count", "int", False, False, "Times the ticket changed assignee."),
    Field("agents_involved", "int", False, False, "Distinct agents who worked the ticket."),
    Field("csat", "float", False, False, "Customer satisfaction score after resolution."),
    Field("reopened", "bool", False, False, "Whether the ticket was reopened."),
)

AGENT_FIELDS: tuple[Field, ...] = (
    Field("agent_id", "str", True, True, "Agent id, as used in the ticket export."),
    Field("hire_date", "datetime", True, True, "Start date; tenure is measured from it."),
    Field("team", "str", False, True, "Team name."),
    Field("role", "str", False, True, "agent, senior, coordinator, dispatcher, ..."),
)

#: History features computed as of each ticket's creation time (see ``history.py``).
#: A scoring request may supply them; otherwise they come from the model's snapshot.
HISTORY_FIELDS: tuple[Field, ...] = (
    Field("agent_tenure_days", "float", False, True, "Days since the agent's hire date."),
    Field("agent_recent_tickets", "float", False, True, "Tickets the agent got in the last 30 days."),
    Field("agent_prior_resolved", "float", False, True, "Agent's tickets resolved before creation."),
    Field(
        "agent_prior_escalated",
        "float",
        False,
        True,
        "Of those, how many were escalated (outcomes known before creation only).",
    ),
    Field("customer_prior_tickets", "float", False, True, "Customer's tickets created before."),
    Field(
        "customer_prior_escalated",
        "float",
        False,
        True,
        "Customer's earlier tickets escalated and resolved before creation.",
    ),
    Field(
        "customer_days_since_last",
        "float",
        False,
        True,
        "Days since the customer's previous ticket; empty for a first ticket.",
    ),
)

#: An open ticket's state at a moment ``as_of`` (a checkpoint, or a scoring request), computed
#: only from its events up to that moment (see ``labels/state.py``). The open-ticket model
#: reads them beside the at-creation features; a request may send them directly.
STATE_FIELDS: tuple[Field, ...] = (
    Field("age_hours", "float", False, False, "Hours from creation to as_of."),
    Field("events_so_far", "float", False, False, "Events (updates) of the ticket up to as_of."),
    Field("hours_since_update", "float", False, False, "Hours since the last event up to as_of."),
    Field("assignee_changes", "float", False, False, "Assignee changes after the first assignment."),
    Field("queue_changes", "float", False, False, "Queue (assignment group) changes so far."),
    Field(
        "hours_since_queue_change", "float", False, False,
        "Hours since the queue last changed; empty when it never did.",
    ),
    Field("waiting_hours", "float", False, False, "Hours spent in wait-like statuses so far."),
    Field("tier_now", "float", False, False, "Support tier at as_of."),
    Field("assigned_now", "float", False, False, "1 when someone is assigned at as_of, else 0."),
    Field("status_now", "str", False, False, "Status at as_of."),
    Field("queue_now", "str", False, False, "Queue (assignment group) at as_of."),
)
STATE_NAMES: tuple[str, ...] = tuple(f.name for f in STATE_FIELDS)

#: Optional descriptors common exports carry at creation (product, site, impact, ...): each
#: is a category of its own for the model, and an optional field of a scoring request.
DESCRIPTOR_FIELDS: tuple[str, ...] = (
    "product",
    "configuration_item",
    "location",
    "impact",
    "urgency",
    "customer_segment",
    "language",
)

#: At-creation fields whose values are levels (categories): what models read as categoricals.
CATEGORY_FIELDS: tuple[str, ...] = ("category", "channel", "priority", *DESCRIPTOR_FIELDS, "initial_queue")

#: What a triage bot knows when a ticket arrives: the model's input.
SCORING_FIELDS: tuple[str, ...] = (
    "ticket_id",
    "created_at",
    "channel",
    "category",
    "priority",
    "subject",
    "description",
    "customer_id",
    "agent_id",
    "initial_queue",
    "initial_tier",
    *DESCRIPTOR_FIELDS,
)

LABEL = "escalated"

TICKETS_BY_NAME: dict[str, Field] = {f.name: f for f in TICKET_FIELDS}
AGENTS_BY_NAME: dict[str, Field] = {f.name: f for f in AGENT_FIELDS}
HISTORY_NAMES: tuple[str, ...] = tuple(f.name for f in HISTORY_FIELDS)


def required(fields: tuple[Field, ...]) -> list[str]:
    """Names of the required fields, in contract order."""
    return [f.name for f in fields if f.required]
