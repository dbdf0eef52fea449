"""Behaviour of the embedded sample data set: shape, internal consistency, realism, files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from escpredict.contract import AGENT_FIELDS, LABEL, TICKET_FIELDS
from escpredict.samples.default import FORMATS, PROGRESS_STEPS, SampleData, generate, write

N = 4000
KIND_CHECK = {
    "str": pd.api.types.is_string_dtype,
    "datetime": lambda dtype: isinstance(dtype, pd.DatetimeTZDtype) and str(dtype.tz) == "UTC",
    "float": pd.api.types.is_float_dtype,
    "int": lambda dtype: dtype == "Int64",
    "bool": lambda dtype: dtype == "boolean",
}
FRUSTRATION = r"unacceptable|chargeback|lawyer|cancel my account|third time|talk to a manager"
CUES = (
    "still not working",
    "third time",
    "again",
    "nobody has replied",
    "as i said before",
    "unacceptable",
    "asap",
    "urgent",
    "immediately",
    "critical",
    "very frustrated",
    "losing money",
    "escalate this",
    "talk to a manager",
    "cancel my account",
    "chargeback",
    "lawyer",
)


@pytest.fixture(scope="module")
def sample() -> SampleData:
    return generate(N, seed=0)


@pytest.fixture(scope="module")
def resolved(sample: SampleData) -> pd.DataFrame:
    """Resolved tickets joined with the drawn truth and the resolver's role."""
    roles = sample.agents.set_index("agent_id")["role"]
    frame = sample.tickets.merge(sample.oracle, on="ticket_id", validate="one_to_one")
    frame = frame[frame["resolved_at"].notna()].copy()
    frame["resolver_role"] = frame["resolver_id"].map(roles)
    return frame


def test_same_seed_gives_identical_frames_and_another_seed_does_not() -> None:
    first, again, other = generate(1500, seed=3), generate(1500, seed=3), generate(1500, seed=4)
    for name in ("tickets", "agents", "oracle"):
        pd.testing.assert_frame_equal(getattr(first, name), getattr(again, name))
    assert not first.tickets.equals(other.tickets)
    assert not first.oracle["p_escalation"].equals(other.oracle["p_escalation"])


def test_tickets_carry_every_canonical_column_but_the_explicit_flag(sample: SampleData) -> None:
    expected = [f for f in TICKET_FIELDS if f.name != LABEL]
    assert list(sample.tickets.columns) == [f.name for f in expected]
    for field in expected:
        dtype = sample.tickets[field.name].dtype
        assert KIND_CHECK[field.kind](dtype), f"{field.name}: {dtype}"
        if field.required:
            assert sample.tickets[field.name].notna().all(), field.name


def test_agents_and_oracle_have_their_columns(sample: SampleData) -> None:
    assert list(sample.agents.columns) == [f.name for f in AGENT_FIELDS]
    for field in AGENT_FIELDS:
        assert KIND_CHECK[field.kind](sample.agents[field.name].dtype), field.name
    assert sample.agents["agent_id"].is_unique
    assert list(sample.oracle.columns) == ["ticket_id", "p_escalation", LABEL]
    assert sample.oracle[LABEL].dtype == bool
    assert sample.oracle["p_escalation"].between(0, 1, inclusive="neither").all()
    assert sample.oracle["ticket_id"].equals(sample.tickets["ticket_id"])


def test_ticket_ids_are_unique_and_tickets_sorted_by_creation_within_the_period(
    sample: SampleData,
) -> None:
    created = sample.tickets["created_at"]
    assert sample.tickets["ticket_id"].is_unique
    assert created.is_monotonic_increasing
    assert created.min() >= pd.Timestamp("2024-01-01", tz="UTC")
    assert created.max() < pd.Timestamp("2025-07-01", tz="UTC")
    assert len(sample.tickets) == N


def test_start_and_months_set_the_period() -> None:
    created = generate(500, seed=1, start="2023-03-01", months=2).tickets["created_at"]
    assert created.min() >= pd.Timestamp("2023-03-01", tz="UTC")
    assert created.max() < pd.Timestamp("2023-05-01", tz="UTC")


def test_resolution_follows_creation_and_escalations_take_longer(
    resolved: pd.DataFrame,
) -> None:
    took = resolved["resolved_at"] - resolved["created_at"]
    assert (took > pd.Timedelta(0)).all()
    assert took[resolved[LABEL]].median() > 2 * took[~resolved[LABEL]].median()


def test_about_one_percent_still_open_and_they_are_the_most_recent(sample: SampleData) -> None:
    tickets = sample.tickets
    is_open = tickets["resolved_at"].isna()
    assert 0.005 <= is_open.mean() <= 0.02
    assert tickets.loc[is_open, "created_at"].min() >= tickets.loc[~is_open, "created_at"].max()
    for column in ("resolver_id", "final_tier", "final_queue", "csat", "reopened"):
        assert tickets.loc[is_open, column].isna().all(), column
    # An open ticket shows no escalation yet: only a coordinator's hand-off counts.
    assigned = (tickets.loc[is_open, "first_responder_role"] == "coordinator").astype(int)
    assert (tickets.loc[is_open, "reassignment_count"] == assigned).all()


def test_escalated_exactly_when_a_senior_other_than_the_agent_resolves(
    resolved: pd.DataFrame,
) -> None:
    differs = resolved["resolver_id"] != resolved["agent_id"]
    assert (differs == resolved[LABEL]).all()
    assert (resolved.loc[resolved[LABEL], "resolver_role"] == "senior").all()
    assert (resolved.loc[~resolved[LABEL], "resolver_role"] == "agent").all()


def test_coordinators_only_assign(sample: SampleData, resolved: pd.DataFrame) -> None:
    roles = sample.agents.set_index("agent_id")["role"]
    tickets = sample.tickets
    by_coordinator = tickets["first_responder_role"] == "coordinator"
    assert 0.25 <= by_coordinator.mean() <= 0.35
    assert (tickets["first_responder_id"].map(roles) == tickets["first_responder_role"]).all()
    assert (tickets["agent_id"].map(roles) == "agent").all()
    assert (
        tickets.loc[~by_coordinator, "first_responder_id"]
        == tickets.loc[~by_coordinator, "agent_id"]
    ).all()
    assert (resolved["resolver_role"] != "coordinator").all()


def test_tiers_queues_and_reassignments_agree_with_the_outcome(resolved: pd.DataFrame) -> None:
    escalated = resolved[LABEL]
    with_tiers = resolved["final_tier"].notna()
    assert 0.15 <= 1 - with_tiers.mean() <= 0.25
    assert (resolved.loc[with_tiers, "initial_tier"] == 1).all()
    assert (resolved.loc[with_tiers, "final_tier"] == np.where(escalated, 2, 1)[with_tiers]).all()
    assert (resolved["final_queue"] == np.where(escalated, "tier2", "tier1")).all()
    assert (resolved["initial_queue"] == "tier1").all()
    assigned = (resolved["first_responder_role"] == "coordinator").astype(int)
    assert (resolved["reassignment_count"] == assigned + escalated).all()
    assert (resolved.loc[~escalated, "reassignment_count"] <= 2).all()
    assert resolved.loc[~escalated, "agents_involved"].isin([1, 2]).all()
    assert resolved.loc[escalated, "agents_involved"].isin([2, 3]).all()


def test_every_ticket_goes_to_an_agent_already_hired(sample: SampleData) -> None:
    hired = sample.tickets["agent_id"].map(sample.agents.set_index("agent_id")["hire_date"])
    assert (hired <= sample.tickets["created_at"]).all()


def test_base_rate_and_oracle_auc_are_in_a_realistic_range(sample: SampleData) -> None:
    truth = sample.oracle[LABEL]
    assert 0.15 <= truth.mean() <= 0.25
    assert abs(truth.mean() - sample.oracle["p_escalation"].mean()) < 0.03
    assert 0.75 <= roc_auc_score(truth, sample.oracle["p_escalation"]) <= 0.95


def test_latent_risk_is_mostly_explained_by_what_a_model_can_see(sample: SampleData) -> None:
    """A linear fit on creation fields, agent, cues and time, plus each customer's mean
    residual, leaves little of the log-odds unexplained: the oracle is reachable."""
    tickets, p = sample.tickets, sample.oracle["p_escalation"].to_numpy()
    logit = np.log(p / (1 - p))
    text = (tickets["subject"] + " " + tickets["description"]).str.lower()
    created = tickets["created_at"]
    hired = tickets["agent_id"].map(sample.agents.set_index("agent_id")["hire_date"])
    seen = pd.concat(
        [
            pd.get_dummies(tickets[["category", "priority", "channel", "agent_id"]].astype(object)),
            pd.DataFrame({cue: text.str.contains(cue, regex=False) for cue in CUES}),
            pd.DataFrame(
                {
                    "night": created.dt.hour.isin([22, 23, 0, 1, 2, 3, 4, 5]),
                    "weekend": created.dt.day_of_week >= 5,
                    "season": np.cos(2 * np.pi * (created.dt.day_of_year - 349) / 365.25),
                    "new_hire": np.exp(-(created - hired).dt.days / 120),
                }
            ),
        ],
        axis=1,
    ).to_numpy(float)
    coef, *_ = np.linalg.lstsq(seen, logit, rcond=None)
    residual = logit - seen @ coef
    assert 1 - residual.var() / logit.var() > 0.7
    residual -= pd.Series(residual).groupby(tickets["customer_id"]).transform("mean")
    assert 1 - residual.var() / logit.var() > 0.9


def test_staff_scales_gently_with_roles_teams_and_new_hires() -> None:
    small, large = generate(10_000, seed=0).agents, generate(50_000, seed=0).agents
    assert 30 <= len(small) <= 50 and 50 <= len(large) <= 80
    assert set(large["role"]) == {"agent", "senior", "coordinator"}
    assert large["team"].nunique() >= 3
    assert (large["hire_date"] >= pd.Timestamp("2024-01-01", tz="UTC")).any()
    assert (large["hire_date"] < pd.Timestamp("2022-01-01", tz="UTC")).any()


def test_customers_repeat_with_a_skew(sample: SampleData) -> None:
    per_customer = sample.tickets["customer_id"].value_counts()
    assert 3 <= N / len(per_customer) <= 9
    assert per_customer.iloc[0] >= 10 * per_customer.median()


def test_frustration_phrases_are_commoner_in_escalated_tickets(sample: SampleData) -> None:
    tickets, truth = sample.tickets, sample.oracle[LABEL]
    text = (tickets["subject"] + " " + tickets["description"]).str.lower()
    angry = text.str.contains(FRUSTRATION, regex=True)
    assert 0.03 <= angry.mean() <= 0.4
    assert truth[angry].mean() > 1.5 * truth[~angry].mean()


def test_customers_who_escalated_before_escalate_more_later() -> None:
    sample = generate(20_000, seed=0)
    truth = sample.oracle[LABEL]
    customer = sample.tickets["customer_id"]
    order = customer.groupby(customer).cumcount()
    size = customer.map(customer.value_counts())
    early = order < size // 2
    repeat = size >= 4
    early_rate = truth[early & repeat].groupby(customer[early & repeat]).mean()
    risky = customer[~early & repeat].map(early_rate > truth.mean())
    later = truth[~early & repeat]
    assert later[risky].mean() > later[~risky].mean() + 0.03


def test_text_fields_are_filled_and_vary(sample: SampleData) -> None:
    for column in ("subject", "description"):
        assert (sample.tickets[column].str.len() > 0).all()
    assert sample.tickets["description"].nunique() > 0.5 * N
    assert sample.tickets["category"].nunique() == 12
    assert set(sample.tickets["channel"]) == {"email", "chat", "phone", "web"}
    assert set(sample.tickets["priority"]) == {"low", "medium", "high", "urgent"}


def test_fewer_tickets_at_weekends_and_nights(sample: SampleData) -> None:
    created = sample.tickets["created_at"]
    weekend = (created.dt.day_of_week >= 5).mean()
    night = created.dt.hour.isin([0, 1, 2, 3, 4]).mean()
    assert weekend < 0.8 * 2 / 7
    assert night < 0.6 * 5 / 24


def test_csat_and_reopened_reflect_the_outcome(resolved: pd.DataFrame) -> None:
    csat = resolved["csat"]
    assert csat.dropna().between(1, 5).all() and (csat.dropna() % 1 == 0).all()
    assert 0.3 <= csat.isna().mean() <= 0.5
    escalated = resolved[LABEL]
    assert csat[escalated].mean() < csat[~escalated].mean() - 0.5
    reopened = resolved["reopened"].astype(bool)
    assert reopened[escalated].mean() > reopened[~escalated].mean()


def test_progress_is_reported_in_a_few_increasing_steps() -> None:
    steps: list[int] = []
    generate(300, seed=0, progress=steps.append)
    assert steps == list(range(1, PROGRESS_STEPS + 1))
    assert PROGRESS_STEPS <= 10


def _read(path: Path, like: pd.DataFrame) -> pd.DataFrame:
    """Read a written file back with the original frame's dtypes."""
    if path.suffix == ".parquet":
        raw = pd.read_parquet(path)
    elif path.suffix == ".csv":
        raw = pd.read_csv(path)
    else:
        raw = pd.read_json(path, lines=True, dtype=False)
    out = {}
    for column, dtype in like.dtypes.items():
        if isinstance(dtype, pd.DatetimeTZDtype):
            out[column] = pd.to_datetime(raw[column], utc=True, format="ISO8601").astype(dtype)
        else:
            out[column] = raw[column].astype(dtype)
    return pd.DataFrame(out)


@pytest.mark.parametrize("fmt", FORMATS)
def test_write_round_trips(fmt: str, tmp_path: Path) -> None:
    sample = generate(600, seed=2)
    paths = write(sample, tmp_path / "out", fmt)
    assert paths == {
        "tickets": tmp_path / "out" / f"tickets.{fmt}",
        "agents": tmp_path / "out" / f"agents.{fmt}",
        "oracle": tmp_path / "out" / "oracle.parquet",
    }
    pd.testing.assert_frame_equal(_read(paths["tickets"], sample.tickets), sample.tickets)
    pd.testing.assert_frame_equal(_read(paths["agents"], sample.agents), sample.agents)
    pd.testing.assert_frame_equal(pd.read_parquet(paths["oracle"]), sample.oracle)


def test_write_refuses_an_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="xlsx"):
        write(generate(50, seed=0), tmp_path, "xlsx")
