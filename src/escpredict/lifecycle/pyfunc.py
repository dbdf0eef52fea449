"""MLflow pyfunc flavour: the whole model (features, booster, calibrator, snapshot) as data.

Anything that speaks MLflow (``mlflow models serve``, ``mlflow.pyfunc.load_model``, Spark UDFs)
can score raw tickets with it; escpredict's own service and CLI load the ``EscalationModel``
directly (`load_escalation_model`).

The model is logged with this module as its ``loader_module`` and the folder
``model.artefact`` writes (LightGBM text, JSON, Parquet) as its data: MLflow writes no
pickle, and loading imports this installed module and reads that folder, nothing shipped
with the model. A model saved by escpredict before that (a pickled ``PythonModel``) is
refused with one line naming its version and the command to retrain, without unpickling it.

``created_at`` and the numeric and yes/no inputs are declared as MLflow's ``Any`` type and
parsed here: MLflow's ``datetime`` type refuses timezone-aware columns (what ``load_tickets``
returns) and ISO 8601 strings (what JSON carries), so a naive, a zoned and a ``...Z``
timestamp of one instant all give the same answer; its ``double`` refuses integer columns,
nullable (``Int64``, as ``load_tickets`` and Parquet give ``initial_tier``) or not.
``params={"reasons": K}`` adds the top K reasons per ticket as JSON text.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import yaml
from mlflow.exceptions import MlflowException
from mlflow.models import Model, ModelSignature
from mlflow.types.schema import AnyType, ColSpec, ParamSchema, ParamSpec, Schema

from escpredict.contract import HISTORY_NAMES, SCORING_FIELDS, TICKETS_BY_NAME
from escpredict.lifecycle.registry import RegistryError
from escpredict.model import artefact
from escpredict.model.escalation import NO_OPEN_MODEL, EscalationModel, OpenScoringError
from escpredict.model.explain import reasons_json
from escpredict.model.open_ticket import state_frame

#: The model's data folder, under MLflow's ``data/``.
DATA_DIR = "escalation_model"
#: An open ticket's state, as the API's ``state``: JSON text (or an object) per row.
STATE_COLUMN = "state"
#: The predict parameter asking for the top K reasons per ticket (0: none, the default).
REASONS_PARAM = "reasons"
RETRAIN = "retrain it with this escpredict: `escpredict train` (then `escpredict promote`)"
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


class EscalationPyfunc:
    """What MLflow's loader returns: an ``EscalationModel`` behind MLflow's predict contract."""

    def __init__(self, model: EscalationModel) -> None:
        self.model = model

    def predict(
        self, model_input: pd.DataFrame, params: Mapping[str, Any] | None = None
    ) -> pd.DataFrame:
        """probability, risk_tier, route, and ``reasons`` (JSON text) when params ask for them."""
        n_reasons = int((params or {}).get(REASONS_PARAM) or 0)
        if n_reasons < 0:
            raise ValueError(f"params.{REASONS_PARAM} must be 0 or more, got {n_reasons}")
        frame = canonical_scoring_frame(model_input)
        table = self.model.score_table(frame, n_reasons, open_states(self.model, frame))
        if n_reasons:
            table["reasons"] = [reasons_json(r) for r in table["reasons"]]
        return table.set_axis(model_input.index)

    def get_raw_model(self) -> EscalationModel:
        """``mlflow.pyfunc.load_model(uri).get_raw_model()``: the model itself."""
        return self.model


def _load_pyfunc(data_path: str) -> EscalationPyfunc:
    """MLflow's entry point for this ``loader_module``: the data folder, read as data."""
    return EscalationPyfunc(artefact.load(Path(data_path)))


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
    inputs += [ColSpec(_ANY, STATE_COLUMN, required=False)]
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

    names = ["lightgbm", "scikit-learn", "scipy", "numpy", "pandas", "pyarrow", "mlflow"]
    return [f"{name}=={version(name)}" for name in names]


def log_model(model: EscalationModel, workdir: Path, input_example: pd.DataFrame) -> Any:
    """Log ``model`` into the active MLflow run; returns MLflow's ModelInfo."""
    folder = workdir / DATA_DIR
    artefact.save(model, folder)
    return mlflow.pyfunc.log_model(
        name="model",
        loader_module=__name__,
        data_path=str(folder),
        signature=signature(model.builder.extra_features),
        input_example=input_example,
        pip_requirements=pip_requirements(),
    )


def load_escalation_model(uri: str) -> EscalationModel:
    """Load a logged/registered model (``models:/name@alias``, ``runs:/...``) as an EscalationModel.

    Reads the model's MLmodel file and data folder only: neither MLflow's loader nor
    anything the model's files name is run. Whatever cannot be loaded (a model the store
    does not hold, one saved by another escpredict, damaged files) raises RegistryError in
    one line naming the URI.
    """
    with tempfile.TemporaryDirectory(prefix="escpredict-model-") as scratch:
        try:
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=scratch))
            meta = Model.load(str(local))
        except MlflowException as exc:
            raise RegistryError(
                f"cannot load model {uri} from the MLflow store at {mlflow.get_tracking_uri()}: "
                f"{exc.message}; check the model name, version or alias, and --tracking-uri"
            ) from exc
        except (OSError, yaml.YAMLError) as exc:
            raise RegistryError(f"cannot load model {uri}: its MLmodel file is unreadable ({exc})") from exc
        try:
            return artefact.load(_data_folder(uri, local, meta))
        except artefact.ArtefactError as exc:
            raise RegistryError(f"cannot load model {uri}: {exc}; {RETRAIN}") from exc


def _data_folder(uri: str, local: Path, meta: Model) -> Path:
    """The folder of an escpredict model's data; RegistryError for any other kind of model."""
    flavor = meta.flavors.get(mlflow.pyfunc.FLAVOR_NAME) or {}
    if "escalation_model" in (flavor.get("artifacts") or {}):
        created = str(meta.utc_time_created or "")[:10]
        raise RegistryError(
            f"cannot load model {uri}: escpredict 0.1.0 saved it as a pickle (MLflow "
            f"{meta.mlflow_version}, {created}), which escpredict no longer loads; {RETRAIN}"
        )
    data = (local / str(flavor.get("data", ""))).resolve()
    if flavor.get("loader_module") != __name__ or not data.is_relative_to(local.resolve()):
        raise RegistryError(f"cannot load model {uri}: it is not an escpredict escalation model")
    return data
