"""HTML and table files for the manager report.

The HTML is one self-contained file: figures are embedded as base64 PNG ``<img>`` tags, and
the styles are inline, so it opens offline and can be mailed around. The template lives in
the package (``templates/report.html.j2``) and is rendered with autoescaping on, because
agent, team and category names come from customer exports.
"""

from __future__ import annotations

import base64
import io
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd
from matplotlib.figure import Figure

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("escpredict.report", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)
_PERCENT = ("rate", "resolution", "share", "without_escalation")  # after _ONE_DECIMAL
#: Folder of the table files, next to ``report.html``.
TABLES_DIR = "tables"
_ONE_DECIMAL = ("expected", "hours", "csat", "agents_per")


@dataclass
class Table:
    """A table for the HTML (formatted, cut to ``max_rows``) and for the CSV/JSON files (whole).

    Tables are sorted most important first, so the cut keeps what a reader needs and says
    where the rest is.
    """

    title: str
    frame: pd.DataFrame
    note: str = ""
    max_rows: int = 25


@dataclass
class ReportContent:
    """Everything the template shows; the tables are also written as files for BI tools."""

    title: str
    facts: dict[str, str]
    sections: list[dict[str, Any]]
    tables: dict[str, Table] = field(default_factory=dict)


def figure_uri(fig: Figure, dpi: int = 100) -> str:
    """A figure as a ``data:image/png;base64,...`` URI."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def format_value(column: str, value: Any) -> str:
    """Display form of one cell, chosen from the column name; missing values are blank."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ""
    if isinstance(value, bool):
        return "yes" if value else ""
    if isinstance(value, float):
        if any(part in column for part in _ONE_DECIMAL):  # "median_resolution_hours" is hours
            return f"{value:,.1f}"
        if any(part in column for part in _PERCENT):
            return f"{value:.1%}"
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def html_rows(name: str, table: Table) -> dict[str, Any]:
    """Column names and formatted rows of the first ``max_rows`` rows; ``hidden`` counts the rest.

    ``name`` is the table's file name under ``tables/`` (see ``write_tables``).
    """
    shown = table.frame.head(table.max_rows)
    columns = [str(c) for c in shown.columns]
    rows = [
        [format_value(c, v.item() if hasattr(v, "item") else v) for c, v in zip(columns, row)]
        for row in shown.itertuples(index=False, name=None)
    ]
    return {
        "title": table.title,
        "note": table.note,
        "columns": [c.replace("_", " ") for c in columns],
        "rows": rows,
        "hidden": max(len(table.frame) - table.max_rows, 0),
        "file": f"{TABLES_DIR}/{name}.csv",
    }


def render_html(content: ReportContent) -> str:
    sections = [
        {**section, "tables": [html_rows(name, content.tables[name]) for name in section.get("tables", [])]}
        for section in content.sections
    ]
    return _ENV.get_template("report.html.j2").render(
        title=content.title, facts=content.facts, sections=sections
    )


def write_tables(tables: Mapping[str, Table], out_dir: Path) -> dict[str, Path]:
    """Each table as ``<name>.csv`` and ``<name>.json`` (records; NaN as null)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name, table in tables.items():
        csv_path, json_path = out_dir / f"{name}.csv", out_dir / f"{name}.json"
        table.frame.to_csv(csv_path, index=False)
        records = json.loads(table.frame.to_json(orient="records", date_format="iso"))
        json_path.write_text(json.dumps(records, indent=1))
        paths[f"{name}.csv"], paths[f"{name}.json"] = csv_path, json_path
    return paths
