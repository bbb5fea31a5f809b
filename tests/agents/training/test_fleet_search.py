"""Training the fleet battery policy by random search, and the one ARS loop it shares with the
single-site policy search."""

from __future__ import annotations

import csv
import json
from types import SimpleNamespace

import numpy as np
import pytest
from pydantic import ValidationError

from agents.cli import main as cli_main
from agents.evaluation.fleet import fleet_for_eval
from agents.policies.fleet_battery import POLICY_FILE, load_learned_battery, save_learned_battery
from agents.training.fleet_search import (
    SEARCH_FILE,
    FleetSearchSettings,
    battery_day_profits,
    train_fleet_battery,
)
from agents.training.policy_search import ars_search

TINY = {"iterations": 2, "directions": 2, "top": 1, "days": 1, "select_every": 1}


def test_ars_climbs_a_noisy_objective_with_common_days() -> None:
    target = np.array([1.0, -2.0, 0.5])

    def profits(thetas: np.ndarray, days: list[int]) -> np.ndarray:
        day_noise = np.array([np.sin(d) * 100.0 for d in days])  # shared by every theta
        return -((thetas - target) ** 2).sum(axis=1)[:, None] + day_noise[None, :]

    settings = SimpleNamespace(
        iterations=60, directions=4, top=2, days=3, noise_std=0.1, step_size=0.1, select_every=5
    )
    info = ars_search(np.zeros(3), profits, settings, np.random.default_rng(0), progress=False)
    assert np.linalg.norm(info["theta"] - target) < 0.5 * np.linalg.norm(target)
    assert info["selection_profit_usd_after"] > info["selection_profit_usd_before"]
    assert info["selected_iteration"] > 0


def test_ars_keeps_the_start_when_every_step_is_worse() -> None:
    def profits(thetas: np.ndarray, days: list[int]) -> np.ndarray:  # the start is the optimum
        loss = (thetas**2).sum(axis=1)
        return np.where(np.abs(thetas).sum(axis=1) == 0, 0.0, -1.0 - loss)[:, None] * np.ones(
            len(days)
        )

    settings = SimpleNamespace(
        iterations=5, directions=2, top=1, days=1, noise_std=0.5, step_size=1.0, select_every=1
    )
    info = ars_search(np.zeros(2), profits, settings, np.random.default_rng(1), progress=False)
    np.testing.assert_array_equal(info["theta"], 0.0)
    assert info["selected_iteration"] == 0


def test_fleet_search_writes_a_policy_never_worse_on_the_selection_days(tmp_path) -> None:
    settings = FleetSearchSettings(**TINY, noise_std=0.3, step_size=0.3)
    record = train_fleet_battery("tri-tz-3site", settings, tmp_path / "run", progress=False,
                                  days=0.25)  # fmt: skip
    assert record["selection_profit_usd_after"] >= record["selection_profit_usd_before"]
    saved = json.loads((tmp_path / "run" / SEARCH_FILE).read_text())
    assert saved["settings"] == settings.model_dump() and saved["episode_days"] == 0.25
    assert len(saved["curve"]) == 3
    policy = load_learned_battery(tmp_path / "run")
    assert policy.weights.shape == (38, 1) and np.isfinite(policy.weights).all()
    if record["selected_iteration"] == 0:
        np.testing.assert_array_equal(policy.weights, 0.0)


@pytest.mark.slow
def test_worker_processes_play_the_same_days_as_this_process() -> None:
    cfg = fleet_for_eval("tri-tz-3site", 0.25)
    thetas = np.random.default_rng(2).normal(scale=0.2, size=(2, 38))
    here = battery_day_profits(cfg, thetas, [7, 8])
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1) as pool:
        there = pool.submit(battery_day_profits, cfg, thetas, [7, 8]).result()
    np.testing.assert_array_equal(here, there)
    assert here[0, 0] != here[1, 0]  # the weights matter


def test_search_settings_name_the_bad_field() -> None:
    with pytest.raises(ValidationError, match="search.top must be <= search.directions"):
        FleetSearchSettings(directions=2, top=3)
    with pytest.raises(ValidationError, match="n_jobs"):
        FleetSearchSettings(n_jobs=0)


def test_benchmark_scores_a_trained_fleet_run_folder_and_search_refuses_to_overwrite(
    tmp_path, capsys
) -> None:
    run = tmp_path / "learned"
    save_learned_battery(np.zeros((38, 1)), "tri-tz-3site", run)
    out = tmp_path / "bench"
    args = ["benchmark", "--scenarios", "tri-tz-3site", "--policies", "global-greedy", str(run),
            "--episodes", "1", "--days", "0.25", "--out", str(out)]  # fmt: skip
    assert cli_main(args) == 0
    with (out / "episodes.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    profit = {r["policy"]: float(r["profit_usd"]) for r in rows}
    assert profit["global-greedy-learned-battery (learned)"] == profit["global-greedy"]
    assert cli_main(["fleet-search", "--out", str(run)]) != 0
    assert "already holds a trained fleet policy" in capsys.readouterr().err
    assert (run / POLICY_FILE).exists()
