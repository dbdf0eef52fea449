"""MLflow pyfunc flavour: the whole model (features, booster, calibrator, snapshot) as one artifact.

Anything that speaks MLflow (``mlflow models serve``, ``mlflow.pyfunc.load_model``, Spark UDFs)
can score raw tickets with it; escpredict's own service and CLI unwrap it to reach the
``EscalationModel`` directly.

``created_at`` and the numeric and yes/no inputs are declared as MLflow's ``Any`` type and
parsed here: MLflow's ``datetime`` type refuses timezone-aware columns (what ``load_tickets``
returns) and ISO 8601 strings (what JSON carries), so a naive, a zoned and a ``...Z``
timestamp of one instant all give the same answer; its ``double`` refuses integer columns,
nullable (``Int64``, as ``load_tickets`` and Parquet give ``initial_tier``) or not.
``params={"reasons": K}`` adds the top K reasons per ticket as JSON text.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import joblib
import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.pyfunc import PythonModel, PythonModelContext
from mlflow.types.schema import AnyType, ColSpec, ParamSchema, ParamSpec, Schema

from escpredict.contract import HISTORY_NAMES, SCORING_FIELDS, TICKETS_BY_NAME
from escpredict.lifecycle.registry import RegistryError
from escpredict.model.escalation import EscalationModel
from escpredict.model.explain import reasons_json

ARTIFACT_KEY = "escalation_model"
#: The predict parameter asking for the top K reasons per ticket (0: none, the default).
REASONS_PARAM = "reasons"
_TEXT_FIELDS = ("subject", "description")
#: Columns MLflow's own types cannot take as pandas gives them: checked here instead.
_ANY = AnyType()
_MLFLOW_TYPES = {"str": "string", "float": _ANY, "int": _ANY}
#: Kinds of mapping-declared extra features (``FeatureBuilder.extra_features``).
_EXTRA_TYPES = {"categorical": "string", "text": "string", "numeric": _ANY, "boolean": _ANY}
#: Inputs declared ``Any`` that the model reads as numbers (extras are parsed by the builder).
_NUMERIC_INPUTS = (
    *(n for n in SCORING_FIELDS if TICKETS_BY_NAME[n].kind in ("float", "int")), *HISTORY_NAMES
)


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
        table = self.model.score_table(canonical_scoring_frame(model_input), n_reasons)
        if n_reasons:
            table["reasons"] = [reasons_json(r) for r in table["reasons"]]
        return table.set_axis(model_input.index)


def canonical_scoring_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Coerce what MLflow hands over (strings, naive or zoned times) to the canonical types."""
    out = frame.copy()
    out["created_at"] = parse_created_at(out["created_at"])
    for name in SCORING_FIELDS:
        if name not in out.columns:
            out[name] = pd.NA
    for name in _TEXT_FIELDS:
        out[name] = out[name].fillna("").astype(str)
    for name in _NUMERIC_INPUTS:
        if name in out.columns:
            out[name] = parse_numbers(out[name], name)
    return out


def parse_numbers(values: pd.Series, name: str) -> pd.Series:
    """float64 (NaN where missing) from numbers, nullable integers or numeric text.

    Raises ValueError naming the column and the first row (0-based) that is not a number.
    """
    parsed = pd.to_numeric(values, errors="coerce")
    _refuse_first(values, (parsed.isna() & values.notna()).to_numpy(), name, "a number")
    return parsed.astype("float64")


def parse_created_at(values: pd.Series) -> pd.Series:
    """UTC timestamps from datetimes (naive ones taken as UTC) or ISO 8601 strings.

    Raises ValueError naming the first row (0-based, in the caller's order) that is neither
    or is missing: a ticket's creation time is required.
    """
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = pd.to_datetime(values, utc=True)
    else:
        parsed = pd.to_datetime(values, utc=True, format="ISO8601", errors="coerce")
    _refuse_first(
        values, parsed.isna().to_numpy(), "created_at",
        "a date-time (ISO 8601 text such as 2025-06-02T09:15:00Z, or a datetime)",
    )
    return parsed


def _refuse_first(values: pd.Series, bad: np.ndarray, name: str, expected: str) -> None:
    """ValueError naming the first bad row (0-based, in the caller's order), if any."""
    if bad.any():
        position = int(bad.argmax())
        raise ValueError(
            f"{name}, row {position}: {str(values.iloc[position])[:40]!r} is not {expected}"
        )


def signature(extra_features: Mapping[str, str] | None = None) -> ModelSignature:
    """Ticket fields, optional history and extra features in; scores (and reasons) out."""
    inputs = [
        ColSpec(
            _ANY if name == "created_at" else _MLFLOW_TYPES[TICKETS_BY_NAME[name].kind],
            name,
            required=TICKETS_BY_NAME[name].required and name != "ticket_id",
        )
        for name in SCORING_FIELDS
    ]
    inputs += [ColSpec(_ANY, name, required=False) for name in HISTORY_NAMES]
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
