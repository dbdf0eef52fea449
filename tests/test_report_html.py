"""The manager report end to end: built from a registered model, opened in headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from matplotlib.image import imread
from mlflow.tracking import MlflowClient

from escpredict.report.build import ReportResult, build_report
from escpredict.report.fairness import OE_COLUMNS
from escpredict.report.render import ReportContent, Table, render_html
from tests.conftest import Trained

#: Injected into a copy of the report: once loaded, record every image's decoded width.
IMAGE_CHECK = """<script>
window.addEventListener("load", () => {
  document.body.setAttribute("data-images", JSON.stringify(
    Array.from(document.images, img => ({alt: img.alt, complete: img.complete, width: img.naturalWidth}))));
});
</script></body>"""


def chromium(*args: str, profile: Path) -> str:
    binary = shutil.which("chromium")
    if binary is None:
        pytest.skip("Debian's chromium is not installed (make test installs it)")
    done = subprocess.run(
        [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", *args],
        capture_output=True, text=True, timeout=60, check=True,
    )
    return done.stdout


@pytest.fixture(scope="module")
def report(trained: Trained, tmp_path_factory: pytest.TempPathFactory) -> ReportResult:
    out = tmp_path_factory.mktemp("reports")
    return build_report(
        "models:/escalation-risk@candidate", out=out, tracking_uri=trained.tracking_uri
    )


def test_report_writes_tables_for_bi_tools_and_logs_everything_to_the_run(
    report: ReportResult, trained: Trained
) -> None:
    assert report.html.exists() and report.run_id == trained.result.run_id
    tables = {name: pd.read_csv(report.files[f"gaps_by_{name}.csv"])
              for name in ("agent", "team_category", "tenure_category")}
    assert {"agent_id", *OE_COLUMNS} <= set(tables["agent"].columns)
    resolved = {int(table["n"].sum()) for table in tables.values()}
    assert len(resolved) == 1 and 0 < resolved.pop() <= report.n_tickets  # every ticket, once
    records = json.loads(report.files["kpis_monthly.json"].read_text())
    assert sum(r["tickets"] for r in records) == report.n_tickets
    client = MlflowClient(trained.tracking_uri)
    (folder,) = client.list_artifacts(report.run_id, "reports")
    logged = {a.path.rsplit("/", 1)[-1] for a in client.list_artifacts(report.run_id, folder.path)}
    assert logged == {"report.html", "tables"}


def test_report_is_self_contained(report: ReportResult) -> None:
    html = report.html.read_text()
    sources = re.findall(r'<img[^>]* src="([^"]*)"', html)
    assert len(sources) >= 5  # KPIs, beeswarm, two heatmaps, agent ratios
    assert all(src.startswith("data:image/png;base64,") for src in sources)
    assert not re.search(r'(src|href)="(https?:)?//', html)  # nothing fetched from the network


def test_chromium_renders_every_plot(report: ReportResult, tmp_path: Path) -> None:
    probe = tmp_path / "probe.html"
    probe.write_text(report.html.read_text().replace("</body>", IMAGE_CHECK))
    dom = chromium("--virtual-time-budget=10000", "--dump-dom", probe.as_uri(), profile=tmp_path / "p1")
    images = json.loads(re.search(r'data-images="([^"]*)"', dom).group(1).replace("&quot;", '"'))
    assert len(images) >= 5
    assert all(img["complete"] and img["width"] > 100 for img in images), images
    assert {"SHAP summary", "KPI trends"} <= {img["alt"] for img in images}

    shot = report.html.with_name("report.png")
    chromium(f"--screenshot={shot}", "--window-size=1400,4000", report.html.as_uri(),
             profile=tmp_path / "p2")
    pixels = imread(shot)
    assert pixels.shape[:2] == (4000, 1400)
    colours = len({tuple(p) for p in (pixels[::7, ::7, :3] * 255).astype(int).reshape(-1, 3)})
    assert colours > 200  # plots, not a blank page


def test_names_from_exports_are_escaped() -> None:
    hostile = pd.DataFrame({"agent_id": ["<script>alert(1)</script>"]})
    content = ReportContent(
        "t", {"Tickets": "<b>"},
        [{"id": "s", "title": "s", "intro": "i", "figures": [], "tables": ["t"]}],
        {"t": Table("t", hostile)},
    )
    html = render_html(content)
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)" in html
