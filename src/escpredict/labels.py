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
from escpredict.mapping import is_coordinator, roles_of

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


def label_tickets(
    tickets: pd.DataFrame, cfg: LabelConfig, agents: pd.DataFrame | None = None
) -> pd.Series:
    """``escalated`` per ticket (nullable boolean): any applicable rule firing marks it.

    Open tickets are NA: their outcome is not known yet. With ``explicit_flag_overrides``
    an explicit flag, where present, replaces the derived verdict. Raises LabelError for
    resolved tickets that no rule could judge.
    """
    derived = [r for r in cfg.rules if not (r == "explicit_flag" and cfg.explicit_flag_overrides)]
    fired = np.zeros(len(tickets), dtype=bool)
    judged = np.zeros(len(tickets), dtype=bool)
    for rule in derived:
        vote = RULES[rule](tickets, cfg, agents)
        fired |= vote.to_numpy(dtype=bool, na_value=False)
        judged |= vote.notna().to_numpy()
    label = pd.Series(fired, index=tickets.index, dtype="boolean").where(judged)
    if "explicit_flag" in cfg.rules and cfg.explicit_flag_overrides:
        flag = _explicit_flag(tickets, cfg, agents)
        label = flag.where(flag.notna(), label)
    resolved = np.zeros(len(tickets), dtype=bool)
    if "resolved_at" in tickets:
        resolved = tickets["resolved_at"].notna().to_numpy()
    label = label.where(resolved)
    unjudged = resolved & label.isna().to_numpy()
    if unjudged.any():
        rows = np.flatnonzero(unjudged)
        ids = _column(tickets, "ticket_id", "str").iloc[rows[:MAX_LISTED]].tolist()
        raise LabelError((rows + 1).tolist(), ids, list(cfg.rules))
    return label.rename(LABEL)
