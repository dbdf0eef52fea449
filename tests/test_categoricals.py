"""Categorical and extra fields: every at-creation field reaches the model, long tails are
pooled, unseen levels are safe, the booster follows the data, and no clock leaks in."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from escpredict.config import FeatureConfig, ModelConfig, TrainConfig, load_config
from escpredict.labels.history import history_features
from escpredict.lifecycle.pyfunc import load_escalation_model
from escpredict.lifecycle.registry import use_store
from escpredict.lifecycle.train import booster_params, fit_booster, run
from escpredict.model.features import OTHER, OTHER_LEVEL, TEXT_SOURCE, FeatureBuilder

CFG = FeatureConfig(word_max_features=50, char_max_features=0, min_df=2, min_level_count=10)
URGENCY_EFFECT = {"1 - High": 1.5, "2 - Medium": 0.0, "3 - Low": -1.5}
EXTRAS = {
    "business_service": "categorical",
    "affected_users": "numeric",
    "vip": "boolean",
    "short_note": "text",
}


def tickets(n: int, seed: int = 0, days: int = 60) -> pd.DataFrame:
    """Tickets over `days` days with a long tail of products; escalation follows urgency."""
    rng = np.random.default_rng(seed)
    weights = 1 / np.arange(1, 81) ** 1.2
    product = rng.choice(80, n, p=weights / weights.sum())
    urgency = rng.choice(list(URGENCY_EFFECT), n)
    logit = -1.0 + pd.Series(urgency).map(URGENCY_EFFECT).to_numpy() + (product % 3 - 1) * 0.5
    return pd.DataFrame(
        {
            "ticket_id": [f"T{i}" for i in range(n)],
            "created_at": pd.Timestamp("2024-01-01", tz="UTC")
            + pd.to_timedelta(np.sort(rng.integers(0, days * 86_400, n)), unit="s"),
            "channel": rng.choice(["email", "phone"], n),
            "category": rng.choice(["Network", "Access", "Hardware"], n),
            "priority": rng.choice(["low", "high"], n),
            "subject": "",
            "description": "",
            "customer_id": [f"C{c}" for c in rng.integers(0, n // 4, n)],
            "agent_id": None,
            "product": [f"Product {p}" for p in product],
            "urgency": urgency,
            "initial_tier": rng.choice([1.0, 2.0, np.nan], n),
            "initial_queue": rng.choice(["Service desk", "Network team"], n),
            "escalated": rng.random(n) < 1 / (1 + np.exp(-logit)),
        }
    )


def trained(frame: pd.DataFrame) -> tuple[FeatureBuilder, object]:
    """A builder and a booster fitted on the first 80% of `frame`, validated on the rest."""
    cut = int(len(frame) * 0.8)
    train, valid = frame.iloc[:cut], frame.iloc[cut:]
    builder = FeatureBuilder(CFG)
    x_train = builder.fit_transform(train)
    booster = fit_booster(
        TrainConfig(), x_train, train["escalated"].to_numpy(int),
        builder.transform(valid), valid["escalated"].to_numpy(int), lambda _: None,
        categorical=builder.categorical_columns,
    )
    return builder, booster


@pytest.fixture(scope="module")
def model() -> tuple[FeatureBuilder, object]:
    return trained(tickets(6000))


def score(model: tuple[FeatureBuilder, object], record: dict) -> float:
    builder, booster = model
    return float(booster.predict(builder.transform_record(record), raw_score=True)[0])


def test_every_at_creation_field_is_a_column_named_by_its_source(model):
    builder, _ = model
    for field in ("product", "urgency", "initial_queue", "category", "channel", "priority"):
        j = builder.feature_names.index(field)
        assert builder.feature_sources[j] == field
        assert j in builder.categorical_columns
    for absent in ("impact", "location", "language"):  # no level in training: no column
        assert absent not in builder.feature_names and absent not in builder.categories
    assert builder.readable_names[builder.feature_names.index("initial_queue")] == "initial queue"
    assert "initial_tier" in builder.feature_names  # ordered: a number, not a category


def test_a_rare_level_is_pooled_with_unseen_levels(model):
    builder, _ = model
    counts = tickets(6000).iloc[:4800]["product"].value_counts()
    rare, common = counts.index[counts < 10], counts.index[counts >= 10]
    assert len(rare) and len(common)
    levels = builder.categories["product"]
    assert levels[OTHER] == OTHER_LEVEL
    assert set(levels[1:]) == set(common)
    column = builder.feature_names.index("product")
    for value in (rare[0], "Product never seen"):
        assert builder.transform_record({"product": value}).toarray()[0, column] == OTHER


def test_an_unseen_level_scores_without_error_exactly_as_the_pooled_level(model):
    builder, _ = model
    counts = tickets(6000).iloc[:4800]["product"].value_counts()
    rare = counts.index[counts < 10][0]
    ticket = {"created_at": "2024-03-01T10:00:00Z", "urgency": "2 - Medium", "channel": "email"}
    unseen = score(model, {**ticket, "product": "Brand new product"})
    assert np.isfinite(unseen)
    assert unseen == score(model, {**ticket, "product": rare})
    frame = pd.DataFrame([{**ticket, "product": "Brand new product"}])
    np.testing.assert_array_equal(
        builder.transform(frame).toarray(),
        builder.transform_record({**ticket, "product": "Brand new product"}).toarray(),
    )


def test_the_same_ticket_scores_higher_at_high_urgency_when_the_data_says_so(model):
    ticket = {"created_at": "2024-03-01T10:00:00Z", "product": "Product 0", "channel": "email"}
    high, medium, low = (score(model, {**ticket, "urgency": u}) for u in URGENCY_EFFECT)
    assert high > medium > low


def test_renaming_customer_ids_moves_no_score(model):
    builder, _ = model
    frame = tickets(800, seed=3)
    resolved = frame["created_at"] + pd.Timedelta(hours=5)
    renamed = frame.assign(customer_id="renamed-" + frame["customer_id"].str[::-1])
    matrices = [
        builder.transform(
            f.join(history_features(f.assign(resolved_at=resolved), f["escalated"].astype("boolean"), None))
        ).toarray()
        for f in (frame, renamed)
    ]
    np.testing.assert_array_equal(*matrices)


def test_day_of_year_is_fed_only_when_training_covers_the_year():
    weeks = FeatureBuilder(CFG).fit(tickets(500, days=60))
    assert "day_of_year" not in weeks.feature_names
    assert "hour_of_day" in weeks.feature_names  # cyclic within a day: no clock
    year = FeatureBuilder(CFG).fit(tickets(3000, days=400))
    assert "day_of_year" in year.feature_names


def test_recent_ticket_counts_are_a_rate_even_where_the_export_has_just_begun():
    frame = tickets(200, days=60).assign(agent_recent_tickets=6.0)
    builder = FeatureBuilder(CFG).fit(frame)
    start = frame["created_at"].min()
    column = builder.readable_names.index("agent tickets per 30 days (recent)")
    for day, expected in ((3, 60.0), (15, 12.0), (45, 6.0)):
        record = {"created_at": start + pd.Timedelta(days=day), "agent_recent_tickets": 6.0}
        assert builder.transform_record(record).toarray()[0, column] == pytest.approx(expected)


def with_extras(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = len(frame)
    return frame.assign(
        business_service=rng.choice(["Email", "ERP", "VPN"], n),
        affected_users=rng.choice([1.0, 10.0, 500.0, np.nan], n),
        vip=pd.array(rng.choice([True, False, None], n), dtype="boolean"),
        short_note=rng.choice(["printer jam", "vpn token expired", ""], n),
    )


def test_extra_features_of_every_kind_reach_the_matrix():
    frame = with_extras(tickets(300), seed=1)
    builder = FeatureBuilder(CFG, EXTRAS).fit(frame)
    assert builder.extra_features == EXTRAS
    x = builder.transform(frame).toarray()
    service = builder.feature_names.index("business_service")
    assert service in builder.categorical_columns
    levels = builder.categories["business_service"]
    np.testing.assert_array_equal(x[:, service], [levels.index(v) for v in frame["business_service"]])
    users = x[:, builder.feature_names.index("affected_users")]
    np.testing.assert_array_equal(users, frame["affected_users"].to_numpy())
    vip = x[:, builder.feature_names.index("vip")]
    np.testing.assert_array_equal(vip, frame["vip"].astype("float64").to_numpy(na_value=np.nan))
    token = builder.readable_names.index("word 'token'")
    assert builder.feature_sources[token] == TEXT_SOURCE
    np.testing.assert_array_equal(x[:, token], frame["short_note"].str.contains("token"))


def test_transform_record_equals_transform_with_extras():
    frame = with_extras(tickets(300), seed=2)
    builder = FeatureBuilder(CFG, EXTRAS).fit(frame)
    records = frame.drop(columns="escalated").to_dict("records")
    records += [{"vip": "yes", "affected_users": "12"}, {"business_service": "Unknown"}, {}]
    for record in records[:100] + records[-3:]:
        expected = builder.transform(pd.DataFrame([record])).toarray()
        np.testing.assert_array_equal(builder.transform_record(record).toarray(), expected)


def test_bad_extra_declarations_and_values_are_refused_by_name():
    with pytest.raises(ValueError, match="'size'.*kind 'money'"):
        FeatureBuilder(CFG, {"size": "money"})
    with pytest.raises(ValueError, match="'priority'.*clashes"):
        FeatureBuilder(CFG, {"priority": "numeric"})
    builder = FeatureBuilder(CFG, {"vip": "boolean"}).fit(tickets(50).assign(vip=True))
    with pytest.raises(ValueError, match="vip: 'maybe'"):
        builder.transform_record({"vip": "maybe"})


def test_the_baseline_view_has_one_indicator_per_level(model):
    builder, _ = model
    frame = tickets(200, seed=5)
    x = builder.transform(frame)
    wide = builder.one_hot(x)
    sizes = [len(builder.categories[builder.feature_names[j]]) for j in builder.categorical_columns]
    assert wide.shape == (len(frame), x.shape[1] - len(sizes) + sum(sizes))
    indicators = wide[:, wide.shape[1] - sum(sizes):].toarray()
    known = sum(frame[f].notna() for f in ("category", "channel", "priority", "product", "urgency", "initial_queue"))
    np.testing.assert_array_equal(indicators.sum(axis=1), known)


def test_leaf_sizes_scale_with_training_rows_and_configured_values_win():
    small, large = booster_params(ModelConfig(), 5_000), booster_params(ModelConfig(), 500_000)
    assert small["min_child_samples"] < large["min_child_samples"] == 40
    assert small["min_data_per_group"] < large["min_data_per_group"]
    assert small["num_leaves"] <= large["num_leaves"]
    pinned = ModelConfig(params={**ModelConfig().params, "min_child_samples": 77})
    assert booster_params(pinned, 5_000)["min_child_samples"] == 77


def test_a_mappings_extra_features_reach_the_trained_and_registered_model(tmp_path):
    """The real ServiceNow sample's mapping declares symptom and opened_by (categorical)."""
    sample = Path(__file__).parent / "data" / "servicenow-incident-events-sample.csv"
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = load_config(None, {
        "data.tickets": str(sample), "data.agents": None, "data.mapping": "servicenow-events",
        "features.min_df": 2, "model.num_boost_round": 40, "registry.tracking_uri": uri,
    })
    result = run(cfg)
    use_store(uri)
    model = load_escalation_model(f"models:/escalation-risk/{result.model_version}")
    builder = model.builder
    assert builder.extra_features == {"symptom": "categorical", "opened_by": "categorical"}
    for name in ("symptom", "opened_by", "location", "impact"):
        assert builder.feature_names.index(name) in builder.categorical_columns, name
    assert "configuration_item" not in builder.feature_names  # almost always "?" there
    window = result.test_window
    np.testing.assert_allclose(model.predict_proba(window), window["probability"], atol=1e-12)
