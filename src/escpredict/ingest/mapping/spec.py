"""The mapping file's schema (``docs/mappings.md``): pydantic models and their cross-checks.

Everything a YAML mapping can say is checked here, when the file is read, so a typo fails
with the file and key path before any data is touched.
"""

from __future__ import annotations

import codecs
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from escpredict.contract import (
    AGENTS_BY_NAME,
    HISTORY_NAMES,
    TICKET_FIELDS,
    TICKETS_BY_NAME,
)
from escpredict.contract import Field as ContractField
from escpredict.yamlfile import read_yaml_mapping, validate


class MappingError(ValueError):
    """A mapping file is missing or invalid; the message names the file and key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Scalar = str | int | float | bool


def check_datetime_format(fmt: str) -> str:
    """``ISO8601``, ``mixed`` or a strftime format pandas can read back what it writes."""
    if fmt in ("ISO8601", "mixed"):
        return fmt
    if "%" not in fmt:
        raise ValueError(f"datetime format {fmt!r} is not ISO8601, mixed or a strftime format")
    sample = pd.Timestamp("2001-02-03 04:05:06", tz="UTC")
    try:
        pd.to_datetime(sample.strftime(fmt), format=fmt)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"datetime format {fmt!r} cannot be parsed: {exc}") from exc
    return fmt


def _no_yaml_null(markers: Any) -> Any:
    """An unquoted NULL is YAML's null, not the text an export holds: say so plainly."""
    if isinstance(markers, list) and any(m is None for m in markers):
        raise ValueError('a marker is YAML null; write it in quotes: "NULL"')
    return markers


class Modifiers(_Strict):
    """How one source column's values are cleaned, in this order (see docs/mappings.md)."""

    missing: Annotated[list[Scalar] | None, BeforeValidator(_no_yaml_null)] = None
    strip_prefix: str | list[str] | None = None
    extract: str | None = None
    values: dict[Any, Any] | None = None
    default: Scalar | None = None
    when: dict[str, list[Scalar]] = {}
    datetime_format: str | None = None

    @field_validator("extract")
    @classmethod
    def _one_group(cls, pattern: str | None) -> str | None:
        if pattern is None:
            return None
        try:
            groups = re.compile(pattern).groups
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from exc
        if groups != 1:
            raise ValueError(f"needs exactly one capture group, {pattern!r} has {groups}")
        return pattern

    @field_validator("datetime_format")
    @classmethod
    def _format(cls, fmt: str | None) -> str | None:
        return None if fmt is None else check_datetime_format(fmt)

    @model_validator(mode="after")
    def _prefix_or_extract(self) -> Modifiers:
        if self.strip_prefix is not None and self.extract is not None:
            raise ValueError("use strip_prefix or extract, not both")
        return self

    def prefixes(self) -> list[str]:
        if self.strip_prefix is None:
            return []
        return [self.strip_prefix] if isinstance(self.strip_prefix, str) else self.strip_prefix


class Column(Modifiers):
    """One source column."""

    column: str


class Join(Modifiers):
    """Several source columns joined into one value (e.g. category + subcategory)."""

    join: list[str] = Field(min_length=1)
    sep: str = " / "


class AnyOf(Modifiers):
    """Per row, the first of several alternative source columns that has a value there."""

    any_of: list[str] = Field(min_length=1)


class Contains(_Strict):
    """True when a list-like column (tags) holds a token."""

    column: str
    contains: str


class Constant(_Strict):
    """The same value on every row, for a column the export lacks."""

    constant: Scalar


def _first_key(value: Any, keys: tuple[str, ...]) -> str | None:
    """The first of `keys` a YAML mapping holds: which union member it means."""
    return next((k for k in keys if k in value), None) if isinstance(value, dict) else None


def _source_tag(value: Any) -> str:
    if isinstance(value, str):
        return "name"
    return _first_key(value, ("constant", "join", "any_of", "contains")) or "column"


Source = Annotated[
    Annotated[str, Tag("name")]
    | Annotated[Column, Tag("column")]
    | Annotated[Join, Tag("join")]
    | Annotated[AnyOf, Tag("any_of")]
    | Annotated[Contains, Tag("contains")]
    | Annotated[Constant, Tag("constant")],
    Discriminator(_source_tag),
]


def label(spec: Any) -> str:
    """How a column is read from the export, for error messages."""
    if isinstance(spec, Join):
        return " + ".join(spec.join)
    if isinstance(spec, AnyOf):
        return " or ".join(spec.any_of)
    if isinstance(spec, Contains):
        return f"{spec.column} contains {spec.contains!r}"
    if isinstance(spec, Constant):
        return f"constant {spec.constant!r}"
    if isinstance(spec, Column):
        return spec.column
    return spec


class CsvDialect(_Strict):
    """How a CSV export is written, for a file detection should not guess (docs/mappings.md).

    Unset keys are detected: the separator among , ; tab |, UTF-8 (with or without a BOM,
    or UTF-16 with one) else Windows-1252, and a decimal comma in ``;``/tab/``|`` files.
    """

    sep: Annotated[str, Field(min_length=1, max_length=1)] | None = None
    decimal: Literal[".", ","] | None = None
    encoding: str | None = None

    @field_validator("encoding")
    @classmethod
    def _known(cls, encoding: str | None) -> str | None:
        if encoding is not None:
            try:
                codecs.lookup(encoding)
            except LookupError as exc:
                raise ValueError(f"unknown encoding {encoding!r}") from exc
        return encoding


class TableMapping(_Strict):
    csv: CsvDialect = CsvDialect()
    timezone: str = "UTC"
    datetime_format: str = "ISO8601"
    missing: Annotated[list[Scalar], BeforeValidator(_no_yaml_null)] = []
    columns: dict[str, Source] = {}
    values: dict[str, dict[Any, Any]] = {}

    @field_validator("timezone")
    @classmethod
    def _zone(cls, tz: str) -> str:
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {tz!r}") from exc
        return tz

    @field_validator("datetime_format")
    @classmethod
    def _format(cls, fmt: str) -> str:
        return check_datetime_format(fmt)

    def source_of(self, name: str) -> Any:
        """Where a canonical column comes from: its ``columns`` entry, else its own name."""
        return self.columns.get(name, name)

    def values_of(self, name: str) -> dict[Any, Any] | None:
        spec = self.source_of(name)
        inline = spec.values if isinstance(spec, Modifiers) else None
        return inline if inline is not None else self.values.get(name)

    def markers_of(self, name: str) -> list[str]:
        spec = self.source_of(name)
        own = spec.missing if isinstance(spec, Modifiers) else None
        return [str(m) for m in (own if own is not None else self.missing)]

    def formats(self, fields: tuple[ContractField, ...]) -> dict[str, str]:
        """Datetime format per field: its own ``datetime_format``, else the mapping's."""
        out = {}
        for f in fields:
            spec = self.source_of(f.name)
            own = spec.datetime_format if isinstance(spec, Modifiers) else None
            out[f.name] = own or self.datetime_format
        return out

    def _check_names(self, known: dict[str, ContractField], prefix: str) -> None:
        for section, keys in (("columns", self.columns), ("values", self.values)):
            unknown = sorted(set(keys) - set(known))
            if unknown:
                raise ValueError(f"{prefix}{section}: {unknown} are not canonical column names")
        for name, spec in self.columns.items():
            if isinstance(spec, Modifiers) and spec.values is not None and name in self.values:
                raise ValueError(
                    f"{prefix}columns.{name}.values and {prefix}values.{name} both map "
                    f"{name}; keep one"
                )


class Events(_Strict):
    time: Source
    status: Source | None = None
    actor: Source | None = None
    actor_role: Source | None = None
    assignee: Source | None = None
    assignee_role: Source | None = None
    tier: Source | None = None
    queue: Source | None = None
    coordinator_roles: list[str] = ["coordinator", "dispatcher"]

    def named(self) -> dict[str, Any]:
        """Event column (``time``, ``status``, …) → its source, for the columns given."""
        keys = [k for k in type(self).model_fields if k != "coordinator_roles"]
        return {k: getattr(self, k) for k in keys if getattr(self, k) is not None}


#: Event columns → the canonical fields they derive; a mapping may not map those directly.
DERIVED_BY_EVENTS = {
    "actor": ("first_responder_id", "first_responder_role"),
    "assignee": ("agent_id", "reassignment_count", "agents_involved"),
    "tier": ("initial_tier", "final_tier"),
    "queue": ("initial_queue", "final_queue"),
}

#: Per-event columns, typed like contract fields so ``coerce`` and validation treat them alike.
EVENT_FIELDS: tuple[ContractField, ...] = (
    ContractField("event_time", "datetime", True, False, "When the update happened."),
    ContractField("event_status", "str", False, False, "State after the update."),
    ContractField("event_actor", "str", False, False, "Who made the update."),
    ContractField("event_actor_role", "str", False, False, "Role of the actor."),
    ContractField("event_assignee", "str", False, False, "Assignee after the update."),
    ContractField("event_assignee_role", "str", False, False, "Role of the assignee."),
    ContractField("event_tier", "int", False, False, "Support tier after the update."),
    ContractField("event_queue", "str", False, False, "Queue after the update."),
)

# --- derive: per-ticket fields computed from events ---------------------------------------

#: An event condition: event column → accepted values, or true (has a value) / false (none).
Where = dict[str, list[Scalar] | bool]
FirstLast = Literal["first", "last"]


class _Rule(_Strict):
    values: dict[Any, Any] | None = None

    def event_keys(self) -> list[str]:
        """Event columns the rule reads."""
        return list(self.condition())

    def condition(self) -> Where:
        return {}


class TimeOf(_Rule):
    """Time of the first / last event meeting the condition."""

    time: FirstLast
    where: Where = {}

    def condition(self) -> Where:
        return self.where


class ValueOf(_Rule):
    """An event column's value at the first / last event meeting the condition."""

    value: str
    at: FirstLast = "last"
    where: Where = {}

    def condition(self) -> Where:
        return self.where

    def event_keys(self) -> list[str]:
        return [self.value, *self.where]


class AnyEvent(_Rule):
    """True when any event meets the condition."""

    any: Where

    def condition(self) -> Where:
        return self.any


class MovedTo(_Rule):
    """True when an event after the first changed one column to one of the values."""

    moved_to: dict[str, list[Scalar]] = Field(min_length=1, max_length=1)

    def condition(self) -> Where:
        return dict(self.moved_to)


class Count(_Rule):
    """Number of events meeting the condition."""

    count: Where

    def condition(self) -> Where:
        return self.count


def _rule_tag(value: Any) -> str:
    return _first_key(value, ("time", "value", "any", "moved_to", "count")) or "unknown"


Rule = Annotated[
    Annotated[TimeOf, Tag("time")]
    | Annotated[ValueOf, Tag("value")]
    | Annotated[AnyEvent, Tag("any")]
    | Annotated[MovedTo, Tag("moved_to")]
    | Annotated[Count, Tag("count")],
    Discriminator(
        _rule_tag,
        custom_error_type="derive_rule",
        custom_error_message="a rule is one of {time: …}, {value: …}, {any: …}, "
        "{moved_to: …}, {count: …}",
    ),
]

#: Which field kinds each rule's result can become.
_RULE_KINDS: dict[type, tuple[str, ...]] = {
    TimeOf: ("datetime",),
    AnyEvent: ("bool",),
    MovedTo: ("bool",),
    Count: ("int", "float", "bool"),
}

# --- features: extra model inputs ---------------------------------------------------------

FeatureKind = Literal["categorical", "numeric", "text", "boolean"]
#: A feature kind → the contract type its values are parsed as.
FEATURE_TYPES: dict[str, Literal["str", "float", "bool"]] = {
    "categorical": "str",
    "text": "str",
    "numeric": "float",
    "boolean": "bool",
}
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class Feature(_Strict):
    """An extra at-creation column: where it comes from and what kind of input it is."""

    kind: FeatureKind
    source: Source

    @model_validator(mode="before")
    @classmethod
    def _split(cls, data: Any) -> Any:
        """YAML writes ``{column: x, kind: numeric}``: everything but ``kind`` is the source."""
        if isinstance(data, dict) and "source" not in data:
            rest = {k: v for k, v in data.items() if k != "kind"}
            return {"kind": data.get("kind"), "source": rest}
        return data


class Mapping(TableMapping):
    name: str = ""
    level: Literal["tickets", "events"] = "tickets"
    events: Events | None = None
    derive: dict[str, Rule] = {}
    features: dict[str, Feature] = {}
    agents: TableMapping = TableMapping()

    @model_validator(mode="after")
    def _consistent(self) -> Mapping:
        self._check_names(TICKETS_BY_NAME, "")
        self.agents._check_names(AGENTS_BY_NAME, "agents.")
        if self.level == "events" and self.events is None:
            raise ValueError("level 'events' needs an 'events' section naming the time column")
        if self.events is not None:
            for key, derived in DERIVED_BY_EVENTS.items():
                clash = [n for n in derived if n in self.columns]
                if getattr(self.events, key) is not None and clash:
                    raise ValueError(f"columns {clash} are derived from events.{key}; drop them")
        self._check_derive()
        self._check_features()
        return self

    def _check_derive(self) -> None:
        if self.derive and self.events is None:
            raise ValueError("derive: needs an 'events' section (level: events)")
        named = set(self.events.named()) if self.events is not None else set()
        for name, rule in self.derive.items():
            key = f"derive.{name}"
            if name not in TICKETS_BY_NAME:
                raise ValueError(f"{key}: {name!r} is not a canonical column name")
            if name in self.columns:
                raise ValueError(f"{key}: {name} is also under columns; keep one")
            for column in rule.event_keys():
                if column not in named or (column == "time" and column in rule.condition()):
                    raise ValueError(
                        f"{key}: {column!r} is not an event column; name it under events.{column}"
                    )
            kinds = _RULE_KINDS.get(type(rule))
            kind = TICKETS_BY_NAME[name].kind
            if kinds is not None and kind not in kinds:
                raise ValueError(
                    f"{key}: a {type(rule).__name__} rule gives {'/'.join(kinds)}, but "
                    f"{name} is {kind}"
                )

    def _check_features(self) -> None:
        taken = set(TICKETS_BY_NAME) | set(HISTORY_NAMES) | {f.name for f in EVENT_FIELDS}
        for name in self.features:
            if not _IDENTIFIER.fullmatch(name):
                raise ValueError(f"features.{name}: a feature name must be a plain identifier")
            if name in taken:
                raise ValueError(
                    f"features.{name}: clashes with a contract, history or event column; "
                    "rename the feature"
                )

    # --- what the rest of the package reads -----------------------------------------------

    def extra_features(self) -> dict[str, str]:
        """Declared extra model features, name → kind, in declaration order."""
        return {name: feature.kind for name, feature in self.features.items()}

    def feature_fields(self) -> tuple[ContractField, ...]:
        return tuple(
            ContractField(name, FEATURE_TYPES[f.kind], False, True, f"Extra {f.kind} feature.")
            for name, f in self.features.items()
        )

    def output_fields(self) -> tuple[ContractField, ...]:
        """Columns of the canonical ticket frame: the contract, then the extra features."""
        return TICKET_FIELDS + self.feature_fields()

    def event_fields(self) -> tuple[ContractField, ...]:
        named = {f"event_{k}" for k in (self.events.named() if self.events else {})}
        return tuple(f for f in EVENT_FIELDS if f.name in named)

    def source_of(self, name: str) -> Any:
        if name.startswith("event_") and self.events is not None:
            named = self.events.named()
            if name[len("event_") :] in named:
                return named[name[len("event_") :]]
        if name in self.features:
            return self.features[name].source
        return super().source_of(name)

    def event_columns(self) -> dict[str, str]:
        """Internal event field → how the export provides it, for error messages."""
        if self.events is None:
            return {}
        return {f"event_{k}": label(v) for k, v in self.events.named().items()}


def mapping_dirs() -> list[Path]:
    """Where mapping names are looked up, in order."""
    package_root = Path(__file__).parents[4]
    dirs = [Path.cwd() / "pipelines/mappings", package_root / "pipelines/mappings"]
    if home := os.environ.get("ESCPREDICT_HOME"):
        dirs.insert(0, Path(home) / "pipelines/mappings")
    return dirs


def load_mapping(name_or_path: str | Mapping) -> Mapping:
    """Read a mapping by name (``pipelines/mappings/<name>.yaml``) or by path to a YAML file;
    a Mapping already read is returned as it is, so callers take either."""
    if isinstance(name_or_path, Mapping):
        return name_or_path
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml") and len(path.parts) == 1:
        candidates = [d / f"{name_or_path}.yaml" for d in mapping_dirs()]
        path = next((c for c in candidates if c.is_file()), candidates[0])
        if not path.is_file():
            where = ", ".join(str(c.parent) for c in candidates)
            raise MappingError(f"no mapping named {name_or_path!r} in {where}")
    raw = read_yaml_mapping(path, MappingError, "mapping file")
    return validate(Mapping, {"name": path.stem, **raw}, path, MappingError)
