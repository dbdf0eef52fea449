"""The embedded default data set: synthetic tickets whose escalation risk is known.

The product demos, tests and benchmarks on this data, so it has to look like a real export
(repeat customers, coordinators who only assign, new hires, typos, weekly and seasonal
rhythm) while keeping the true escalation probability (`oracle`) so model quality can be
judged against the best achievable. The latent probability is built only from what a model
can see at creation (fields, text, and agent/customer latents that show in their history),
plus a little noise, so a good model can get close to the oracle AUC.

Tickets come sorted by ``created_at`` (ids ascend with it). Everything is drawn from one
``numpy`` generator in a fixed order, so a seed fixes every frame.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from escpredict.contract import LABEL, TICKET_FIELDS, Field
from escpredict.ingest.validation import complete

#: ``generate`` reports progress as steps completed out of this many.
PROGRESS_STEPS = 6

FORMATS = ("parquet", "csv", "jsonl")

DAY_S = 86_400
TIMESTAMP = "datetime64[us, UTC]"  # pandas 3's default resolution, tz-aware UTC


@dataclass(frozen=True)
class _Category:
    name: str
    difficulty: float  # additive log-odds of escalation
    share: float  # share of ticket volume
    subjects: tuple[str, ...]
    sentences: tuple[str, ...]
    keywords: tuple[str, ...]
    hard_terms: tuple[str, ...]  # rarer terms that mark a harder variant of the issue


_CATEGORIES: tuple[_Category, ...] = (
    _Category(
        "Billing/refunds",
        0.35,
        0.12,
        (
            "Refund not received",
            "Charged twice",
            "Question about my invoice",
            "Wrong amount billed",
        ),
        (
            "I was billed for something I did not order.",
            "My refund has not arrived yet.",
            "The invoice total looks wrong.",
        ),
        ("refund", "invoice", "charge", "billing", "payment", "credit", "receipt", "amount"),
        ("double charged", "overdraft fees"),
    ),
    _Category(
        "Login/access",
        -0.3,
        0.12,
        ("Cannot log in", "Locked out of account", "Login error", "2FA code not arriving"),
        (
            "I cannot sign in to my account.",
            "The login page keeps rejecting me.",
            "My account seems to be locked.",
        ),
        ("login", "sign in", "locked", "account", "2fa", "code", "session", "browser"),
        ("sso broken", "whole team locked out"),
    ),
    _Category(
        "Password reset",
        -1.0,
        0.08,
        ("Password reset", "Reset link expired", "Forgot password"),
        (
            "I need to reset my password.",
            "The reset email never came.",
            "The password reset link does not work.",
        ),
        ("password", "reset", "link", "email", "expired", "forgot", "new password", "inbox"),
        ("reset loop", "old email address"),
    ),
    _Category(
        "Outage",
        1.0,
        0.05,
        ("Service down", "Site not loading", "Everything is down", "Outage in our region"),
        (
            "Your service is down for us.",
            "Nothing loads since this morning.",
            "We get server errors on every page.",
        ),
        (
            "down",
            "outage",
            "error 500",
            "not loading",
            "offline",
            "unavailable",
            "timeout",
            "region",
        ),
        ("production down", "all users affected"),
    ),
    _Category(
        "Performance",
        0.4,
        0.07,
        ("App is very slow", "Slow dashboard", "Pages take forever"),
        (
            "The app has become very slow.",
            "Reports take minutes to load.",
            "Everything lags since the last update.",
        ),
        ("slow", "lag", "loading", "dashboard", "latency", "freeze", "performance", "spinner"),
        ("unusable", "times out daily"),
    ),
    _Category(
        "Integrations/API",
        0.7,
        0.07,
        ("API returns errors", "Webhook not firing", "Integration stopped syncing"),
        (
            "Our integration stopped syncing.",
            "The API returns errors for valid requests.",
            "Webhooks are not delivered anymore.",
        ),
        ("api", "webhook", "token", "sync", "integration", "endpoint", "rate limit", "json"),
        ("data mismatch", "breaking change"),
    ),
    _Category(
        "Data/export",
        0.2,
        0.07,
        ("Export failed", "Missing data in report", "CSV export broken"),
        (
            "The export file is empty.",
            "Some records are missing from the report.",
            "I cannot download my data.",
        ),
        ("export", "csv", "report", "download", "records", "missing", "columns", "file"),
        ("data loss", "records deleted"),
    ),
    _Category(
        "Account changes",
        -0.6,
        0.10,
        ("Change account owner", "Update billing address", "Add a user"),
        (
            "I want to change the account owner.",
            "Please update our company details.",
            "How do I add another user?",
        ),
        ("owner", "address", "user", "seat", "plan", "upgrade", "company", "details"),
        ("merge accounts", "transfer ownership"),
    ),
    _Category(
        "Shipping/delivery",
        -0.1,
        0.10,
        ("Where is my order", "Package not delivered", "Tracking not updating"),
        (
            "My package has not arrived.",
            "Tracking has not changed for days.",
            "The delivery went to the wrong address.",
        ),
        ("package", "tracking", "delivery", "order", "courier", "shipping", "parcel", "address"),
        ("lost parcel", "damaged item"),
    ),
    _Category(
        "Bug report",
        0.5,
        0.08,
        ("Button does nothing", "Bug in editor", "Feature broken after update"),
        (
            "I found a bug in the editor.",
            "A button does nothing when clicked.",
            "This broke after your latest update.",
        ),
        ("bug", "button", "crash", "update", "screen", "editor", "glitch", "version"),
        ("crashes on start", "corrupted file"),
    ),
    _Category(
        "How-to/question",
        -1.1,
        0.10,
        ("Quick question", "How do I", "Where can I find settings"),
        (
            "I have a quick question about a feature.",
            "How do I change this setting?",
            "Where can I find the documentation?",
        ),
        ("how", "question", "settings", "feature", "docs", "guide", "option", "tutorial"),
        ("not documented", "contradicts docs"),
    ),
    _Category(
        "Security/privacy",
        0.8,
        0.04,
        ("Suspicious login", "Data deletion request", "Possible account breach"),
        (
            "I saw a login I do not recognise.",
            "Please delete my personal data.",
            "I think my account was compromised.",
        ),
        ("security", "privacy", "gdpr", "breach", "suspicious", "delete", "personal data", "ip"),
        ("data leak", "unauthorised purchase"),
    ),
)

#: (phrase, log-odds effect, refers to an earlier contact)
_PHRASES: tuple[tuple[str, float, bool], ...] = (
    ("still not working", 0.45, True),
    ("third time", 0.6, True),
    ("again", 0.25, True),
    ("nobody has replied", 0.5, True),
    ("as I said before", 0.4, True),
    ("unacceptable", 0.55, False),
    ("asap", 0.3, False),
    ("urgent", 0.3, False),
    ("immediately", 0.3, False),
    ("critical", 0.35, False),
    ("very frustrated", 0.45, False),
    ("losing money", 0.6, False),
    ("escalate this", 0.6, False),
    ("talk to a manager", 0.65, False),
    ("cancel my account", 0.7, False),
    ("chargeback", 0.8, False),
    ("lawyer", 0.9, False),
)
_HARD_TERM_EFFECT = 0.5
_NOISE_WORDS = (
    "thanks",
    "pls",
    "btw",
    "fyi",
    "kindly",
    "ok",
    "thx",
    "sorry",
    "quick",
    "hello?",
    "etc",
    "lol",
    "fwiw",
    "cheers",
)
_GREETINGS = ("", "Hi,", "Hello,", "Hi team,", "Dear support,", "Hey,", "Good morning,")
_CLOSINGS = ("", "Thanks.", "Thank you", "Regards", "Best,", "Cheers", "Sent from my phone")

_CHANNELS = ("email", "web", "chat", "phone")
_CHANNEL_SHARE = np.array([0.40, 0.25, 0.20, 0.15])
_CHANNEL_EFFECT = np.array([0.0, -0.1, -0.25, 0.35])
_PRIORITIES = ("low", "medium", "high", "urgent")
_PRIORITY_CUTS = np.array([-0.55, 0.75, 1.75])  # ordinal cut points on a latent severity
_PRIORITY_EFFECT = np.array([-0.5, 0.0, 0.5, 1.0])
#: Tickets per UTC hour of day, relative (business hours busy, nights quiet).
_HOURLY_VOLUME = np.array(
    [
        0.25,
        0.2,
        0.18,
        0.18,
        0.2,
        0.3,
        0.5,
        0.8,
        1.1,
        1.3,
        1.35,
        1.3,
        1.2,
        1.3,
        1.35,
        1.3,
        1.2,
        1.0,
        0.8,
        0.65,
        0.55,
        0.45,
        0.38,
        0.3,
    ]
)
_WEEKDAY_VOLUME = np.array([1.1, 1.05, 1.0, 1.0, 0.95, 0.45, 0.35])  # Monday first
_TEAM_NAMES = (
    "Aurora",
    "Borealis",
    "Cascade",
    "Delta",
    "Ember",
    "Fjord",
    "Granite",
    "Harbor",
    "Indigo",
    "Juniper",
    "Kestrel",
    "Lumen",
)

_BASE_LOGIT = -1.95
_NOISE_SD = 0.2  # the only part of the risk no observable (or history) carries
_COORDINATOR_SHARE = 0.30
_TIER_MISSING_SHARE = 0.20
_OPEN_SHARE = 0.01
_CSAT_MISSING_SHARE = 0.40


@dataclass
class SampleData:
    """Tickets and agents as an export would carry them, plus the hidden truth."""

    tickets: pd.DataFrame  # canonical ticket columns except `escalated` (labels derive it)
    agents: pd.DataFrame  # canonical agent columns
    oracle: pd.DataFrame  # ticket_id, p_escalation (latent probability), escalated (drawn)


@dataclass(frozen=True)
class _Agents:
    """Agent table plus the latents that drive risk (never exported)."""

    frame: pd.DataFrame
    tier1: np.ndarray  # row indices of tier-1 agents, sorted by hire date
    seniors: np.ndarray
    coordinators: np.ndarray
    hire_s: np.ndarray  # hire time in epoch seconds, per agent row
    bias: np.ndarray  # the agent's own escalation tendency (log-odds)
    skill: np.ndarray  # (agents, categories) skill reached with experience


def n_agents_for(n_tickets: int) -> int:
    """Staff size that grows gently with volume: ~40 at 10k, ~65 at 50k, ~300 at 1M."""
    return max(12, round(25 + 0.15 * np.sqrt(n_tickets) + n_tickets / 8000))


def _bounds(start: str, months: int) -> tuple[int, int]:
    first = pd.Timestamp(start, tz="UTC")
    return first.value // 10**9, (first + pd.DateOffset(months=months)).value // 10**9


def _season(epoch_s: np.ndarray) -> np.ndarray:
    """+1 in mid-December (holiday rush), -1 in mid-June."""
    day_of_year = (epoch_s / DAY_S - 348.5) % 365.25
    return np.cos(2 * np.pi * day_of_year / 365.25)


def created_times(rng: np.random.Generator, n: int, lo: int, hi: int) -> np.ndarray:
    """Creation times (epoch seconds, sorted) following daily, weekly and seasonal rhythm."""
    hours = np.arange(lo, hi, 3600, dtype=np.int64)
    hour_of_day = (hours // 3600) % 24
    weekday = (hours // DAY_S + 3) % 7  # 1970-01-01 was a Thursday
    growth = 1 + 0.3 * (hours - lo) / max(hi - lo, 1)
    weight = _HOURLY_VOLUME[hour_of_day] * _WEEKDAY_VOLUME[weekday] * growth
    weight *= 1 + 0.25 * _season(hours)
    picked = rng.choice(hours, size=n, p=weight / weight.sum())
    return np.sort(picked + rng.integers(0, 3600, size=n))


def _agents(rng: np.random.Generator, n_tickets: int, lo: int, hi: int) -> _Agents:
    """Staff with roles, teams, a spread of tenure (some hired mid-period) and skills."""
    n = n_agents_for(n_tickets)
    n_coord = max(2, round(0.07 * n))
    n_senior = max(3, round(0.2 * n))
    roles = np.array(
        ["coordinator"] * n_coord + ["senior"] * n_senior + ["agent"] * (n - n_coord - n_senior)
    )
    rng.shuffle(roles)
    is_tier1 = roles == "agent"
    # Tier 1 has churn: ~20% join during the period (in its first three quarters).
    years_before = np.where(is_tier1, rng.exponential(1.3, n), 1.5 + rng.exponential(2.5, n))
    hire_s = lo - (years_before * 365.25 * DAY_S).astype(np.int64) - 14 * DAY_S
    joins = is_tier1 & (rng.random(n) < 0.2)
    hire_s[joins] = lo + (rng.random(joins.sum()) * 0.75 * (hi - lo)).astype(np.int64)
    hire_s -= hire_s % DAY_S
    tier1 = np.flatnonzero(is_tier1)
    # Some tier-1 agent must predate the first ticket so every ticket has someone to go to.
    hire_s[tier1[0]] = min(hire_s[tier1[0]], lo - 30 * DAY_S)
    n_teams = int(np.clip(n // 10, 3, len(_TEAM_NAMES)))
    team = np.where(
        roles == "coordinator",
        "Dispatch",
        np.array(_TEAM_NAMES[:n_teams])[rng.integers(0, n_teams, n)],
    )
    frame = pd.DataFrame(
        {
            "agent_id": pd.array([f"AG{i:04d}" for i in range(1, n + 1)], dtype="str"),
            "hire_date": pd.to_datetime(hire_s, unit="s", utc=True).astype(TIMESTAMP),
            "team": pd.array(team, dtype="str"),
            "role": pd.array(roles, dtype="str"),
        }
    )
    return _Agents(
        frame=frame,
        tier1=tier1[np.argsort(hire_s[tier1], kind="stable")],
        seniors=np.flatnonzero(roles == "senior"),
        coordinators=np.flatnonzero(roles == "coordinator"),
        hire_s=hire_s,
        bias=rng.normal(0.0, 0.35, n),
        skill=0.45 + rng.normal(0.0, 0.1, (n, len(_CATEGORIES))),
    )


def repeat_customers(rng: np.random.Generator, n: int) -> tuple[np.ndarray, int]:
    """Zipf-like repeat customers: ticket -> customer index, and the pool size."""
    pool = max(1, int(n * 0.3))
    weight = (np.arange(pool) + 10.0) ** -1.1
    picked = rng.choice(pool, size=n, p=weight / weight.sum())
    return rng.permutation(pool)[picked], pool


def _assign(rng: np.random.Generator, agents: _Agents, created: np.ndarray) -> np.ndarray:
    """A tier-1 agent already hired at creation, uniformly among those."""
    hired = agents.hire_s[agents.tier1]
    active = np.searchsorted(hired, created, side="right")
    return agents.tier1[(rng.random(created.size) * active).astype(np.int64)]


def _prior_count(customer: np.ndarray) -> np.ndarray:
    """How many tickets the customer opened before this one (tickets are time-sorted)."""
    return pd.Series(customer).groupby(customer).cumcount().to_numpy()


def _typo_variants(rng: np.random.Generator, words: tuple[str, ...]) -> np.ndarray:
    """(word, swapped-letters variant, dropped-letter variant) per word."""
    out = np.empty((len(words), 3), dtype=object)
    for i, word in enumerate(words):
        k = int(rng.integers(0, max(len(word) - 1, 1)))
        swapped = word[:k] + word[k + 1 : k + 2] + word[k : k + 1] + word[k + 2 :]
        out[i] = (word, swapped, word[:k] + word[k + 1 :] if len(word) > 2 else word)
    return out


def _with_typos(
    rng: np.random.Generator, variants: np.ndarray, idx: np.ndarray, rate: float
) -> np.ndarray:
    """Pick words by index, a share `rate` of them with a character swap or drop."""
    kind = np.where(rng.random(idx.shape) < rate, rng.integers(1, 3, idx.shape), 0)
    return variants[idx, kind]


def _phrases(
    rng: np.random.Generator, pressure: np.ndarray, has_prior: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Up to 3 distinct urgency phrases per ticket, more of them when risk is high.

    Returns phrase indices (-1 = empty slot) and their summed log-odds effect. Phrases
    about earlier contact only appear for customers who have written before.
    """
    n = pressure.size
    count = np.minimum(rng.poisson(0.3 * np.exp(pressure)), 3)
    effect = np.array([p[1] for p in _PHRASES])
    repeat = np.array([p[2] for p in _PHRASES])
    first_time = rng.choice(np.flatnonzero(~repeat), size=(n, 3))
    returning = rng.integers(0, len(_PHRASES), size=(n, 3))
    idx = np.where(has_prior[:, None], returning, first_time)
    idx[:, 1] = np.where(idx[:, 1] == idx[:, 0], -1, idx[:, 1])
    idx[:, 2] = np.where((idx[:, 2] == idx[:, 0]) | (idx[:, 2] == idx[:, 1]), -1, idx[:, 2])
    idx[np.arange(3)[None, :] >= count[:, None]] = -1
    total = np.where(idx >= 0, effect[idx], 0.0).sum(axis=1)
    return idx, total


def _join(slots: list[np.ndarray]) -> list[str]:
    """Space-join the non-empty words of each row (the one loop in the generator)."""
    return [" ".join(filter(None, row)) for row in zip(*slots, strict=True)]


def _texts(
    rng: np.random.Generator,
    category: np.ndarray,
    phrase_idx: np.ndarray,
    hard: np.ndarray,
    urgent: np.ndarray,
) -> tuple[list[str], list[str]]:
    """Subjects and descriptions from category vocabulary, phrases, noise and typos."""
    n = category.size
    n_cat = len(_CATEGORIES)
    n_kw = len(_CATEGORIES[0].keywords)
    keywords = _typo_variants(rng, tuple(w for c in _CATEGORIES for w in c.keywords))
    phrases = _typo_variants(rng, tuple(p[0] for p in _PHRASES))
    noise = _typo_variants(rng, _NOISE_WORDS)
    hard_terms = np.array([t for c in _CATEGORIES for t in c.hard_terms], dtype=object)
    sentences = np.array([s for c in _CATEGORIES for s in c.sentences], dtype=object)
    subjects = np.array([s for c in _CATEGORIES for s in c.subjects] + [""], dtype=object)
    subj_start = np.cumsum([0] + [len(c.subjects) for c in _CATEGORIES])
    n_subj = np.diff(subj_start)[category]

    def pick(options: tuple[str, ...] | np.ndarray, idx: np.ndarray) -> np.ndarray:
        return np.asarray(options, dtype=object)[idx]

    # Keywords mostly from the ticket's own category, sometimes from another one.
    kw_cat = np.where(rng.random((n, 3)) < 0.07, rng.integers(0, n_cat, (n, 3)), category[:, None])
    kw = _with_typos(rng, keywords, kw_cat * n_kw + rng.integers(0, n_kw, (n, 3)), 0.04)
    kw[rng.random((n, 3)) < 0.25] = ""
    phrase_words = _with_typos(rng, phrases, np.maximum(phrase_idx, 0), 0.02)
    phrase_words[phrase_idx < 0] = ""
    noise_words = _with_typos(rng, noise, rng.integers(0, len(_NOISE_WORDS), (n, 2)), 0.05)
    noise_words[rng.random((n, 2)) < 0.6] = ""
    hard_words = np.where(hard, hard_terms[category * 2 + rng.integers(0, 2, n)], "")
    description = _join(
        [
            pick(_GREETINGS, rng.integers(0, len(_GREETINGS), n)),
            sentences[category * 3 + rng.integers(0, 3, n)],
            kw[:, 0],
            hard_words,
            kw[:, 1],
            phrase_words[:, 0],
            noise_words[:, 0],
            kw[:, 2],
            phrase_words[:, 1],
            phrase_words[:, 2],
            noise_words[:, 1],
            pick(_CLOSINGS, rng.integers(0, len(_CLOSINGS), n)),
        ]
    )
    shout = (phrase_idx[:, 0] >= 0) & (rng.random(n) < 0.4)
    suffix = np.where(shout, np.char.upper(phrase_words[:, 0].astype(str)).astype(object), "")
    prefix = np.where(urgent & (rng.random(n) < 0.5), "[URGENT]", "")
    subject = _join(
        [
            prefix,
            subjects[subj_start[category] + (rng.random(n) * n_subj).astype(np.int64)],
            np.where(shout, "-", ""),
            suffix,
        ]
    )
    return subject, description


def _risk_context(epoch_s: np.ndarray) -> np.ndarray:
    """Log-odds from time: nights and weekends are thinly staffed, December is hectic."""
    hour = (epoch_s // 3600) % 24
    weekday = (epoch_s // DAY_S + 3) % 7
    night = (hour < 6) | (hour >= 22)
    return 0.3 * night + 0.2 * (weekday >= 5) + 0.3 * _season(epoch_s)


def _agent_effect(
    agents: _Agents, agent: np.ndarray, category: np.ndarray, created: np.ndarray
) -> np.ndarray:
    """Own tendency, a new-hire penalty that fades, and category skill growing with tenure."""
    tenure_days = (created - agents.hire_s[agent]) / DAY_S
    ramp = 1 - np.exp(-tenure_days / 365)
    return (
        agents.bias[agent] + 0.8 * np.exp(-tenure_days / 120) - agents.skill[agent, category] * ramp
    )


def _duration_s(
    rng: np.random.Generator, escalated: np.ndarray, difficulty: np.ndarray, priority: np.ndarray
) -> np.ndarray:
    """Resolution time: hours for routine work, days once a ticket goes to tier 2."""
    log_hours = (
        np.log(5.0)
        + 0.4 * difficulty
        + 1.6 * escalated
        - 0.3 * priority
        + rng.normal(0.0, 0.8, escalated.size)
    )
    return np.maximum(np.exp(log_hours) * 3600, 300).astype(np.int64)


def _csat(rng: np.random.Generator, escalated: np.ndarray, duration_s: np.ndarray) -> np.ndarray:
    """1-5 score, worse after escalation and long waits; ~40% never answered."""
    days = duration_s / DAY_S
    mean = 4.4 - 1.1 * escalated - 0.5 * np.log1p(days)
    score = np.clip(np.rint(mean + rng.normal(0.0, 0.8, escalated.size)), 1, 5)
    return np.where(rng.random(escalated.size) < _CSAT_MISSING_SHARE, np.nan, score)


def str_column(values: np.ndarray, missing: np.ndarray | None = None) -> pd.Series:
    values = values.astype(object)
    if missing is not None:
        values = np.where(missing, None, values)
    return pd.Series(values, dtype="str")


def masked(values: np.ndarray, missing: np.ndarray, dtype: str) -> pd.Series:
    return pd.Series(pd.array(values, dtype=dtype)).mask(missing)


def generate(
    n_tickets: int,
    seed: int = 0,
    start: str = "2024-01-01",
    months: int = 18,
    progress: Callable[[int], None] | None = None,
) -> SampleData:
    """Draw `n_tickets` tickets over `months` from `start`; same seed, same frames.

    `progress`, if given, is called with the number of steps completed (of
    ``PROGRESS_STEPS``).
    """
    if n_tickets < 1 or months < 1:
        raise ValueError("n_tickets and months must be at least 1")
    report = progress or (lambda _step: None)
    rng = np.random.default_rng(seed)
    n = n_tickets
    lo, hi = _bounds(start, months)

    created = created_times(rng, n, lo, hi)
    report(1)

    agents = _agents(rng, n, lo, hi)
    customer, pool = repeat_customers(rng, n)
    cust_difficulty = rng.normal(0.0, 0.4, pool)
    cust_channel = rng.choice(len(_CHANNELS), size=pool, p=_CHANNEL_SHARE)
    report(2)

    shares = np.array([c.share for c in _CATEGORIES])
    difficulty = np.array([c.difficulty for c in _CATEGORIES])
    category = rng.choice(len(_CATEGORIES), size=n, p=shares / shares.sum())
    severity = (
        rng.normal(0.0, 1.0, n) + 0.6 * difficulty[category] + 0.3 * cust_difficulty[customer]
    )
    priority = np.searchsorted(_PRIORITY_CUTS, severity)
    channel = np.where(
        rng.random(n) < 0.7,
        cust_channel[customer],
        rng.choice(len(_CHANNELS), size=n, p=_CHANNEL_SHARE),
    )
    agent = _assign(rng, agents, created)
    coordinator = np.where(
        rng.random(n) < _COORDINATOR_SHARE, rng.choice(agents.coordinators, size=n), -1
    )
    report(3)

    prior = _prior_count(customer)
    pressure = 0.8 * (
        difficulty[category] + _PRIORITY_EFFECT[priority] + cust_difficulty[customer]
    ) + rng.normal(0.0, 0.5, n)
    phrase_idx, phrase_effect = _phrases(rng, pressure, prior > 0)
    hard = rng.random(n) < 0.12
    logit = (
        _BASE_LOGIT
        + difficulty[category]
        + _PRIORITY_EFFECT[priority]
        + _CHANNEL_EFFECT[channel]
        + phrase_effect
        + _HARD_TERM_EFFECT * hard
        + _agent_effect(agents, agent, category, created)
        + cust_difficulty[customer]
        + _risk_context(created)
        + rng.normal(0.0, _NOISE_SD, n)
    )
    p_escalation = 1 / (1 + np.exp(-logit))
    escalated = rng.random(n) < p_escalation
    report(4)

    subject, description = _texts(rng, category, phrase_idx, hard, priority == 3)
    report(5)

    duration = _duration_s(rng, escalated, difficulty[category], priority)
    is_open = np.arange(n) >= n - round(_OPEN_SHARE * n)
    tier_missing = rng.random(n) < _TIER_MISSING_SHARE
    resolver = np.where(escalated, rng.choice(agents.seniors, size=n), agent)
    ids = agents.frame["agent_id"].to_numpy(dtype=object)
    coordinated = coordinator >= 0
    done = escalated & ~is_open  # escalation shows in the export only once resolved
    tickets = pd.DataFrame(
        {
            "ticket_id": str_column(
                np.char.add("T", np.char.zfill(np.arange(1, n + 1).astype(str), 7))
            ),
            "created_at": pd.to_datetime(created, unit="s", utc=True).astype(TIMESTAMP),
            "channel": str_column(np.array(_CHANNELS)[channel]),
            "category": str_column(np.array([c.name for c in _CATEGORIES])[category]),
            "priority": str_column(np.array(_PRIORITIES)[priority]),
            "subject": pd.Series(subject, dtype="str"),
            "description": pd.Series(description, dtype="str"),
            "customer_id": str_column(np.char.add("C", np.char.zfill(customer.astype(str), 6))),
            "agent_id": str_column(ids[agent]),
            "first_responder_id": str_column(np.where(coordinated, ids[coordinator], ids[agent])),
            "first_responder_role": str_column(np.where(coordinated, "coordinator", "agent")),
            "resolver_id": str_column(ids[resolver], missing=is_open),
            "resolved_at": pd.to_datetime(created + duration, unit="s", utc=True)
            .astype(TIMESTAMP)
            .where(~is_open),
            "initial_tier": masked(np.ones(n, dtype=np.int64), tier_missing, "Int64"),
            "final_tier": masked(1 + escalated.astype(np.int64), tier_missing | is_open, "Int64"),
            "initial_queue": str_column(np.full(n, "tier1")),
            "final_queue": str_column(np.where(escalated, "tier2", "tier1"), missing=is_open),
            "reassignment_count": pd.Series(coordinated.astype(np.int64) + done, dtype="Int64"),
            "agents_involved": pd.Series(1 + (rng.random(n) < 0.15) + done, dtype="Int64"),
            "csat": pd.Series(np.where(is_open, np.nan, _csat(rng, escalated, duration))),
            "reopened": masked(rng.random(n) < 0.03 + 0.25 * p_escalation, is_open, "boolean"),
        }
    )
    oracle = pd.DataFrame(
        {
            "ticket_id": tickets["ticket_id"].copy(),
            "p_escalation": p_escalation,
            LABEL: escalated,
        }
    )
    report(6)
    # The default profile has no product, location, ...: those columns are there, all empty.
    return SampleData(
        tickets=complete(tickets, ticket_fields()), agents=agents.frame, oracle=oracle
    )


def ticket_fields() -> tuple[Field, ...]:
    return tuple(f for f in TICKET_FIELDS if f.name != LABEL)


def write(sample: SampleData, out_dir: Path, fmt: str = "parquet") -> dict[str, Path]:
    """Write tickets and agents as `fmt` (parquet, csv, jsonl) and the oracle as parquet.

    The oracle always goes to parquet: it is for evaluation only, never a training input.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "tickets": out_dir / f"tickets.{fmt}",
        "agents": out_dir / f"agents.{fmt}",
        "oracle": out_dir / "oracle.parquet",
    }
    for name in ("tickets", "agents"):
        write_frame(getattr(sample, name), paths[name], fmt)
    sample.oracle.to_parquet(paths["oracle"], index=False)
    return paths


def write_frame(frame: pd.DataFrame, path: Path, fmt: str) -> None:
    if fmt == "parquet":
        frame.to_parquet(path, index=False)
    elif fmt == "csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_json(path, orient="records", lines=True, date_format="iso", date_unit="s")
