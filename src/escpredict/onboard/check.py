"""Dry run of a ticket export: what training would read, refuse and label, in seconds.

A wrong mapping surfaces in training only after minutes, or never: a label rule firing on
every ticket, or person ids that never match across columns, train a model on labels that
mean nothing. ``check_export`` runs the cheap steps only (read, map, validate, label, the
label-maturity cut, the split's cuts) with the pipeline's own functions, and reports counts plus findings, each with
its likely cause. Errors mean training would refuse the export; warnings mean it would
train on something doubtful.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel

from escpredict.config import TrainConfig
from escpredict.contract import TICKET_FIELDS, TICKETS_BY_NAME
from escpredict.ingest.loaders import (
    DataReadError,
    LoadResult,
    load_agents,
    map_tickets,
    markers,
    read_export,
)
from escpredict.ingest.mapping import Mapping, MappingError, load_mapping, source_labels
from escpredict.ingest.mapping.spec import DERIVED_BY_EVENTS
from escpredict.ingest.validation import DataValidationError, Problem
from escpredict.labels import leakage
from escpredict.labels.density import dense_span
from escpredict.labels.maturity import Maturity, maturity, window_counts
from escpredict.labels.rules import (
    RULE_INPUTS,
    LabelError,
    combine_votes,
    first_handler,
    resolved,
    rule_votes,
    within_limit,
)
from escpredict.labels.split import TrainingDataError, check_both_classes, window_masks

#: A rule firing on more than this share of the resolved tickets it judges marks nearly all.
NEARLY_ALL = 0.95

Level = Literal["error", "warning", "info"]


@dataclass(frozen=True)
class Finding:
    level: Level
    message: str
    cause: str = ""  # the likely cause, and what to do about it


@dataclass(frozen=True)
class RuleShare:
    """How often a label rule fires on resolved tickets (``rule`` "any" = the label)."""

    rule: str
    judged: int  # resolved tickets the rule has data for
    fired: int
    share: float | None  # fired / judged; None when it judges nothing
    only: int | None  # resolved tickets on which no other rule fires


@dataclass(frozen=True)
class Rate:
    """Escalation rate of a period (a month or a split window) over its labelled tickets."""

    period: str
    start: str
    end: str
    tickets: int
    labelled: int
    escalated: int
    rate: float | None


@dataclass(frozen=True)
class WindowCut:
    """One time window's labelled tickets without and with the maturity cut."""

    window: str
    tickets_without: int
    escalated_without: int
    tickets: int  # what training keeps
    escalated: int


@dataclass(frozen=True)
class MaturityCut:
    """Training's label-maturity cut (``maturity.py``) as applied to this export."""

    export_end: str
    horizon_days: float
    cutoff: str  # tickets created after it are immature
    immature: int  # resolved tickets created after the cutoff: no rate or window counts them
    how: str  # how the horizon was chosen
    fallback: str  # why a shorter horizon than measured is used ("" when none)
    windows: list[WindowCut] = field(default_factory=list)

    def describe(self) -> str:
        text = (
            f"label maturity: horizon {self.horizon_days:.1f} days before the export's end "
            f"({self.export_end[:16]}), {self.how}; {self.immature:,} resolved tickets created "
            f"after {self.cutoff[:16]} are left out of the rates and windows, as training "
            "leaves them out (the label rules count every resolved ticket)"
        )
        return text + (f". {self.fallback}" if self.fallback else "")


@dataclass(frozen=True)
class ColumnUse:
    field: str  # canonical name
    source: str  # how the export provides it
    filled: float  # share of tickets with a value


@dataclass
class CheckReport:
    """Everything ``escpredict check`` prints; ``to_dict`` is its ``--json`` form."""

    tickets_path: str
    mapping: str
    agents_path: str | None
    read: str = ""  # how the file was read: encoding, separator, decimal comma, what was ignored
    empty_columns_ignored: int = 0
    blank_rows_ignored: int = 0
    rows_read: int = 0
    tickets: int = 0
    quarantined_rows: int = 0
    quarantined_by_field: dict[str, int] = field(default_factory=dict)
    resolved: int = 0
    open: int = 0
    unlabelled: int = 0  # resolved tickets no rule can judge (set aside like open ones)
    rules: list[RuleShare] = field(default_factory=list)
    combined: RuleShare | None = None
    months: list[Rate] = field(default_factory=list)
    windows: list[Rate] = field(default_factory=list)
    columns_mapped: list[ColumnUse] = field(default_factory=list)
    fields_empty: list[str] = field(default_factory=list)
    columns_unused: list[str] = field(default_factory=list)
    maturity: MaturityCut | None = None
    dense_span: str = ""  # where the export is dense (``labels.density``)
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No errors: training would accept the export (warnings may remain)."""
        return not any(f.level == "error" for f in self.findings)

    def add(self, level: Level, message: str, cause: str = "") -> None:
        self.findings.append(Finding(level, message, cause))

    def to_dict(self) -> dict[str, Any]:
        counts = {lvl: sum(f.level == lvl for f in self.findings) for lvl in ("error", "warning")}
        return asdict(self) | {
            "ok": self.ok,
            "errors": counts["error"],
            "warnings": counts["warning"],
        }


def check_export(
    tickets_path: Path, mapping: str | Mapping, agents_path: Path | None, cfg: TrainConfig
) -> CheckReport:
    """Dry-run ``tickets_path`` through ``mapping`` with ``cfg``'s label rules and split.

    Input errors (unreadable file, bad mapping, missing required column) become error
    findings rather than exceptions, so the report always comes back.
    """
    name = mapping.name if isinstance(mapping, Mapping) else str(mapping)
    report = CheckReport(str(tickets_path), name, str(agents_path) if agents_path else None)
    try:
        spec = load_mapping(mapping)
        export = read_export(Path(tickets_path), spec.csv, markers(spec))
    except (MappingError, DataReadError) as exc:
        report.add("error", str(exc))
        return report
    raw, report.read = export.frame, export.notes.describe()
    report.empty_columns_ignored = export.notes.empty_columns
    report.blank_rows_ignored = export.notes.blank_rows
    report.rows_read = len(raw)
    columns = list(raw.columns)  # before mapping reads (and may add to) the frame
    report.columns_unused = unused_columns(columns, spec)
    agents = _agents(report, agents_path, spec)
    try:
        loaded = _load(raw, str(tickets_path), spec, agents)
    except DataValidationError as exc:
        for problem in exc.problems:
            report.add("error", str(problem), MISSING_CAUSE)
        return report
    except MappingError as exc:
        report.add("error", str(exc))
        return report
    _quarantine(report, loaded)
    tickets = loaded.tickets
    report.tickets = len(tickets)
    if tickets.empty:
        report.add("error", "no ticket survives validation", "see the row problems")
        return report
    _columns(report, tickets, spec, set(columns))
    label = _labels(report, tickets, cfg, agents)
    _density(report, tickets)
    judged = _mature(report, tickets, label, cfg)
    _id_overlap(report, tickets, cfg, agents)
    report.months = _months(tickets, judged)
    _windows(report, tickets, judged, cfg)
    _leakage(report, tickets, judged, spec, cfg)
    return report


MISSING_CAUSE = (
    "no row can be kept without it: name the export column that holds it in the mapping's "
    "`columns:` section (canonical name: export column)"
)


def _agents(report: CheckReport, path: Path | None, spec: Mapping) -> pd.DataFrame | None:
    if path is None:
        report.add(
            "info",
            "no agents file",
            "roles then come only from the export's role columns (a coordinator's first "
            "touch may count as handling) and agent tenure is unknown; pass --agents FILE",
        )
        return None
    try:
        return load_agents(path, spec)
    except (DataReadError, DataValidationError) as exc:
        report.add("error", f"agents file: {exc}", "the check goes on without agents")
        return None


def _load(raw: pd.DataFrame, source: str, spec: Mapping, agents: pd.DataFrame | None) -> LoadResult:
    """The loader itself on the rows already read, quarantining into a scratch file so
    every row problem is listed."""
    with tempfile.TemporaryDirectory() as scratch:
        return map_tickets(raw, spec, source, Path(scratch) / "quarantine.csv", agents)


def _quarantine(report: CheckReport, loaded: LoadResult) -> None:
    report.quarantined_rows = loaded.quarantined
    by_field: dict[str, set[int]] = {}
    for problem in loaded.problems:
        by_field.setdefault(problem.field, set()).update(problem.rows)
        report.add("warning", str(problem), _row_cause(problem))
    report.quarantined_by_field = {f: len(rows) for f, rows in by_field.items()}


def _row_cause(problem: Problem) -> str:
    """The usual reason for a row problem, then what training does with such rows."""
    refused = "training refuses these rows unless given --quarantine FILE"
    field = TICKETS_BY_NAME.get(problem.field)
    if field is not None and field.kind == "datetime":
        return (
            "another date format, or a missing-value marker? set the mapping's "
            f"datetime_format or missing; {refused}"
        )
    if problem.field == "ticket_id" and problem.message.startswith("duplicate"):
        return f"one row per update? an events mapping (level: events) collapses them; {refused}"
    return refused


# --- columns ------------------------------------------------------------------------------


#: Mapping settings that hold no export column of the ticket file.
_NOT_COLUMNS = {"agents", "values", "csv"}


def _mentioned(node: Any) -> Iterator[str]:
    """Every string a mapping's settings hold, outside value maps and the agents table."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, BaseModel):
        for name in type(node).model_fields:
            if name not in _NOT_COLUMNS:
                yield from _mentioned(getattr(node, name))
    elif isinstance(node, dict):
        for value in node.values():
            yield from _mentioned(value)
    elif isinstance(node, list | tuple):
        for value in node:
            yield from _mentioned(value)


def derived_fields(spec: Mapping) -> dict[str, str]:
    """Canonical fields an events mapping computes, each with the setting it comes from.

    An export column of the same name is then not what training reads.
    """
    events = spec.event_columns()
    out = {
        name: f"events.{key}: {events[f'event_{key}']}"
        for key, names in DERIVED_BY_EVENTS.items()
        if f"event_{key}" in events
        for name in names
    }
    return out | {name: f"derive.{name}" for name in spec.derive}


def unused_columns(columns: list[str], spec: Mapping) -> list[str]:
    """Export columns the mapping never reads: named nowhere and no pass-through name.

    Walking every setting, not each kind of source, keeps this right as the mapping
    language grows (a stray non-column string can only hide an unused column, not invent one).
    """
    named = set(_mentioned(spec))
    computed = set(spec.columns) | set(derived_fields(spec))
    passed = {f.name for f in TICKET_FIELDS if f.name not in computed}
    return [c for c in columns if c not in named | passed]


def _filled(col: pd.Series) -> float:
    present = col.notna()
    if col.dtype == object or pd.api.types.is_string_dtype(col):
        present &= col.astype("str").str.strip() != ""
    return float(present.mean()) if len(col) else 0.0


def _columns(report: CheckReport, tickets: pd.DataFrame, spec: Mapping, raw: set[str]) -> None:
    labels = source_labels(spec, spec.output_fields()) | derived_fields(spec)
    for name in tickets.columns:
        share = _filled(tickets[name])
        if share == 0:
            report.fields_empty.append(name)
            continue
        given = name in raw or (name in labels and labels[name] != name)
        report.columns_mapped.append(
            ColumnUse(name, labels[name] if given else "(derived)", round(share, 4))
        )


# --- labels -------------------------------------------------------------------------------

#: Likely cause of a rule firing on (nearly) every ticket it judges, or on none.
RULE_CAUSES: dict[tuple[str, str], str] = {
    ("explicit_flag", "all"): "the escalated column is true almost everywhere: check its "
    "value map, or whether the column means something else",
    ("explicit_flag", "none"): "the escalated column is never true: check which export "
    "values mean yes (the mapping's `values:` for escalated)",
    ("tier_raised", "all"): "initial and final tier seem to come from different scales",
    ("tier_raised", "none"): "the tier never rises: a ticket-level export holds only the "
    "current tier; an events export (events.tier) shows its history",
    ("resolver_differs", "all"): "resolver and first handler ids (almost) never match: ids "
    "anonymised or written differently per column (user name, display name, sys_id)",
    ("resolver_differs", "none"): "the resolver is always the first handler: are both mapped "
    "from the same export column?",
    ("reassignments", "all"): "does the count include the first assignment? raise "
    "labels.max_reassignments",
    ("reassignments", "none"): "no ticket has more than labels.max_reassignments: fine if "
    "true; with a running count, is it taken at creation instead of at resolution?",
}


def _labels(
    report: CheckReport, tickets: pd.DataFrame, cfg: TrainConfig, agents: pd.DataFrame | None
) -> pd.Series:
    """Every resolved ticket's label (NA where it cannot), with each rule's share.

    The shares count immature tickets too: how often a rule fires says whether the mapping
    is right, whatever the ticket's age.
    """
    votes = rule_votes(tickets, cfg.labels, agents)
    done = resolved(tickets)
    label = combine_votes(votes, cfg.labels, done)
    fix = "map the columns a rule reads, or add a rule that can"
    try:
        left = within_limit(tickets, label, cfg.labels)
    except LabelError as error:
        report.add("error", str(error), fix)
    else:
        if left.rows:
            report.add("warning", left.describe(cfg.labels.max_unlabelled_share),
                       f"training sets them aside like open tickets; {fix}")
    report.resolved, report.open = int(done.sum()), int((~done).sum())
    report.unlabelled = int((done & label.isna().to_numpy()).sum())
    fired = votes[done].fillna(False).to_numpy(dtype=bool)
    alone = fired & (fired.sum(axis=1) == 1)[:, None]
    for i, rule in enumerate(votes.columns):
        share = _rule_share(rule, votes[rule][done], int(alone[:, i].sum()))
        report.rules.append(share)
        _judge_rule(report, share)
    report.combined = _rule_share("any", label[done], None)
    return label


def _mature(
    report: CheckReport, tickets: pd.DataFrame, label: pd.Series, cfg: TrainConfig
) -> pd.Series:
    """The labels training learns from: immature tickets NA, with the cut reported."""
    created = tickets["created_at"]
    cut = maturity(tickets, label, cfg.labels.maturity_days, cfg.split.fractions)
    judged = cut.labels(label, created)
    without = window_counts(created, label, Maturity(cut.end, 0.0), cfg.split.fractions)
    kept = window_counts(created, label, cut, cfg.split.fractions)
    report.maturity = MaturityCut(
        cut.end.isoformat(),
        round(cut.horizon_days, 2),
        cut.cutoff.isoformat(),
        int(label.notna().sum() - judged.notna().sum()),
        cut.how,
        cut.fallback,
        [WindowCut(name, without[name].tickets, without[name].escalated,
                   kept[name].tickets, kept[name].escalated) for name in kept],
    )
    if cut.fallback:
        report.add("warning", cut.fallback, "the measured horizon would empty a window; "
                   "export a longer period, or set labels.maturity_days")
    kept_n, escalated = int(judged.notna().sum()), int(judged.fillna(False).sum())
    if kept_n and escalated in (0, kept_n):
        report.add(
            "warning",
            f"every labelled ticket has the same label (escalated: {escalated > 0}) among the "
            f"{kept_n:,} mature ones training keeps",
            "a model cannot learn from one class; see the rule shares and the maturity horizon",
        )
    return judged


def _density(report: CheckReport, tickets: pd.DataFrame) -> None:
    """Where the export is dense; a sparse head or tail is worth knowing before training."""
    span = dense_span(tickets["created_at"])
    report.dense_span = span.describe()
    if span.n_sparse:
        report.add(
            "info",
            span.describe(),
            "label maturity measures its horizon on the dense span and the report covers it "
            "by default (--since/--until to include the rest); training keeps every ticket",
        )


def _rule_share(rule: str, votes: pd.Series, only: int | None) -> RuleShare:
    judged, fired = int(votes.notna().sum()), int(votes.fillna(False).sum())
    return RuleShare(rule, judged, fired, round(fired / judged, 4) if judged else None, only)


def _judge_rule(report: CheckReport, share: RuleShare) -> None:
    if report.resolved == 0:
        return  # nothing to judge: the missing labels are reported once, not per rule
    if share.share is None:
        inputs = ", ".join(RULE_INPUTS[share.rule])
        report.add(
            "info",
            f"rule {share.rule} judges no resolved ticket: no values in {inputs}",
            "it abstains; map those columns or drop it from labels.rules",
        )
        return
    if share.fired > NEARLY_ALL * share.judged or share.fired == 0:
        kind = "none" if share.fired == 0 else "all"
        report.add(
            "warning",
            f"rule {share.rule} fires on {share.share:.0%} of the {share.judged:,} resolved "
            "tickets it judges",
            RULE_CAUSES[share.rule, kind],
        )


#: Ticket columns holding ids of people, who should appear in the agents file.
PERSON_COLUMNS = ("agent_id", "first_responder_id", "resolver_id")


def _distinct(col: pd.Series) -> set[str]:
    return set(col.dropna().astype("str"))


def _id_overlap(
    report: CheckReport, tickets: pd.DataFrame, cfg: TrainConfig, agents: pd.DataFrame | None
) -> None:
    """Person ids that should share one namespace but never meet."""
    handlers = _distinct(first_handler(tickets, cfg.labels, agents))
    resolvers = _distinct(tickets["resolver_id"])
    compared = "resolver_differs" in cfg.labels.rules and handlers and resolvers
    if compared and not handlers & resolvers:
        report.add(
            "warning",
            "resolver_id values never equal a first handler's id (agent_id or first_responder_id)",
            "ids look anonymised per column; resolver_differs compares nothing and fires "
            "on every ticket it judges. Map both from columns that share ids, normalise "
            "them in the mapping, or drop the rule",
        )
    if agents is not None:
        people = _distinct(pd.concat([tickets[c] for c in PERSON_COLUMNS]))
        if people and not people & _distinct(agents["agent_id"]):
            report.add(
                "warning",
                "no person id of the ticket export appears in the agents file",
                "the agents export uses other ids (names vs user names?) or another "
                "anonymisation: roles, coordinator detection and tenure come out unknown",
            )


# --- time ---------------------------------------------------------------------------------


def _rate(period: str, created: pd.Series, label: pd.Series) -> Rate:
    labelled, escalated = int(label.notna().sum()), int(label.fillna(False).sum())
    return Rate(
        period,
        created.min().isoformat() if len(created) else "",
        created.max().isoformat() if len(created) else "",
        len(created),
        labelled,
        escalated,
        round(escalated / labelled, 4) if labelled else None,
    )


def _months(tickets: pd.DataFrame, label: pd.Series) -> list[Rate]:
    created = tickets["created_at"]
    month = created.dt.strftime("%Y-%m")
    return [
        _rate(m, created[month == m], label[month == m]) for m in sorted(month.dropna().unique())
    ]


def _windows(
    report: CheckReport, tickets: pd.DataFrame, label: pd.Series, cfg: TrainConfig
) -> None:
    """Rates in training's train/valid/test windows; a one-class window warns here.

    ``label`` holds the mature labels only, so the windows are cut as training cuts them.
    """
    labelled = label.notna()
    if not labelled.any():
        immature = report.maturity.immature if report.maturity else 0
        report.add(
            "error",
            "no ticket can be labelled: training would have nothing to learn from",
            f"all {immature:,} resolved tickets were created after the maturity cutoff: "
            "export a longer period, or lower labels.maturity_days"
            if immature
            else "resolved_at is not mapped or every ticket is still open",
        )
        return
    created, known = tickets["created_at"][labelled], label[labelled]
    masks = window_masks(created, cfg.split.valid_fraction, cfg.split.test_fraction)
    for name, mask in masks.items():
        rate = _rate(name, created[mask], known[mask])
        report.windows.append(rate)
        try:
            check_both_classes(name, rate.labelled, rate.escalated)
        except TrainingDataError as exc:
            report.add("warning", str(exc), "training refuses a window with one class")



def _leakage(
    report: CheckReport, tickets: pd.DataFrame, label: pd.Series, spec: Mapping, cfg: TrainConfig
) -> None:
    """A field that alone almost separates the labels, judged on training's windows."""
    labelled = label.notna().to_numpy()
    if not labelled.any():
        return
    frame, known = tickets[labelled], label[labelled].astype(bool).to_numpy(int)
    masks = window_masks(frame["created_at"], cfg.split.valid_fraction, cfg.split.test_fraction)
    train, valid = masks["train"].to_numpy(), masks["valid"].to_numpy()
    fields = leakage.input_fields(spec.extra_features())
    found = leakage.suspects(frame[train], known[train], frame[valid], known[valid], fields)
    if found:
        report.add("warning", leakage.describe(found), leakage.CAUSE)
