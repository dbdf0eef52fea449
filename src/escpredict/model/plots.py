"""Evaluation figures for the MLflow run (the caller logs them with ``mlflow.log_figure``).

Figures are built as ``matplotlib.figure.Figure`` objects on an Agg canvas, never through
pyplot: nothing is registered in pyplot's global figure list, so training can make figures
in a loop or a worker without a display and without leaking memory, and the caller simply
drops the Figure when done. The process-wide backend is left alone.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.calibration import calibration_curve
from sklearn.metrics import PrecisionRecallDisplay, RocCurveDisplay

from escpredict.model.metrics import ArrayLike, expected_calibration_error

Curves = dict[str, tuple[ArrayLike, ArrayLike]]


def _figure(**kwargs: object) -> Figure:
    fig = Figure(**kwargs)
    FigureCanvasAgg(fig)
    return fig


def roc_figure(curves: Curves) -> Figure:
    """ROC curves of several models (name -> (y, p)) on one axes, with the chance diagonal."""
    return _curve_figure(RocCurveDisplay, curves, "ROC")


def pr_figure(curves: Curves) -> Figure:
    """Precision-recall curves (name -> (y, p)) on one axes, with the escalation rate as chance."""
    return _curve_figure(PrecisionRecallDisplay, curves, "Precision-recall")


def _curve_figure(display: Any, curves: Curves, title: str) -> Figure:
    """The curves share one test window, so the chance level is drawn once, from the first."""
    fig = _figure(figsize=(6, 6))
    ax = fig.add_subplot()
    for i, (name, (y, p)) in enumerate(curves.items()):
        display.from_predictions(y, p, name=name, ax=ax, plot_chance_level=i == 0)
    ax.set_title(title)
    return fig


def calibration_figure(y: ArrayLike, p: ArrayLike, n_bins: int = 15) -> Figure:
    """Reliability diagram over equal-width bins, above a histogram of p.

    The histogram shows how many tickets each bin's point rests on; its count axis is
    logarithmic because escalation scores pile up near zero.
    """
    fig = _figure(figsize=(6, 7))
    reliability, histogram = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    observed, predicted = calibration_curve(y, p, n_bins=n_bins, strategy="uniform")
    reliability.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    reliability.plot(predicted, observed, marker="o", label="model")
    reliability.set_ylabel("observed escalation rate")
    reliability.set_title(f"Reliability (ECE = {expected_calibration_error(y, p, n_bins):.4f})")
    reliability.legend(loc="upper left")
    histogram.hist(np.asarray(p, dtype=float), bins=n_bins, range=(0, 1), log=True)
    histogram.set_xlabel("predicted probability")
    histogram.set_ylabel("tickets")
    return fig


def importance_figure(names: list[str], gains: np.ndarray, top: int = 25) -> Figure:
    """Horizontal bars of the ``top`` features by total gain, largest at the top."""
    gains = np.asarray(gains, dtype=float)
    if len(names) != gains.size:
        raise ValueError(f"{len(names)} names but {gains.size} gains")
    order = np.argsort(-gains, kind="stable")[:top][::-1]  # barh draws bottom-up
    fig = _figure(figsize=(7, 0.3 * order.size + 1.5))
    ax = fig.add_subplot()
    # Numeric positions, not name strings: a categorical axis would merge duplicate names.
    ax.barh(np.arange(order.size), gains[order])
    ax.set_yticks(np.arange(order.size), [names[i] for i in order])
    ax.set_xlabel("total gain")
    ax.set_title(f"Top {order.size} features by gain")
    fig.tight_layout()
    return fig
