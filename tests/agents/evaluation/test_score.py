"""Formatting of scores: one sample is shown as n = 1, never as nan."""

from __future__ import annotations

import math

import pytest

from agents.evaluation.benchmark import markdown_table, run_benchmark
from agents.evaluation.score import format_pm, format_with_ci, mean_ci


def test_formats() -> None:
    assert format_with_ci(12.34, 10.0, 14.5) == "12.3 (10.0 – 14.5)"
    assert format_with_ci(12.34, math.nan, math.nan) == "12.3 (n = 1)"
    assert format_with_ci(math.nan, math.nan, math.nan) == "–"
    assert format_pm(*mean_ci([5.0]), ",.0f") == "5 (n = 1)"
    assert format_pm(*mean_ci([4.0, 6.0])).startswith("5.0 ± ")


@pytest.mark.slow
def test_one_episode_benchmark_table_has_no_nan() -> None:
    result = run_benchmark(
        ["urban-12stall-bev"], ["tou-arbitrage"], n_episodes=1, jobs=1, show_progress=False
    )
    table = markdown_table(result.summary())
    assert "nan" not in table.lower() and "(n = 1)" in table


def test_paired_gap_is_the_score_difference_and_cancels_shared_day_noise() -> None:
    import numpy as np

    from agents.evaluation.score import normalized_score, paired_gap

    rng = np.random.default_rng(1)
    greedy = 40_000 + rng.normal(0, 2_000, 30)  # day-to-day noise far above the difference
    optimum = greedy + 1_000 + rng.uniform(0, 200, 30)
    reference = greedy + 900
    policy = reference + 10 + rng.normal(0, 2, 30)
    gap, low, high = paired_gap(policy, reference, greedy, optimum)
    assert gap == pytest.approx(
        normalized_score(policy, greedy, optimum) - normalized_score(reference, greedy, optimum)
    )
    assert 0.0 < low < gap < high  # the shared noise cancels: a steady $10/day lead is clear
    same = paired_gap(reference, reference, greedy, optimum)
    assert same == (0.0, 0.0, 0.0)
    assert math.isnan(paired_gap(policy[:1], reference[:1], greedy[:1], optimum[:1])[1])


def test_gap_to_mpc_line_reads_the_comparison(tmp_path) -> None:
    import csv

    from agents.training.train import gap_to_mpc

    path = tmp_path / "episodes.csv"
    profits = {
        "greedy": [100.0, 200.0, 150.0],
        "mpc": [180.0, 290.0, 240.0],
        "hindsight-optimum": [200.0, 300.0, 250.0],
        "ppo (best on validation)": [185.0, 285.0, 245.0],
    }
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, ["scenario", "policy", "seed", "profit_usd"])
        w.writeheader()
        for policy, values in profits.items():
            for seed, v in zip([7, 8, 9], values):
                w.writerow({"scenario": "s", "policy": policy, "seed": seed, "profit_usd": v})
    line = gap_to_mpc(path, "ppo (best on validation)")
    assert line is not None and "+1.67 points" in line and "on 2 / 3 days" in line
    assert gap_to_mpc(path, "sac (best on validation)") is None
    assert gap_to_mpc(tmp_path / "missing.csv", "ppo (best on validation)") is None
