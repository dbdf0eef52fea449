"""Possible under-escalation: high-risk tickets kept in tier 1 that then went badly.

An agent judged only on escalation counts can look good by holding tickets they cannot
solve. The rule, stated in the report:

* a ticket is *held high-risk* when the model would have routed it to tier 2 on arrival
  (probability at or above the model's cost-based routing threshold) and it was not
  escalated; the top risk tier alone holds too few tickets per agent to judge anyone;
* it *went badly* when it was reopened, got CSAT at or below ``LOW_CSAT``, or took more
  than ``SLOW_FACTOR`` times the median resolution time of non-escalated tickets in its
  category;
* per agent, bad outcomes among held high-risk tickets are compared with the rate of all
  agents' held high-risk tickets in the same categories (observed vs expected, same
  interval and small-cell rule as the escalation tables).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from escpredict.report.fairness import observed_expected

LOW_CSAT = 2.0
SLOW_FACTOR = 2.0
REASONS: tuple[str, ...] = ("reopened", "low_csat", "slow")


def bad_outcomes(tickets: pd.DataFrame) -> pd.DataFrame:
    """Per ticket: reopened, low_csat, slow and their union ``bad`` (missing values count as no)."""
    calm = tickets[~tickets["escalated"].astype(bool)]
    typical = calm.groupby("category", observed=True)["resolution_hours"].median()
    limit = tickets["category"].map(typical).astype(np.float64) * SLOW_FACTOR
    reasons = pd.DataFrame(
        {
            "reopened": tickets["reopened"].fillna(False).astype(bool),
            "low_csat": (tickets["csat"] <= LOW_CSAT).fillna(False).astype(bool),
            "slow": (tickets["resolution_hours"] > limit).fillna(False).astype(bool),
        },
        index=tickets.index,
    )
    return reasons.assign(bad=reasons.any(axis=1))


def held_high_risk(tickets: pd.DataFrame, high_risk: float) -> pd.DataFrame:
    """Tickets at or above ``high_risk`` that stayed unescalated, with their outcomes."""
    held = tickets[(tickets["probability"] >= high_risk) & ~tickets["escalated"].astype(bool)]
    outcomes = bad_outcomes(tickets).loc[held.index]
    held = pd.concat([held.drop(columns=list(REASONS), errors="ignore"), outcomes], axis=1)
    peer_rate = held.groupby("category", observed=True)["bad"].transform("mean")
    return held.assign(expected_bad=peer_rate.astype(np.float64))


def under_escalation(tickets: pd.DataFrame, high_risk: float) -> pd.DataFrame:
    """Per agent: held high-risk tickets, bad outcomes vs peers (O/E), and what went wrong."""
    held = held_high_risk(tickets, high_risk)
    table = observed_expected(held, ["agent_id"], observed="bad", expected="expected_bad")
    reasons = held.groupby("agent_id", observed=True)[list(REASONS)].sum().astype(np.int64)
    return table.merge(reasons.reset_index(), on="agent_id", how="left")
