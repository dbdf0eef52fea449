"""Observed-versus-expected escalation tables: the fair way to compare agents and teams.

Raw escalation counts punish agents who escalate rightly and push them to hold tickets they
cannot solve, so every group is compared with what the model expected for *its own
tickets*. The table functions are pure: a frame with one row per ticket in, one row per
group out.

Statistics (the report repeats them in plain words):

* ``expected`` is the sum of each ticket's expected probability;
* ``ratio`` = observed / expected, with an exact Poisson (Garwood) 95% interval on the
  observed count divided by the expected count, which is treated as known;
* a group is "above expected" when the interval's lower bound exceeds 1 and "below
  expected" when its upper bound is under 1;
* groups with fewer than ``MIN_TICKETS`` tickets or fewer than ``MIN_EXPECTED`` expected
  events say "not enough data" and get no ratio, so nobody is ranked on noise;
* ``z`` is the signed strength of evidence, the Poisson likelihood-ratio statistic
  sign(O - E) * sqrt(2 (O ln(O/E) - (O - E))): about ±2 where the interval touches 1, and
  comparable between a large team and a small agent, unlike the ratio. Tables list the
  strongest evidence first, so a manager reading 25 rows of 350 agents sees the ones that
  matter.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import chi2

MIN_TICKETS = 30
MIN_EXPECTED = 5.0
CONFIDENCE = 0.95

ABOVE = "above expected"
BELOW = "below expected"
AS_EXPECTED = "as expected"
NOT_ENOUGH = "not enough data"
NOT_RECORDED = "not recorded"

OE_COLUMNS: tuple[str, ...] = (
    "n", "observed", "expected", "ratio", "ci_low", "ci_high", "z", "flag", "status",
)
#: Sort order of the statuses: significant rows first, then within noise, then unjudged
#: groups, and last those pooling tickets without a recorded agent, team or category.
_STATUS_RANK = {ABOVE: 0, BELOW: 0, AS_EXPECTED: 1, NOT_ENOUGH: 2, NOT_RECORDED: 3}


def poisson_ratio_interval(
    observed: np.ndarray, expected: np.ndarray, confidence: float = CONFIDENCE
) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Garwood) Poisson interval for observed/expected; the lower bound is 0 at 0 events."""
    o = np.asarray(observed, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    tail = (1.0 - confidence) / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        low = np.where(o > 0, chi2.ppf(tail, 2.0 * np.maximum(o, 1e-300)) / 2.0, 0.0) / e
        high = chi2.ppf(1.0 - tail, 2.0 * o + 2.0) / 2.0 / e
    return low, high


def evidence_z(observed: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Signed root of the Poisson deviance of ``observed`` against ``expected`` (z-like)."""
    o = np.asarray(observed, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_term = np.where(o > 0, o * np.log(o / e), 0.0)
    deviance = np.maximum(2.0 * (log_term - (o - e)), 0.0)
    return np.sign(o - e) * np.sqrt(deviance) + 0.0  # + 0.0: no "-0.00" when o == e


def observed_expected(
    tickets: pd.DataFrame,
    by: Sequence[str],
    observed: str = "escalated",
    expected: str = "expected",
    min_tickets: int = MIN_TICKETS,
    min_expected: float = MIN_EXPECTED,
    unknown: str | None = None,
) -> pd.DataFrame:
    """One row per group of ``by``: n, observed, expected, ratio, 95% interval, z, flag, status.

    ``observed`` is a 0/1 (or boolean) column and ``expected`` a per-ticket probability.
    Order: significantly above or below expected, then as expected, each by |z| (strongest
    evidence first); "not enough data" rows last, most tickets first, without a ratio or z,
    so they are listed but never ranked. A group with a key equal to ``unknown`` (no agent,
    team or category recorded) pools unrelated tickets, e.g. every unassigned one: it says
    "not recorded", listed after them, also without a ratio: nobody is praised or flagged for it.
    """
    keys = list(by)
    table = (
        tickets.assign(_o=tickets[observed].astype(np.float64), _e=tickets[expected])
        .groupby(keys, observed=True, dropna=False, sort=True)
        .agg(n=("_o", "size"), observed=("_o", "sum"), expected=("_e", "sum"))
        .reset_index()
    )
    table["observed"] = table["observed"].astype(np.int64)
    recorded = ~table[keys].eq(unknown).any(axis=1)  # nothing equals None: all recorded
    enough = (table["n"] >= min_tickets) & (table["expected"] >= min_expected) & recorded
    low, high = poisson_ratio_interval(table["observed"], table["expected"])
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = table["observed"] / table["expected"]
    table["ratio"] = ratio.where(enough)
    table["ci_low"] = pd.Series(low, index=table.index).where(enough)
    table["ci_high"] = pd.Series(high, index=table.index).where(enough)
    table["z"] = pd.Series(evidence_z(table["observed"], table["expected"]),
                           index=table.index).where(enough)
    table["status"] = np.select(
        [~recorded, ~enough, table["ci_low"] > 1.0, table["ci_high"] < 1.0],
        [NOT_RECORDED, NOT_ENOUGH, ABOVE, BELOW],
        default=AS_EXPECTED,
    )
    table["flag"] = table["status"] == ABOVE
    table = table.assign(_rank=table["status"].map(_STATUS_RANK), _strength=table["z"].abs())
    table = table.sort_values(["_rank", "_strength", "n"], ascending=[True, False, False],
                              kind="stable")
    return table.reset_index(drop=True)[[*keys, *OE_COLUMNS]]


def peer_scale(observed: pd.Series, expected: pd.Series, segment: pd.Series) -> pd.Series:
    """Per-ticket factor making each segment's expected total equal its observed total.

    Scaling expectations by it compares each group with its peers in the same period rather
    than with the model's training period, so a busy month (or model drift) does not flag
    everyone at once. Segments separate tickets the model was trained on from later ones:
    the model is sharper and may sit at another level on its own training tickets, and
    scaling each part to 1.0× keeps that difference out of every group's ratio.
    """
    parts = pd.DataFrame({"o": observed.astype(np.float64).to_numpy(),
                          "e": expected.astype(np.float64).to_numpy()})
    totals = parts.groupby(segment.to_numpy())
    o, e = totals["o"].transform("sum"), totals["e"].transform("sum")
    return pd.Series(np.where(e > 0, o / e.where(e > 0, 1.0), 1.0), index=observed.index)


def top_resolvers(tickets: pd.DataFrame, n: int = 10) -> pd.DataFrame:
    """Agents who resolved the most escalated tickets, with their speed and CSAT on them."""
    escalated = tickets[tickets["escalated"].astype(bool) & tickets["resolver_id"].notna()]
    table = (
        escalated.groupby("resolver_id", sort=True)
        .agg(
            escalated_resolved=("ticket_id", "size"),
            median_resolution_hours=("resolution_hours", "median"),
            mean_csat=("csat", "mean"),
            csat_responses=("csat", "count"),
        )
        .reset_index()
    )
    table["share_of_escalations"] = table["escalated_resolved"] / max(len(escalated), 1)
    table = table.sort_values(["escalated_resolved", "resolver_id"], ascending=[False, True])
    return table.head(n).reset_index(drop=True)


#: How a group key reads in a sentence ("agents under 3 months on Billing/refunds").
_TENURE_TEXT: dict[str, str] = {
    "<3m": "agents under 3 months",
    "3-6m": "agents with 3-6 months' tenure",
    "6-12m": "agents with 6-12 months' tenure",
    "1-2y": "agents with 1-2 years' tenure",
    "2y+": "agents with over 2 years' tenure",
    "unknown": "agents of unknown tenure",
}
_KEY_TEXT: dict[str, str] = {
    "agent_id": "agent {}",
    "team": "team {}",
    "category": "on {}",
}


def describe_group(keys: dict[str, object]) -> str:
    """Plain words for a group: {"team": "Aurora", "category": "Outage"} → "team Aurora on Outage"."""
    parts = [
        _TENURE_TEXT.get(str(value), f"tenure {value}") if name == "tenure_band"
        else _KEY_TEXT.get(name, name + " {}").format(value)
        for name, value in keys.items()
    ]
    return " ".join(parts)


def finding(keys: dict[str, object], row: pd.Series, drivers: Sequence[str],
            what: str = "escalations") -> str:
    """One line a manager can act on, e.g. "agents under 3 months on Billing/refunds: 2.1×
    expected escalations (1.6-2.7); drivers: 'chargeback', 'refund', priority high"."""
    line = (
        f"{describe_group(keys)}: {row['ratio']:.1f}× expected {what} "
        f"({row['ci_low']:.1f}-{row['ci_high']:.1f}; {int(row['observed'])} observed vs "
        f"{row['expected']:.1f} expected)"
    )
    return f"{line}; drivers: {', '.join(drivers)}" if drivers else line
