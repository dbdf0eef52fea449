"""Risk tiers and routes agree: the tier where routing starts begins at the routing threshold."""

from __future__ import annotations

import numpy as np
import pytest

from escpredict.config import ConfigError, RoutingConfig, load_config
from tests.conftest import Trained


def test_the_route_tier_starts_at_the_threshold() -> None:
    routing = RoutingConfig(tiers={"low": 0.0, "medium": 0.2, "high": 0.5}, route_tier="medium")
    assert routing.tiers_at(0.173) == {"low": 0.0, "medium": 0.173, "high": 0.5}


def test_a_threshold_that_would_reorder_the_tiers_is_refused_naming_the_keys() -> None:
    routing = RoutingConfig(tiers={"low": 0.0, "medium": 0.2, "high": 0.5}, route_tier="medium")
    with pytest.raises(ValueError, match=r"0\.600.*routing\.route_tier 'medium'.*0\.5"):
        routing.tiers_at(0.6)


@pytest.mark.parametrize("route_tier", ["low", "urgent"])
def test_the_route_tier_must_be_a_tier_above_the_lowest(route_tier: str) -> None:
    with pytest.raises(ConfigError, match="routing.route_tier"):
        load_config(None, {"routing.route_tier": route_tier})


def test_a_trained_model_sends_up_exactly_the_tiers_from_the_route_tier(trained: Trained) -> None:
    from escpredict.lifecycle.pyfunc import load_escalation_model
    from escpredict.lifecycle.registry import use_store

    use_store(trained.tracking_uri)
    uri = f"models:/{trained.result.model_name}/{trained.result.model_version}"
    model = load_escalation_model(uri)
    names = list(model.tiers)
    start = names.index(trained.config.routing.route_tier)
    assert model.tiers[names[start]] == model.threshold
    for p in np.linspace(0.0, 1.0, 2001):
        routed = model.route_of(p) == model.route_queue
        assert routed == (names.index(model.tier_of(p)) >= start), p
