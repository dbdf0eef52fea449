"""The manager report end to end: built from a registered model, opened in headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread
from typer.testing import CliRunner

from escpredict.cli import app
from escpredict.lifecycle.pyfunc import load_escalation_model
from escpredict.lifecycle.registry import use_store
from escpredict.report.build import ReportResult, build_report
from escpredict.report.drivers import OTHER, shap_sample
from escpredict.report.fairness import ABOVE, BELOW, NOT_ENOUGH, OE_COLUMNS
from escpredict.report.period import PeriodError, choose_period, select_period
from escpredict.report.render import ReportContent, Table, render_html
from tests.conftest import Trained, store_client

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
              for name in ("agent", "team", "team_category", "tenure_category")}
    assert {"agent_id", *OE_COLUMNS} <= set(tables["agent"].columns)
    resolved = {int(table["n"].sum()) for table in tables.values()}
    assert len(resolved) == 1 and 0 < resolved.pop() <= report.n_tickets  # every ticket, once
    records = json.loads(report.files["kpis.json"].read_text())
    created = pd.read_parquet(trained.data_dir / "tickets.parquet")["created_at"]
    mature = int(trained.result.maturity.mature(created).sum())  # too recent ones read low
    assert sum(r["tickets"] for r in records) == mature < report.n_tickets
    client = store_client(trained.tracking_uri)
    (folder,) = client.list_artifacts(report.run_id, "reports")
    logged = {a.path.rsplit("/", 1)[-1] for a in client.list_artifacts(report.run_id, folder.path)}
    assert logged == {"report.html", "tables"}


def test_by_default_the_report_covers_every_ticket_of_the_models_data(
    report: ReportResult, trained: Trained
) -> None:
    exported = pd.read_parquet(trained.data_dir / "tickets.parquet")
    assert report.n_tickets == len(exported)
    kpi = pd.read_csv(report.files["kpis.csv"])
    assert len(kpi) == 18  # 18 months of data: monthly points
    assert kpi["period_start"].str.endswith("-01").all()


def test_since_until_narrow_the_period_and_a_short_one_gets_weekly_points(
    trained: Trained, tmp_path: Path
) -> None:
    narrow = build_report("models:/escalation-risk@candidate", out=tmp_path,
                          tracking_uri=trained.tracking_uri,
                          since=date(2024, 3, 1), until=date(2024, 4, 30))
    created = pd.read_parquet(trained.data_dir / "tickets.parquet")["created_at"]
    inside = (created >= pd.Timestamp("2024-03-01", tz="UTC")) & (
        created < pd.Timestamp("2024-05-01", tz="UTC"))
    assert narrow.n_tickets == int(inside.sum())
    kpi = pd.read_csv(narrow.files["kpis.csv"])
    assert kpi["period_start"].tolist()[:2] == ["2024-02-26", "2024-03-04"]  # Monday weeks
    assert len(kpi) == 10 and kpi["tickets"].sum() == narrow.n_tickets
    assert "2024-03-01 to 2024-04-30" in narrow.html.read_text()


def test_a_period_without_tickets_is_an_error_naming_the_datas_span() -> None:
    tickets = pd.DataFrame({"created_at": pd.to_datetime(["2024-01-05", "2024-02-10"], utc=True)})
    assert len(select_period(tickets, date(2024, 2, 1), None, "t.csv")) == 1
    assert len(select_period(tickets, None, date(2024, 1, 5), "t.csv")) == 1  # until is included
    with pytest.raises(PeriodError, match=r"t.csv: no tickets .* covers 2024-01-05 to 2024-02-10"):
        select_period(tickets, date(2025, 1, 1), None, "t.csv")
    with pytest.raises(PeriodError, match="after"):
        select_period(tickets, date(2024, 2, 1), date(2024, 1, 1), "t.csv")


def test_by_default_a_sparse_old_tail_is_left_out_of_the_period_with_a_footnote() -> None:
    """A year of one survivor a week, then eight weeks of 200 tickets a day: the KPIs would
    start with 52 near-empty weeks whose escalation rate is that of the survivors."""
    tail = pd.date_range("2023-01-02", periods=52, freq="7D", tz="UTC")
    bulk = pd.date_range("2024-01-01", periods=200 * 56, freq="7min12s", tz="UTC")
    tickets = pd.DataFrame({"created_at": tail.append(bulk)})

    window, period = choose_period(tickets, None, None, "t.csv")

    assert len(window) == len(bulk)
    assert period.describe() == "2024-01-01 to 2024-02-25 (where the export is dense)"
    assert period.note.startswith("Left out by default: 52 tickets created before 2024-01-01 "
                                  "(from 2023-01-02; --since to include them)")
    assert "under 10% of the export's usual 200.1 tickets a day" in period.note
    window, period = choose_period(tickets, date(2023, 6, 1), None, "t.csv")  # asked for
    assert len(window) == len(bulk) + 30 and period.note == ""
    assert period.how == "--since"


def test_a_dense_export_is_covered_whole_without_a_footnote() -> None:
    tickets = pd.DataFrame({"created_at": pd.date_range("2024-01-01", "2024-03-01", freq="h",
                                                        tz="UTC")})
    window, period = choose_period(tickets, None, None, "t.csv")
    assert len(window) == len(tickets) and period.note == ""
    assert period.how == "every ticket of the data"


def test_cli_refuses_a_period_without_tickets_in_one_line(trained: Trained, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, [
        "report", "--model", "models:/escalation-risk@candidate", "--out", str(tmp_path),
        "--tracking-uri", trained.tracking_uri, "--since", "2031-01-01",
    ])
    assert result.exit_code == 2
    assert "no tickets created from 2031-01-01" in " ".join(result.output.split())
    assert not list(tmp_path.iterdir())  # nothing half-written


def reads_as_a_column(name: str) -> bool:
    """A one-hot level ("priority = low") or an n-gram ("word 'refund'") rather than a field."""
    return name.startswith(("priority = ", "channel = ", "category = ", "word ", "phrase ",
                            "text contains "))


def test_drivers_are_input_fields_never_one_hot_levels(report: ReportResult) -> None:
    html = report.html.read_text()
    for name in ("drivers_by_category", "drivers_by_tenure"):
        fields = set(pd.read_csv(report.files[f"{name}.csv"])["field"])
        assert {"ticket text", "priority"} <= fields
        assert not any(map(reads_as_a_column, fields))
    findings = re.findall(r"drivers: ([^<]*)</li>", html)
    assert not any(reads_as_a_column(d) for line in findings for d in line.split(", "))


def test_shap_columns_are_summed_into_one_named_group_per_input_field(trained: Trained) -> None:
    use_store(trained.tracking_uri)
    model = load_escalation_model("models:/escalation-risk@candidate")
    frame = pd.read_parquet(trained.data_dir / "tickets.parquet").head(40)
    matrix = model.matrix(model.with_history(frame))
    sample = shap_sample(model, matrix, frame.index)
    assert len(sample.names) == len(set(model.builder.feature_sources)) < matrix.shape[1]
    assert {"priority", "channel", "category", "ticket text"} <= set(sample.names)
    assert not any(map(reads_as_a_column, sample.names))
    full = model.contributions(matrix.toarray())  # grouping loses nothing: same margins
    assert sample.values.sum(axis=1) + sample.base == pytest.approx(full.sum(axis=1))
    channel = sample.names.index("channel")
    assert np.isnan(sample.data[:, channel]).all()  # a one-hot field has no single value


def test_the_category_heatmap_shows_top_categories_plus_other(
    report: ReportResult, trained: Trained
) -> None:
    shown = set(pd.read_csv(report.files["drivers_by_category.csv"])["category"])
    exported = pd.read_parquet(trained.data_dir / "tickets.parquet")["category"]
    assert len(shown) <= 13
    assert set(exported.value_counts().index[:12]) <= shown
    if exported.nunique() > 12:
        assert any(c.startswith(OTHER) for c in shown)


def test_agent_table_is_cut_in_the_html_but_whole_in_the_csv(report: ReportResult) -> None:
    agents = pd.read_csv(report.files["gaps_by_agent.csv"])
    assert len(agents) > 25
    judged = agents["status"] != NOT_ENOUGH
    assert not judged.iloc[judged.sum():].any()  # "not enough data" rows come last
    significant = agents["status"].isin([ABOVE, BELOW])
    assert not significant.iloc[significant.sum():].any()  # then flagged ones lead
    for part in (significant, judged & ~significant):
        assert agents.loc[part, "z"].abs().is_monotonic_decreasing  # strongest evidence first
    section = report.html.read_text().split("<h3>By agent</h3>")[1].split("</table>")[0]
    assert section.count("<tr>") == 1 + 25  # header and the 25 strongest rows
    assert f"{len(agents) - 25} more in tables/gaps_by_agent.csv" in report.html.read_text()


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
