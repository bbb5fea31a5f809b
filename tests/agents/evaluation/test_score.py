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
