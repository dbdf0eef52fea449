"""FeatureBuilder: one fitted builder gives the same features in training and in serving."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pandas as pd
import pytest

from escpredict.config import FeatureConfig
from escpredict.contract import HISTORY_NAMES
from escpredict.labels.history import history_features
from escpredict.model.features import OTHER, OTHER_LEVEL, FeatureBuilder

CFG = FeatureConfig(word_max_features=200, char_max_features=300, min_df=2, smoothing=10.0)
WORDS = [
    "refund",
    "invoice",
    "crash",
    "login",
    "password",
    "urgent",
    "still",
    "again",
    "broken",
    "server",
    "slow",
    "help",
]


def tickets(n: int, seed: int, start: str = "2024-01-01") -> pd.DataFrame:
    """Canonical tickets (SCORING_FIELDS) with varied text, fields and timestamps."""
    rng = np.random.default_rng(seed)
    texts = [" ".join(rng.choice(WORDS, rng.integers(0, 12))) for _ in range(n)]
    return pd.DataFrame(
        {
            "ticket_id": [f"T{seed}-{i}" for i in range(n)],
            "created_at": pd.Timestamp(start, tz="UTC")
            + pd.to_timedelta(np.sort(rng.integers(0, 60 * 86_400, n)), unit="s"),
            "channel": rng.choice(["email", "chat", "phone"], n),
            "category": rng.choice(["Billing/refunds", "Login", "Outage"], n),
            "priority": rng.choice(["low", "high", "urgent"], n),
            "subject": [t[:20].upper() if i % 3 == 0 else t[:20] for i, t in enumerate(texts)],
            "description": [t + "!" * (i % 4) for i, t in enumerate(texts)],
            "customer_id": pd.Series(rng.integers(0, n // 3, n).astype(str)).radd("C"),
            "agent_id": pd.Series(rng.choice(["A1", "A2", "A3"], n)).where(rng.random(n) > 0.1),
        }
    ).astype({"subject": "str", "description": "str", "customer_id": "str", "agent_id": "str"})


def with_history(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    resolved = frame["created_at"] + pd.to_timedelta(
        rng.integers(3600, 10 * 86_400, len(frame)), "s"
    )
    labels = pd.Series(rng.random(len(frame)) < 0.3, index=frame.index, dtype="boolean")
    history = history_features(frame.assign(resolved_at=resolved), labels, None)
    return pd.concat([frame, history], axis=1)


@pytest.fixture(scope="module")
def train() -> pd.DataFrame:
    return with_history(tickets(400, seed=1), seed=1)


@pytest.fixture(scope="module")
def builder(train: pd.DataFrame) -> FeatureBuilder:
    return FeatureBuilder(CFG).fit(train)


def assert_same(a, b) -> None:
    """Equal matrices, NaN included (sparse != treats NaN as a difference)."""
    np.testing.assert_array_equal(a.toarray(), b.toarray())


def column(builder: FeatureBuilder, readable: str) -> int:
    return builder.readable_names.index(readable)


def test_matrix_is_float64_csr_with_one_name_per_column(builder, train):
    x = builder.transform(train)
    assert x.format == "csr" and x.dtype == np.float64
    assert (
        x.shape
        == (len(train), len(builder.feature_names))
        == (len(train), len(builder.readable_names))
    )
    assert len(set(builder.feature_names)) == len(builder.feature_names)
    for readable in (
        "word 'refund'",
        "category",
        "initial tier",
        "agent tenure (days)",
        "customer escalation rate (smoothed)",
        "text contains 'fun'",
    ):
        assert readable in builder.readable_names
    # Counts that only grow with time would act as a clock; they enter only as smoothed rates.
    for clock in ("agent_prior_resolved", "agent_prior_escalated",
                  "customer_prior_tickets", "customer_prior_escalated"):
        assert clock not in builder.feature_names
    special = set('",:[]{}')  # LightGBM refuses feature names with JSON punctuation
    assert not any(special & set(name) for name in builder.feature_names)


def test_ticket_statistics_are_computed_from_the_ticket_itself(builder):
    ticket = {
        "created_at": pd.Timestamp("2024-06-08 14:30", tz="Europe/Paris"),  # Saturday 12:30 UTC
        "subject": "STILL down!!",
        "description": "Urgent: refund me, again. Not urgently.",
        "category": "Login",
    }
    row = builder.transform_record(ticket).toarray()[0]
    expected = {
        "hour of day (UTC)": 12,
        "day of week (0 = Monday)": 5,
        "created at the weekend": 1,
        "subject length (characters)": 12,
        "description length (characters)": 39,
        "exclamation marks": 2,
        "share of capital letters": 7 / 39,  # S T I L L U N of 39 letters
        "urgency words": 5,  # still, down, urgent, refund, again; not "urgently"
        "category": builder.categories["category"].index("Login"),
        "word 'refund'": 1,
    }
    for readable, value in expected.items():
        assert row[column(builder, readable)] == pytest.approx(value), readable


def test_escalation_rates_are_smoothed_towards_the_global_rate(builder, train):
    global_rate = train["agent_prior_escalated"].sum() / train["agent_prior_resolved"].sum()
    record = {
        "agent_prior_escalated": 3,
        "agent_prior_resolved": 4,
        "customer_prior_tickets": 0,
        "customer_prior_escalated": 0,
    }
    row = builder.transform_record(record).toarray()[0]
    agent = row[column(builder, "agent escalation rate (smoothed)")]
    assert agent == pytest.approx((3 + 10 * global_rate) / (4 + 10))
    assert row[column(builder, "customer escalation rate (smoothed)")] == pytest.approx(global_rate)


def test_unknown_categories_and_missing_values_never_fail(builder):
    row = builder.transform_record({"category": "Brand new", "channel": None}).toarray()[0]
    assert row[column(builder, "category")] == OTHER  # unseen: the pooled level
    assert np.isnan(row[column(builder, "channel")])  # missing is not a level
    assert builder.categories["priority"] == [OTHER_LEVEL, "high", "low", "urgent"]
    assert "product" not in builder.categories  # never filled in training: no column
    for readable in (
        "agent tenure (days)",
        "hour of day (UTC)",
        "share of capital letters",
        "agent escalation rate (smoothed)",
    ):
        assert np.isnan(row[column(builder, readable)]), readable  # missing stays missing
    assert row[column(builder, "subject length (characters)")] == 0


def random_record(rng: np.random.Generator, base: dict) -> dict:
    """A plausible request with some fields dropped, nulled or replaced by odd values."""
    record = dict(base)
    odd = {
        "subject": ["", "ÜBER DRINGEND!!! 🔥", "naïve café — refund?", None],
        "description": ["", "ça ne marche pas… STILL broken", "\n\t", "x" * 300],
        "category": ["Never seen", None, "billing/REFUNDS"],
        "channel": ["fax", None],
        "priority": ["P1", None],
        "created_at": [None, pd.Timestamp("2025-02-03 23:59:59", tz="UTC")],
        "agent_tenure_days": [None, np.nan, 0.5],
        "agent_prior_resolved": [None, 0.0],
        "customer_days_since_last": [None, 1e-9],
    }
    for key, choices in odd.items():
        roll = rng.random()
        if roll < 0.15:
            record.pop(key, None)
        elif roll < 0.45:
            record[key] = choices[rng.integers(len(choices))]
    return record


def test_transform_record_equals_transform_of_a_one_row_frame(builder, train):
    rng = np.random.default_rng(7)
    rows = train.drop(columns="ticket_id").to_dict("records")
    for i in range(150):
        record = random_record(rng, rows[i % len(rows)])
        expected = builder.transform(pd.DataFrame([record]))
        actual = builder.transform_record(record)
        np.testing.assert_array_equal(actual.toarray(), expected.toarray(), err_msg=str(record))
        assert actual.indices.tolist() == expected.indices.tolist()  # same explicit entries


def test_transform_records_equals_transform_of_their_frame_and_each_alone(builder, train):
    rng = np.random.default_rng(11)
    rows = train.drop(columns="ticket_id").to_dict("records")
    records = [random_record(rng, rows[i % len(rows)]) for i in range(60)]
    together = builder.transform_records(records)
    assert together.shape == (60, len(builder.feature_names))
    np.testing.assert_array_equal(together, builder.transform(pd.DataFrame(records)).toarray())
    for record, row in zip(records, together, strict=True):
        np.testing.assert_array_equal(builder.transform_records([record])[0], row)
    assert builder.transform_records([]).shape == (0, len(builder.feature_names))


def saved_and_loaded(builder: FeatureBuilder) -> FeatureBuilder:
    """The builder through its saved form: JSON text."""
    return FeatureBuilder.from_state(json.loads(json.dumps(builder.to_state(), allow_nan=False)))


EXTRAS = {"plan": "categorical", "seats": "numeric", "vip": "boolean", "notes": "text"}


def with_extras(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = len(frame)
    return frame.assign(
        plan=pd.Series(rng.choice(["free", "pro", "team"], n)).where(rng.random(n) > 0.2),
        seats=pd.Series(rng.integers(1, 50, n), dtype="Int64").where(rng.random(n) > 0.2),
        vip=rng.choice(["yes", "no"], n),
        notes=rng.choice(["renewal due", "churn risk", "refund asked"], n),
    )


@pytest.mark.parametrize("kind", ["plain", "extras", "tiny"])
def test_a_builder_rebuilt_from_its_saved_state_gives_the_same_matrices(kind, builder, train):
    if kind == "extras":
        train = with_extras(train, seed=5)
        builder = FeatureBuilder(CFG, EXTRAS).fit(train)
    elif kind == "tiny":  # no term reaches min_df: empty vocabularies
        train = train.head(3)
        builder = FeatureBuilder(FeatureConfig(min_df=5)).fit(train)
    rng = np.random.default_rng(3)
    rows = train.drop(columns="ticket_id").to_dict("records")
    records = [random_record(rng, rows[i % len(rows)]) for i in range(50)]
    builder.transform_records(records)  # fills the per-word lookups, which are not saved

    loaded = saved_and_loaded(builder)

    assert_same(loaded.transform(train), builder.transform(train))
    np.testing.assert_array_equal(
        loaded.transform_records(records), builder.transform_records(records)
    )
    for name in ("feature_names", "readable_names", "feature_sources", "categorical_columns",
                 "categories", "extra_features"):
        assert getattr(loaded, name) == getattr(builder, name), name
    assert loaded.one_hot == builder.one_hot


def test_a_saved_layout_this_version_would_build_differently_is_refused(builder):
    state = builder.to_state()
    renamed = {**state, "feature_names": ["something_else", *state["feature_names"][1:]]}
    with pytest.raises(ValueError, match="feature columns differ"):
        FeatureBuilder.from_state(renamed)
    with pytest.raises(KeyError, match="moon_phase"):
        FeatureBuilder.from_state({**state, "ticket_stats": ["moon_phase"]})


def test_a_builder_shipped_to_dask_workers_leaves_its_lookup_cache_behind(builder, train):
    builder.transform_records(train.head(20).to_dict("records"))  # fills the per-word lookups
    assert "_char_columns" in vars(builder)
    shipped = pickle.loads(pickle.dumps(builder))  # how Dask sends it
    assert "_char_columns" not in vars(shipped)
    record = train.iloc[3].to_dict()
    np.testing.assert_array_equal(
        shipped.transform_record(record).toarray(), builder.transform_record(record).toarray()
    )


def test_appending_future_tickets_changes_no_earlier_row(builder):
    """THE leakage test, end to end: history and features of earlier tickets stay put."""
    past = tickets(300, seed=2)
    future = tickets(100, seed=3, start="2024-04-01")
    future.index += len(past)
    rng = np.random.default_rng(2)
    both = pd.concat([past, future])
    resolved = both["created_at"] + pd.to_timedelta(rng.integers(60, 20 * 86_400, len(both)), "s")
    labels = pd.Series(rng.random(len(both)) < 0.3, index=both.index, dtype="boolean")
    everything = both.assign(resolved_at=resolved)

    alone = past.join(history_features(everything.loc[past.index], labels[past.index], None))
    appended = both.join(history_features(everything, labels, None)).loc[past.index]
    assert_same(builder.transform(alone), builder.transform(appended))
    assert builder.transform(alone).nnz > 0


def test_tiny_data_gives_empty_text_blocks_instead_of_an_error():
    frame = with_history(tickets(3, seed=4), seed=4)
    small = FeatureBuilder(FeatureConfig(min_df=5)).fit(frame)
    assert not any(n.startswith(("word", "char")) for n in small.feature_names)
    assert small.transform(frame).shape == (3, len(small.feature_names))
    assert small.transform_record({"subject": "refund"}).shape == (1, len(small.feature_names))


def test_transform_before_fit_is_an_error_and_history_columns_are_optional(train):
    with pytest.raises(RuntimeError, match="fit"):
        FeatureBuilder(CFG).transform(train)
    fitted = FeatureBuilder(CFG).fit(train.drop(columns=list(HISTORY_NAMES)))
    row = fitted.transform(train.head(1)).toarray()[0]
    assert row[fitted.readable_names.index("agent escalation rate (smoothed)")] == pytest.approx(
        (train["agent_prior_escalated"][0] + 0.0) / (train["agent_prior_resolved"][0] + 10.0)
    )  # no history at fit time: global rate 0


def test_fit_transform_equals_fit_then_transform_and_char_ngrams_match_sklearn(train):
    from sklearn.feature_extraction.text import CountVectorizer

    fitted = FeatureBuilder(CFG)
    assert_same(fitted.fit_transform(train), FeatureBuilder(CFG).fit(train).transform(train))
    sklearn_char_wb = CountVectorizer(analyzer="char_wb", ngram_range=CFG.char_ngram_range)
    reference = sklearn_char_wb.build_analyzer()
    cached = fitted._char.build_analyzer()
    for text in ("Refund  NOT\treceived!!", "", " a ", "Ünïcode İstanbul straße"):
        assert cached(text) == reference(text)  # cached per word, same n-grams
