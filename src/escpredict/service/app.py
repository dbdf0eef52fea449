"""The scoring API: ``create_app(settings)`` wires model holder, auth, limits and telemetry.

Routes are thin: validate the body, turn it into a plain dict, call
``EscalationModel.score_record`` (``score_records`` for a batch: one matrix, one booster
call) on the model held at that moment, shape the answer.
"""

# No `from __future__ import annotations`: the request models are made per app inside
# create_app, and FastAPI must see them as real classes in the route signatures.
import asyncio
import contextlib
import logging
import math
import re
import traceback
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

from fastapi import FastAPI, HTTPException, Request, Response, Security, status
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from pydantic_core import to_json

from escpredict.lifecycle.registry import use_store
from escpredict.model.escalation import OpenScoringError, Score
from escpredict.service.auth import RequireKey
from escpredict.service.holder import LoadedModel, ModelHolder, ModelLoadError
from escpredict.service.limits import BodyLimitMiddleware
from escpredict.service.schemas import (
    BatchResponse,
    ErrorResponse,
    ModelStatus,
    ScoreResponse,
    request_models,
)
from escpredict.service.settings import ServiceSettings
from escpredict.service.telemetry import RequestMetricsMiddleware, Telemetry

log = logging.getLogger("escpredict.service")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

_ERRORS = {
    400: "The body could not be decoded (e.g. it is not UTF-8).",
    401: "Missing or invalid API key for this endpoint.",
    409: "A ticket carries a state, but the model being served has no open-ticket part "
         "(it was trained without events); send the ticket without its state.",
    413: "Request body over the configured limit (checked before parsing).",
    500: "Scoring failed; the message carries the request id, never ticket content.",
    502: "The configured model could not be loaded; the previous one keeps serving.",
    503: "No model loaded yet.",
}


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for a route's error answers: clients and API fuzzers see every status."""
    return {code: {"model": ErrorResponse, "description": _ERRORS[code]} for code in codes}


def request_id(request: Request) -> str:
    """The caller's X-Request-ID when it is a sane token, else a fresh one.

    A plain call, not a dependency with a ``Header`` parameter: the header is not part of the
    documented API, and each dependency FastAPI solves costs tens of microseconds a request.
    """
    x_request_id = request.headers.get("x-request-id")
    if x_request_id and _REQUEST_ID.match(x_request_id):
        return x_request_id
    return uuid.uuid4().hex


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def ticket_score(ticket_id: str | None, score: Score) -> dict[str, Any]:
    """One ``TicketScore`` as plain JSON-ready values (the model's types already match it)."""
    return {
        "ticket_id": ticket_id,
        "probability": score.probability,
        "risk_tier": score.tier,
        "route": score.route,
        "reasons": [
            {
                "feature": r.feature,
                "name": r.name,
                "value": _finite(r.value),
                "contribution": r.contribution,
                "field": r.field,
                "display_value": r.display_value,
                "text": r.text,
            }
            for r in score.reasons
        ],
        "flags": score.flags,
        "age_band": score.age_band,
    }


def _json(body: dict[str, Any], rid: str) -> Response:
    """A 200 answer serialised once, as pydantic would (non-finite floats as null), with its id.

    Scoring routes return this instead of pydantic objects: building them, then FastAPI's
    validating them against ``response_model`` again and serialising, cost ~50 us more a
    ticket. ``response_model`` stays on the routes for the OpenAPI schema.
    """
    content = to_json(body, inf_nan_mode="null")
    return Response(content, media_type="application/json", headers={"X-Request-ID": rid})


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 naming field and rule, without pydantic's ``input``/``ctx``: they echo ticket text."""
    errors = [{k: e[k] for k in ("type", "loc", "msg") if k in e} for e in exc.errors()]
    return JSONResponse({"detail": errors}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


def create_app(settings: ServiceSettings) -> FastAPI:
    """A ready-to-serve app; the model loads at start-up (failure leaves it not ready)."""
    use_store(settings.tracking_uri)
    holder = ModelHolder(settings.model_uri, settings.tracking_uri)
    telemetry = Telemetry()
    auth_on = not settings.auth_disabled
    scoring_key = Security(RequireKey(settings.scoring_keys(), auth_on, "scoring"))
    admin_key = Security(RequireKey(settings.admin_keys(), auth_on, "admin"))

    def reload_now(only_if_moved: bool) -> LoadedModel | None:
        try:
            loaded = holder.refresh() if only_if_moved else holder.reload()
        except ModelLoadError:
            telemetry.reloads.labels("failed").inc()
            raise
        if loaded is not None:
            telemetry.reloads.labels("loaded").inc()
            telemetry.set_model(loaded.name, str(loaded.version))
        return loaded

    # Loaded now, not at start-up, so the request schema can list the extra features the
    # model's mapping declared (a model promoted later with other extras needs a restart).
    with contextlib.suppress(ModelLoadError):  # not ready; /v1/model shows why
        reload_now(False)
    extras = holder.current.model.builder.extra_features if holder.current else {}
    Ticket, BatchRequest = request_models(
        settings.max_text_chars, settings.max_batch, settings.n_reasons, extras,
        settings.max_state_events,
    )

    async def watch_alias(interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            with contextlib.suppress(ModelLoadError):
                await run_in_threadpool(reload_now, True)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        with contextlib.suppress(ModelLoadError):  # the alias may have moved since create_app
            await run_in_threadpool(reload_now, holder.current is not None)
        watcher = None
        if settings.reload_interval_s > 0:
            watcher = asyncio.create_task(watch_alias(settings.reload_interval_s))
        yield
        if watcher is not None:
            watcher.cancel()

    app = FastAPI(
        title="escpredict scoring API",
        version="1",
        summary="Escalation risk, risk tier, route and reasons for a new or open support ticket.",
        lifespan=lifespan,
        exception_handlers={RequestValidationError: _validation_error},
    )
    app.state.holder = holder
    app.state.telemetry = telemetry

    def serving() -> LoadedModel:
        loaded = holder.current
        if loaded is None:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "no model loaded yet")
        return loaded

    def score_all(
        loaded: LoadedModel, tickets: Sequence[Any], rid: str, n_reasons: int
    ) -> list[dict[str, Any]]:
        """Score with one model object for the whole request; an internal failure is a clean 500."""
        try:
            if len(tickets) == 1:
                scores = [loaded.model.score_record(tickets[0].record(), n_reasons)]
            else:  # one booster call and one SHAP call for the whole batch
                scores = loaded.model.score_records([t.record() for t in tickets], n_reasons)
        except OpenScoringError as exc:  # a valid request the model now served cannot answer
            raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
        except Exception as exc:  # noqa: BLE001 - any model failure must become a clean 500
            # The exception text may quote ticket content: log its type and stack only.
            stack = "".join(traceback.format_tb(exc.__traceback__))
            log.error("scoring failed (request %s): %s\n%s", rid, type(exc).__name__, stack)
            raise HTTPException(
                status.HTTP_500_INTERNAL_SERVER_ERROR, f"scoring failed (request {rid})"
            ) from None
        for score in scores:
            telemetry.observe_score(score.probability, score.tier)
        return [ticket_score(t.ticket_id, s) for t, s in zip(tickets, scores, strict=True)]

    @app.post(
        "/v1/score", response_model=ScoreResponse, dependencies=[scoring_key], tags=["scoring"],
        responses=_errors(400, 401, 409, 413, 500, 503),
    )
    async def score(ticket: Ticket, request: Request) -> Response:  # type: ignore[valid-type]
        """Escalation probability, tier, route and top reasons for one ticket: new, or open
        with its ``state`` (the risk of escalating from then on)."""
        # async on purpose: ~1 ms of CPU is cheaper on the event loop than two thread hand-offs,
        # which cost several ms each on a busy machine. Batches stay on the thread pool.
        rid = request_id(request)
        loaded = serving()
        (scored,) = score_all(loaded, [ticket], rid, settings.n_reasons)
        return _json({**scored, "request_id": rid, "model": _model_ref(loaded)}, rid)

    @app.post(
        "/v1/score/batch", response_model=BatchResponse, dependencies=[scoring_key],
        tags=["scoring"], responses=_errors(400, 401, 409, 413, 500, 503),
        description=f"Up to {settings.max_batch} tickets in one call; answers in request order.",
    )
    def score_batch(batch: BatchRequest, request: Request) -> Response:  # type: ignore[valid-type]
        rid = request_id(request)
        loaded = serving()
        asked = batch.reasons  # type: ignore[attr-defined]
        n_reasons = settings.n_reasons if asked is None else asked
        scores = score_all(loaded, batch.tickets, rid, n_reasons)  # type: ignore[attr-defined]
        return _json({"request_id": rid, "model": _model_ref(loaded), "scores": scores}, rid)

    @app.get(
        "/v1/model", response_model=ModelStatus, dependencies=[scoring_key], tags=["model"],
        responses=_errors(401),
    )
    def model_status() -> ModelStatus:
        """What is loaded, since when, its test metrics, and the last load error if any."""
        return _status(holder)

    @app.post(
        "/admin/reload", response_model=ModelStatus, dependencies=[admin_key], tags=["admin"],
        responses=_errors(401, 502),
    )
    def admin_reload() -> ModelStatus:
        """Load the configured model URI now (e.g. after `escpredict promote`)."""
        try:
            reload_now(only_if_moved=False)
        except ModelLoadError as exc:
            raise HTTPException(status.HTTP_502_BAD_GATEWAY, str(exc)) from None
        return _status(holder)

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        """The process is up (whether or not a model is loaded)."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"], responses={503: {"description": _ERRORS[503]}})
    def readyz() -> JSONResponse:
        """Ready only while a model is loaded."""
        if holder.current is None:
            return JSONResponse({"status": "no model loaded"}, status.HTTP_503_SERVICE_UNAVAILABLE)
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", tags=["ops"], include_in_schema=False)
    def metrics() -> Response:
        body, content_type = telemetry.exposition()
        return Response(body, media_type=content_type)

    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["GET", "POST"],
            allow_headers=["X-API-Key", "Content-Type", "X-Request-ID"],
        )
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestMetricsMiddleware, telemetry=telemetry)
    return app


def _model_ref(loaded: LoadedModel) -> dict[str, str | None]:
    """The ``ModelRef`` of an answer."""
    return {"name": loaded.name, "version": loaded.version}


def _status(holder: ModelHolder) -> ModelStatus:
    loaded, failure = holder.current, holder.last_failure
    out = ModelStatus(
        configured_uri=holder.uri,
        loaded=loaded is not None,
        last_error=None if failure is None else failure.__dict__,
    )
    if loaded is None:
        return out
    model = loaded.model
    return out.model_copy(
        update={
            "source": loaded.source,
            "name": loaded.name,
            "version": loaded.version,
            "loaded_at": loaded.loaded_at,
            "threshold": model.threshold,
            "tiers": model.tiers,
            "history_as_of": model.snapshot.as_of.to_pydatetime(),
            "metrics": model.metadata.get("test_metrics", {}),
            "open_tickets": None if model.open is None else {
                "ages": list(model.open.band_names),
                "uses": model.open.metadata.get("uses", {}),
                "test_bands": model.open.metadata.get("test_bands", []),
            },
        }
    )


def from_env() -> FastAPI:
    """App factory for uvicorn/gunicorn: settings come from ``ESCPREDICT_*`` variables."""
    return create_app(ServiceSettings())
