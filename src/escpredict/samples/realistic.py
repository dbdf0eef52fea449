"""The realistic sample profile: an IT-support event log shaped like real exports.

The default sample (``sample_data.py``) is tidy. Real exports are not, in ways that break
naive pipelines, and this profile reproduces them so the product is judged on them too:

- hundreds of products and dozens of support groups with long-tailed (Zipf) volumes, each
  with its own escalation risk, plus interactions a tree can find (products the front line
  cannot handle, groups that escalate every high-impact ticket);
- one row per status change or assignment (a process-mining log), support levels written
  ``L1``/``L2``/``L3``, resolution only visible as a ``Completed`` status, ``?`` for missing
  values, ids anonymised per column (``PROD0412``, ``G117``, ``R04711``), no channel column;
- dispatchers who only assign: their touch is never the first response;
- short subjects or none, mostly empty descriptions;
- a window of weeks whose base rate drifts, exported at a cut-off while recent tickets are
  still open (their events stop at the cut; an escalation after it is not in the export).

Escalation = the ticket reached a higher support level than the one it started at. The true
probability (``oracle``) is built only from what is known at creation plus a little noise, and
the drawn truth holds for every ticket, including those still open at the cut.

Besides the event log, the same system's ticket-level view at the cut is returned in the
canonical columns (``tickets``), so the profile trains with the ``generic`` mapping too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from escpredict.contract import LABEL
from escpredict.ingest.validation import complete
from escpredict.samples import default as sd

#: ``generate`` reports progress as steps completed out of this many.
PROGRESS_STEPS = 5

LEVELS = ("L1", "L2", "L3")
#: Resolution shows only as this status; the ticket is closed days later.
RESOLVED_STATUS = "Completed"
CLOSED_STATUS = "Closed"
MISSING = "?"
#: The export has no channel; the ticket-level view and the mapping state this constant.
CHANNEL = "web"
DATETIME_FORMAT = "%d-%m-%Y %H:%M:%S"
#: Event-log columns, in export order.
EVENT_COLUMNS = (
    "Incident ID",
    "Change Time",
    "Status",
    "Sub Status",
    "Support Level",
    "Support Group",
    "Assigned To",
    "Changed By",
    "Product",
    "Service Line",
    "Impact",
    "Urgency",
    "Priority",
    "Country",
    "Requester",
    "Business Unit",
    "Short Description",
    "Description",
)

IMPACTS = ("Low", "Medium", "High", "Major")
URGENCIES = ("1 - High", "2 - Medium", "3 - Low")
PRIORITIES = ("1 - Critical", "2 - High", "3 - Moderate", "4 - Low")
#: Canonical priority of each export priority (what the mapping's value map says).
CANONICAL_PRIORITY = ("urgent", "high", "medium", "low")
#: ITIL priority matrix: [impact, urgency] -> priority index.
_PRIORITY_MATRIX = np.array([[2, 3, 3], [1, 2, 3], [0, 1, 2], [0, 0, 1]])
_IMPACT_CUTS = np.array([0.1, 1.05, 1.9])  # on a latent severity ~ N(0.3, 1)
_IMPACT_EFFECT = np.array([-0.5, 0.0, 0.45, 0.9])
_URGENCY_EFFECT = np.array([0.25, 0.0, -0.2])

#: (service line topics, used for subjects); the service line code itself is anonymised.
_TOPICS: tuple[tuple[str, ...], ...] = (
    ("vpn", "network drive", "wifi", "proxy"),
    ("outlook", "mailbox", "calendar", "distribution list"),
    ("laptop", "docking station", "monitor", "keyboard"),
    ("printer", "scanner", "toner", "print queue"),
    ("sap", "purchase order", "invoice posting", "goods receipt"),
    ("crm", "customer record", "lead", "opportunity"),
    ("password", "account", "access rights", "mfa"),
    ("sharepoint", "teams site", "document library", "onedrive"),
    ("citrix", "remote desktop", "virtual desktop", "session"),
    ("softphone", "headset", "voicemail", "conference room"),
    ("database", "report", "data warehouse", "etl job"),
    ("payroll", "timesheet", "leave request", "expense claim"),
    ("web shop", "order portal", "checkout", "product catalogue"),
    ("mobile app", "tablet", "mdm", "app store"),
    ("backup", "file restore", "archive", "storage quota"),
    ("server", "batch job", "certificate", "disk space"),
)
#: (problem words, log-odds effect): requests and questions rarely escalate, failures do.
_PROBLEMS: tuple[tuple[str, float], ...] = (
    ("request", -0.6),
    ("question", -0.5),
    ("not working", 0.1),
    ("error", 0.2),
    ("slow", 0.0),
    ("cannot access", 0.15),
    ("fails", 0.3),
    ("issue", 0.0),
)
_HARD_TERMS = ("all users", "production", "data loss", "whole site", "vip")
_HARD_EFFECT = 0.6
_REPEAT_TERMS = ("again", "still broken", "second time")
_REPEAT_EFFECT = 0.4
_COUNTRIES = (
    "Sweden",
    "Belgium",
    "Brazil",
    "India",
    "USA",
    "China",
    "Poland",
    "France",
    "Netherlands",
    "Japan",
    "UK",
    "Germany",
    "Spain",
    "Mexico",
)

_N_UNITS = 20
_BASE_LOGIT = -1.45
_DRIFT = 0.45  # log-odds added linearly from the window's start to its end
_NOISE_SD = 0.25
_DISPATCH_SHARE = 0.4
_SUBJECT_SHARE = 0.65
_DESCRIPTION_SHARE = 0.25
_URGENCY_MISSING_SHARE = 0.15
_COUNTRY_MISSING_SHARE = 0.08
_HOUR_S = 3600


@dataclass
class RealisticSample(sd.SampleData):
    """The event-log export (raw strings, as the file holds them) besides the canonical view."""

    events: pd.DataFrame


@dataclass(frozen=True)
class _Org:
    """Support groups by level, their staff and the latents that drive risk (never exported)."""

    group_names: np.ndarray  # str per group
    l1_groups: np.ndarray  # group indices, by Zipf rank
    escalation_group: np.ndarray  # (service line, level 2..3 -> column 0..1) -> group index
    group_effect: np.ndarray
    group_impact_effect: np.ndarray  # extra log-odds for High/Major impact tickets
    members: np.ndarray  # staff indices sorted by (group, hire time)
    member_start: np.ndarray  # offset of each group's members in ``members``
    coordinators: np.ndarray
    agents: pd.DataFrame  # canonical agents export
    hire_s: np.ndarray
    bias: np.ndarray


def zipf_weights(n: int, exponent: float, offset: float = 1.0) -> np.ndarray:
    """Long-tailed shares of n levels, largest first: a few carry most of the volume."""
    weight = (np.arange(n) + offset) ** -exponent
    return weight / weight.sum()


def _codes(rng: np.random.Generator, prefix: str, n: int, width: int) -> np.ndarray:
    """n distinct anonymised ids such as G117 or PROD0412, in random order."""
    numbers = rng.choice(10**width, size=n, replace=False)
    return np.char.add(prefix, np.char.zfill(numbers.astype(str), width)).astype(object)


def _organisation(rng: np.random.Generator, n: int, lo: int, hi: int) -> _Org:
    """Dozens of groups over three levels, staff per group in proportion to its volume."""
    n_l1 = int(np.clip(round(np.sqrt(n) / 3), 4, 120))
    n_l2, n_l3 = max(3, n_l1 // 2), max(2, n_l1 // 4)
    level = np.repeat([1, 2, 3], [n_l1, n_l2, n_l3])
    n_groups = level.size
    share = np.concatenate(
        [zipf_weights(n_l1, 1.1, 1.5), zipf_weights(n_l2, 0.8, 2.0), zipf_weights(n_l3, 0.6, 2.0)]
    )
    per_ticket = np.where(level == 1, 1 / 90, np.where(level == 2, 1 / 250, 1 / 900))
    staff = np.maximum(np.where(level == 1, 2, 1), np.rint(share * n * per_ticket)).astype(int)
    group_of = np.repeat(np.arange(n_groups), staff)
    n_coord = max(2, round(n / 2500))
    n_staff = group_of.size + n_coord
    # Tenure: the front line has churn (a fifth join during the window), the others less so.
    staff_level = np.concatenate([level[group_of], np.zeros(n_coord, dtype=int)])
    years = np.where(
        staff_level == 1, rng.exponential(1.2, n_staff), 1 + rng.exponential(3.0, n_staff)
    )
    hire_s = lo - (years * 365.25 * sd.DAY_S).astype(np.int64) - 14 * sd.DAY_S
    joins = (staff_level == 1) & (rng.random(n_staff) < 0.2)
    hire_s[joins] = lo + (rng.random(joins.sum()) * 0.75 * (hi - lo)).astype(np.int64)
    hire_s -= hire_s % sd.DAY_S
    # Every group has someone hired before the first ticket, so no ticket lacks an owner.
    first_of_group = np.searchsorted(group_of, np.arange(n_groups))
    hire_s[first_of_group] = np.minimum(hire_s[first_of_group], lo - 30 * sd.DAY_S)
    members = np.lexsort((hire_s[: group_of.size], group_of))
    names = _codes(rng, "G", n_groups, 3)
    role = np.where(staff_level == 1, "agent", np.where(staff_level == 0, "dispatcher", "senior"))
    team = np.concatenate([names[group_of], np.full(n_coord, "Service Desk", dtype=object)])
    agents = pd.DataFrame(
        {
            "agent_id": sd.str_column(_codes(rng, "", n_staff, 5)),
            "hire_date": pd.to_datetime(hire_s, unit="s", utc=True).astype(sd.TIMESTAMP),
            "team": sd.str_column(team),
            "role": sd.str_column(role),
        }
    )
    n_lines = len(_TOPICS)
    escalation_group = np.stack(
        [rng.integers(n_l1, n_l1 + n_l2, n_lines), rng.integers(n_l1 + n_l2, n_groups, n_lines)],
        axis=1,
    )
    return _Org(
        group_names=names,
        l1_groups=np.arange(n_l1),
        escalation_group=escalation_group,
        group_effect=rng.normal(0.0, np.where(level == 1, 0.45, 0.3)),
        group_impact_effect=0.8 * (rng.random(n_groups) < 0.25),
        members=members,
        member_start=np.append(first_of_group, group_of.size),
        coordinators=np.arange(group_of.size, n_staff),
        agents=agents,
        hire_s=hire_s,
        bias=rng.normal(0.0, 0.25, n_staff),
    )


def _owner(rng: np.random.Generator, org: _Org, group: np.ndarray, when: np.ndarray) -> np.ndarray:
    """A member of each ticket's group already hired at ``when``, uniformly among those."""
    out = np.empty(group.size, dtype=np.int64)
    for g in np.unique(group):
        rows = np.flatnonzero(group == g)
        staff = org.members[org.member_start[g] : org.member_start[g + 1]]
        hired = np.searchsorted(org.hire_s[staff], when[rows], side="right")
        out[rows] = staff[(rng.random(rows.size) * np.maximum(hired, 1)).astype(np.int64)]
    return out


def _lognormal_s(rng: np.random.Generator, median_s: float, sigma: float, n: int) -> np.ndarray:
    return np.maximum(np.exp(np.log(median_s) + rng.normal(0.0, sigma, n)), 60).astype(np.int64)


def _texts(
    rng: np.random.Generator,
    line: np.ndarray,
    problem: np.ndarray,
    hard: np.ndarray,
    repeat: np.ndarray,
    has_subject: np.ndarray,
    has_description: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Short subjects (or ``?``) and mostly empty descriptions; terms show only where written."""
    n = line.size
    topic = np.array([t for topics in _TOPICS for t in topics], dtype=object)
    word = topic[line * 4 + rng.integers(0, 4, n)]
    problem_word = np.array([p for p, _ in _PROBLEMS], dtype=object)[problem]
    hard_word = np.array(_HARD_TERMS, dtype=object)[rng.integers(0, len(_HARD_TERMS), n)]
    repeat_word = np.array(_REPEAT_TERMS, dtype=object)[rng.integers(0, len(_REPEAT_TERMS), n)]
    subject = word + " " + problem_word + np.where(hard, " - " + hard_word, "")
    description = (
        "User reports: "
        + word
        + " "
        + problem_word
        + np.where(hard, ", " + hard_word + " affected", "")
        + np.where(repeat, ", " + repeat_word, "")
        + "."
    )
    return (
        np.where(has_subject, subject, MISSING),
        np.where(has_description, description, ""),
    )


@dataclass
class _Tickets:
    """Per-ticket draws: at-creation fields, risk, and the course of each ticket."""

    created: np.ndarray
    product: np.ndarray
    line: np.ndarray
    tier: np.ndarray
    group: np.ndarray
    impact: np.ndarray
    urgency: np.ndarray
    priority: np.ndarray
    country: np.ndarray
    customer: np.ndarray
    unit: np.ndarray  # business unit of the requester (an extra export column)
    agent: np.ndarray
    coordinator: np.ndarray  # -1: not dispatched
    subject: np.ndarray
    description: np.ndarray
    p: np.ndarray
    escalated: np.ndarray


def _draw_tickets(rng: np.random.Generator, n: int, lo: int, hi: int, org: _Org) -> _Tickets:
    created = sd.created_times(rng, n, lo, hi)
    n_products = max(30, round(n / 50))
    n_lines = len(_TOPICS)
    product_line = rng.integers(0, n_lines, n_products)
    line_effect = rng.normal(0.0, 0.45, n_lines)
    product_effect = line_effect[product_line] + rng.normal(0.0, 0.4, n_products)
    needs_l2 = rng.random(n_products) < 0.12  # the front line cannot handle these
    product_severity = rng.normal(0.0, 0.5, n_products)
    home_group = org.l1_groups[
        rng.choice(org.l1_groups.size, n_products, p=zipf_weights(org.l1_groups.size, 1.1, 1.5))
    ]
    product = rng.permutation(n_products)[
        rng.choice(n_products, n, p=zipf_weights(n_products, 1.05, 3.0))
    ]
    line = product_line[product]

    tier = np.where(rng.random(n) < 0.08 + 0.35 * needs_l2[product], 2, 1)
    other_l1 = org.l1_groups[
        rng.choice(org.l1_groups.size, n, p=zipf_weights(org.l1_groups.size, 1.1, 1.5))
    ]
    group = np.where(
        tier == 2,
        org.escalation_group[line, 0],
        np.where(rng.random(n) < 0.7, home_group[product], other_l1),
    )
    severity = rng.normal(0.3, 1.0, n) + product_severity[product]
    impact = np.searchsorted(_IMPACT_CUTS, severity)
    urgency = np.clip(2 - np.rint(0.6 * impact + rng.normal(0.0, 0.7, n) - 0.3), 0, 2).astype(int)
    priority = _PRIORITY_MATRIX[impact, urgency]

    customer, pool = sd.repeat_customers(rng, n)
    customer_effect = rng.normal(0.0, 0.25, pool)
    customer_country = rng.choice(len(_COUNTRIES), pool, p=zipf_weights(len(_COUNTRIES), 1.2, 1.0))
    country = customer_country[customer]
    country_effect = rng.normal(0.0, 0.2, len(_COUNTRIES))
    unit = rng.choice(_N_UNITS, pool, p=zipf_weights(_N_UNITS, 1.0, 2.0))[customer]
    unit_effect = rng.normal(0.0, 0.3, _N_UNITS)
    agent = _owner(rng, org, group, created)
    dispatched = rng.random(n) < _DISPATCH_SHARE
    coordinator = np.where(dispatched, rng.choice(org.coordinators, n), -1)

    problem = rng.integers(0, len(_PROBLEMS), n)
    has_subject = rng.random(n) < _SUBJECT_SHARE
    has_description = rng.random(n) < _DESCRIPTION_SHARE
    hard = rng.random(n) < 0.1
    repeat = (rng.random(n) < 0.15) & has_description
    subject, description = _texts(rng, line, problem, hard, repeat, has_subject, has_description)
    written = has_subject | has_description
    problem_effect = np.array([e for _, e in _PROBLEMS])[problem] * written

    tenure_days = (created - org.hire_s[agent]) / sd.DAY_S
    hour = (created // _HOUR_S) % 24
    weekday = (created // sd.DAY_S + 3) % 7
    logit = (
        _BASE_LOGIT
        + _DRIFT * (created - lo) / (hi - lo)
        + product_effect[product]
        + 1.2 * (needs_l2[product] & (tier == 1))
        - 0.5 * (tier == 2)
        + org.group_effect[group]
        + org.group_impact_effect[group] * (impact >= 2)
        + _IMPACT_EFFECT[impact]
        + _URGENCY_EFFECT[urgency]
        + country_effect[country]
        + unit_effect[unit]
        + org.bias[agent]
        + 0.7 * np.exp(-tenure_days / 45)
        + customer_effect[customer]
        + 0.3 * ((hour < 6) | (hour >= 22))
        + 0.2 * (weekday >= 5)
        + problem_effect
        + _HARD_EFFECT * (hard & written)
        + _REPEAT_EFFECT * repeat
        + rng.normal(0.0, _NOISE_SD, n)
    )
    p = 1 / (1 + np.exp(-logit))
    return _Tickets(
        created=created,
        product=product,
        line=line,
        tier=tier,
        group=group,
        impact=impact,
        urgency=urgency,
        priority=priority,
        country=country,
        customer=customer,
        unit=unit,
        agent=agent,
        coordinator=coordinator,
        subject=subject,
        description=description,
        p=p,
        escalated=rng.random(n) < p,
    )


@dataclass
class _Events:
    """Event rows as integer codes (-1 = missing), sorted by ticket then time."""

    ticket: np.ndarray
    time: np.ndarray
    status: np.ndarray  # index into _STATUSES
    level: np.ndarray  # 1..3
    group: np.ndarray
    assignee: np.ndarray
    actor: np.ndarray
    priority: np.ndarray


_STATUSES = ("Queued", "Accepted", RESOLVED_STATUS, CLOSED_STATUS)
_SUB_STATUSES = {  # sub status -> (index into _STATUSES, export text)
    "queued": (0, "Awaiting Assignment"),
    "assigned": (1, "Assigned"),
    "progress": (1, "In Progress"),
    "wait": (1, "Wait - User"),
    "resolved": (2, "Resolved"),
    "closed": (3, "Closed"),
}
_SUB_NAMES = tuple(_SUB_STATUSES)


def _course(rng: np.random.Generator, t: _Tickets, org: _Org) -> tuple[_Events, np.ndarray]:
    """Every status change and assignment of every ticket, until it is closed.

    Returns the events and the sub-status code of each. Escalated tickets move up one level
    (a fifth of those from L1 on to L3) before they are resolved, so a resolved ticket's
    events always show its escalation.
    """
    n = t.created.size
    none = np.full(n, -1)
    every = np.ones(n, dtype=bool)
    assign = t.created + _lognormal_s(rng, 20 * 60, 0.9, n)
    work = assign + rng.integers(60, 1800, n)
    l1_end = work + np.where(
        t.escalated,
        _lognormal_s(rng, 10 * _HOUR_S, 1.0, n),
        _lognormal_s(rng, 18 * _HOUR_S, 1.2, n),
    )
    span = l1_end - work
    # Front-line transfers to another L1 group: reassignments that are no escalation.
    moved = (t.tier == 1) & (rng.random(n) < 0.15)
    moved_group = org.l1_groups[rng.integers(0, org.l1_groups.size, n)]
    moved_group = np.where(moved, moved_group, t.group)
    moved_to = np.where(moved, _owner(rng, org, moved_group, work), t.agent)
    waits = rng.random(n) < 0.4
    first_actor = np.where(t.coordinator >= 0, t.coordinator, -1)
    assigner = np.where(t.coordinator >= 0, t.coordinator, t.agent)  # else taken from the queue

    up = t.escalated
    group2 = org.escalation_group[t.line, t.tier - 1]  # L1 -> an L2 group, L2 -> an L3 group
    assign2 = l1_end + _lognormal_s(rng, _HOUR_S, 0.8, n)
    agent2 = _owner(rng, org, group2, assign2)
    work2 = assign2 + rng.integers(60, 1800, n)
    up3 = up & (t.tier == 1) & (rng.random(n) < 0.2)
    queue3 = work2 + _lognormal_s(rng, sd.DAY_S, 0.8, n)
    group3 = org.escalation_group[t.line, 1]
    assign3 = queue3 + _lognormal_s(rng, _HOUR_S, 0.8, n)
    agent3 = _owner(rng, org, group3, assign3)
    work3 = assign3 + rng.integers(60, 1800, n)
    last_work = np.where(up3, work3, work2)
    resolved = np.where(up, last_work + _lognormal_s(rng, 4 * sd.DAY_S, 1.0, n), l1_end)
    final_level = t.tier + up + up3
    final_group = np.where(up3, group3, np.where(up, group2, moved_group))
    final_owner = np.where(up3, agent3, np.where(up, agent2, moved_to))
    reopen = rng.random(n) < 0.04
    reopened_at = resolved + rng.integers(sd.DAY_S // 2, 3 * sd.DAY_S, n)
    resolved2 = reopened_at + _lognormal_s(rng, 5 * _HOUR_S, 0.8, n)
    closed = np.where(reopen, resolved2, resolved) + rng.integers(3 * sd.DAY_S, 10 * sd.DAY_S, n)
    # Priority is sometimes raised on escalation: a later value, never known at creation.
    raised = np.where(up & (rng.random(n) < 0.2), np.maximum(t.priority - 1, 0), t.priority)
    # Work-note updates: no new state, but real logs are mostly such rows (~8 per ticket).
    noted = rng.random((n, 3)) < np.array([0.5, 0.5, 0.6])
    l2_span = np.where(up3, queue3, resolved) - work2

    l1 = (t.tier, moved_group, moved_to)  # (level, group, assignee) in each stage
    l2 = (t.tier + 1, group2, agent2)
    l3 = (np.full(n, 3), group3, agent3)
    final = (final_level, final_group, final_owner)
    slots = [  # (mask, time, sub status, level, group, assignee, actor, priority)
        (every, t.created, "queued", t.tier, t.group, first_actor, first_actor, t.priority),
        (every, assign, "assigned", t.tier, t.group, t.agent, assigner, t.priority),
        (every, work, "progress", t.tier, t.group, t.agent, t.agent, t.priority),
        (moved, work + span // 5, "assigned", *l1, t.agent, t.priority),
        (waits, work + 2 * span // 5, "wait", *l1, moved_to, t.priority),
        (waits, work + 3 * span // 5, "progress", *l1, moved_to, t.priority),
        (noted[:, 0], work + span // 10, "progress", t.tier, t.group, t.agent, t.agent, t.priority),
        (noted[:, 1], work + 4 * span // 5, "progress", *l1, moved_to, t.priority),
        (up, l1_end, "queued", t.tier + 1, group2, none, moved_to, raised),
        (up, assign2, "assigned", *l2, agent2, raised),
        (up, work2, "progress", *l2, agent2, raised),
        (up & noted[:, 2], work2 + l2_span // 2, "progress", *l2, agent2, raised),
        (up3, queue3, "queued", np.full(n, 3), group3, none, agent2, raised),
        (up3, assign3, "assigned", *l3, agent3, raised),
        (up3, work3, "progress", *l3, agent3, raised),
        (every, resolved, "resolved", *final, final_owner, raised),
        (reopen, reopened_at, "progress", *final, final_owner, raised),
        (reopen, resolved2, "resolved", *final, final_owner, raised),
        (every, closed, "closed", *final, none, raised),
    ]
    parts = [
        [np.asarray(col)[mask] for col in (np.arange(n), time, level, group, assignee, actor, prio)]
        + [np.full(mask.sum(), _SUB_NAMES.index(sub)), np.full(mask.sum(), order)]
        for order, (mask, time, sub, level, group, assignee, actor, prio) in enumerate(slots)
    ]
    cols = [np.concatenate(c) for c in zip(*parts, strict=True)]
    ticket, time, level, group, assignee, actor, prio, sub, order = cols
    sort = np.lexsort((order, time, ticket))
    sub = sub[sort]
    status = np.array([_SUB_STATUSES[s][0] for s in _SUB_NAMES])[sub]
    events = _Events(
        ticket[sort],
        time[sort],
        status,
        level[sort],
        group[sort],
        assignee[sort],
        actor[sort],
        prio[sort],
    )
    return events, sub


def _visible(events: _Events, sub: np.ndarray, cut: int) -> tuple[pd.DataFrame, np.ndarray]:
    """The events an export taken at ``cut`` holds, as a frame of codes."""
    keep = events.time < cut
    frame = pd.DataFrame({k: v[keep] for k, v in vars(events).items()})
    return frame.reset_index(drop=True), sub[keep]


def _per_ticket(values: pd.Series, n: int, fill: float = -1) -> np.ndarray:
    """A ticket-indexed series as an array over all n tickets."""
    return values.reindex(np.arange(n), fill_value=fill).to_numpy()


def _ticket_view(
    v: pd.DataFrame,
    t: _Tickets,
    org: _Org,
    ids: dict[str, np.ndarray],
    urgency_missing: np.ndarray,
    country_missing: np.ndarray,
) -> pd.DataFrame:
    """The ticket-level export the same system shows at the cut, in canonical columns."""
    n = t.created.size
    first = v.drop_duplicates("ticket").set_index("ticket")
    last = v.drop_duplicates("ticket", keep="last").set_index("ticket")
    is_resolved = last["status"].isin([2, 3]).reindex(np.arange(n), fill_value=False).to_numpy()
    done = v[v["status"] == 2]
    final_done = done.drop_duplicates("ticket", keep="last").set_index("ticket")
    first_done = done.groupby("ticket")["time"].min()
    reopened = v["time"] > v["ticket"].map(first_done)
    reopened = (reopened & (v["status"] == 1)).groupby(v["ticket"]).any()
    assigned = v[v["assignee"] >= 0]
    handlers = assigned[~np.isin(assigned["assignee"], org.coordinators)]
    previous = assigned.groupby("ticket")["assignee"].shift()
    changes = (
        (previous.notna() & (assigned["assignee"] != previous)).groupby(assigned["ticket"]).sum()
    )
    actors = v[v["actor"] >= 0].drop_duplicates("ticket").set_index("ticket")["actor"]
    agent_ids = org.agents["agent_id"].to_numpy(dtype=object)
    roles = org.agents["role"].to_numpy(dtype=object)

    def person(idx: np.ndarray) -> pd.Series:
        return sd.str_column(agent_ids[np.maximum(idx, 0)], missing=idx < 0)

    responder = _per_ticket(actors, n)
    resolver = np.where(is_resolved, _per_ticket(final_done["actor"], n), -1)
    resolved_at = np.where(is_resolved, _per_ticket(final_done["time"], n, 0), 0)
    frame = pd.DataFrame(
        {
            "ticket_id": sd.str_column(ids["ticket"]),
            "created_at": pd.to_datetime(t.created, unit="s", utc=True).astype(sd.TIMESTAMP),
            "channel": sd.str_column(np.full(n, CHANNEL)),
            "category": sd.str_column(ids["line"][t.line]),
            "priority": sd.str_column(np.array(CANONICAL_PRIORITY, dtype=object)[t.priority]),
            "subject": sd.str_column(np.where(t.subject == MISSING, "", t.subject)),
            "description": sd.str_column(t.description),
            "customer_id": sd.str_column(ids["customer"][t.customer]),
            "agent_id": person(
                _per_ticket(handlers.drop_duplicates("ticket").set_index("ticket")["assignee"], n)
            ),
            "product": sd.str_column(ids["product"][t.product]),
            "location": sd.str_column(
                np.array(_COUNTRIES, dtype=object)[t.country], country_missing
            ),
            "impact": sd.str_column(np.array(IMPACTS, dtype=object)[t.impact]),
            "urgency": sd.str_column(np.array(URGENCIES, dtype=object)[t.urgency], urgency_missing),
            "first_responder_id": person(responder),
            "first_responder_role": sd.str_column(roles[np.maximum(responder, 0)], responder < 0),
            "resolver_id": person(resolver),
            "resolved_at": pd.to_datetime(resolved_at, unit="s", utc=True)
            .astype(sd.TIMESTAMP)
            .where(is_resolved),
            "initial_tier": pd.array(first["level"].to_numpy(), dtype="Int64"),
            "final_tier": pd.array(
                _per_ticket(v.groupby("ticket")["level"].max(), n), dtype="Int64"
            ),
            "initial_queue": sd.str_column(org.group_names[first["group"].to_numpy()]),
            "final_queue": sd.str_column(org.group_names[last["group"].to_numpy()]),
            "reassignment_count": pd.array(_per_ticket(changes, n, 0), dtype="Int64"),
            "agents_involved": pd.array(
                _per_ticket(assigned.groupby("ticket")["assignee"].nunique(), n, 0), dtype="Int64"
            ),
            "reopened": sd.masked(
                _per_ticket(reopened, n, False).astype(bool), ~is_resolved, "boolean"
            ),
        }
    )
    return complete(frame, sd.ticket_fields())


def _event_log(
    v: pd.DataFrame,
    sub: np.ndarray,
    t: _Tickets,
    org: _Org,
    ids: dict[str, np.ndarray],
    urgency_missing: np.ndarray,
    country_missing: np.ndarray,
) -> pd.DataFrame:
    """The export file's rows: every value a string, ``?`` where the system has none."""
    k = v["ticket"].to_numpy()
    # The log names people "R<number>"; the user table, by number alone.
    people = np.append("R" + org.agents["agent_id"].to_numpy(dtype=object), MISSING)  # -1: "?"

    def text(values: np.ndarray, missing: np.ndarray | None = None) -> pd.Series:
        return pd.Series(
            values if missing is None else np.where(missing, MISSING, values), dtype="str"
        )

    columns = {
        "Incident ID": text(ids["ticket"][k]),
        "Change Time": pd.Series(
            pd.to_datetime(v["time"], unit="s", utc=True).dt.strftime(DATETIME_FORMAT), dtype="str"
        ),
        "Status": text(np.array(_STATUSES, dtype=object)[v["status"].to_numpy()]),
        "Sub Status": text(np.array([s for _, s in _SUB_STATUSES.values()], dtype=object)[sub]),
        "Support Level": text(np.array(LEVELS, dtype=object)[v["level"].to_numpy() - 1]),
        "Support Group": text(org.group_names[v["group"].to_numpy()]),
        "Assigned To": text(people[v["assignee"].to_numpy()]),
        "Changed By": text(people[v["actor"].to_numpy()]),
        "Product": text(ids["product"][t.product[k]]),
        "Service Line": text(ids["line"][t.line[k]]),
        "Impact": text(np.array(IMPACTS, dtype=object)[t.impact[k]]),
        "Urgency": text(np.array(URGENCIES, dtype=object)[t.urgency[k]], urgency_missing[k]),
        "Priority": text(np.array(PRIORITIES, dtype=object)[v["priority"].to_numpy()]),
        "Country": text(np.array(_COUNTRIES, dtype=object)[t.country[k]], country_missing[k]),
        "Requester": text(ids["customer"][t.customer[k]]),
        "Business Unit": text(ids["unit"][t.unit[k]]),
        "Short Description": text(t.subject[k]),
        "Description": text(t.description[k]),
    }
    return pd.DataFrame(columns)[list(EVENT_COLUMNS)]


def _ids(rng: np.random.Generator, t: _Tickets) -> dict[str, np.ndarray]:
    """Anonymised ids, one scheme per column, as exports from different tables carry them."""
    n = t.created.size
    number = 1_000_000 + np.cumsum(rng.integers(1, 4, n))
    return {
        "ticket": np.char.add("IM", number.astype(str)).astype(object),
        "product": _codes(rng, "PROD", int(t.product.max()) + 1, 4),
        "line": _codes(rng, "V", len(_TOPICS), 2),
        "customer": _codes(rng, "U", int(t.customer.max()) + 1, 6),
        "unit": _codes(rng, "BU", _N_UNITS, 2),
    }


def generate(
    n_tickets: int = 20_000,
    seed: int = 0,
    start: str = "2024-03-04",
    days: int = 91,
    progress: Callable[[int], None] | None = None,
) -> RealisticSample:
    """Draw `n_tickets` over `days` from `start`, exported at the window's end; same seed,
    same frames. `progress`, if given, is called with the steps done (of PROGRESS_STEPS)."""
    if n_tickets < 1 or days < 1:
        raise ValueError("n_tickets and days must be at least 1")
    report = progress or (lambda _step: None)
    rng = np.random.default_rng(seed)
    lo = pd.Timestamp(start, tz="UTC").value // 10**9
    hi = lo + days * sd.DAY_S
    org = _organisation(rng, n_tickets, lo, hi)
    report(1)
    t = _draw_tickets(rng, n_tickets, lo, hi, org)
    report(2)
    events, sub = _course(rng, t, org)
    visible, visible_sub = _visible(events, sub, cut=hi)
    report(3)
    ids = _ids(rng, t)
    urgency_missing = rng.random(n_tickets) < _URGENCY_MISSING_SHARE
    country_missing = rng.random(n_tickets) < _COUNTRY_MISSING_SHARE
    tickets = _ticket_view(visible, t, org, ids, urgency_missing, country_missing)
    report(4)
    log = _event_log(visible, visible_sub, t, org, ids, urgency_missing, country_missing)
    oracle = pd.DataFrame(
        {"ticket_id": tickets["ticket_id"].copy(), "p_escalation": t.p, LABEL: t.escalated}
    )
    report(5)
    return RealisticSample(tickets=tickets, agents=org.agents, oracle=oracle, events=log)


def write(sample: RealisticSample, out_dir: Path, fmt: str = "csv") -> dict[str, Path]:
    """The event log as ``events.<fmt>`` beside what ``sample_data.write`` writes."""
    paths = sd.write(sample, out_dir, fmt)
    paths["events"] = Path(out_dir) / f"events.{fmt}"
    sd.write_frame(sample.events, paths["events"], fmt)
    return paths
