"""Grouping SHAP values by source field keeps their sum and names each field once."""

from __future__ import annotations

import numpy as np
import pytest

from escpredict.explain import group_contributions


def test_columns_of_one_field_are_summed_in_order_of_first_appearance() -> None:
    contrib = np.array([[0.1, 0.2, -0.3, 0.4, 0.5], [1.0, 0.0, 0.0, -1.0, 0.25]])
    sources = ["hour_of_day", "priority", "priority", "text"]
    grouped, names = group_contributions(contrib, sources)
    assert names == ["hour_of_day", "priority", "text"]
    np.testing.assert_allclose(grouped, [[0.1, -0.1, 0.4, 0.5], [1.0, 0.0, -1.0, 0.25]])
    np.testing.assert_allclose(grouped.sum(axis=1), contrib.sum(axis=1))


def test_a_mismatch_between_columns_and_sources_is_refused() -> None:
    with pytest.raises(ValueError, match="3 contribution columns for 1 feature sources"):
        group_contributions(np.zeros((1, 3)), ["a"])


def test_interleaved_columns_of_a_field_are_summed_together() -> None:
    contrib = np.array([[1.0, 2.0, 4.0, 8.0, 16.0]])
    grouped, names = group_contributions(contrib, ["a", "b", "a", "c", "b"])
    assert names == ["a", "b", "c"]
    np.testing.assert_array_equal(grouped, [[5.0, 18.0, 8.0]])
