"""Escalation labels from configured rules (``LabelConfig``), never from a hand-made column.

Exports rarely carry an explicit "escalated" flag, so the label is derived from what every
export has: tiers, who first handled and who resolved the ticket, and reassignments. A rule
that lacks its inputs abstains. A resolved ticket on which every rule abstains gets no label
(guessing "not escalated" would bias the model towards under-routing): it is set aside like
an open ticket, counted and named, unless such tickets are more than
``labels.max_unlabelled_share`` of the resolved ones, when the mapping is likely wrong and
labelling refuses the export.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from escpredict.config import LabelConfig
from escpredict.contract import LABEL
from escpredict.ingest.mapping import is_coordinator, roles_of

#: Rows and ids listed in a LabelError before "and N more".
MAX_LISTED = 10


@dataclass(frozen=True)
class Unlabelled:
    """Resolved tickets no configured rule could judge: ``rows`` are 1-based frame rows."""

    rows: list[int]
    ticket_ids: list[str]  # of the first MAX_LISTED rows
    resolved: int  # resolved tickets in all

    @property
    def share(self) -> float:
        return len(self.rows) / self.resolved if self.resolved else 0.0

    def listed(self) -> str:
        more = f" and {len(self.rows) - MAX_LISTED} more" if len(self.rows) > MAX_LISTED else ""
        pairs = zip(self.rows[:MAX_LISTED], self.ticket_ids, strict=False)
        return ", ".join(f"{r} ({t})" for r, t in pairs) + more

    def describe(self, limit: float) -> str:
        """The warning when they are set aside (``limit``: labels.max_unlabelled_share)."""
        return (
            f"{len(self.rows):,} resolved ticket(s) no label rule can judge are set aside like "
            f"open tickets ({self.share:.2%} of {self.resolved:,} resolved; "
            f"labels.max_unlabelled_share {limit:.0%}). Rows (ticket_id): {self.listed()}"
        )


class LabelError(ValueError):
    """More resolved tickets than ``labels.max_unlabelled_share`` that no rule could judge."""

    def __init__(self, unlabelled: Unlabelled, rules: list[str], limit: float) -> None:
        self.rows = unlabelled.rows
        super().__init__(
            f"{len(unlabelled.rows)} resolved ticket(s) cannot be labelled: none of the rules "
            f"{rules} has the data it needs ({unlabelled.share:.1%} of {unlabelled.resolved:,} "
            f"resolved tickets, more than labels.max_unlabelled_share {limit:.0%}: set aside, "
            f"so many would bias what is left). Rows (ticket_id): {unlabelled.listed()}"
        )


def _column(tickets: pd.DataFrame, name: str, dtype: str) -> pd.Series:
    """A column as ``dtype``, or all-NA when the frame lacks it (the rule then abstains)."""
    if name in tickets:
        return tickets[name].astype(dtype)
    return pd.Series(pd.NA, index=tickets.index, dtype=dtype)


def first_handler(
    tickets: pd.DataFrame, cfg: LabelConfig, agents: pd.DataFrame | None = None
) -> pd.Series:
    """Who first worked the ticket: agent_id, else a first responder who is no coordinator.

    A coordinator's first touch is routing, not handling: counting it would make every
    ticket a coordinator assigned look escalated when the assigned agent resolves it.
    """
    responder = _column(tickets, "first_responder_id", "str")
    role = roles_of(responder, _column(tickets, "first_responder_role", "str"), agents)
    handled = responder.mask(is_coordinator(role, cfg.coordinator_roles))
    return _column(tickets, "agent_id", "str").fillna(handled).rename("first_handler")


Rule = Callable[[pd.DataFrame, LabelConfig, "pd.DataFrame | None"], pd.Series]


def _explicit_flag(t: pd.DataFrame, cfg: LabelConfig, agents: pd.DataFrame | None) -> pd.Series:
    return _column(t, "escalated", "boolean")


def _tier_raised(t: pd.DataFrame, cfg: LabelConfig, agents: pd.DataFrame | None) -> pd.Series:
    return _column(t, "final_tier", "Float64") > _column(t, "initial_tier", "Float64")


def _resolver_differs(t: pd.DataFrame, cfg: LabelConfig, agents: pd.DataFrame | None) -> pd.Series:
    handler = first_handler(t, cfg, agents)
    resolver = _column(t, "resolver_id", "str")
    return (resolver != handler).astype("boolean").where(handler.notna() & resolver.notna())


def _reassignments(t: pd.DataFrame, cfg: LabelConfig, agents: pd.DataFrame | None) -> pd.Series:
    return _column(t, "reassignment_count", "Float64") > cfg.max_reassignments


RULES: dict[str, Rule] = {
    "explicit_flag": _explicit_flag,
    "tier_raised": _tier_raised,
    "resolver_differs": _resolver_differs,
    "reassignments": _reassignments,
}

#: Canonical columns each rule reads; without values in them the rule abstains.
RULE_INPUTS: dict[str, tuple[str, ...]] = {
    "explicit_flag": ("escalated",),
    "tier_raised": ("initial_tier", "final_tier"),
    "resolver_differs": ("resolver_id", "agent_id", "first_responder_id"),
    "reassignments": ("reassignment_count",),
}


def rule_votes(
    tickets: pd.DataFrame, cfg: LabelConfig, agents: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Each configured rule's verdict per ticket: True fires, False judged quiet, NA abstains.

    Public so that a dry run (``escpredict check``) reports what each rule does on an
    export with the very votes the labels are made of.
    """
    return pd.DataFrame(
        {rule: RULES[rule](tickets, cfg, agents) for rule in cfg.rules}, index=tickets.index
    )


def resolved(tickets: pd.DataFrame) -> np.ndarray:
    """Tickets whose outcome is known; the others are open and get no label."""
    if "resolved_at" not in tickets:
        return np.zeros(len(tickets), dtype=bool)
    return tickets["resolved_at"].notna().to_numpy()


def combine_votes(votes: pd.DataFrame, cfg: LabelConfig, done: np.ndarray) -> pd.Series:
    """``escalated`` from rule votes: any applicable rule firing marks a ticket.

    With ``explicit_flag_overrides`` an explicit flag, where present, replaces the derived
    verdict. NA for open tickets (``done`` False) and for resolved ones no rule judged.
    """
    derived = [r for r in cfg.rules if not (r == "explicit_flag" and cfg.explicit_flag_overrides)]
    chosen = votes[derived]
    fired = chosen.fillna(False).to_numpy(dtype=bool).any(axis=1)
    judged = chosen.notna().to_numpy().any(axis=1)
    label = pd.Series(fired, index=votes.index, dtype="boolean").where(judged)
    if "explicit_flag" in cfg.rules and cfg.explicit_flag_overrides:
        flag = votes["explicit_flag"]
        label = flag.where(flag.notna(), label)
    return label.where(done).rename(LABEL)


def unlabelled(tickets: pd.DataFrame, label: pd.Series) -> Unlabelled:
    """The resolved tickets that ``label`` leaves NA."""
    done = resolved(tickets)
    rows = np.flatnonzero(done & label.isna().to_numpy())
    ids = _column(tickets, "ticket_id", "str").iloc[rows[:MAX_LISTED]].tolist()
    return Unlabelled((rows + 1).tolist(), ids, int(done.sum()))


def within_limit(tickets: pd.DataFrame, label: pd.Series, cfg: LabelConfig) -> Unlabelled:
    """The unlabelled resolved tickets, or LabelError when they exceed ``max_unlabelled_share``."""
    left = unlabelled(tickets, label)
    if left.share > cfg.max_unlabelled_share:
        raise LabelError(left, list(cfg.rules), cfg.max_unlabelled_share)
    return left


def label_tickets(
    tickets: pd.DataFrame, cfg: LabelConfig, agents: pd.DataFrame | None = None
) -> pd.Series:
    """``escalated`` per ticket (nullable boolean), NA for open tickets (see ``combine_votes``)
    and for resolved tickets no rule could judge, which are then set aside like open ones.

    Raises LabelError when those are more than ``cfg.max_unlabelled_share`` of the resolved.
    """
    label = combine_votes(rule_votes(tickets, cfg, agents), cfg, resolved(tickets))
    within_limit(tickets, label, cfg)
    return label
