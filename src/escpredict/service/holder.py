"""The served model behind one reference: loaded fully, checked, then swapped in one assignment.

Requests read ``holder.current`` once and keep that object for their whole life, so a reload
never changes a model under a request in flight; a load that fails leaves the old model serving
and the error on record for ``GET /v1/model``.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime

from mlflow.tracking import MlflowClient

from escpredict.lifecycle.pyfunc import load_escalation_model
from escpredict.lifecycle.registry import resolve_tracking_uri
from escpredict.model.escalation import EscalationModel

log = logging.getLogger("escpredict.service")

_REGISTERED = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))$")


@dataclass(frozen=True)
class LoadedModel:
    model: EscalationModel
    source: str  # the pinned URI actually loaded (an alias resolved to its version)
    name: str
    version: str | None
    loaded_at: datetime


@dataclass(frozen=True)
class LoadFailure:
    at: datetime
    source: str
    message: str


@dataclass(frozen=True)
class _Target:
    source: str
    name: str
    version: str | None


class ModelLoadError(RuntimeError):
    """The configured model could not be loaded or could not score; the old one keeps serving."""


class ModelHolder:
    def __init__(self, uri: str, tracking_uri: str | None = None) -> None:
        self.uri = uri
        self.tracking_uri = resolve_tracking_uri(tracking_uri)
        self.current: LoadedModel | None = None
        self.last_failure: LoadFailure | None = None
        self._lock = threading.Lock()

    def reload(self) -> LoadedModel:
        """Load what ``uri`` names now and swap it in; raises ModelLoadError, keeping the old one."""
        with self._lock:
            return self._load(self._resolve())

    def refresh(self) -> LoadedModel | None:
        """Reload only if the alias now names another version (and that one has not failed)."""
        with self._lock:
            target = self._resolve()
            failed = self.last_failure is not None and self.last_failure.source == target.source
            if (self.current and self.current.source == target.source) or failed:
                return None
            return self._load(target)

    def _resolve(self) -> _Target:
        match = _REGISTERED.match(self.uri)
        if match is None:
            return _Target(self.uri, self.uri, None)
        name, version = match["name"], match["version"]
        if match["alias"]:
            try:
                found = MlflowClient(self.tracking_uri).get_model_version_by_alias(name, match["alias"])
            except Exception as exc:
                raise self._fail(self.uri, exc) from exc
            version = str(found.version)
        return _Target(f"models:/{name}/{version}", name, version)

    def _load(self, target: _Target) -> LoadedModel:
        try:
            model = load_escalation_model(target.source)
            model.score_record(_warm_up_record(model))  # refuse a model that cannot score
        except Exception as exc:
            raise self._fail(target.source, exc) from exc
        loaded = LoadedModel(model, target.source, target.name, target.version, datetime.now(UTC))
        self.current = loaded
        self.last_failure = None
        log.info("serving %s (version %s)", target.source, target.version)
        return loaded

    def _fail(self, source: str, exc: Exception) -> ModelLoadError:
        message = f"{type(exc).__name__}: {exc}"[:500]
        self.last_failure = LoadFailure(datetime.now(UTC), source, message)
        log.error("could not load %s: %s", source, message)
        return ModelLoadError(f"could not load {source}: {message}")


def _warm_up_record(model: EscalationModel) -> dict[str, object]:
    """A plain ticket: the first real request then pays no lazy initialisation."""
    return {
        "ticket_id": "warm-up",
        "created_at": model.snapshot.as_of.to_pydatetime(),
        "channel": "email",
        "category": "general",
        "priority": "medium",
        "subject": "Cannot log in",
        "description": "Password reset link does not arrive.",
        "customer_id": None,
        "agent_id": None,
    }
