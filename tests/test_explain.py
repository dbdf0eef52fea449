"""Grouping SHAP values by source field keeps their sum and names each field once."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from escpredict.model.explain import explain_rows, group_contributions, reason_layout


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


class _FittedColumns:
    """The column lists of a fitted builder with integer-coded categoricals (one column per
    field), a layout main's FeatureBuilder does not build yet; nothing else is stood in for."""

    def __init__(self) -> None:
        self.feature_names = [
            "customer_segment",
            "customer_escalation_rate",
            "customer_days_since_last",
            "word_0",
            "char_0",
        ]
        self.readable_names = [
            "customer segment",
            "customer escalation rate (smoothed)",
            "days since the customer's last ticket",
            "word 'refund'",
            "text contains 'efu'",
        ]
        self.feature_sources = [
            "customer_segment",
            "customer_escalation_rate",
            "customer_days_since_last",
            "text",
            "text",
        ]

    def transform_record(self, record: dict[str, float]) -> sp.csr_matrix:
        return sp.csr_matrix(np.array([[np.nan, 0.2, np.nan, 0.0, 0.0]]))


def test_a_ticket_without_customer_keeps_its_segment_and_merges_only_customer_history() -> None:
    layout = reason_layout(_FittedColumns())
    contrib = np.array([0.3, -0.1, 0.25, 0.4, 0.05, -1.2])  # last: expected value
    row = np.array([2.0, 0.2, np.nan, 1.0, 1.0])
    record = {"customer_segment": "smb", "customer_id": None, "subject": "refund"}

    (reasons,) = explain_rows(layout, contrib[None, :], row[None, :], [record], n=10)

    assert [(r.field, r.text) for r in reasons] == [
        ("text", 'ticket text: "refund"'),
        ("customer_segment", "customer segment = smb"),
        ("customer_id", "no customer known (customer: none given)"),
    ]
    assert sum(r.contribution for r in reasons) == pytest.approx(contrib[:-1].sum())
    assert np.isnan(reasons[1].value)  # a level code means nothing to a reader
