"""Request and response bodies of the scoring API.

Request models are built from the configured limits, so validation and the OpenAPI docs state
the same caps. Requests forbid unknown fields: a misspelt history field would otherwise be
dropped silently and the ticket scored with snapshot values instead.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

from escpredict.contract import HISTORY_NAMES, SCORING_FIELDS

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
HistoryValue = Annotated[float | None, Field(ge=0, allow_inf_nan=False, strict=True)]

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

    @field_validator("created_at", mode="before")
    @classmethod
    def _iso_text(cls, value: object) -> object:
        """The schema says an ISO 8601 string: a bare number would be read as Unix seconds."""
        if not isinstance(value, str):
            raise ValueError("must be an ISO 8601 date-time string")  # noqa: TRY004 - pydantic
        return value

    @field_validator("created_at")
    @classmethod
    def _plausible_utc(cls, value: datetime) -> datetime:
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        latest = datetime.now(UTC) + FUTURE_SLACK
        if not EARLIEST <= value <= latest:
            raise ValueError(
                f"must be between {EARLIEST:%Y-%m-%d} and one day from now (UTC)"
            )
        return value

    def record(self) -> dict[str, Any]:
        """The plain dict ``EscalationModel.score_record`` takes (history only where given)."""
        values = self.__dict__
        out = {name: values.get(name) for name in SCORING_FIELDS}
        out.update((name, values[name]) for name in HISTORY_NAMES if values[name] is not None)
        return out


def request_models(max_text_chars: int, max_batch: int) -> tuple[type[_TicketBase], type[BaseModel]]:
    """The ticket and batch request models for these limits."""
    Text = Annotated[str, StringConstraints(max_length=max_text_chars)]

    class Ticket(_TicketBase):
        subject: Text = ""
        description: Text = ""

    class BatchRequest(BaseModel):
        model_config = ConfigDict(
            extra="forbid", json_schema_extra={"examples": [{"tickets": [EXAMPLE_TICKET]}]}
        )
        tickets: list[Ticket] = Field(min_length=1, max_length=max_batch)

    return Ticket, BatchRequest


class ErrorResponse(BaseModel):
    """Every non-validation error: one sentence that names the problem, never ticket content."""

    detail: str


class ModelRef(BaseModel):
    name: str
    version: str | None


class ReasonOut(BaseModel):
    feature: str = Field(description="Machine feature name.")
    name: str = Field(description="Readable feature name.")
    value: float | None = Field(description="The ticket's feature value (null if missing).")
    contribution: float = Field(description="Signed SHAP value on the log-odds scale.")


class TicketScore(BaseModel):
    ticket_id: str | None
    probability: float = Field(description="Calibrated probability of escalation.")
    risk_tier: str
    route: str = Field(description="Queue recommended by the cost-based routing threshold.")
    reasons: list[ReasonOut] = Field(description="Top drivers, largest |contribution| first.")
    flags: list[str] = Field(description="Cold-start notes such as new_customer, unknown_agent.")


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
    last_error: dict[str, Any] | None = None
