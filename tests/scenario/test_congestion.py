"""The congested scenarios: queues bind where the calibration says they do (greedy rule, held-out
days), and the utilization of the busy urban site lands in the cited range (sources §2e)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.evaluation.congestion import greedy_congestion
from megapod_gym.config import load_scenario

HOLIDAY = str(Path(__file__).resolve().parents[2] / "configs/examples/highway-holiday-peak.yaml")


def greedy_kpis(name: str, days: int) -> dict[str, float]:
    return greedy_congestion(load_scenario(name), days)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["urban-busy", "ercot-busy-summer"])
def test_busy_urban_sites_are_in_the_cited_utilization_range_and_queue_at_peaks(name: str) -> None:
    k = greedy_kpis(name, 10)
    assert 0.20 <= k["utilization"] <= 0.40, k  # busy urban and corridor sites: 20-40 %
    assert k["balk_rate"] > 0.0 and k["max_queue"] >= 2, k


@pytest.mark.slow
def test_holiday_peak_builds_lines_of_dozens_of_cars() -> None:
    k = greedy_kpis(HOLIDAY, 10)
    assert k["max_queue"] >= 20 and k["mean_wait_min"] > 2.0 and k["balk_rate"] > 0.02, k


def test_the_average_days_stay_uncongested() -> None:
    for name in ("urban-12stall-bev", "highway-64stall"):
        k = greedy_kpis(name, 2)
        assert k["utilization"] < 0.15 and k["balk_rate"] == 0.0, (name, k)
