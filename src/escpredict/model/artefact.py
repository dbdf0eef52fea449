"""The trained model saved as data: LightGBM's text model, JSON and Parquet, never a pickle.

A registered model is read by every scoring server, possibly of a later escpredict, and
anyone who can write to the registry could otherwise run code on all of them through a
pickle; a pickle also ties a model to today's module paths. Each piece saves and loads
itself beside its class (``to_state``/``from_state``, ``HistorySnapshot.save``/``load``);
this module lays them out in one folder:

    format.json      FORMAT, FORMAT_VERSION and the escpredict version that wrote it
    booster.txt      LightGBM's own text model (the trees up to the best iteration)
    features.json    FeatureBuilder: configuration, vocabularies, category levels, columns
    calibrator.json  Calibrator
    offsets.json     seasonal and per-level starting scores (null when not fitted)
    routing.json     threshold, risk tiers and queues
    metadata.json    what training recorded: metrics, split, counts
    history/         HistorySnapshot: snapshot.json, agents/customers/events.parquet
    open/            only when trained on events: the open-ticket model (OpenTicketModel),
                     model.json and one LightGBM text model per booster (<name>.txt)

`load` opens only these files and parses them as data; the model is built by this
version's code. A folder of another format is refused with an `ArtefactError` that names
the escpredict version that wrote it, before anything else is read.
"""

from __future__ import annotations

import json
import math
from importlib.metadata import version
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np

from escpredict.labels.history import HistorySnapshot
from escpredict.model.calibration import Calibrator
from escpredict.model.escalation import EscalationModel
from escpredict.model.features import FeatureBuilder
from escpredict.model.level_offset import LevelOffset
from escpredict.model.open_ticket import OpenTicketModel
from escpredict.model.season import SeasonalOffset

FORMAT = "escpredict-escalation-model"
#: Raised whenever a saved piece changes meaning; a folder of another version is refused.
FORMAT_VERSION = 1
HEADER = "format.json"
BOOSTER = "booster.txt"
FEATURES = "features.json"
CALIBRATOR = "calibrator.json"
OFFSETS = "offsets.json"
ROUTING = "routing.json"
METADATA = "metadata.json"
HISTORY = "history"
OPEN = "open"
OPEN_MODEL = "model.json"


class ArtefactError(ValueError):
    """A folder this version cannot load as a model; the message says who wrote it and why."""


def escpredict_version() -> str:
    return version("escpredict")


def save(model: EscalationModel, folder: Path) -> None:
    """Write `model` into the new folder `folder` (see the module docstring for its files)."""
    folder.mkdir(parents=True)
    _write(folder / HEADER, {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "escpredict_version": escpredict_version(),
    })
    # LightGBM's default: the trees up to the best iteration, what prediction uses.
    (folder / BOOSTER).write_text(model.booster.model_to_string(), encoding="utf-8")
    _write(folder / FEATURES, model.builder.to_state())
    _write(folder / CALIBRATOR, model.calibrator.to_state())
    _write(folder / OFFSETS, {
        "season": model.season.to_state() if model.season is not None else None,
        "levels": model.levels.to_state() if model.levels is not None else None,
    })
    _write(folder / ROUTING, {
        "threshold": model.threshold,
        "tiers": model.tiers,
        "route_queue": model.route_queue,
        "default_queue": model.default_queue,
    })
    _write(folder / METADATA, _finite(model.metadata))
    model.snapshot.save(folder / HISTORY)
    if model.open is not None:
        _save_open(model.open, folder / OPEN)


def _save_open(model: OpenTicketModel, folder: Path) -> None:
    """The open-ticket model: its state as JSON (undefined test metrics as null) and each
    booster's LightGBM text once."""
    folder.mkdir()
    _write(folder / OPEN_MODEL, _finite(model.to_state()))
    for name, text in model.booster_texts().items():
        (folder / f"{name}.txt").write_text(text, encoding="utf-8")


def _load_open(folder: Path) -> OpenTicketModel | None:
    if not folder.is_dir():
        return None
    state = _read(folder / OPEN_MODEL)
    names = {name for name in state["booster_names"].values() if name is not None}
    texts = {name: (folder / f"{name}.txt").read_text(encoding="utf-8") for name in names}
    return OpenTicketModel.from_state(state, texts)


def read_header(folder: Path) -> dict[str, Any]:
    """The folder's format header; ArtefactError unless this version reads that format."""
    try:
        header = json.loads((folder / HEADER).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtefactError(f"no {HEADER}: not a model saved as data by escpredict") from None
    except ValueError as exc:
        raise ArtefactError(f"{HEADER} is not JSON: {exc}") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ArtefactError(f"{HEADER} does not describe an {FORMAT}")
    if header.get("format_version") != FORMAT_VERSION:
        raise ArtefactError(
            f"saved by escpredict {header.get('escpredict_version', '(unknown)')} in model "
            f"format {header.get('format_version')}; escpredict {escpredict_version()} reads "
            f"format {FORMAT_VERSION}"
        )
    return header


def load(folder: Path) -> EscalationModel:
    """The model `save` wrote. Reads only the files listed above; runs nothing from them."""
    header = read_header(folder)
    try:
        offsets = _read(folder / OFFSETS)
        routing = _read(folder / ROUTING)
        return EscalationModel(
            builder=FeatureBuilder.from_state(_read(folder / FEATURES)),
            booster=lgb.Booster(model_str=(folder / BOOSTER).read_text(encoding="utf-8")),
            calibrator=Calibrator.from_state(_read(folder / CALIBRATOR)),
            snapshot=HistorySnapshot.load(folder / HISTORY),
            threshold=float(routing["threshold"]),
            tiers={str(name): float(lower) for name, lower in routing["tiers"].items()},
            route_queue=str(routing["route_queue"]),
            default_queue=str(routing["default_queue"]),
            metadata=_read(folder / METADATA),
            season=_optional(SeasonalOffset, offsets["season"]),
            levels=_optional(LevelOffset, offsets["levels"]),
            open=_load_open(folder / OPEN),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError, lgb.basic.LightGBMError) as exc:
        raise ArtefactError(
            f"saved by escpredict {header.get('escpredict_version')} but unreadable "
            f"({type(exc).__name__}: {exc})"
        ) from exc


def _optional(kind: type[SeasonalOffset | LevelOffset], state: Any) -> Any:
    return None if state is None else kind.from_state(state)


def _read(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _write(path: Path, data: Any) -> None:
    # allow_nan=False: a NaN would make the file unreadable as standard JSON; states hold none.
    text = json.dumps(data, allow_nan=False, default=_plain, ensure_ascii=False)
    path.write_text(text, encoding="utf-8")


def _plain(value: Any) -> Any:
    """numpy scalars (counts, metrics) as Python numbers."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON data")


def _finite(value: Any) -> Any:
    """Metadata with NaN and infinite figures (a metric undefined on a window) as null."""
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    if isinstance(value, float | np.floating) and not math.isfinite(value):
        return None
    return value
