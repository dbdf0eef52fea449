"""Issue 17's benchmark targets pass or fail on the figures they are given, never by default."""

from __future__ import annotations

import pandas as pd
import pytest

from benchmarks.open_tickets import all_targets, mean_bands, scale_targets, targets

AGES = ["creation", "1h", "4h"]


def table(auc_gap: float = 0.0, ece: float = 0.02, recall_gap: float = 0.0) -> pd.DataFrame:
    """A per-band table whose worst band has these figures."""
    rows = []
    for k, age in enumerate(AGES):
        worst = k == len(AGES) - 1
        rows.append({
            "age": age, "roc_auc": 0.8 + (auc_gap if worst else 0.01), "creation_roc_auc": 0.8,
            "ece": ece if worst else 0.01,
            "recall_at_10pct": 0.4 + (recall_gap if worst else 0.0), "creation_recall_at_10pct": 0.4,
            "recall_at_20pct": 0.6 + (recall_gap if worst else 0.0), "creation_recall_at_20pct": 0.6,
        })
    return pd.DataFrame(rows).set_index("age")


@pytest.mark.parametrize(("figures", "failing"), [
    ({}, set()),
    ({"auc_gap": -0.001}, {"open-ticket AUC"}),
    ({"ece": 0.051}, {"ECE, worst"}),
    ({"recall_gap": -0.002}, {"recall at 10%", "recall at 20%"}),
])
def test_each_band_target_fails_on_its_worst_band_alone(figures: dict, failing: set) -> None:
    rows = targets(table(**figures), "profile")
    failed = {r["target"] for r in rows if r["ok"] is False}
    assert {f for f in failing if any(f in t for t in failed)} == failing
    assert len(failed) == len(failing)


def test_targets_not_measured_are_neither_pass_nor_fail() -> None:
    rows = all_targets({})
    assert rows and all(r["ok"] is None and r["measured"] is None for r in rows)


def test_checkpoint_targets_are_judged_at_a_million_tickets_only() -> None:
    small = [{"n": 10_000, "build_s": 1.0, "peak_rss_bytes": 2**28},
             {"n": 30_000, "build_s": 2.0, "peak_rss_bytes": 2**29}]
    rows = {r["target"]: r for r in scale_targets(small)}
    assert rows["checkpoints for 1,000,000 tickets (s)"]["ok"] is None
    big = small + [{"n": 1_000_000, "build_s": 400.0, "peak_rss_bytes": 2**30}]
    rows = {r["target"]: r for r in scale_targets(big)}
    assert rows["checkpoints for 1,000,000 tickets (s)"]["ok"] is False
    assert rows["checkpoints for 1,000,000 tickets, peak RSS (GiB)"]["ok"] is True
    assert rows["checkpoint building grows at most n log n"]["ok"] is False  # 200x for 33x


def test_bands_over_seeds_average_the_figures_sum_the_counts_and_name_each_seeds_choice() -> None:
    def run(auc: float, n: int, uses: str) -> dict:
        return {"open_bands": [{"age": age, "roc_auc": auc, "n": n, "positives": n // 4,
                                "uses": uses} for age in AGES]}

    bands = mean_bands([run(0.70, 400, "open"), run(0.80, 600, "fallback")])

    assert list(bands.index) == AGES
    assert bands["roc_auc"].tolist() == pytest.approx([0.75] * 3)
    assert bands["n"].tolist() == [1000] * 3 and bands["positives"].tolist() == [250] * 3
    assert bands["uses"].tolist() == ["open/fallback"] * 3
    assert (bands["ece_floor"] > 0).all()  # one seed's ECE floor, on the mean counts
