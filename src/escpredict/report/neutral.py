"""Expected escalations for a ticket as if a random agent of the team had handled it.

The model uses who the agent is (tenure, past tickets and escalations), so its own
probability already "expects" a new hire to escalate more, and comparing a new hire with
it would hide exactly the training gap the report looks for. The expectation used for
fairness therefore keeps every feature of the ticket (text, category, priority, channel,
customer, time, the agent's current workload) and averages the model's calibrated
probability over ``profiles`` agent profiles (values of the agent columns taken from
random tickets of the same window): "how likely would this ticket escalate with a typical
agent?". This is interventional (partial-dependence) averaging, so any correlation between
agent and ticket assignment is deliberately broken.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from escpredict.model.escalation import EscalationModel

#: Columns describing the agent's own experience and record; workload is kept as case mix.
AGENT_COLUMNS: tuple[str, ...] = (
    "agent_tenure_days",
    "agent_prior_resolved",
    "agent_prior_escalated",
    "agent_escalation_rate",
)


def agent_columns(feature_names: list[str]) -> np.ndarray:
    return np.array([feature_names.index(name) for name in AGENT_COLUMNS if name in feature_names])


def with_profile(base: sp.csr_matrix, columns: np.ndarray, values: np.ndarray) -> sp.csr_matrix:
    """``base`` (agent columns empty) with ``values`` written into ``columns`` on every row."""
    stored = values != 0.0  # NaN is stored: it means missing to LightGBM, unlike an absent 0
    cols, vals = columns[stored], values[stored]
    n = base.shape[0]
    patch = sp.csr_matrix(
        (np.tile(vals, n), np.tile(cols, n), np.arange(0, n * len(cols) + 1, len(cols))),
        shape=base.shape,
    )
    return base + patch


def agent_neutral_probability(
    model: EscalationModel, matrix: sp.csr_matrix, profiles: int = 5, seed: int = 0
) -> np.ndarray:
    """Mean calibrated probability of each row over ``profiles`` random agent profiles."""
    columns = agent_columns(model.builder.feature_names)
    if not len(columns) or matrix.shape[0] == 0:
        return model.proba_from_matrix(matrix)
    rng = np.random.default_rng(seed)
    picks = rng.choice(matrix.shape[0], size=profiles, replace=matrix.shape[0] < profiles)
    drawn = matrix[picks][:, columns].toarray()
    base = matrix.copy()
    base.data[np.isin(base.indices, columns)] = 0.0
    base.eliminate_zeros()
    total = np.zeros(matrix.shape[0])
    for values in drawn:
        total += model.proba_from_matrix(with_profile(base, columns, values))
    return total / profiles
