"""``escpredict check``: a dry run that says what training would read, refuse and label."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from escpredict.cli import app
from escpredict.config import LabelConfig, TrainConfig
from escpredict.onboard.check import CheckReport, check_export

runner = CliRunner()
START = pd.Timestamp("2024-01-01")


def ticket(i: int, **fields: object) -> dict[str, object]:
    """Ticket ``i`` created on day i, resolved by its own agent at tier 1 five hours later."""
    created = START + pd.Timedelta(days=i)
    return {
        "ticket_id": f"T{i}",
        "created_at": created.isoformat(),
        "channel": "email",
        "category": "billing",
        "priority": "low",
        "customer_id": f"c{i % 7}",
        "agent_id": f"a{i % 3}",
        "resolver_id": f"a{i % 3}",
        "resolved_at": (created + pd.Timedelta(hours=5)).isoformat(),
        "initial_tier": 1,
        "final_tier": 1,
        "reassignment_count": 0,
    } | fields


def export(tmp_path: Path, rows: list[dict[str, object]], name: str = "tickets.csv") -> Path:
    path = tmp_path / name
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def escalated_every_third(n: int = 30) -> list[dict[str, object]]:
    """Every window of the default split holds both classes."""
    return [ticket(i, final_tier=2 if i % 3 == 0 else 1) for i in range(n)]


def check(path: Path, cfg: TrainConfig | None = None, **kwargs: object) -> CheckReport:
    return check_export(
        path, kwargs.get("mapping", "generic"), kwargs.get("agents"), cfg or TrainConfig()
    )


def messages(report: CheckReport, level: str) -> str:
    return "\n".join(f.message + " | " + f.cause for f in report.findings if f.level == level)


def test_each_rule_share_counts_resolved_tickets_alone_and_combined(tmp_path: Path) -> None:
    rows = [ticket(i) for i in range(20)]
    for i in (0, 5, 10, 15, 18):
        rows[i]["final_tier"] = 2
    for i in (5, 10, 16, 19):
        rows[i]["resolver_id"] = "senior"
    rows[3]["reassignment_count"] = 3
    rows[7]["resolved_at"] = None  # open: no rule counts it
    rows[7]["final_tier"] = 2
    report = check(export(tmp_path, rows))
    shares = {r.rule: (r.judged, r.fired, r.share, r.only) for r in report.rules}
    assert shares == {
        "explicit_flag": (0, 0, None, 0),
        "tier_raised": (19, 5, round(5 / 19, 4), 3),
        "resolver_differs": (19, 4, round(4 / 19, 4), 2),
        "reassignments": (19, 1, round(1 / 19, 4), 1),
    }
    combined = report.combined
    assert (combined.judged, combined.fired) == (19, 5 + 2 + 1)
    assert (report.resolved, report.open) == (19, 1)
    assert "rule explicit_flag judges no resolved ticket" in messages(report, "info")
    assert report.ok


def test_a_rule_firing_on_every_ticket_warns_with_a_likely_cause(tmp_path: Path) -> None:
    rows = [ticket(i, reassignment_count=4, final_tier=2 if i % 3 else 1) for i in range(30)]
    warnings = messages(check(export(tmp_path, rows)), "warning")
    assert "rule reassignments fires on 100% of the 30 resolved tickets" in warnings
    assert "labels.max_reassignments" in warnings
    assert "every labelled ticket has the same label" in warnings


def test_a_rule_that_never_fires_warns(tmp_path: Path) -> None:
    warnings = messages(check(export(tmp_path, escalated_every_third())), "warning")
    assert "rule reassignments fires on 0%" in warnings
    assert "rule tier_raised" not in warnings


def test_ids_anonymised_per_column_warn_that_resolver_differs_compares_nothing(
    tmp_path: Path,
) -> None:
    rows = [
        ticket(i, agent_id=f"Agent {i % 3}", resolver_id=f"Resolved by {i % 3}") for i in range(30)
    ]
    report = check(export(tmp_path, rows))
    assert "ids look anonymised per column" in messages(report, "warning")
    only_tiers = TrainConfig(labels=LabelConfig(rules=["tier_raised"]))
    assert "anonymised" not in messages(check(export(tmp_path, rows), only_tiers), "warning")


def test_agents_file_sharing_no_id_with_the_tickets_warns(tmp_path: Path) -> None:
    agents = tmp_path / "agents.csv"
    pd.DataFrame({"agent_id": ["u1", "u2"], "hire_date": ["2020-01-01"] * 2}).to_csv(
        agents, index=False
    )
    report = check(export(tmp_path, escalated_every_third()), agents=agents)
    assert "no person id of the ticket export appears in the agents file" in messages(
        report, "warning"
    )
    assert "no agents file" not in messages(report, "info")
    assert "no agents file" in messages(check(export(tmp_path, escalated_every_third())), "info")


def test_a_window_with_one_class_is_a_warning_not_a_failure(tmp_path: Path) -> None:
    rows = [ticket(i, final_tier=2 if i % 3 == 0 and i < 20 else 1) for i in range(30)]
    report = check(export(tmp_path, rows))
    windows = {w.period: (w.labelled, w.escalated) for w in report.windows}
    assert windows["test"][1] == 0 and windows["train"][1] > 0
    assert "the test window" in messages(report, "warning")
    assert "only one class" in messages(report, "warning")
    assert report.ok


def test_rates_per_month_count_labelled_and_escalated_tickets(tmp_path: Path) -> None:
    rows = [ticket(i, final_tier=2 if i in (0, 1, 40) else 1) for i in range(45)]
    rows[44]["resolved_at"] = None
    months = {
        m.period: (m.tickets, m.labelled, m.escalated) for m in check(export(tmp_path, rows)).months
    }
    assert months == {"2024-01": (31, 31, 2), "2024-02": (14, 13, 1)}


def slow_escalations(n: int = 60, export_day: int = 60) -> list[dict[str, object]]:
    """Every third ticket escalated and resolved 10 days later, the rest in 5 hours; tickets
    not resolved by ``export_day`` are still open, as in an export taken then."""
    rows = []
    for i in range(n):
        days = 10 if i % 3 == 0 else 5 / 24
        closed = START + pd.Timedelta(days=i + days)
        done = closed <= START + pd.Timedelta(days=export_day)
        rows.append(ticket(i, final_tier=2 if i % 3 == 0 else 1,
                           resolved_at=closed.isoformat() if done else None))
    return rows


def test_recent_tickets_are_left_out_of_rates_and_windows_as_training_leaves_them_out(
    tmp_path: Path,
) -> None:
    report = check(export(tmp_path, slow_escalations()))
    cut = report.maturity
    # Escalations take 10 days to resolve; the export ends when ticket 59 is (day 59, 5 am).
    assert cut.horizon_days == 10
    assert cut.export_end.startswith("2024-02-29T05:00")
    assert cut.cutoff.startswith("2024-02-19T05:00")  # tickets of days 50..59 are immature
    assert cut.immature == 7  # their quick negatives; their escalations are still open
    months = {m.period: (m.tickets, m.labelled, m.escalated) for m in report.months}
    # February: 6 escalations in the 19 mature tickets, not 6 in 26 (the rate reading low).
    assert months == {"2024-01": (31, 31, 11), "2024-02": (29, 19, 6)}
    assert sum(w.labelled for w in report.windows) == 50
    assert report.windows[-1].end < cut.cutoff
    # The rule shares still count every resolved ticket, immature ones included.
    assert report.combined.judged == 57


def test_rates_and_windows_are_unchanged_when_maturity_is_disabled(tmp_path: Path) -> None:
    cfg = TrainConfig(labels=LabelConfig(maturity_days=0))
    report = check(export(tmp_path, slow_escalations()), cfg)
    assert (report.maturity.horizon_days, report.maturity.immature) == (0, 0)
    assert {m.period: m.labelled for m in report.months} == {"2024-01": 31, "2024-02": 26}


def test_a_class_seen_only_among_immature_tickets_warns_of_one_class(tmp_path: Path) -> None:
    rows = [ticket(i, final_tier=2 if i >= 27 else 1) for i in range(30)]
    cfg = TrainConfig(labels=LabelConfig(maturity_days=5))
    report = check(export(tmp_path, rows), cfg)
    assert report.maturity.immature == 5
    assert report.combined.fired == 3  # the rule still fires on them
    warnings = messages(report, "warning")
    assert "every labelled ticket has the same label (escalated: False) among the 25" in warnings
    assert "the test window" in warnings
    assert "same label" not in messages(check(export(tmp_path, rows)), "warning")


def test_a_ticket_no_rule_can_judge_is_counted_and_named_not_an_error(tmp_path: Path) -> None:
    rows = escalated_every_third(40)
    rows[9] |= {"final_tier": None, "reassignment_count": None, "resolver_id": None}
    report = check(export(tmp_path, rows))
    assert report.ok and report.unlabelled == 1
    assert "1 resolved ticket(s) no label rule can judge are set aside like open tickets " \
           "(2.50% of 40 resolved; labels.max_unlabelled_share 5%). Rows (ticket_id): 10 (T9)" \
           in messages(report, "warning")
    strict = TrainConfig(labels=LabelConfig(max_unlabelled_share=0.01))
    report = check(export(tmp_path, rows), strict)
    assert not report.ok
    assert "more than labels.max_unlabelled_share 1%" in messages(report, "error")


def test_a_horizon_longer_than_the_export_falls_back_as_training_does_and_says_so(
    tmp_path: Path,
) -> None:
    cfg = TrainConfig(labels=LabelConfig(maturity_days=100))
    report = check(export(tmp_path, escalated_every_third()), cfg)
    assert report.ok  # training would not refuse it: it uses a shorter horizon
    cut = report.maturity
    assert 0 < cut.horizon_days < 100 and "labels.maturity_days = 100" in cut.how
    assert "The 100.0-day horizon would leave too little" in messages(report, "warning")
    assert [w.window for w in cut.windows] == ["train", "valid", "test"]
    assert sum(w.tickets_without for w in cut.windows) == 30  # every resolved ticket
    assert sum(w.tickets for w in cut.windows) == 30 - cut.immature
    assert sum(w.labelled for w in report.windows) == 30 - cut.immature


def test_check_names_a_sparse_old_tail_and_measures_the_horizon_without_it(
    tmp_path: Path,
) -> None:
    bulk = [ticket(i, final_tier=2 if i % 3 == 0 else 1) for i in range(200)]
    for i, row in enumerate(bulk):  # five tickets an hour over 40 hours
        row["created_at"] = (START + pd.Timedelta(minutes=12 * i)).isoformat()
        row["resolved_at"] = (START + pd.Timedelta(minutes=12 * i + 30)).isoformat()
    tail = [ticket(1000 + k, final_tier=2) for k in range(12)]
    for k, row in enumerate(tail):  # one a month for a year, each resolved months later
        row["created_at"] = (START - pd.Timedelta(days=30 * (k + 1))).isoformat()
        row["resolved_at"] = (START + pd.Timedelta(hours=1)).isoformat()
    report = check(export(tmp_path, tail + bulk))
    assert "12 created before it" in report.dense_span
    assert report.dense_span in messages(report, "info")
    assert report.maturity.horizon_days < 0.1  # half an hour, not a year


def test_bad_rows_are_counted_by_field_as_training_would_quarantine_them(
    tmp_path: Path,
) -> None:
    rows = escalated_every_third()
    rows[4]["created_at"] = "yesterday"
    rows[6]["created_at"] = "soon"
    rows[6]["initial_tier"] = "one"
    report = check(export(tmp_path, rows))
    assert report.quarantined_rows == 2
    assert report.quarantined_by_field == {"created_at": 2, "initial_tier": 1}
    assert report.tickets == 28
    assert "--quarantine" in messages(report, "warning")
    assert report.ok


def test_one_row_per_update_is_diagnosed_as_an_events_export(tmp_path: Path) -> None:
    rows = escalated_every_third(10)
    report = check(export(tmp_path, rows + rows))
    assert "level: events" in messages(report, "warning")
    assert report.quarantined_by_field == {"ticket_id": 20}


def test_an_export_with_no_usable_ticket_is_an_error(tmp_path: Path) -> None:
    refused = [ticket(i, created_at="soon") for i in range(5)]
    report = check(export(tmp_path, refused))
    assert not report.ok
    assert "no ticket survives validation" in messages(report, "error")
    still_open = [ticket(i, resolved_at=None) for i in range(5)]
    report = check(export(tmp_path, still_open))
    assert "no ticket can be labelled" in messages(report, "error")
    assert "rule tier_raised" not in messages(report, "info")


def test_mapped_and_unused_columns_are_listed(tmp_path: Path) -> None:
    rows = [{"number": r.pop("ticket_id"), **r, "u_notes": "x"} for r in escalated_every_third()]
    mapping = tmp_path / "mine.yaml"
    mapping.write_text("columns:\n  ticket_id: number\n")
    report = check(export(tmp_path, rows), mapping=str(mapping))
    assert report.columns_unused == ["u_notes"]
    sources = {c.field: c.source for c in report.columns_mapped}
    assert sources["ticket_id"] == "number"
    assert "csat" in report.fields_empty


def test_an_events_export_counts_rows_read_and_tickets_after_collapsing(tmp_path: Path) -> None:
    events = []
    for i in range(30):
        first = ticket(i, final_tier=None)
        handler = "senior" if i % 3 == 0 else first["agent_id"]
        last = first | {"updated": first["resolved_at"], "assignee": handler, "note": "done"}
        events += [first | {"updated": first["created_at"], "assignee": first["agent_id"]}, last]
    for event in events:
        del event["agent_id"], event["resolver_id"], event["reassignment_count"]
    mapping = tmp_path / "events.yaml"
    mapping.write_text("level: events\nevents: {time: updated, assignee: assignee}\n")
    report = check(export(tmp_path, events), mapping=str(mapping))
    assert (report.rows_read, report.tickets) == (60, 30)
    assert report.columns_unused == ["note"]
    assert {c.field: c.source for c in report.columns_mapped}["agent_id"] == (
        "events.assignee: assignee"
    )
    shares = {r.rule: (r.judged, r.fired) for r in report.rules}
    assert shares["reassignments"] == (30, 0)


REAL_SAMPLE = Path(__file__).parent / "data" / "servicenow-incident-events-sample.csv"
MAPPINGS = Path(__file__).parents[1] / "pipelines" / "mappings"


def test_the_real_servicenow_sample_checks_clean_with_the_events_mapping() -> None:
    report = check(REAL_SAMPLE, mapping="servicenow-events")
    assert report.ok and (report.rows_read, report.tickets) == (5998, 890)
    resolver = {r.rule: r for r in report.rules}["resolver_differs"]
    assert 0 < resolver.fired < 0.5 * resolver.judged
    assert messages(report, "warning") == ""
    sources = {c.field: c.source for c in report.columns_mapped}
    assert sources["resolved_at"] == "derive.resolved_at"
    assert "resolved_by" in report.columns_unused


def test_the_real_sample_with_resolved_by_as_resolver_warns_ids_are_anonymised(
    tmp_path: Path,
) -> None:
    shipped = yaml.safe_load((MAPPINGS / "servicenow-events.yaml").read_text())
    del shipped["derive"]["resolver_id"]
    shipped["columns"]["resolver_id"] = "resolved_by"
    mapping = tmp_path / "naive.yaml"
    mapping.write_text(yaml.safe_dump(shipped))
    warnings = messages(check(REAL_SAMPLE, mapping=str(mapping)), "warning")
    assert "ids look anonymised per column" in warnings
    assert "rule resolver_differs fires on 100%" in warnings


def test_the_real_sample_with_the_ticket_level_mapping_points_to_an_events_mapping() -> None:
    report = check(REAL_SAMPLE, mapping="servicenow")
    assert not report.ok
    assert "level: events" in messages(report, "warning")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ESCPREDICT_HOME", str(tmp_path))
    return tmp_path


def test_missing_required_column_exits_1_naming_it(project: Path) -> None:
    path = export(
        project, [{k: v for k, v in ticket(i).items() if k != "channel"} for i in range(5)]
    )
    result = runner.invoke(app, ["check", "--tickets", str(path)])
    assert result.exit_code == 1, result.output
    assert "channel" in result.output
    assert "required column is missing" in result.output


def test_unreadable_export_and_unknown_mapping_exit_1(project: Path) -> None:
    result = runner.invoke(app, ["check", "--tickets", "nowhere.csv"])
    assert result.exit_code == 1 and "nowhere.csv" in result.output
    path = export(project, escalated_every_third())
    result = runner.invoke(app, ["check", "--tickets", str(path), "--mapping", "nosuch"])
    assert result.exit_code == 1 and "nosuch" in result.output


def test_warnings_alone_exit_0_and_print_rule_shares(project: Path) -> None:
    path = export(project, escalated_every_third())
    result = runner.invoke(app, ["check", "--tickets", str(path)])
    assert result.exit_code == 0, result.output
    assert "tier_raised" in result.output and "33.3%" in result.output
    assert "warning: rule reassignments fires on 0%" in result.output
    assert "label maturity: horizon" in result.output


def test_set_overrides_the_label_config(project: Path) -> None:
    path = export(project, escalated_every_third())
    result = runner.invoke(
        app, ["check", "--tickets", str(path), "--json", "--set", "labels.rules=[tier_raised]"]
    )
    assert [r["rule"] for r in json.loads(result.output)["rules"]] == ["tier_raised"]


def test_another_export_is_not_checked_against_the_configured_agents(project: Path) -> None:
    path = export(project, escalated_every_third())
    result = runner.invoke(app, ["check", "--tickets", str(path), "--json"])
    assert json.loads(result.output)["agents_path"] is None  # not data/sample/agents.parquet


def test_json_output_is_valid_json_with_the_documented_keys(project: Path) -> None:
    path = export(project, escalated_every_third())
    result = runner.invoke(app, ["check", "--tickets", str(path), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert set(report) == {
        "tickets_path",
        "mapping",
        "agents_path",
        "read",
        "empty_columns_ignored",
        "blank_rows_ignored",
        "rows_read",
        "tickets",
        "quarantined_rows",
        "quarantined_by_field",
        "resolved",
        "open",
        "unlabelled",
        "rules",
        "combined",
        "months",
        "windows",
        "columns_mapped",
        "fields_empty",
        "columns_unused",
        "maturity",
        "dense_span",
        "findings",
        "ok",
        "errors",
        "warnings",
    }
    assert set(report["rules"][0]) == {"rule", "judged", "fired", "share", "only"}
    assert set(report["windows"][0]) == {
        "period",
        "start",
        "end",
        "tickets",
        "labelled",
        "escalated",
        "rate",
    }
    assert set(report["maturity"]) == {
        "export_end", "horizon_days", "cutoff", "immature", "how", "fallback", "windows"
    }
    assert set(report["maturity"]["windows"][0]) == {
        "window", "tickets_without", "escalated_without", "tickets", "escalated"
    }
    assert set(report["findings"][0]) == {"level", "message", "cause"}
    assert report["ok"] is True and report["rows_read"] == 30
