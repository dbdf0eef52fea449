"""The benchmark's verdicts: each target passes on one side of its limit, fails on the other,
and is never passed when this run did not measure it (``--quick``, ``--skip-http``)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from benchmarks import run, training

FULL = run.parse([])  # sizes 10k, 100k, 1M; HTTP on; quality judged at 30k
QUALITY = {"auc_ratio": 0.98, "ece": 0.01}


def training_run(n: int, **figures: float) -> dict[str, Any]:
    return {"n": n, "total_s": 100.0, "peak_rss_bytes": 2 * 2**30, "quality": dict(QUALITY),
            **figures}


def measured() -> dict[str, Any]:
    """A full run whose every figure meets its target."""
    server = {"p99_ms": 5.0, "saturation_failures": 0, "fixed_rate_failures": 0}
    return {
        "training": [training_run(n) for n in (10_000, 30_000, 100_000, 1_000_000)],
        "growth": [{"stage": "fit", "ok": True}, {"stage": "total", "ok": True}],
        "http": {"throughput_ratio": 8.0, "probability_difference": 0.0,
                 "servers": {"escpredict serve": dict(server), "mlflow models serve": dict(server)}},
        "http_batch": {"batch_ratio_median": 9.0},
        "inprocess": {"ratio_median": 2.0},
        "realistic": {"runs": [{"n": 20_000}] * 3, "mean": {
            "auc_ratio": 0.975, "ece": 0.02, "test_auc": 0.80, "baseline_auc": 0.75,
            "reference_auc": 0.79, "ceiling_ratio": 0.99, "ceiling_auc": 0.80}},
        "servicenow": {"n": 24_000, "quality": {
            "test_auc": 0.90, "ece": 0.02, "baseline_auc": 0.85, "reference_auc": 0.89}},
    }


def verdicts(results: dict[str, Any], args: Any = FULL) -> dict[str, bool | None]:
    return {t["target"]: t["ok"] for t in run.targets(results, args)}


def verdict(results: dict[str, Any], starts: str, args: Any = FULL) -> bool | None:
    (ok,) = [ok for name, ok in verdicts(results, args).items() if name.startswith(starts)]
    return ok


def at_1m(results: dict[str, Any]) -> dict[str, Any]:
    return next(r for r in results["training"] if r["n"] == 1_000_000)


def at_quality(results: dict[str, Any]) -> dict[str, Any]:
    return next(r for r in results["training"] if r["n"] == 30_000)["quality"]


def ours(results: dict[str, Any]) -> dict[str, Any]:
    return results["http"]["servers"]["escpredict serve"]


Setter = Callable[[dict[str, Any], float], None]
GIB = 2**30

#: (target name's start, how to set its figure, a value that passes, one that fails)
LIMITS: list[tuple[str, Setter, float, float]] = [
    ("HTTP throughput", lambda r, v: r["http"].update(throughput_ratio=v), 5.0, 4.99),
    ("HTTP p99", lambda r, v: ours(r).update(p99_ms=v), 9.99, 10.0),
    ("HTTP failed requests", lambda r, v: ours(r).update(fixed_rate_failures=v), 0, 1),
    ("HTTP failed requests",
     lambda r, v: r["http"]["servers"]["mlflow models serve"].update(saturation_failures=v), 0, 3),
    ("HTTP: same model", lambda r, v: r["http"].update(probability_difference=v), 1e-9, 2e-9),
    ("HTTP one batch", lambda r, v: r["http_batch"].update(batch_ratio_median=v), 5.0, 4.99),
    ("in-process", lambda r, v: r["inprocess"].update(ratio_median=v), 2.99, 3.0),
    ("training on 1,000,000", lambda r, v: at_1m(r).update(total_s=v), 299.0, 300.0),
    ("training peak RSS", lambda r, v: at_1m(r).update(peak_rss_bytes=v * GIB), 7.9, 8.0),
    ("every stage grows", lambda r, v: r["growth"][1].update(ok=bool(v)), True, False),
    ("test AUC / oracle AUC at", lambda r, v: at_quality(r).update(auc_ratio=v), 0.97, 0.969),
    ("ECE at", lambda r, v: at_quality(r).update(ece=v), 0.0199, 0.02),
    ("realistic 20,000, mean of 3 seeds: test AUC / well-specified",
     lambda r, v: r["realistic"]["mean"].update(test_auc=0.80 * v, reference_auc=0.70), 0.99, 0.989),
    ("realistic 20,000, mean of 3 seeds: ECE",
     lambda r, v: r["realistic"]["mean"].update(ece=v), 0.0299, 0.03),
    ("realistic 20,000, mean of 3 seeds: test AUC − plain",
     lambda r, v: r["realistic"]["mean"].update(reference_auc=0.80 - v), 0.0, -0.001),
    ("ServiceNow log (24,000 tickets): test AUC − plain",
     lambda r, v: r["servicenow"]["quality"].update(reference_auc=0.90 - v), 0.0, -0.001),
    ("ServiceNow log (24,000 tickets): ECE",
     lambda r, v: r["servicenow"]["quality"].update(ece=v), 0.0299, 0.03),
]


def test_a_run_meeting_every_limit_passes_every_target_but_the_context_rows() -> None:
    checked = run.targets(measured(), FULL)
    assert {t["target"]: t["ok"] for t in checked if t["limit"] != "(context)"} == {
        t["target"]: True for t in checked if t["limit"] != "(context)"
    }
    # realistic: AUC / oracle, margin over the baseline, the well-specified model; ServiceNow:
    # margin over the baseline
    assert [t["ok"] for t in checked if t["limit"] == "(context)"] == [None] * 4


@pytest.mark.parametrize(
    ("target", "set_figure", "passing", "failing"), LIMITS, ids=[row[0] for row in LIMITS]
)
def test_each_target_passes_on_one_side_of_its_limit_and_fails_on_the_other(
    target: str, set_figure: Setter, passing: float, failing: float
) -> None:
    results = measured()
    set_figure(results, passing)
    assert verdict(results, target) is True
    set_figure(results, failing)
    assert verdict(results, target) is False
    others = {name: ok for name, ok in verdicts(results).items() if not name.startswith(target)}
    assert False not in others.values()  # the figure moved only its own target


def test_targets_not_measured_are_not_judged() -> None:
    results = measured()
    del results["http"], results["http_batch"], results["realistic"], results["servicenow"]
    results["training"] = [r for r in results["training"] if r["n"] != 1_000_000]
    results["growth"] = []

    judged = verdicts(results)

    unmeasured = ("HTTP", "training on", "training peak RSS", "every stage grows", "ServiceNow")
    assert {name: ok for name, ok in judged.items() if name.startswith(unmeasured)} == {
        name: None for name in judged if name.startswith(unmeasured)
    }
    assert len([name for name in judged if name.startswith(unmeasured)]) == 11  # ServiceNow: 2 + context
    assert not any(name.startswith("realistic") for name in judged)


def test_quick_judges_no_training_limit_at_ten_thousand_tickets_and_no_growth() -> None:
    """--quick trains at 10k and the quality size only: the 1M limits and n log n growth
    were not measured, so they show "—", not a pass earned by a run 100 times smaller."""
    quick = run.parse(["--quick"])
    runs = [training_run(n, stages_s={"fit": 30.0}) for n in sorted({*quick.sizes, quick.quality_size})]
    results = {**measured(), "training": runs,
               "growth": training.growth([r for r in runs if r["n"] in quick.sizes])}
    del results["http"], results["http_batch"]

    judged = verdicts(results, quick)

    assert results["growth"] == []
    assert verdict(results, "every stage grows", quick) is None
    assert verdict(results, "training on 1,000,000", quick) is None
    assert verdict(results, "training peak RSS at 1,000,000", quick) is None
    assert judged[f"test AUC / oracle AUC at {quick.quality_size:,}"] is True


def test_the_table_marks_unmeasured_targets_with_a_dash_never_a_tick() -> None:
    results = measured()
    del results["http"]
    results["growth"] = []
    results["training"] = [r for r in results["training"] if r["n"] != 1_000_000]
    rows = run.targets_table(run.targets(results, FULL))

    unmeasured = [row for row in rows if row.startswith(("| HTTP t", "| HTTP p", "| HTTP f",
                                                         "| HTTP:", "| training", "| every stage"))]
    assert len(unmeasured) == 7
    assert all(row.endswith("| not run | — |") for row in unmeasured), unmeasured
    failing = copy.deepcopy(measured())
    failing["inprocess"]["ratio_median"] = 4.0
    (row,) = [r for r in run.targets_table(run.targets(failing, FULL)) if "in-process" in r]
    assert row.endswith("| 4.0 | ❌ |")


def agreement(name: str, auc_gap: float = 0.001, same: bool = True) -> dict[str, Any]:
    counts = {"n_train": 700, "n_valid": 150, "n_test": 150}
    return {"name": name, "local_roc_auc": 0.80, "dask_roc_auc": 0.80 + auc_gap,
            "local_ece": 0.01, "dask_ece": 0.01, "local_counts": counts,
            "dask_counts": counts if same else counts | {"n_test": 149},
            "same_test_tickets": same, "max_abs_dp": 0.01}


def scale_run(kind: str, n: int, fit_s: float, peak: float = 0.5) -> dict[str, Any]:
    return {"kind": kind, "n": n, "workers": 2, "memory_limit": GIB, "restarts": 0,
            "peak_rss": {"a": peak * GIB, "b": peak * GIB}, "stages_s": {"fit": fit_s}, "wall_s": fit_s,
            "worker_cpu_s": {"fit": fit_s}, "client_cpu_s": {"fit": 0.0}}


def dask_verdicts(kept: dict[str, Any]) -> dict[str, bool | None]:
    return {t["target"]: t["ok"] for t in run.targets({**measured(), "dask": kept}, FULL)
            if t["target"].startswith("Dask") and t["limit"] != "(context)"}


def test_dask_targets_are_judged_only_on_the_data_and_size_they_name() -> None:
    smaller = {"agreement": [agreement("realistic events 3,000")],
               "scale": [scale_run("events", 100_000, 10.0), scale_run("events", 500_000, 60.0)]}
    assert set(dask_verdicts(smaller).values()) == {None}
    assert "Dask" not in "".join(verdicts(measured()))  # no kept results, no Dask rows

    kept = {"agreement": [agreement("realistic events 100,000"), agreement("ServiceNow full log")],
            "scale": [scale_run("events", 500_000, 60.0), scale_run("events", 2_000_000, 250.0)]}
    judged = dask_verdicts(kept)
    assert [ok for name, ok in judged.items() if "tickets: every stage" not in name] == [True] * 6
    assert judged["Dask, tickets: every stage's CPU seconds from 1,000,000 to 5,000,000 tickets "
                  "(dask_scale.md)"] is None


@pytest.mark.parametrize(("change", "target"), [
    (lambda k: k["agreement"].__setitem__(0, agreement("realistic events 100,000", 0.0051)),
     "Dask vs local engine, realistic events 100,000: larger"),
    (lambda k: k["agreement"].__setitem__(1, agreement("ServiceNow full log", same=False)),
     "Dask vs local engine, ServiceNow full log: test tickets"),
    (lambda k: k["scale"][1].update(restarts=1), "Dask, event log of 2,000,000"),
    (lambda k: k["scale"][1].update(peak_rss={"a": GIB, "b": 0.5 * GIB}), "Dask, event log of 2,000,000"),
    (lambda k: k["scale"][1].update(worker_cpu_s={"fit": 400.0}), "Dask, events: every stage"),
])
def test_each_dask_target_fails_on_its_own_figure(change: Callable[[dict], None], target: str) -> None:
    kept = {"agreement": [agreement("realistic events 100,000"), agreement("ServiceNow full log")],
            "scale": [scale_run("events", 500_000, 60.0), scale_run("events", 2_000_000, 250.0)]}
    change(kept)
    judged = dask_verdicts(kept)
    assert [ok for name, ok in judged.items() if name.startswith(target)] == [False]
    assert False not in [ok for name, ok in judged.items() if not name.startswith(target)]
def test_open_ticket_targets_are_listed_only_when_that_section_ran() -> None:
    """Without --open-tickets its targets are not rows at all; with it, each row not measured
    (here: everything) shows "—"."""
    def is_open_ticket_row(name: str) -> bool:
        return (name.startswith(("open tickets", "checkpoint")) or "open-ticket" in name
                or "age band" in name or name.endswith("ECE at creation"))

    assert not any(is_open_ticket_row(name) for name in verdicts(measured()))
    opened = verdicts({**measured(), "open_tickets": {}})
    assert opened["open tickets: HTTP p99 at 50 req/s, scoring with a state (ms)"] is None
    assert opened["checkpoints for 1,000,000 tickets (s)"] is None


def test_the_realistic_quality_is_each_figure_averaged_over_seeds_and_unknown_if_any_lacks_it() -> None:
    runs = [
        {"quality": {"test_auc": 0.70, "ece": 0.02, "ceiling_auc": 0.80}},
        {"quality": {"test_auc": 0.74, "ece": 0.04, "ceiling_auc": None}},
    ]

    mean = training.mean_quality(runs)

    assert mean["test_auc"] == pytest.approx(0.72) and mean["ece"] == pytest.approx(0.03)
    assert mean["ceiling_auc"] is None
