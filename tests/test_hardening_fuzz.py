"""API fuzzing with schemathesis against the service's own OpenAPI schema.

Every operation, with schema-valid (positive) and schema-breaking (negative) requests, must
answer without a 5xx, with a documented status and a body matching the documented schema;
valid requests must be accepted and invalid ones refused. The default run is bounded for the
normal suite; ``-m slow`` fuzzes the scoring operations much deeper.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as fuzz_settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.config import SchemathesisConfig
from schemathesis.config._checks import NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES

from escpredict.service.app import create_app
from escpredict.service.schemas import EARLIEST
from tests.service_helpers import ADMIN, SCORING, settings

POSITIVE, NEGATIVE = GenerationMode.POSITIVE, GenerationMode.NEGATIVE
#: A body over the size limit is refused with 413 before it is parsed: a schema-breaking
#: request that is also too large (say, more state events than allowed) is rightly 413.
REJECTIONS = SchemathesisConfig.from_dict({"checks": {"negative_data_rejection": {
    "expected-statuses": [*NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES, 413]}}})
SCORING_OPERATIONS = [("POST", "/v1/score"), ("POST", "/v1/score/batch")]
#: Generated requests per scoring operation and mode in the deep run: the suite's budget
#: (about 4 s each on 2 cores). The examples are derandomized, so every run sends the same.
DEEP_EXAMPLES = 200
#: Operations with inputs (body or key) can be fuzzed negatively; the probes have none.
WITH_INPUTS = [*SCORING_OPERATIONS, ("GET", "/v1/model"), ("POST", "/admin/reload")]
PROBES = [("GET", "/healthz"), ("GET", "/readyz")]

#: JSON Schema cannot say "at most one day from now" nor "not before created_at", so
#: schema-valid requests get a creation time inside the documented range and a state as of
#: that time; out-of-range times are covered by the input edge tests.
plausible_times = st.datetimes(
    min_value=EARLIEST.replace(tzinfo=None) + timedelta(days=1),  # any zone's wall time is in range
    max_value=datetime.now() - timedelta(days=1),
    timezones=st.sampled_from([None, UTC, datetime.now().astimezone().tzinfo]),
).map(datetime.isoformat)


def _with_plausible_time(drawn: tuple[Case, str]) -> Case:
    case, created_at = drawn
    body = case.body if isinstance(case.body, dict) else {}
    for ticket in [body, *body.get("tickets", [])]:
        if isinstance(ticket, dict) and "created_at" in ticket:
            ticket["created_at"] = created_at
            if isinstance(ticket.get("state"), dict):
                _state_at(ticket["state"], created_at)
    return case


def _state_at(state: dict[str, Any], created_at: str) -> None:
    """A state as of creation, every time in it no later; events or current fields, not both
    (JSON Schema cannot say either)."""
    for key, value in state.items():
        if key == "as_of" or (key.endswith("_at") and value is not None):
            state[key] = created_at
    for event in state.get("events") or []:
        event["time"] = created_at
    if state.get("events") is not None and any(
        value is not None for key, value in state.items() if key not in ("as_of", "events")
    ):
        del state["events"]


@pytest.fixture(scope="module")
def api(trained: Any) -> Iterator[Any]:
    """The schema as the running app serves it (small limits, so limits get hit)."""
    app = create_app(settings(trained, max_text_chars=300, max_batch=3, max_body_bytes=20_000))
    with TestClient(app):  # runs the lifespan: the model is loaded
        yield schemathesis.openapi.from_asgi("/openapi.json", app, config=REJECTIONS)


def fuzz(api: Any, method: str, path: str, mode: GenerationMode, examples: int) -> None:
    """Send ``examples`` generated requests; schemathesis' checks raise on the first violation."""
    strategy = api[path][method].as_strategy(mode)
    if mode is POSITIVE:
        strategy = st.tuples(strategy, plausible_times).map(_with_plausible_time)
    keys = ADMIN if path.startswith("/admin") else SCORING

    @given(case=strategy)
    @fuzz_settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def each(case: Case) -> None:
        case.call_and_validate(headers=keys)

    each()


def test_the_fuzzed_operations_are_every_operation_in_the_schema(api: Any) -> None:
    served = {(op.ok().method.upper(), op.ok().path) for op in api.get_all_operations()}

    assert served == set(WITH_INPUTS + PROBES)


@pytest.mark.parametrize(("method", "path"), WITH_INPUTS + PROBES)
def test_valid_requests_are_answered_per_schema(api: Any, method: str, path: str) -> None:
    fuzz(api, method, path, POSITIVE, examples=25)


@pytest.mark.parametrize(("method", "path"), WITH_INPUTS)
def test_invalid_requests_are_refused_per_schema_never_with_a_5xx(
    api: Any, method: str, path: str
) -> None:
    fuzz(api, method, path, NEGATIVE, examples=25)


@pytest.mark.slow
@pytest.mark.parametrize("mode", [POSITIVE, NEGATIVE])
@pytest.mark.parametrize(("method", "path"), SCORING_OPERATIONS)
def test_scoring_survives_deep_fuzzing(
    api: Any, method: str, path: str, mode: GenerationMode
) -> None:
    fuzz(api, method, path, mode, examples=DEEP_EXAMPLES)
