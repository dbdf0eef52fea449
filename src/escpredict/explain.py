"""Group per-column SHAP values by the input field they come from.

SHAP values are additive, so summing a field's columns loses nothing: the grouped values
still add up to the margin. A reader then sees one "priority" reason stated in the ticket's
own value, not a "priority = low" column that is 0 for a high-priority ticket.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp


def group_contributions(
    contrib: np.ndarray, sources: Sequence[str]
) -> tuple[np.ndarray, list[str]]:
    """Sum the columns of `contrib` (n × k, one per feature) that share a source.

    `sources` names each column's source field (``FeatureBuilder.feature_sources``); a
    trailing expected-value column, if `contrib` has one more column than `sources`, is
    kept last. Groups come in order of first appearance.
    """
    contrib = np.asarray(contrib, dtype=np.float64)
    k = len(sources)
    if contrib.shape[1] not in (k, k + 1):
        raise ValueError(f"{contrib.shape[1]} contribution columns for {k} feature sources")
    groups, first, inverse = np.unique(np.asarray(sources), return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")  # appearance order, not alphabetical
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    indicator = sp.csr_matrix(
        (np.ones(k), (np.arange(k), rank[inverse])), shape=(k, groups.size)
    )
    grouped = np.asarray(contrib[:, :k] @ indicator)
    if contrib.shape[1] == k + 1:
        grouped = np.hstack([grouped, contrib[:, k:]])
    return grouped, [str(g) for g in groups[order]]
