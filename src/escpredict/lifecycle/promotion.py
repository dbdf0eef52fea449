"""Champion/candidate promotion: move ``champion`` only to a model that is measurably better.

Both models are scored on the candidate's own test window (saved with its run), so the
comparison is on identical tickets, not on two runs' differently-timed test sets. Before
that, a candidate whose booster did not beat its logistic baseline and the plain reference on
the validation window (the ``Yardstick`` tags training sets) is refused, even when there is no
champion yet.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
from mlflow.tracking import MlflowClient

from escpredict.contract import LABEL
from escpredict.lifecycle.pyfunc import load_escalation_model
from escpredict.lifecycle.registry import (
    CANDIDATE,
    CHAMPION,
    Promotion,
    Yardstick,
    alias_version,
    set_alias,
    use_store,
)
from escpredict.lifecycle.train import EVAL_WINDOW_ARTIFACT
from escpredict.model.metrics import evaluate


class PromotionError(RuntimeError):
    """Promotion cannot be decided (no candidate, missing evaluation window...)."""


def candidate_window(client: MlflowClient, name: str, version: str) -> pd.DataFrame:
    found = client.get_model_version(name, version)
    run_id = found.run_id or found.tags.get("run_id")
    if not run_id:
        raise PromotionError(f"{name} v{version} has no training run to take a test window from")
    local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=EVAL_WINDOW_ARTIFACT)
    return pd.read_parquet(Path(local))


def promote(
    name: str,
    metric: str = "roc_auc",
    margin: float = 0.002,
    force: bool = False,
    tracking_uri: str | None = None,
) -> Promotion:
    """Move ``champion`` to the ``candidate`` version if it wins by ``margin`` (or ``force``)."""
    client = MlflowClient(use_store(tracking_uri))
    candidate = alias_version(client, name, CANDIDATE)
    if candidate is None:
        raise PromotionError(f"model {name!r} has no version with alias {CANDIDATE!r}; train first")
    champion = alias_version(client, name, CHAMPION)
    if champion == candidate:
        return Promotion(False, f"v{candidate} is already the champion", candidate, champion)
    yardstick = Yardstick.from_tags(client.get_model_version(name, candidate).tags)
    if yardstick is not None and not yardstick.beaten and not force:
        return Promotion(
            False,
            f"refused v{candidate}: {yardstick.describe()}. A booster no better than the "
            "logistic baseline or the plain reference is not worth serving; retrain, or "
            "promote it with --force",
            candidate,
            champion,
        )
    if champion is None or force:
        set_alias(client, name, CHAMPION, candidate)
        why = "forced" if force else "there was no champion yet"
        return Promotion(True, f"promoted v{candidate}: {why}", candidate, champion)

    window = candidate_window(client, name, candidate)
    y = window[LABEL].to_numpy(int)
    scores = {}
    for version in (candidate, champion):
        model = load_escalation_model(f"models:/{name}/{version}")
        scores[version] = evaluate(y, model.predict_proba(window), model.threshold)[metric]
    gain = scores[candidate] - scores[champion]
    detail = (
        f"{metric} on v{candidate}'s test window ({len(window)} tickets): "
        f"candidate v{candidate} {scores[candidate]:.4f} vs champion v{champion} "
        f"{scores[champion]:.4f} (gain {gain:+.4f}, margin {margin:.4f})"
    )
    if gain >= margin:
        set_alias(client, name, CHAMPION, candidate)
        return Promotion(True, f"promoted: {detail}", candidate, champion, scores[candidate], scores[champion])
    return Promotion(False, f"kept champion: {detail}", candidate, champion, scores[candidate], scores[champion])
