"""Escalation labels from configured rules (``LabelConfig``), never from a hand-made column.

Exports rarely carry an explicit "escalated" flag, so the label is derived from what every
export has: tiers, who first handled and who resolved the ticket, and reassignments. A rule
that lacks its inputs abstains; a resolved ticket on which every rule abstains is an error,
because guessing "not escalated" would bias the model towards under-routing.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from escpredict.config import LabelConfig
from escpredict.contract import LABEL
from escpredict.ingest.mapping import is_coordinator, roles_of

#: Rows and ids listed in a LabelError before "and N more".
MAX_LISTED = 10


class LabelError(ValueError):
    """Resolved tickets no configured rule could judge; ``rows`` are 1-based frame rows."""

    def __init__(self, rows: list[int], ticket_ids: list[str], rules: list[str]) -> None:
        self.rows = rows
        more = f" and {len(rows) - MAX_LISTED} more" if len(rows) > MAX_LISTED else ""
        listed = ", ".join(f"{r} ({t})" for r, t in zip(rows[:MAX_LISTED], ticket_ids))
        super().__init__(
            f"{len(rows)} resolved ticket(s) cannot be labelled: none of the rules {rules} has "
            f"the data it needs. Rows (ticket_id): {listed}{more}"
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


def unjudged(tickets: pd.DataFrame, label: pd.Series, cfg: LabelConfig) -> LabelError | None:
    """The error naming resolved tickets that ``label`` leaves NA, if any."""
    rows = np.flatnonzero(resolved(tickets) & label.isna().to_numpy())
    if not len(rows):
        return None
    ids = _column(tickets, "ticket_id", "str").iloc[rows[:MAX_LISTED]].tolist()
    return LabelError((rows + 1).tolist(), ids, list(cfg.rules))


def label_tickets(
    tickets: pd.DataFrame, cfg: LabelConfig, agents: pd.DataFrame | None = None
) -> pd.Series:
    """``escalated`` per ticket (nullable boolean), NA for open tickets (see ``combine_votes``).

    Raises LabelError for resolved tickets that no rule could judge.
    """
    label = combine_votes(rule_votes(tickets, cfg, agents), cfg, resolved(tickets))
    if (error := unjudged(tickets, label, cfg)) is not None:
        raise error
    return label
