"""Which columns of an event export may describe a ticket as it was created.

A column whose value changes within a ticket records the state at each event (a team, a
support level, an activity): its later values are the outcome, so it is an event column or
nothing, never an at-creation feature. A process-mining *variant* (``Variant``, ``Variant
index``, a trace id) is constant per case but computed from the case's whole sequence of
activities, resolution included: the outcome in disguise.
"""

from __future__ import annotations

import re
from typing import Any

from escpredict.onboard.draft.cases import (
    VARIANT_NAME,
    follows_trace,
    values_of,
)
from escpredict.onboard.draft.layouts import normalise
from escpredict.onboard.draft.state import Drafting, column_of


def not_at_creation(state: Drafting, column: str) -> str | None:
    """Why an event export's ``column`` cannot be an at-creation feature, or None."""
    tickets = state.tickets
    if tickets is None or state.draft.tree.get("level") != "events":
        return None
    if re.search(VARIANT_NAME, normalise(column)):
        return "process variant"
    values = values_of(state.sample[column], state.missing)
    if not tickets.constant(values):
        return f"changes within {tickets.changes(values):.0%} of tickets"
    steps = _steps(state)
    if steps is not None and values.nunique() > 1 and follows_trace(tickets, values, steps):
        return "process variant"
    return None


def _steps(state: Drafting) -> Any:
    """The status (activity) per row, which spells each ticket's trace."""
    column = column_of(state.draft.tree.get("events", {}).get("status"))
    return values_of(state.sample[column], state.missing) if column else None


def explain(state: Drafting, left_out: dict[str, str]) -> None:
    """One note naming the columns left out of the features and why."""
    if not left_out:
        return
    changing = [c for c, why in left_out.items() if why.startswith("changes")]
    variants = [c for c, why in left_out.items() if why == "process variant"]
    parts = []
    if changing:
        parts.append(", ".join(f"{c!r} ({left_out[c]})" for c in changing) + ": event "
                     "columns, whose later values may be the outcome (add one under features: "
                     "only if it merely corrects a value known at creation)")
    if variants:
        parts.append(", ".join(map(repr, variants)) + ": process variants, computed from "
                     "each case's whole trace (its resolution included), never features")
    state.draft.notes.append("Not proposed as features: " + "; ".join(parts) + ".")
