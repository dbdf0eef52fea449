"""Request and response bodies of the scoring API.

Request models are built from the configured limits, so validation and the OpenAPI docs state
the same caps. Requests forbid unknown fields: a misspelt history field would otherwise be
dropped silently and the ticket scored with snapshot values instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, ClassVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    create_model,
    field_validator,
    model_validator,
)

from escpredict.contract import HISTORY_NAMES, SCORING_FIELDS, TICKETS_BY_NAME
from escpredict.model.open_ticket import CURRENT_KEYS

#: Tickets created before this, or more than a day in the future, are clock or unit mistakes.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
FUTURE_SLACK = timedelta(days=1)

#: Surrounding ASCII whitespace is dropped; a label must keep a character. The pattern says that
#: in the OpenAPI schema too, so a client (or fuzzer) validating against it agrees with the API.
#: Only ASCII whitespace: the schema's regex dialect and pydantic disagree about Unicode spaces.
Label = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200, pattern=r"[^ \t\n\r\f\v]"),
    AfterValidator(lambda value: value.strip(" \t\n\r\f\v")),
]
#: Strict: JSON true or "5" is not a count; accepting them would contradict the schema's number.
#: No history count or span in days comes near a billion: a larger value is a client's mistake
#: (and overflowed the rate features to infinity).
HISTORY_MAX = 1e9
HistoryValue = Annotated[
    float | None, Field(ge=0, le=HISTORY_MAX, allow_inf_nan=False, strict=True)
]

EXAMPLE_TICKET: dict[str, Any] = {
    "ticket_id": "T-1042",
    "created_at": "2025-06-02T09:15:00Z",
    "channel": "email",
    "category": "billing",
    "priority": "high",
    "subject": "Charged twice AGAIN",
    "description": "Second time this month I was charged twice. I want a refund immediately!",
    "customer_id": "C-00017",
    "agent_id": "A-0042",
}


def _utc(value: datetime) -> datetime:
    """A time without a zone is UTC; any time must lie between EARLIEST and one day ahead."""
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    latest = datetime.now(UTC) + FUTURE_SLACK
    if not EARLIEST <= value <= latest:
        raise ValueError(f"must be between {EARLIEST:%Y-%m-%d} and one day from now (UTC)")
    return value


def _iso_only(value: object) -> object:
    """The schema says an ISO 8601 string: a bare number would be read as Unix seconds."""
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 date-time string")  # noqa: TRY004 - pydantic
    return value


#: An ISO 8601 date-time, UTC when it has no zone, between 2000 and one day from now.
Instant = Annotated[datetime, BeforeValidator(_iso_only), AfterValidator(_utc)]
def _integral(value: object) -> object:
    """JSON Schema's integer includes 2.0: take it as 2 (strictness still refuses true, "2", 2.5)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


#: A count of things that happened to a ticket (strict: JSON true or "2" is not one).
_Count = Annotated[int, Field(ge=0, le=int(HISTORY_MAX), strict=True), BeforeValidator(_integral)]
#: A support tier (strict: JSON true or "2" is not one).
_Tier = Annotated[float, Field(ge=0, le=100, allow_inf_nan=False, strict=True)]


class StateEvent(BaseModel):
    """One update of the ticket: when, and its fields after it (any may be left out)."""

    model_config = ConfigDict(extra="forbid")

    time: Instant
    status: Label | None = None
    queue: Label | None = Field(None, description="Queue or assignment group after the update.")
    tier: _Tier | None = None
    assignee: Label | None = None


EXAMPLE_STATE: dict[str, Any] = {
    "as_of": "2025-06-03T11:00:00Z",
    "events": [
        {"time": "2025-06-02T09:15:00Z", "status": "New", "queue": "Billing L1", "tier": 1},
        {"time": "2025-06-02T09:40:00Z", "status": "Active", "queue": "Billing L1", "tier": 1,
         "assignee": "A-0042"},
        {"time": "2025-06-02T15:05:00Z", "status": "Awaiting User Info", "queue": "Billing L1",
         "tier": 1, "assignee": "A-0042"},
    ],
}


def state_model(max_events: int) -> type[BaseModel]:
    """The ``state`` of an open ticket: its events so far, or its current fields."""

    class TicketState(BaseModel):
        """An open ticket as it stands at ``as_of``: send its events so far (``events``), or
        its current fields (``status``, ``queue``, ..., ``last_update_at``), not both. The
        answer is then the risk that it escalates from ``as_of`` on. Events after ``as_of``
        are ignored; ``as_of`` at creation gives the at-creation answer."""

        model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [EXAMPLE_STATE]})

        as_of: Instant = Field(description="The moment the state describes; not before created_at.")
        events: list[StateEvent] | None = Field(
            None, max_length=max_events, description=f"Updates so far, at most {max_events}."
        )
        status: Label | None = None
        queue: Label | None = None
        tier: _Tier | None = None
        assigned: StrictBool | None = Field(None, description="Whether someone is assigned now.")
        events_so_far: _Count | None = Field(None, description="Updates so far, creation included.")
        assignee_changes: _Count | None = None
        queue_changes: _Count | None = None
        waiting_hours: HistoryValue = Field(None, description="Hours in wait-like statuses so far.")
        last_update_at: Instant | None = None
        queue_changed_at: Instant | None = None

        @model_validator(mode="after")
        def _events_or_fields(self) -> TicketState:
            given = [n for n in CURRENT_KEYS if getattr(self, n) is not None]
            if self.events is not None and given:
                raise ValueError(f"give events or current fields, not both (got events and {given})")
            for name in ("last_update_at", "queue_changed_at"):
                when = getattr(self, name)
                if when is not None and when > self.as_of:
                    raise ValueError(f"{name} is after as_of")
            return self

        def plain(self) -> dict[str, Any]:
            """The dict ``EscalationModel`` reads (events as dicts)."""
            out = dict(self.__dict__)
            if self.events is not None:
                out["events"] = [e.__dict__ for e in self.events]
            return out

    return TicketState


class _TicketBase(BaseModel):
    """What a triage bot knows when a ticket is created (plus optional history it has)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [EXAMPLE_TICKET]})

    ticket_id: Label | None = None
    created_at: datetime = Field(
        description="Creation time; without a zone it is taken as UTC. Must lie between "
        "2000-01-01 and one day from now (422 otherwise)."
    )
    channel: Label
    category: Label
    priority: Label
    customer_id: Label
    agent_id: Label | None = Field(None, description="First assignee; omit if not yet assigned.")
    agent_tenure_days: HistoryValue = None
    agent_recent_tickets: HistoryValue = None
    agent_prior_resolved: HistoryValue = None
    agent_prior_escalated: HistoryValue = None
    customer_prior_tickets: HistoryValue = None
    customer_prior_escalated: HistoryValue = None
    customer_days_since_last: HistoryValue = None

    _iso_text = field_validator("created_at", mode="before")(_iso_only)
    _plausible_utc = field_validator("created_at")(_utc)

    #: Fields passed to the model (set per app: the contract's plus the model's extras).
    record_fields: ClassVar[tuple[str, ...]] = SCORING_FIELDS

    def record(self) -> dict[str, Any]:
        """The plain dict ``EscalationModel.score_record`` takes (history only where given,
        ``state`` as plain dicts when given)."""
        values = self.__dict__
        out = {name: values[name] for name in self.record_fields}
        out.update((name, values[name]) for name in HISTORY_NAMES if values[name] is not None)
        state = values.get("state")
        if state is not None:
            out["state"] = state.plain()
        return out


#: Strict: JSON true or "2" is not a number; accepting them would contradict the schema.
_Number = Annotated[float, Field(allow_inf_nan=False, strict=True)]
#: How many reasons to return, as JSON Schema's integer: 3 or 3.0, never "3", true or 2.5.
_ReasonCount = Annotated[
    int,
    Field(strict=True, ge=0, le=50),
    BeforeValidator(_integral),
]
_CONTRACT_TYPES: dict[str, Any] = {
    "str": Label,
    "int": _Number,  # a whole number (initial_tier) that frames carry as float: NaN if missing
    "float": _Number,
    "bool": StrictBool,
}


def _optional_fields(max_text_chars: int, extra_features: Mapping[str, str]) -> dict[str, Any]:
    """Optional request fields: contract scoring fields not declared above, then the extras.

    Derived from the contract, so a scoring field added there is accepted (and documented)
    without touching this module; extras are what the served model's mapping declared.
    """
    declared = set(_TicketBase.model_fields) | {"subject", "description"}
    fields: dict[str, Any] = {
        name: (
            _CONTRACT_TYPES[TICKETS_BY_NAME[name].kind] | None,
            Field(None, description=TICKETS_BY_NAME[name].doc),
        )
        for name in SCORING_FIELDS
        if name not in declared
    }
    by_kind: dict[str, Any] = {
        "categorical": Label,
        "text": Annotated[str, StringConstraints(max_length=max_text_chars)],
        "numeric": _Number,
        "boolean": StrictBool,
    }
    for name, kind in extra_features.items():
        fields[name] = (
            by_kind[kind] | None,
            Field(None, description=f"Extra {kind} feature declared in the model's mapping."),
        )
    return fields


def request_models(
    max_text_chars: int,
    max_batch: int,
    n_reasons: int = 5,
    extra_features: Mapping[str, str] | None = None,
    max_state_events: int = 1_000,
) -> tuple[type[_TicketBase], type[BaseModel]]:
    """The ticket and batch request models for these limits and the model's extra features."""
    Text = Annotated[str, StringConstraints(max_length=max_text_chars)]
    extras = dict(extra_features or {})
    TicketState = state_model(max_state_events)
    Ticket = create_model(
        "Ticket",
        __base__=_TicketBase,
        __validators__={"_as_of_after_creation": model_validator(mode="after")(_as_of_after)},
        subject=(Text, ""),
        description=(Text, ""),
        state=(
            TicketState | None,
            Field(None, description="An open ticket's state: its events so far, or its "
                  "current fields, and as_of. With it the answer is the risk of escalating "
                  "from as_of on, calibrated for the ticket's age."),
        ),
        **_optional_fields(max_text_chars, extras),
    )
    Ticket.record_fields = (*SCORING_FIELDS, *extras)

    class BatchRequest(BaseModel):
        model_config = ConfigDict(
            extra="forbid", json_schema_extra={"examples": [{"tickets": [EXAMPLE_TICKET]}]}
        )
        tickets: list[Ticket] = Field(min_length=1, max_length=max_batch)
        reasons: _ReasonCount | None = Field(
            None,
            description=f"Reasons per ticket (default {n_reasons}). Exact SHAP values are most "
            "of a batch's cost: 0 skips them and scores several times faster.",
        )

    return Ticket, BatchRequest


def _as_of_after(ticket: Any) -> Any:
    state = ticket.state
    if state is not None and state.as_of < ticket.created_at:
        raise ValueError("state.as_of is before created_at")
    return ticket


class ErrorResponse(BaseModel):
    """Every non-validation error: one sentence that names the problem, never ticket content."""

    detail: str


class ModelRef(BaseModel):
    name: str
    version: str | None


class ReasonOut(BaseModel):
    """One input field's share of the score: its features' SHAP values summed.

    All of a ticket's field contributions plus the model's expected value add up to its
    log-odds, so nothing is lost by grouping; only the top few are returned.
    """

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "feature": "priority", "name": "priority", "value": None,
                    "contribution": 0.58, "field": "priority", "display_value": "high",
                    "text": "priority = high",
                },
                {
                    "feature": "agent_id", "name": "agent", "value": None,
                    "contribution": 0.16, "field": "agent_id", "display_value": "none given",
                    "text": "no agent known (agent: none given)",
                },
            ]
        }
    )

    feature: str = Field(description="Machine name of the input field (same as `field`).")
    name: str = Field(description="Readable name of the field, e.g. 'agent tenure (days)'.")
    value: float | None = Field(
        description="The field's number when it is one model feature (e.g. tenure in days); "
        "null for categorical fields, text, and missing values."
    )
    contribution: float = Field(
        description="Signed sum of the field's SHAP values on the log-odds scale."
    )
    field: str = Field(
        description="Input field: a request field (priority, category, ...), a derived "
        "statistic (hour_of_day, description_length, ...), a history field, 'text' for the "
        "subject and description words, or agent_id / customer_id when none was given."
    )
    display_value: str = Field(
        description="The ticket's value as a reader sees it: 'high', '12 days', 'none given', "
        "or the telling words of the text."
    )
    text: str = Field(
        description="One readable sentence, e.g. `priority = high`, `agent's escalation rate "
        "31%, 37 of 120 earlier tickets (overall 18%)`, `ticket text: \"refund\", \"charged "
        "twice\"`, `no agent known (agent: none given)`."
    )


class TicketScore(BaseModel):
    ticket_id: str | None
    probability: float = Field(description="Calibrated probability of escalation.")
    risk_tier: str
    route: str = Field(description="Queue recommended by the cost-based routing threshold.")
    reasons: list[ReasonOut] = Field(description="Top drivers, largest |contribution| first.")
    flags: list[str] = Field(
        description="Notes such as new_customer, unknown_agent; already_escalated when the "
        "state shows an escalation (the answer then is no forecast)."
    )
    age_band: str | None = Field(
        None, description="With a state: the age band that answered (creation, 1h, 4h, ...)."
    )


class ScoreResponse(TicketScore):
    request_id: str
    model: ModelRef


class BatchResponse(BaseModel):
    request_id: str
    model: ModelRef
    scores: list[TicketScore]


class ModelStatus(BaseModel):
    configured_uri: str
    loaded: bool
    source: str | None = None
    name: str | None = None
    version: str | None = None
    loaded_at: datetime | None = None
    threshold: float | None = None
    tiers: dict[str, float] | None = None
    history_as_of: datetime | None = None
    metrics: dict[str, Any] = {}
    open_tickets: dict[str, Any] | None = Field(
        None, description="Null when the model cannot score a state (trained without events); "
        "else its age bands, what each uses and its test metrics per band beside the "
        "at-creation model's.",
    )
    last_error: dict[str, Any] | None = None
