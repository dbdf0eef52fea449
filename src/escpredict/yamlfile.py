"""YAML files validated by pydantic models, with errors that name the file and the key path.

Pipeline configs and column mappings are both user-edited YAML; one reader gives both the
same error wording, so a user who fixed one kind of file knows how to read the other's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def read_yaml_mapping(path: Path, error: type[Exception], what: str = "file") -> dict[str, Any]:
    """The top-level mapping of a YAML file; ``error`` names the file for every failure."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except FileNotFoundError as exc:
        raise error(f"{what} not found: {path}") from exc
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise error(f"{path}: expected a mapping at the top level")
    return raw


def validate(model: type[M], raw: dict[str, Any], where: object, error: type[Exception]) -> M:
    """``model`` from ``raw``; one ``error`` listing every bad key as dotted path: message."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(_describe(err) for err in exc.errors())
        raise error(f"{where}: {problems}") from exc


def _describe(err: Any) -> str:
    """``key.path: message``; a whole-file check's message already names its keys."""
    key = ".".join(str(p) for p in err["loc"])
    message = err["msg"].removeprefix("Value error, ")
    return f"{key}: {message}" if key else message
