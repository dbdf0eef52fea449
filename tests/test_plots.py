"""Specification of the evaluation figures (escpredict.model.plots)."""

from __future__ import annotations

import io

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure

from escpredict.model.plots import calibration_figure, importance_figure, pr_figure, roc_figure

pytestmark = pytest.mark.filterwarnings("error")


@pytest.fixture
def scored() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    p = rng.uniform(size=600)
    return (rng.uniform(size=600) < p).astype(int), p


def renders(fig: Figure) -> bool:
    """The figure draws to PNG (what mlflow.log_figure does) and never entered pyplot."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue().startswith(b"\x89PNG") and plt.get_fignums() == []


@pytest.mark.parametrize("make", [roc_figure, pr_figure])
def test_curve_figures_draw_every_model_and_one_chance_line(make, scored) -> None:
    y, p = scored
    fig = make({"lightgbm": (y, p), "baseline": (y, np.sqrt(p))})
    (ax,) = fig.axes
    assert len(ax.lines) == 3
    labels = ax.get_legend_handles_labels()[1]
    assert [label.split(" (")[0] for label in labels] == ["lightgbm", "Chance level", "baseline"]
    assert renders(fig)


def test_calibration_figure_has_reliability_and_histogram(scored) -> None:
    y, p = scored
    fig = calibration_figure(y, p**2, n_bins=10)
    reliability, histogram = fig.axes
    assert len(reliability.lines) == 2  # diagonal reference + model
    assert "ECE" in reliability.get_title()
    assert len(histogram.patches) == 10
    assert sum(bar.get_height() for bar in histogram.patches) == len(p)
    assert renders(fig)


def test_importance_figure_shows_the_top_features_largest_first() -> None:
    names = [f"feature {i}" for i in range(40)]
    gains = np.arange(40, dtype=float)
    fig = importance_figure(names, gains, top=25)
    (ax,) = fig.axes
    assert len(ax.patches) == 25
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    assert ticks[-1] == "feature 39"  # drawn at the top
    assert "feature 14" not in ticks
    assert renders(fig)


def test_importance_figure_keeps_duplicate_names_and_checks_lengths() -> None:
    fig = importance_figure(["word 'x'", "word 'x'", "channel = chat"], np.array([3.0, 2.0, 1.0]))
    assert len(fig.axes[0].patches) == 3
    with pytest.raises(ValueError, match="names"):
        importance_figure(["a", "b"], np.array([1.0]))
