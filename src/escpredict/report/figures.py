"""Matplotlib/shap figures for the manager report.

Like ``escpredict.model.plots``, figures live on their own Agg canvas, never in pyplot's global
list, so building a report leaks nothing and needs no display.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import shap
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from escpredict.model.plots import _figure
from escpredict.report.drivers import ShapSample
from escpredict.report.kpis import MONTHLY

#: (column, title, y-axis format) of the KPI small multiples.
_KPI_PANELS: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (("escalation_rate",), "Escalation rate", "{:.1%}"),
    (("first_contact_resolution", "resolved_without_escalation"),
     "First-contact resolution / resolved without escalation", "{:.1%}"),
    (("median_hours_escalated", "median_hours_not_escalated"),
     "Median resolution time (hours)", "{:.0f}"),
    (("agents_per_escalated",), "Agents involved per escalated ticket", "{:g}"),
    (("csat_after_escalation", "csat_without_escalation"), "Mean CSAT", "{:.1f}"),
    (("tickets", "resolved"), "Tickets created / resolved", "{:,.0f}"),
)


def kpi_figure(kpis: pd.DataFrame, freq: str) -> Figure:
    """Small multiples of the daily, weekly or monthly KPIs (``kpis.period_kpis``)."""
    fig = _figure(figsize=(15, 6.5), layout="constrained")
    axes = fig.subplots(2, 3)
    x = np.arange(len(kpis))
    step = max(1, len(kpis) // 10)
    starts = pd.to_datetime(kpis["period_start"])
    labels = starts.dt.strftime("%b %Y" if freq == MONTHLY else "%d %b")
    for ax, (columns, title, fmt) in zip(axes.flat, _KPI_PANELS, strict=True):
        ax.set_title(title, fontsize=10)
        ax.set_xticks(x[::step], labels.iloc[::step], rotation=45, fontsize=8)
        if kpis[list(columns)].isna().all().all():  # e.g. an export without CSAT
            ax.text(0.5, 0.5, "not in this export", ha="center", va="center",
                    transform=ax.transAxes, color="#777777")
            ax.set_yticks([])
            continue
        for column in columns:
            ax.plot(x, kpis[column].astype(float), marker="o", ms=3,
                    label=column.replace("_", " "))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _, f=fmt: f.format(v)))
        ax.grid(alpha=0.3)
        if len(columns) > 1:
            ax.legend(fontsize=7)
    return fig


def beeswarm_figure(sample: ShapSample, fields: np.ndarray) -> Figure:
    """shap's beeswarm of the strongest fields on the SHAP sample.

    Fields of several columns (one-hot, text) have no single value, so shap draws their
    points grey; numeric fields are coloured from low (blue) to high (red).
    """
    explanation = shap.Explanation(
        values=sample.values[:, fields],
        base_values=sample.base,
        data=sample.data[:, fields],
        feature_names=[sample.names[j] for j in fields],
    )
    fig = _figure(figsize=(10, 0.42 * len(fields) + 1.5))
    ax = fig.subplots()
    with warnings.catch_warnings():  # shap takes colour quantiles of all-NaN (grey) fields too
        warnings.filterwarnings("ignore", "All-NaN slice", RuntimeWarning)
        shap.plots.beeswarm(explanation, max_display=len(fields), ax=ax, show=False,
                            plot_size=None, group_remaining_features=False)
    ax.set_xlabel("SHAP value (impact on escalation log-odds)")
    fig.tight_layout()
    return fig


def heatmap_figure(table: pd.DataFrame, title: str) -> Figure:
    """Mean |SHAP| per group (columns) and field (rows), from ``drivers.mean_abs_by``."""
    values = table.drop(columns="n").T
    fig = _figure(figsize=(0.75 * values.shape[1] + 4.5, 0.38 * values.shape[0] + 2.5))
    ax = fig.subplots()
    image = ax.imshow(values.to_numpy(dtype=float), aspect="auto", cmap="Reds")
    ax.set_xticks(range(values.shape[1]), [f"{c}\n(n={n})" for c, n in zip(values.columns, table["n"])],
                  rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(values.shape[0]), values.index, fontsize=8)
    ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax, label="mean |SHAP| (log-odds)")
    fig.tight_layout()
    return fig


def ratio_figure(table: pd.DataFrame, label: str, title: str, max_rows: int = 40) -> Figure:
    """Forest plot: observed/expected with its 95% interval for groups with enough data."""
    shown = table.dropna(subset=["ratio"]).head(max_rows).iloc[::-1]
    fig = _figure(figsize=(8, 0.26 * len(shown) + 1.6))
    ax = fig.subplots()
    y = np.arange(len(shown))
    colours = np.where(shown["ci_low"] > 1, "#c0392b", np.where(shown["ci_high"] < 1, "#27ae60", "#7f8c8d"))
    ax.errorbar(shown["ratio"], y, xerr=[shown["ratio"] - shown["ci_low"], shown["ci_high"] - shown["ratio"]],
                fmt="none", ecolor=colours, elinewidth=1.5)
    ax.scatter(shown["ratio"], y, c=colours, zorder=3, s=18)
    ax.axvline(1.0, color="black", lw=0.8, ls="--")
    ax.set_yticks(y, shown[label].astype(str), fontsize=8)
    ax.set_xlabel("observed / expected escalations (95% interval)")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def workload_figure(curves: pd.DataFrame, labels: dict[str, str] | None = None) -> Figure:
    """Recall at workload per age band: the open-ticket model (solid) and the at-creation
    model (dashed) on the same open tickets, one colour per age (``labels``: its legend)."""
    fig = _figure(figsize=(8, 5), layout="constrained")
    ax = fig.subplots()
    for k, (age, curve) in enumerate(curves.groupby("age", sort=False)):
        colour = f"C{k}"
        x = np.r_[0.0, curve["workload"].to_numpy()] * 100
        ax.plot(x, np.r_[0.0, curve["recall"].to_numpy()], color=colour,
                label=(labels or {}).get(age, age))
        ax.plot(x, np.r_[0.0, curve["creation_recall"].to_numpy()], color=colour, ls="--",
                alpha=0.6)
    ax.plot([0, 100], [0, 1], color="#999999", lw=0.8, ls=":")
    ax.set_xlabel("share of the open tickets of that age reviewed, highest risk first (%)")
    ax.set_ylabel("share of their later escalations caught")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.0%}"))
    ax.grid(alpha=0.3)
    ax.legend(title="age (dashed: at-creation model)", fontsize=8)
    return fig
