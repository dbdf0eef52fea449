"""MLflow pyfunc flavour: the whole model (features, booster, calibrator, snapshot) as one artifact.

Anything that speaks MLflow (``mlflow models serve``, ``mlflow.pyfunc.load_model``, Spark UDFs)
can score raw tickets with it; escpredict's own service and CLI unwrap it to reach the
``EscalationModel`` directly.

``created_at`` is declared as MLflow's ``Any`` type and parsed here: MLflow's ``datetime``
type refuses timezone-aware columns (what ``load_tickets`` returns) and ISO 8601 strings
(what JSON carries), so a naive, a zoned and a ``...Z`` timestamp of one instant all give
the same answer. ``params={"reasons": K}`` adds the top K reasons per ticket as JSON text.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import joblib
import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.pyfunc import PythonModel, PythonModelContext
from mlflow.types.schema import AnyType, ColSpec, ParamSchema, ParamSpec, Schema

from escpredict.contract import HISTORY_NAMES, SCORING_FIELDS, TICKETS_BY_NAME
from escpredict.lifecycle.registry import RegistryError
from escpredict.model.escalation import NO_OPEN_MODEL, EscalationModel, OpenScoringError
from escpredict.model.explain import reasons_json
from escpredict.model.open_ticket import state_frame

ARTIFACT_KEY = "escalation_model"
#: An open ticket's state, as the API's ``state``: JSON text (or an object) per row.
STATE_COLUMN = "state"
#: The predict parameter asking for the top K reasons per ticket (0: none, the default).
REASONS_PARAM = "reasons"
_TEXT_FIELDS = ("subject", "description")
#: An optional whole number (initial_tier) may be missing, which only a double can hold.
_MLFLOW_TYPES = {"str": "string", "float": "double", "int": "double", "bool": "boolean"}
#: Kinds of mapping-declared extra features (``FeatureBuilder.extra_features``).
_EXTRA_TYPES = {"categorical": "string", "text": "string", "numeric": "double", "boolean": "boolean"}


class EscalationPyfunc(PythonModel):
    """Wraps an ``EscalationModel`` saved with joblib as the artifact ``escalation_model``."""

    def __init__(self) -> None:
        self.model: EscalationModel | None = None

    def load_context(self, context: PythonModelContext) -> None:
        self.model = joblib.load(context.artifacts[ARTIFACT_KEY])

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: Mapping[str, Any] | None = None
    ) -> pd.DataFrame:
        """probability, risk_tier, route, and ``reasons`` (JSON text) when params ask for them."""
        assert self.model is not None, "load_context was not called"
        n_reasons = int((params or {}).get(REASONS_PARAM) or 0)
        if n_reasons < 0:
            raise ValueError(f"params.{REASONS_PARAM} must be 0 or more, got {n_reasons}")
        frame = canonical_scoring_frame(model_input)
        table = self.model.score_table(frame, n_reasons, open_states(self.model, frame))
        if n_reasons:
            table["reasons"] = [reasons_json(r) for r in table["reasons"]]
        return table.set_axis(model_input.index)


def open_states(model: EscalationModel, frame: pd.DataFrame) -> pd.DataFrame | None:
    """The ``state`` column (JSON text or objects, as the API's ``state``) as state values;
    None without one, so such a frame is scored as at creation."""
    if STATE_COLUMN not in frame.columns or frame[STATE_COLUMN].isna().all():
        return None
    if model.open is None:
        raise OpenScoringError(NO_OPEN_MODEL)
    return state_frame(frame["created_at"], frame[STATE_COLUMN], model.open.waits)


def canonical_scoring_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Coerce what MLflow hands over (strings, naive or zoned times) to the canonical types."""
    out = frame.copy()
    out["created_at"] = parse_created_at(out["created_at"])
    for name in SCORING_FIELDS:
        if name not in out.columns:
            out[name] = pd.NA
    for name in _TEXT_FIELDS:
        out[name] = out[name].fillna("").astype(str)
    return out


def parse_created_at(values: pd.Series) -> pd.Series:
    """UTC timestamps from datetimes (naive ones taken as UTC) or ISO 8601 strings.

    Raises ValueError naming the first row (0-based, in the caller's order) that is neither
    or is missing: a ticket's creation time is required.
    """
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = pd.to_datetime(values, utc=True)
    else:
        parsed = pd.to_datetime(values, utc=True, format="ISO8601", errors="coerce")
    bad = parsed.isna().to_numpy()
    if bad.any():
        position = int(bad.argmax())
        raise ValueError(
            f"created_at, row {position}: {str(values.iloc[position])[:40]!r} is not a "
            "date-time (ISO 8601 text such as 2025-06-02T09:15:00Z, or a datetime)"
        )
    return parsed


def signature(extra_features: Mapping[str, str] | None = None) -> ModelSignature:
    """Ticket fields, optional history and extra features in; scores (and reasons) out."""
    inputs = [
        ColSpec(
            AnyType() if name == "created_at" else _MLFLOW_TYPES[TICKETS_BY_NAME[name].kind],
            name,
            required=TICKETS_BY_NAME[name].required and name != "ticket_id",
        )
        for name in SCORING_FIELDS
    ]
    inputs += [ColSpec("double", name, required=False) for name in HISTORY_NAMES]
    inputs += [ColSpec(AnyType(), STATE_COLUMN, required=False)]
    inputs += [
        ColSpec(_EXTRA_TYPES[kind], name, required=False)
        for name, kind in (extra_features or {}).items()
    ]
    outputs = [
        ColSpec("double", "probability"),
        ColSpec("string", "risk_tier"),
        ColSpec("string", "route"),
        ColSpec("string", "reasons", required=False),
    ]
    params = ParamSchema([ParamSpec(REASONS_PARAM, "long", 0)])
    return ModelSignature(inputs=Schema(inputs), outputs=Schema(outputs), params=params)


def pip_requirements() -> list[str]:
    """Pinned to what trained the model, so another environment reproduces its scores."""
    from importlib.metadata import version

    names = ["lightgbm", "scikit-learn", "scipy", "numpy", "pandas", "joblib", "mlflow"]
    return [f"{name}=={version(name)}" for name in names]


def log_model(model: EscalationModel, workdir: Path, input_example: pd.DataFrame) -> Any:
    """Log ``model`` into the active MLflow run; returns MLflow's ModelInfo."""
    path = workdir / "escalation_model.joblib"
    joblib.dump(model, path, compress=3)
    return mlflow.pyfunc.log_model(
        name="model",
        python_model=EscalationPyfunc(),
        artifacts={ARTIFACT_KEY: str(path)},
        signature=signature(getattr(model.builder, "extra_features", {})),
        input_example=input_example,
        pip_requirements=pip_requirements(),
    )


def load_escalation_model(uri: str) -> EscalationModel:
    """Load a logged/registered model (``models:/name@alias``, ``runs:/...``) as an EscalationModel.

    A model the store does not hold is a user's mistake (a typo, another tracking URI), so
    it raises RegistryError naming the URI and the store, not MLflow's traceback.
    """
    try:
        wrapper = mlflow.pyfunc.load_model(uri).unwrap_python_model()
    except MlflowException as exc:
        raise RegistryError(
            f"cannot load model {uri} from the MLflow store at {mlflow.get_tracking_uri()}: "
            f"{exc.message}; check the model name, version or alias, and --tracking-uri"
        ) from exc
    if not isinstance(wrapper, EscalationPyfunc) or wrapper.model is None:
        raise TypeError(f"{uri} is not an escpredict escalation model")
    return wrapper.model
