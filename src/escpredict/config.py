"""Pipeline configuration: every training choice lives in ``pipelines/train.yaml``.

Pydantic models validate the YAML up front, so a typo in a config fails with the
key's path before any data is read, and CLI flags can override single keys.
"""

from __future__ import annotations

import copy
import re
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from escpredict.yamlfile import read_yaml_mapping, validate


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


#: Where ``make demo`` / ``escpredict sample-data`` put the embedded sample.
SAMPLE_TICKETS = Path("data/sample/tickets.parquet")
SAMPLE_AGENTS = Path("data/sample/agents.parquet")


class DataConfig(_Strict):
    tickets: Path = SAMPLE_TICKETS
    #: Optional: a ticket export alone trains. Left unset, it is the sample's agents file
    #: only when the tickets are the sample's, so ``--tickets mine.csv`` never reads it.
    agents: Path | None = None
    mapping: str = "generic"  # a name in pipelines/mappings/ or a path to a YAML file
    quarantine: Path | None = None  # write bad rows here instead of refusing the data

    @model_validator(mode="after")
    def _sample_agents(self) -> DataConfig:
        if "agents" not in self.model_fields_set and self.tickets == SAMPLE_TICKETS:
            self.agents = SAMPLE_AGENTS
        return self


class LabelConfig(_Strict):
    """Which signals mark a ticket as escalated (any rule that fires marks it)."""

    rules: list[Literal["explicit_flag", "tier_raised", "resolver_differs", "reassignments"]] = [
        "explicit_flag",
        "tier_raised",
        "resolver_differs",
        "reassignments",
    ]
    #: An explicit ``escalated`` value, where present, wins over the derived rules.
    explicit_flag_overrides: bool = True
    #: First touches by these roles are assignments, not first responses.
    coordinator_roles: list[str] = ["coordinator", "dispatcher"]
    #: More reassignments than this count as an escalation.
    max_reassignments: int = 2
    #: Tickets created within this many days of the export's end are left out of training
    #: and evaluation (see maturity.py); "auto" measures it on the export, 0 disables it.
    maturity_days: Annotated[float, Field(ge=0)] | Literal["auto"] = "auto"
    #: Resolved tickets no rule can judge (an empty reassignment count, no tier) are set
    #: aside like open ones, counted and named, up to this share of the resolved tickets;
    #: beyond it labelling refuses the export (a mapping that misses a rule's columns).
    max_unlabelled_share: float = Field(0.05, ge=0, le=1)


class SplitConfig(_Strict):
    """Time-based split: train on the past, validate and test on the future."""

    valid_fraction: float = Field(0.15, gt=0, lt=0.5)
    test_fraction: float = Field(0.15, gt=0, lt=0.5)

    @property
    def fractions(self) -> tuple[float, float]:
        """(valid, test): what ``split.window_masks`` and label maturity's window check take."""
        return self.valid_fraction, self.test_fraction


class FeatureConfig(_Strict):
    word_max_features: int = Field(3000, ge=0)
    word_ngram_max: int = Field(2, ge=1, le=3)
    char_max_features: int = Field(2000, ge=0)
    char_ngram_range: tuple[int, int] = (3, 5)
    min_df: int = Field(5, ge=1)
    #: Categorical levels seen fewer times in training share one pooled level (as do levels
    #: never seen): a level met a handful of times is noise a tree would overfit.
    min_level_count: int = Field(10, ge=1)
    recent_window_days: int = Field(30, ge=1)
    #: Pseudo-count for smoothing history escalation rates towards the global rate.
    smoothing: float = Field(10.0, ge=0)
    #: Words whose presence signals urgency or frustration.
    urgency_words: list[str] = [
        "urgent",
        "asap",
        "immediately",
        "critical",
        "down",
        "outage",
        "unacceptable",
        "again",
        "still",
        "cancel",
        "lawyer",
        "refund",
        "chargeback",
        "escalate",
        "manager",
    ]


class SearchConfig(_Strict):
    """The structure search (``model/search.py``): which switches suit an export is chosen
    on its past windows. ``model.search: off`` trains the configured structure as it is."""

    #: Candidates judged, the configured structure and the plain reference's among them;
    #: 0 is the same as ``off``.
    trials: int = Field(8, ge=0)
    #: Wall-time cap. The trial budget keeps the choice reproducible under the seed; this
    #: only bounds a slow machine (the run logs when it cut the search short).
    seconds: float = Field(120.0, gt=0)
    #: Past windows each candidate is judged on: the run's own train -> valid, then earlier
    #: slices of the same size (rolling origin). Never the test window.
    folds: int = Field(3, ge=2)
    #: At most this many train + valid tickets are searched on (an evenly spaced sample in
    #: time), so the search costs about the same at any export size.
    max_rows: int = Field(10_000, ge=1_000)

    @model_validator(mode="before")
    @classmethod
    def _switch(cls, value: Any) -> Any:
        """``off`` / ``false`` (YAML reads ``off`` as false) disables, ``on`` / ``true`` is
        the default budget."""
        if isinstance(value, bool) or value in ("off", "on"):
            return {} if value in (True, "on") else {"trials": 0}
        return value


class ModelConfig(_Strict):
    num_boost_round: int = Field(600, ge=1)
    early_stopping_rounds: int = Field(50, ge=1)
    #: LightGBM parameters. Leaf and categorical sizes are size-aware by default
    #: (`booster.booster_params`); any key set here wins over them, and the structure
    #: search (`search`) sets the keys it chooses.
    params: dict[str, Any] = {
        "objective": "binary",
        "learning_rate": 0.05,
        "feature_fraction": 0.8,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "lambda_l2": 1.0,
        "verbose": -1,
        "num_threads": 2,
        "seed": 7,
    }
    baseline_C: float = Field(1.0, gt=0)
    #: Start the booster from an annual curve of log-odds by day of year (see season.py);
    #: skipped by itself when the training window covers too little of the year.
    seasonal_offset: bool = True
    #: Start the booster from per-level log-odds of the categorical fields, an L2 logistic
    #: regression on their one-hot indicators (see level_offset.py).
    linear_offset: bool = True
    calibration: Literal["auto", "isotonic", "sigmoid"] = "auto"
    #: Choose linear start, rare-level pooling and the booster's structure on past windows.
    search: SearchConfig = SearchConfig()


_AGE = re.compile(r"(\d+(?:\.\d+)?)\s*(min|h|d)?")
_AGE_HOURS = {"min": 1 / 60, "h": 1.0, "d": 24.0, None: 1.0}


def age_hours(text: str) -> float:
    """Hours of a checkpoint age written as ``0``, ``90min``, ``4h`` or ``1.5d``."""
    found = _AGE.fullmatch(text.strip())
    if found is None:
        raise ValueError(f"{text!r} is not an age such as 0, 90min, 4h or 1d")
    return float(found.group(1)) * _AGE_HOURS[found.group(2)]


def _age(text: str) -> str:
    age_hours(text)  # refuses what it cannot read
    return text


class OpenTicketConfig(_Strict):
    """The model for open tickets: snapshots of each ticket while it is open (event exports)."""

    #: Train it when the export has events (``auto``); ``false`` never does.
    enabled: Literal["auto"] | bool = "auto"
    #: Checkpoint ages (``90min``, ``4h``, ``1d``); each starts an age band (a ticket of
    #: 6 h is in the 4h band). The first must be 0: at creation the at-creation model answers.
    ages: list[Annotated[str, AfterValidator(_age)]] = ["0", "1h", "4h", "1d", "3d", "7d"]
    #: Also a snapshot after every update (more rows; each falls in its age's band).
    after_updates: bool = False
    #: A status containing one of these words (any case) is waiting on someone else.
    wait_statuses: list[str] = ["wait", "pending", "hold"]

    @model_validator(mode="after")
    def _from_creation(self) -> OpenTicketConfig:
        hours = self.age_hours()
        if not hours or hours[0] != 0.0:
            raise ValueError("open_tickets.ages must start with 0 (creation)")
        if any(b <= a for a, b in pairwise(hours)):
            raise ValueError("open_tickets.ages must increase")
        return self

    def age_hours(self) -> list[float]:
        return [age_hours(a) for a in self.ages]

    def band_names(self) -> list[str]:
        """"creation", then each later age as written ("1h", "4h", ...)."""
        return ["creation", *self.ages[1:]]


class CostConfig(_Strict):
    """Routing threshold minimises expected cost on the validation window."""

    missed_escalation: float = Field(5.0, gt=0)
    unnecessary_route: float = Field(1.0, gt=0)


class RoutingConfig(_Strict):
    """Risk tiers and the route, which must agree: a "low risk" ticket is never sent up."""

    #: Risk tier boundaries on the calibrated probability, ascending. The boundary of
    #: ``route_tier`` only places it among the others: training sets it to the threshold.
    tiers: dict[str, float] = {"low": 0.0, "medium": 0.2, "high": 0.5}
    #: The tier that starts at the cost-based routing threshold: tickets in it and above go
    #: to ``route_queue``, tickets below stay in ``default_queue``.
    route_tier: str = "medium"
    route_queue: str = "tier2"
    default_queue: str = "tier1"

    @model_validator(mode="after")
    def _ordered_from_zero(self) -> RoutingConfig:
        """Order tiers by boundary (YAML writers may sort keys); the lowest must be 0.0."""
        self.tiers = dict(sorted(self.tiers.items(), key=lambda item: item[1]))
        if not self.tiers or next(iter(self.tiers.values())) != 0.0:
            raise ValueError("routing.tiers needs a tier starting at 0.0")
        if len(set(self.tiers.values())) != len(self.tiers):
            raise ValueError("routing.tiers boundaries must differ")
        if self.route_tier not in list(self.tiers)[1:]:
            raise ValueError(
                f"routing.route_tier {self.route_tier!r} must name a tier of routing.tiers "
                "other than the lowest"
            )
        return self

    def tiers_at(self, threshold: float) -> dict[str, float]:
        """The tiers with ``route_tier`` starting at the routing threshold.

        Raises ValueError when the threshold falls outside the neighbouring boundaries,
        which would reorder the tiers: the message names the keys to change.
        """
        names = list(self.tiers)
        at = names.index(self.route_tier)
        below = self.tiers[names[at - 1]]
        above = self.tiers[names[at + 1]] if at + 1 < len(names) else 1.0
        if not below < threshold < above:
            raise ValueError(
                f"the routing threshold {threshold:.3f} (from costs.missed_escalation and "
                f"costs.unnecessary_route) must lie between the boundaries around "
                f"routing.route_tier {self.route_tier!r} in routing.tiers ({below} and {above}); "
                "move those boundaries or change the costs"
            )
        return {**self.tiers, self.route_tier: threshold}


class RegistryConfig(_Strict):
    tracking_uri: str | None = None  # None: the embedded SQLite store under models/
    experiment: str = "escalation-risk"
    model_name: str = "escalation-risk"
    promote_metric: Literal["roc_auc", "pr_auc"] = "roc_auc"
    promote_margin: float = Field(0.002, ge=0)


class TrainConfig(_Strict):
    data: DataConfig = DataConfig()
    labels: LabelConfig = LabelConfig()
    split: SplitConfig = SplitConfig()
    features: FeatureConfig = FeatureConfig()
    model: ModelConfig = ModelConfig()
    costs: CostConfig = CostConfig()
    routing: RoutingConfig = RoutingConfig()
    open_tickets: OpenTicketConfig = OpenTicketConfig()
    registry: RegistryConfig = RegistryConfig()
    segments: list[str] = ["category", "channel", "tenure_band"]


class ConfigError(ValueError):
    """A config file or override is invalid; the message names the key."""


def load_config(path: Path | None, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Read a YAML config and apply dotted-key overrides such as ``{"split.test_fraction": 0.2}``.

    An override sets one key. Inside a dict-valued setting the file does not write, it
    starts from the default dict, so ``model.params.learning_rate=0.02`` keeps every other
    default LightGBM parameter (``objective: binary`` among them) instead of replacing the
    whole dict. Sections stay as written: a section's unset keys keep meaning "not set".
    """
    raw = read_yaml_mapping(path, ConfigError, "config file") if path is not None else {}
    for dotted, value in (overrides or {}).items():
        node, default = raw, TrainConfig()
        *parents, leaf = dotted.split(".")
        for key in parents:
            default = (
                getattr(default, key, None) if isinstance(default, BaseModel)
                else default.get(key) if isinstance(default, dict) else None
            )
            if key not in node:
                node[key] = copy.deepcopy(default) if isinstance(default, dict) else {}
            node = node[key]
        node[leaf] = value
    return validate(TrainConfig, raw, path or "config", ConfigError)
