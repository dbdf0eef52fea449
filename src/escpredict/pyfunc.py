"""MLflow pyfunc flavour: the whole model (features, booster, calibrator, snapshot) as one artifact.

Anything that speaks MLflow (``mlflow models serve``, ``mlflow.pyfunc.load_model``, Spark UDFs)
can score raw tickets with it; escpredict's own service and CLI unwrap it to reach the
``EscalationModel`` directly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import joblib
import mlflow
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.pyfunc import PythonModel, PythonModelContext
from mlflow.types.schema import ColSpec, Schema

from escpredict.contract import HISTORY_NAMES, SCORING_FIELDS, TICKETS_BY_NAME
from escpredict.model import EscalationModel

ARTIFACT_KEY = "escalation_model"
_TEXT_FIELDS = ("subject", "description")
#: An optional whole number (initial_tier) may be missing, which only a double can hold.
_MLFLOW_TYPES = {"str": "string", "datetime": "datetime", "float": "double", "int": "double"}


class EscalationPyfunc(PythonModel):
    """Wraps an ``EscalationModel`` saved with joblib as the artifact ``escalation_model``."""

    def __init__(self) -> None:
        self.model: EscalationModel | None = None

    def load_context(self, context: PythonModelContext) -> None:
        self.model = joblib.load(context.artifacts[ARTIFACT_KEY])

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        assert self.model is not None, "load_context was not called"
        frame = canonical_scoring_frame(model_input)
        probability = self.model.predict_proba(frame)
        return pd.DataFrame(
            {
                "probability": probability,
                "risk_tier": [self.model.tier_of(p) for p in probability],
                "route": [self.model.route_of(p) for p in probability],
            },
            index=model_input.index,
        )


def canonical_scoring_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Coerce what MLflow hands over (strings, naive times) to the canonical scoring types."""
    out = frame.copy()
    out["created_at"] = pd.to_datetime(out["created_at"], utc=True)
    for name in SCORING_FIELDS:
        if name not in out.columns:
            out[name] = pd.NA
    for name in _TEXT_FIELDS:
        out[name] = out[name].fillna("").astype(str)
    return out


def signature() -> ModelSignature:
    inputs = [
        ColSpec(
            _MLFLOW_TYPES[TICKETS_BY_NAME[name].kind],
            name,
            required=TICKETS_BY_NAME[name].required and name != "ticket_id",
        )
        for name in SCORING_FIELDS
    ] + [ColSpec("double", name, required=False) for name in HISTORY_NAMES]
    outputs = [
        ColSpec("double", "probability"),
        ColSpec("string", "risk_tier"),
        ColSpec("string", "route"),
    ]
    return ModelSignature(inputs=Schema(inputs), outputs=Schema(outputs))


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
        signature=signature(),
        input_example=input_example,
        pip_requirements=pip_requirements(),
    )


def load_escalation_model(uri: str) -> EscalationModel:
    """Load a logged/registered model (``models:/name@alias``, ``runs:/...``) as an EscalationModel."""
    wrapper = mlflow.pyfunc.load_model(uri).unwrap_python_model()
    if not isinstance(wrapper, EscalationPyfunc) or wrapper.model is None:
        raise TypeError(f"{uri} is not an escpredict escalation model")
    return wrapper.model
