"""`escpredict mapping init` on raw event logs, whatever their columns are called.

Each test writes an IT-support event log as a real one looks: one row per status change,
a case number, a timestamp, a status and a sub-status, a support level written L1/L2/L3, the
team and the person involved, case attributes (product, country) and the process-mining
variant of each case. The same log is written under several headers (names the draft has
never seen, names of a known layout, names that say nothing) and in both orders exports use
(by case then time, and by time with cases interleaved).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from escpredict.cli import app
from escpredict.contract import TICKETS_BY_NAME
from escpredict.ingest.loaders import load_tickets
from escpredict.ingest.mapping import load_mapping
from escpredict.onboard.draft import draft_mapping, draft_yaml, read_sample
from escpredict.onboard.draft.cases import find_tickets

#: Meaning of each column → its name in one export.
UNFAMILIAR = {"case": "Case Nr", "time": "Date+Time", "status": "Status", "sub": "Sub Status",
              "level": "Support Lvl", "team": "Involved Team", "person": "Resource",
              "product": "Product", "country": "Country", "variant": "Variant",
              "variant_index": "Variant index"}
#: Timestamp and Resource make it a known process-mining layout, so names are matched
#: exactly: the case number, the support level and the team are found by their values.
KNOWN_LAYOUT = UNFAMILIAR | {"case": "SR Number", "time": "Timestamp", "team": "Involved ST"}
#: Names that say nothing at all.
OPAQUE = {meaning: f"field {letter}" for meaning, letter in zip(UNFAMILIAR, "ABCDEFGHIJK")}

PEOPLE = ["Anne Claire", "Frederic", "Siebren", "Marta", "Kim", "Jonas", "Ines", "Tomasz",
          "Wei", "Sanne", "Luca", "Nadia", "Pavel", "Olga", "Ravi", "Emma"]
TEAMS = {1: ["Service Desk A", "Service Desk B"], 2: ["Network Team", "Apps Team"],
         3: ["Expert Group"]}


def trace(level: int, waits: bool) -> list[tuple[str, str, int]]:
    """(status, sub-status, support level) of each change of a case escalated to ``level``."""
    steps = [("Queued", "Awaiting Assignment", 1), ("Accepted", "Assigned", 1),
             ("Accepted", "In Progress", 1)]
    if waits:
        steps.append(("Accepted", "Wait - User", 1))
    for up in range(2, level + 1):
        steps += [("Queued", "Awaiting Assignment", up), ("Accepted", "In Progress", up)]
    return steps + [("Completed", "Resolved", level), ("Closed", "Closed", level)]


def it_support_log(tickets: int = 300, seed: int = 0) -> pd.DataFrame:
    """The log, by case then time; products differ in how often their cases escalate."""
    rng = np.random.default_rng(seed)
    products = [f"PROD{p}" for p in rng.choice(900, 20, replace=False)]
    variants: dict[tuple[str, ...], int] = {}
    rows = []
    for i in range(tickets):
        product = products[rng.integers(len(products))]
        risk = 0.55 if product in products[:6] else 0.1
        level = 1 + int(rng.random() < risk) + int(rng.random() < 0.3 * risk)
        steps = trace(level, waits=rng.random() < 0.3)
        if rng.random() < 0.05:
            steps = steps[:3]  # still open when the log was exported
        variant = variants.setdefault(tuple(s for s, _, _ in steps), len(variants) + 1)
        at = pd.Timestamp("2024-03-04") + pd.Timedelta(minutes=int(rng.integers(0, 86_400)))
        country = ["Sweden", "Belgium", "Brazil", "India", "Poland"][rng.integers(5)]
        for status, sub, lvl in steps:
            rows.append({
                "case": f"1-{364285768 + 7 * i}", "time": at, "status": status, "sub": sub,
                "level": f"L{lvl}", "team": TEAMS[lvl][rng.integers(len(TEAMS[lvl]))],
                "person": "" if status == "Queued" else PEOPLE[rng.integers(len(PEOPLE))],
                "product": product, "country": country, "variant": f"Variant {variant}",
                "variant_index": str(variant)})
            at += pd.Timedelta(minutes=int(rng.integers(5, 1800)))
    return pd.DataFrame(rows)


def write_log(folder: Path, log: pd.DataFrame, names: dict[str, str], by_time: bool) -> Path:
    if by_time:
        log = log.sort_values("time", kind="stable")
    log = log.assign(time=log["time"].dt.strftime("%d/%m/%Y %H:%M:%S"))
    path = folder / "incident_log.csv"
    log.rename(columns=names).to_csv(path, index=False)
    return path


def changing_columns(log: pd.DataFrame, names: dict[str, str]) -> set[str]:
    """Export columns whose value changes within some case."""
    changes = log.groupby("case").nunique(dropna=False).max() > 1
    return {names[meaning] for meaning, changed in changes.items() if changed}


def creation_sources(tree: dict) -> set[str]:
    """Export columns the draft reads as known at a ticket's creation."""
    def columns_of(source: object) -> list[str]:
        if isinstance(source, str):
            return [source]
        if isinstance(source, dict):
            return [c for key in ("column", "any_of", "join") for c in
                    ([source[key]] if isinstance(source.get(key), str) else source.get(key, []))]
        return []
    at_creation = [s for name, s in tree["columns"].items()
                   if TICKETS_BY_NAME[name].known_at_creation]
    return {c for s in [*at_creation, *tree.get("features", {}).values()] for c in columns_of(s)}


@pytest.mark.parametrize("by_time", [False, True], ids=["by-case", "by-time"])
@pytest.mark.parametrize("names", [UNFAMILIAR, KNOWN_LAYOUT, OPAQUE],
                         ids=["unfamiliar", "known-layout", "opaque"])
def test_an_event_log_is_drafted_as_events_whatever_its_names_and_order(
    names: dict[str, str], by_time: bool, tmp_path: Path
) -> None:
    log = it_support_log()
    tree = yaml.safe_load(draft_yaml(write_log(tmp_path, log, names, by_time)))
    assert tree["level"] == "events"
    assert tree["columns"]["ticket_id"] == names["case"]
    events = tree["events"]
    assert events["time"] == names["time"]
    assert tree["datetime_format"] == "%d/%m/%Y %H:%M:%S"
    assert events["status"] == names["status"]
    assert events["tier"] == {"column": names["level"], "values": {"L1": 1, "L2": 2, "L3": 3}}
    assert events["actor"] == names["person"]
    assert events["queue"] == names["team"]
    assert tree["derive"]["resolved_at"] == {"time": "last", "where": {"status": ["Completed"]}}
    assert tree["derive"]["resolver_id"]["value"] == "actor"
    # what changes within a case is an event column or nothing, never known at creation
    assert not changing_columns(log, names) & creation_sources(tree)
    assert {names["product"], names["country"]} <= creation_sources(tree)
    assert not {names["variant"], names["variant_index"]} & creation_sources(tree)


def test_the_draft_says_why_variants_and_changing_columns_are_not_features(
    tmp_path: Path,
) -> None:
    text = draft_yaml(write_log(tmp_path, it_support_log(), OPAQUE, by_time=True))
    flat = " ".join(line.lstrip("# ") for line in text.splitlines())
    assert "'field J', 'field K': process variants, computed from each case's whole trace" in flat
    assert "'field D' (changes within 100% of tickets): event columns" in flat  # the sub-status
    assert "('Closed' left out: a close follows the resolution" in flat


def test_the_drafted_event_log_passes_check_and_trains_with_the_tier_rule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no pipelines/train.yaml here: the built-in defaults apply
    monkeypatch.setenv("ESCPREDICT_HOME", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    export = write_log(tmp_path, it_support_log(tickets=600, seed=3), UNFAMILIAR, by_time=True)
    drafted = CliRunner().invoke(app, ["mapping", "init", "--tickets", str(export),
                                       "--out", "log.yaml"])
    assert drafted.exit_code == 0, drafted.output

    rule = ["--set", "labels.rules=[tier_raised]"]
    checked = CliRunner().invoke(app, ["check", "--tickets", str(export), "--mapping",
                                       "log.yaml", *rule])
    assert checked.exit_code == 0, checked.output
    tickets = load_tickets(export, load_mapping("log.yaml")).tickets.set_index("ticket_id")
    assert len(tickets) == 600 and tickets["final_tier"].max() == 3
    assert (tickets["initial_tier"] == 1).all()

    trained = CliRunner().invoke(app, [
        "train", "--tickets", str(export), "--mapping", "log.yaml", *rule,
        "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}",
        "--set", "model.num_boost_round=20"])
    assert trained.exit_code == 0, trained.output
    assert "labelled" in trained.output


def test_resolution_is_the_last_completed_status_and_tiers_are_numbers(tmp_path: Path) -> None:
    log = it_support_log(tickets=40)
    export = write_log(tmp_path, log, UNFAMILIAR, by_time=True)
    path = tmp_path / "draft.yaml"
    path.write_text(draft_yaml(export), encoding="utf-8")
    tickets = load_tickets(export, load_mapping(str(path))).tickets.set_index("ticket_id")
    completed = log[log["status"] == "Completed"].groupby("case")["time"].max()
    resolved = tickets["resolved_at"].dropna().dt.tz_localize(None)
    assert resolved.to_dict() == completed.to_dict()  # the close days later is not it
    levels = log.groupby("case")["level"].agg(["first", "max"])
    assert tickets["initial_tier"].to_dict() == levels["first"].str[1:].astype(int).to_dict()
    assert tickets["final_tier"].to_dict() == levels["max"].str[1:].astype(int).to_dict()


def help_desk_export(folder: Path) -> Path:
    """A help desk's process-mining export: known names, case attributes beside the case's
    variant (its trace's number) and the variant's index."""
    log = it_support_log(tickets=120, seed=5)
    frame = pd.DataFrame({
        "Case ID": log["case"], "Activity": log["status"], "Resource": log["person"],
        "Complete Timestamp": log["time"].dt.strftime("%Y/%m/%d %H:%M:%S.000"),
        "Variant": log["variant"], "Variant index": log["variant_index"],
        "customer": "Value " + log["country"].str.len().astype(str),
        "product": log["product"], "seriousness": "Value " + (log["case"].str[-1:])})
    path = folder / "helpdesk.csv"
    frame.to_csv(path, index=False)
    return path


def test_process_variants_of_a_known_layout_are_never_features(tmp_path: Path) -> None:
    tree, text = yaml.safe_load(draft_yaml(p := help_desk_export(tmp_path))), draft_yaml(p)
    assert tree["level"] == "events" and tree["columns"]["ticket_id"] == "Case ID"
    assert {"Variant", "Variant index"}.isdisjoint(creation_sources(tree))
    assert "seriousness" in creation_sources(tree)  # a case attribute stays a feature
    assert "'Variant', 'Variant index': process variants" in " ".join(text.split())


def test_a_ticket_export_with_repeat_customers_stays_one_row_per_ticket() -> None:
    """Customers recur and their tickets are dated: that alone does not make rows events."""
    rng = np.random.default_rng(1)
    minutes = np.sort(rng.integers(0, 90 * 1440, 200))
    created = pd.Timestamp("2024-01-01") + pd.to_timedelta(minutes, "min")
    sample = pd.DataFrame({
        "Ref": [f"T{i:04d}" for i in range(200)],
        "Raised": created.strftime("%Y-%m-%d %H:%M"),
        "Client": [f"C{c}" for c in rng.integers(0, 40, 200)],
        "Kind": rng.choice(["access", "billing", "outage"], 200)})
    assert find_tickets(sample, [], named=None) is None
    assert draft_mapping(sample, "tickets").tree["level"] == "tickets"


def test_a_sample_of_an_event_log_holds_whole_tickets(tmp_path: Path, monkeypatch) -> None:
    """A ticket cut short would look as if its columns never changed."""
    from escpredict.onboard import draft

    monkeypatch.setattr(draft, "SAMPLE_ROWS", 200)
    log = it_support_log(tickets=300)
    sample = read_sample(write_log(tmp_path, log, UNFAMILIAR, by_time=True))
    assert 300 < len(sample) < len(log)
    rows = sample.groupby("Case Nr").size()
    assert rows.equals(log.groupby("case").size()[rows.index].rename_axis("Case Nr"))
