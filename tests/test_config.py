"""Pipeline config: validated up front, overridable key by key, errors name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from escpredict.config import ConfigError, load_config

REPO = Path(__file__).resolve().parents[1]


def test_shipped_config_is_valid_and_matches_the_defaults() -> None:
    cfg = load_config(REPO / "pipelines" / "train.yaml")
    assert cfg.labels.coordinator_roles == ["coordinator", "dispatcher"]
    assert cfg.split.test_fraction == 0.15


def test_dotted_overrides_change_one_key() -> None:
    cfg = load_config(None, {"split.test_fraction": 0.2, "model.params.num_leaves": 15})
    assert cfg.split.test_fraction == 0.2
    assert cfg.model.params["num_leaves"] == 15
    assert cfg.split.valid_fraction == 0.15


def test_unknown_key_is_named(tmp_path: Path) -> None:
    path = tmp_path / "train.yaml"
    path.write_text("split:\n  tset_fraction: 0.2\n")
    with pytest.raises(ConfigError, match=r"split\.tset_fraction"):
        load_config(path)


def test_out_of_range_value_is_named() -> None:
    with pytest.raises(ConfigError, match=r"split\.test_fraction"):
        load_config(None, {"split.test_fraction": 0.9})


def test_unknown_label_rule_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"labels\.rules"):
        load_config(None, {"labels.rules": ["resolver_differs", "moon_phase"]})


def test_missing_file_and_bad_yaml_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("split: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_risk_tiers_are_ordered_by_boundary_and_start_at_zero() -> None:
    cfg = load_config(None, {"routing.tiers": {"high": 0.5, "low": 0.0, "medium": 0.2}})
    assert list(cfg.routing.tiers) == ["low", "medium", "high"]
    with pytest.raises(ConfigError, match="tiers"):
        load_config(None, {"routing.tiers": {"medium": 0.1, "high": 0.5}})


def test_an_override_inside_a_dict_setting_keeps_its_other_defaults() -> None:
    """`--set model.params.learning_rate=0.02` without a YAML file: still a binary model."""
    params = load_config(None, {"model.params.learning_rate": 0.02}).model.params
    assert params["learning_rate"] == 0.02
    assert params["objective"] == "binary" and params["lambda_l2"] == 1.0
    tiers = load_config(None, {"routing.tiers.high": 0.6}).routing.tiers
    assert tiers == {"low": 0.0, "medium": 0.2, "high": 0.6}


def test_an_override_of_a_whole_dict_replaces_it_and_a_section_keeps_unset_keys_unset() -> None:
    assert load_config(None, {"model.params": {"learning_rate": 0.02}}).model.params == {
        "learning_rate": 0.02
    }
    # data.agents left unset still means "the sample's agents, for the sample's tickets"
    sample = load_config(None, {"data.tickets": "data/sample/tickets.parquet"}).data
    assert sample.agents is not None
    assert load_config(None, {"data.tickets": "mine.csv"}).data.agents is None
