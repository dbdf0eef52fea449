"""Event columns recognised by their values, where the header's names say nothing known.

A status holds a handful of workflow states (Queued, In Progress, Wait - User, Completed); a
support level holds L1/L2, Tier 3, 2nd line; people are many short ids or names (R61130,
j.smith, Anne Claire); a team is a group, desk or queue. Apart from support levels (which stay
put on a ticket never escalated), only columns that change within tickets are considered: a
column constant per ticket is an attribute of the ticket, not of its events.
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

from escpredict.onboard.draft import guess
from escpredict.onboard.draft.cases import Tickets, values_of
from escpredict.onboard.draft.layouts import normalise
from escpredict.onboard.draft.state import Drafting

#: Words of workflow states, in any ticketing or process-mining vocabulary.
STATE_WORDS = re.compile(
    r"\b(?:open|new|clos|resolv|solv|complet|done|accept|progress|queue|wait|pend|assign|"
    r"hold|cancel|reopen|escalat|activ|reject|await|start|finish|fix|respon|investig|work|"
    r"unmatch|submit|creat|approv|review|check|test|block|stop|suspend|restor|schedul)",
    re.IGNORECASE,
)
#: Words naming a group of people, in a column's name or in its values.
TEAM_WORDS = re.compile(
    r"team|group|desk|queue|department|section|squad|unit|centre|center|support|service",
    re.IGNORECASE,
)
#: One person: a coded id (R61130, Resolver 89), an e-mail, a login, or a given name.
PERSON = re.compile(
    r"^[A-Za-z]{1,12}[-_ ]?\d{1,8}$|^\d{3,}$|^[\w.+-]+@[\w-]+(?:\.[\w-]+)+$"
    r"|^[a-z][a-z0-9]*[._][a-z][a-z0-9]*$|^[A-Z][a-z'-]+(?: [A-Z][a-z'-]+){0,2}$"
)

#: A status has at most this many distinct values and at least half of them read as states.
MAX_STATES = 40
MIN_STATE_SHARE = 0.5
#: A support level: at most this share of sampled values is not a tier.
MAX_UNKNOWN_TIERS = 0.1
#: A team's values: at least this share of them names a group (Service Desk, Network Team).
MIN_TEAM_SHARE = 0.5
#: People: at least this many distinct values, nearly all of them person-like.
MIN_PEOPLE = 5
MIN_PERSON_SHARE = 0.8


def recognise(state: Drafting, tickets: Tickets, events: dict[str, Any]) -> None:
    """Fill the event keys the header's names left empty from the values of unused columns."""
    free = {c: values_of(state.sample[c], state.missing) for c in state.header
            if c not in state.used and c not in (tickets.column, tickets.time)}
    free = {c: v for c, v in free.items() if v.nunique() > 1}
    changing = {c: tickets.changes(v) for c, v in free.items() if not tickets.constant(v)}

    def take(key: str, column: str, why: str) -> None:
        events[key] = column
        state.used.add(column)
        state.note(("events", key), f"recognised by its values ({why}); check")
        free.pop(column, None)
        changing.pop(column, None)

    if "tier" not in events and (tiers := [c for c, v in free.items() if _is_tier(v)]):
        take("tier", tiers[0], "support levels")
    states = [c for c in changing if _state_share(free[c]) >= MIN_STATE_SHARE]
    if "status" not in events and states:
        best = max(states, key=lambda c: (_resolving(free[c]), -free[c].nunique()))
        take("status", best, "workflow states")
    teamish = [c for c in changing
               if TEAM_WORDS.search(normalise(c)) or _team_share(free[c]) >= MIN_TEAM_SHARE]
    people = [c for c in changing if c not in states and c not in teamish
              and _person_share(free[c]) >= MIN_PERSON_SHARE and free[c].nunique() >= MIN_PEOPLE]
    if "actor" not in events and "assignee" not in events and people:
        take("actor", max(people, key=lambda c: (changing[c], free[c].nunique())),
             "person ids that change within tickets")
    teams = [c for c in teamish if c in changing and c not in states]
    if "queue" not in events and teams:
        take("queue", max(teams, key=lambda c: (bool(TEAM_WORDS.search(normalise(c))),
                                                 changing[c])), "teams or groups")


def _distinct(values: pd.Series) -> list[str]:
    return list(values.dropna().unique())


def _share(values: pd.Series, pattern: re.Pattern[str], match: bool = False) -> float:
    distinct = _distinct(values)
    test = pattern.match if match else pattern.search
    return sum(bool(test(v)) for v in distinct) / len(distinct) if distinct else 0.0


def _state_share(values: pd.Series) -> float:
    return _share(values, STATE_WORDS) if 2 <= values.nunique() <= MAX_STATES else 0.0


def _person_share(values: pd.Series) -> float:
    return _share(values, PERSON, match=True)


def _team_share(values: pd.Series) -> float:
    return _share(values, TEAM_WORDS)


def _resolving(values: pd.Series) -> bool:
    return bool(guess.resolving_statuses(_distinct(values)))


def _is_tier(values: pd.Series) -> bool:
    """Mostly tier names (L1, Tier 2, 2nd line), with at least one that is not a bare
    number (digits alone could be any scale) and at least two tiers."""
    counts = values.value_counts()
    if counts.empty:
        return False
    numbers = pd.Series([guess.tier_number(v) for v in counts.index], index=counts.index)
    named = [v for v, n in numbers.items() if n is not None and not v.isdigit()]
    unknown = counts[numbers.isna()].sum() / counts.sum()
    return bool(named) and unknown <= MAX_UNKNOWN_TIERS and numbers.nunique() >= 2
