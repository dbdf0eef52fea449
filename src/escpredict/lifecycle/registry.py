"""MLflow store location, experiment set-up, registration and champion promotion.

The embedded default is a SQLite tracking store and registry plus an artifact folder under
``models/`` so the product runs with no server; any MLflow server can be named instead.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import yaml
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from sklearn.metrics import roc_auc_score

CANDIDATE = "candidate"
CHAMPION = "champion"


def home() -> Path:
    """Project folder holding ``models/``, ``data/`` and ``pipelines/`` (``$ESCPREDICT_HOME`` or cwd)."""
    return Path(os.environ.get("ESCPREDICT_HOME", Path.cwd())).resolve()


def default_tracking_uri() -> str:
    return f"sqlite:///{home() / 'models' / 'mlflow.db'}"


def resolve_tracking_uri(explicit: str | None = None) -> str:
    """Flag, then ``$ESCPREDICT_TRACKING_URI`` / ``$MLFLOW_TRACKING_URI``, then the embedded store."""
    return (
        explicit
        or os.environ.get("ESCPREDICT_TRACKING_URI")
        or os.environ.get("MLFLOW_TRACKING_URI")
        or default_tracking_uri()
    )


def use_store(tracking_uri: str | None = None) -> str:
    """Point the MLflow client (tracking and registry) at the resolved store."""
    uri = resolve_tracking_uri(tracking_uri)
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


class RegistryError(RuntimeError):
    """The MLflow tracking server cannot be used; the message names its URI."""


def check_reachable(tracking_uri: str, timeout_s: float = 5.0) -> None:
    """Raise RegistryError within ``timeout_s`` when an HTTP tracking server does not answer.

    MLflow's client retries a dead server for minutes and then fails deep inside a run;
    checking first means training never starts, or registers anything, against it.
    """
    if not tracking_uri.startswith(("http://", "https://")):
        return
    try:
        urllib.request.urlopen(f"{tracking_uri.rstrip('/')}/health", timeout=timeout_s).close()
        return
    except urllib.error.HTTPError as exc:
        if exc.code not in (502, 503, 504):  # not a gateway answering for a dead server
            return  # it answered (an auth proxy may refuse /health): the server is there
        reason = f"HTTP {exc.code}"
    except OSError as exc:  # URLError, refused, timed out
        reason = str(getattr(exc, "reason", exc))
    raise RegistryError(
        f"MLflow tracking server {tracking_uri} is unreachable ({reason}); "
        "start it or point registry.tracking_uri elsewhere"
    )


def ensure_experiment(name: str, tracking_uri: str) -> str:
    """Experiment id; on a local SQLite store its artifacts go to ``models/artifacts``."""
    check_reachable(tracking_uri)
    client = MlflowClient(tracking_uri)
    existing = client.get_experiment_by_name(name)
    if existing is not None:
        return existing.experiment_id
    location = None
    if tracking_uri.startswith("sqlite:///"):
        root = Path(tracking_uri.removeprefix("sqlite:///")).parent / "artifacts"
        root.mkdir(parents=True, exist_ok=True)
        location = root.as_uri()
    return client.create_experiment(name, artifact_location=location)


def model_uri(name: str, alias: str = CHAMPION) -> str:
    return f"models:/{name}@{alias}"


#: Where a training run logs the configuration it ran with.
CONFIG_ARTIFACT = "config/train.yaml"


def logged_config(run_id: str | None) -> dict:
    """The configuration a training run logged (``CONFIG_ARTIFACT``); empty without a run."""
    if not run_id:
        return {}
    return yaml.safe_load(mlflow.artifacts.load_text(f"runs:/{run_id}/{CONFIG_ARTIFACT}")) or {}


@dataclass(frozen=True)
class Promotion:
    promoted: bool
    reason: str
    candidate_version: str | None
    champion_version: str | None
    candidate_metric: float | None = None
    champion_metric: float | None = None


def alias_version(client: MlflowClient, name: str, alias: str) -> str | None:
    try:
        return client.get_model_version_by_alias(name, alias).version
    except MlflowException:
        return None


def set_alias(client: MlflowClient, name: str, alias: str, version: str) -> None:
    client.set_registered_model_alias(name, alias, version)


@dataclass(frozen=True)
class Yardstick:
    """The booster's ROC AUC on the validation window beside two yardsticks': the logistic
    baseline's and the plain reference's (``model.reference``).

    A booster that ranks no better than logistic regression on the same features, or than
    plain LightGBM on the raw fields, is not worth its complexity, and usually means
    something went wrong (too few rounds, a leak removed, a changed export, a structure that
    does not suit the data). Training tags the run and model version with this, and
    promotion refuses such a candidate unless forced. Scores are compared raw: the
    calibrator is monotone, so AUC does not change.
    """

    booster_auc: float
    baseline_auc: float
    #: None for versions trained before every run fitted the reference.
    reference_auc: float | None = None

    #: Tags on the run and the registered version; values are strings, as MLflow stores them.
    BEATS, BOOSTER, BASELINE = "beats_baseline", "valid_roc_auc", "baseline_valid_roc_auc"
    BEATS_REFERENCE, REFERENCE = "beats_reference", "reference_valid_roc_auc"

    @classmethod
    def measure(
        cls, y: np.ndarray, booster: np.ndarray, baseline: np.ndarray,
        reference: np.ndarray | None = None,
    ) -> Yardstick:
        plain = None if reference is None else float(roc_auc_score(y, reference))
        return cls(float(roc_auc_score(y, booster)), float(roc_auc_score(y, baseline)), plain)

    @property
    def beats_baseline(self) -> bool:
        return self.booster_auc > self.baseline_auc

    @property
    def beats_reference(self) -> bool:
        return self.reference_auc is None or self.booster_auc > self.reference_auc

    @property
    def beaten(self) -> bool:
        """Both yardsticks beaten: what promotion requires."""
        return self.beats_baseline and self.beats_reference

    def tags(self) -> dict[str, str]:
        tags = {
            self.BEATS: str(self.beats_baseline).lower(),
            self.BOOSTER: f"{self.booster_auc:.6f}",
            self.BASELINE: f"{self.baseline_auc:.6f}",
        }
        if self.reference_auc is not None:
            tags |= {
                self.BEATS_REFERENCE: str(self.beats_reference).lower(),
                self.REFERENCE: f"{self.reference_auc:.6f}",
            }
        return tags

    def failed_tags(self) -> list[str]:
        """The tags set to false, for the warning."""
        return [f"{tag}=false" for tag, value in self.tags().items() if value == "false"]

    @classmethod
    def from_tags(cls, tags: Mapping[str, str]) -> Yardstick | None:
        """None for versions trained before the check existed (they carry no such tags)."""
        if cls.BOOSTER not in tags or cls.BASELINE not in tags:
            return None
        reference = float(tags[cls.REFERENCE]) if cls.REFERENCE in tags else None
        return cls(float(tags[cls.BOOSTER]), float(tags[cls.BASELINE]), reference)

    def describe(self) -> str:
        parts = [self._verdict("the logistic baseline", self.baseline_auc)]
        if self.reference_auc is not None:
            parts.append(self._verdict("the plain reference", self.reference_auc))
        return f"LightGBM {' and '.join(parts)} on the validation window"

    def _verdict(self, yardstick: str, auc: float) -> str:
        verdict = "beats" if self.booster_auc > auc else "does NOT beat"
        return f"{verdict} {yardstick} (ROC AUC {self.booster_auc:.4f} vs {auc:.4f})"
