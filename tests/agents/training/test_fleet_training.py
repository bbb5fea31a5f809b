"""Fleets through the agents layer: baselines, evaluation, the benchmark command and training."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from agents.cli import main as cli_main
from agents.evaluation.fleet import fleet_for_eval, run_fleet_policy
from agents.evaluation.rollout import eval_seeds
from agents.policies.fleet_rules import FLEET_BASELINES, GlobalGreedy, IndependentGreedy
from agents.training.config import parse_train_config
from agents.training.train import train
from megapod_gym.fleet.simulator import FleetSimulator

SMALL = {"episode.days": 0.25}


def small_fleet():
    return fleet_for_eval("tri-tz-3site", 0.25)


def test_independent_greedy_never_migrates_and_fills_headroom() -> None:
    rows = run_fleet_policy(IndependentGreedy(), small_fleet(), eval_seeds(2))
    assert all(r["migrations"] == 0 for r in rows)
    assert all(np.isfinite(r["profit_usd"]) for r in rows)


def test_fleet_policies_match_a_direct_simulator_run() -> None:
    """The evaluation loop's profit equals the simulator's own episode total for the same
    setpoints (no hidden reward shaping between the env and the ledger)."""
    cfg = small_fleet()
    seed = eval_seeds(1)[0]
    row = run_fleet_policy(IndependentGreedy(), cfg, [seed])[0]
    fs = FleetSimulator(cfg)
    fs.reset(seed=seed)
    from megapod_gym.sim import layout as L

    while not fs.done:
        m = fs.sim.meas
        it = fs.it_kw
        limit = np.array([c.grid.import_limit_kw for c in fs.site_configs])
        aux = np.array(
            [c.battery.aux_kw if c.battery.energy_kwh > 0 else 0.0 for c in fs.site_configs]
        )
        frac = np.clip((limit - m[:, L.M_EV_REQUESTED_KW] - aux) / (it * m[:, L.M_PUE]), 0.0, 1.0)
        sp = np.zeros((fs.n_sites, 3))
        sp[:, 0] = frac
        sp[:, 2] = np.inf
        fs.step(sp, it, 0.0)
    assert row["profit_usd"] == pytest.approx(fs.totals["fleet_total_usd"], rel=1e-4)


def test_global_greedy_throttles_idle_compute() -> None:
    """With no jobs at all, global-greedy runs compute at the cap floor and uses less energy
    per day than independent greedy, which fills the headroom regardless."""
    cfg = fleet_for_eval(
        small_fleet().model_copy(
            update={
                "jobs": small_fleet().jobs.model_copy(
                    update={"load_factor": 0.0, "initial_load_h": 0.0}
                )
            }
        )
    )
    seeds = eval_seeds(1)
    ind = run_fleet_policy(IndependentGreedy(), cfg, seeds)[0]
    glob = run_fleet_policy(GlobalGreedy(), cfg, seeds)[0]
    assert ind["useful_work_kwh"] == 0.0 == glob["useful_work_kwh"]
    assert glob["grid_import_kwh"] < 0.8 * ind["grid_import_kwh"]
    assert glob["profit_usd"] > ind["profit_usd"]


@pytest.mark.slow
def test_benchmark_command_on_a_fleet(tmp_path: Path) -> None:
    fleet_file = tmp_path / "small.yaml"
    fleet_file.write_text(
        "name: small\nepisode: {days: 0.25, start_day_of_year: [60, 151]}\n"
        "sites:\n  - {scenario: caiso-rt-spring, utc_offset_h: -8}\n"
        "  - {scenario: urban-12stall-bev, utc_offset_h: 1}\n"
    )
    code = cli_main(
        ["benchmark", "--scenarios", str(fleet_file), "--episodes", "2", "--days", "0.25",
         "--out", str(tmp_path / "bench")]
    )  # fmt: skip
    assert code == 0
    rows = list(csv.DictReader((tmp_path / "bench" / "summary.csv").open()))
    policies = [r["policy"] for r in rows]
    assert policies == [*FLEET_BASELINES, "hindsight-optimum"]
    by = {r["policy"]: r for r in rows}
    assert float(by["independent-greedy"]["normalized_score"]) == pytest.approx(0.0)
    assert float(by["hindsight-optimum"]["normalized_score"]) == pytest.approx(100.0)
    # the LP is an upper bound on every simulated policy
    opt = float(by["hindsight-optimum"]["profit_usd"])
    assert all(float(by[p]["profit_usd"]) <= opt for p in FLEET_BASELINES)
    assert "| small | global-greedy |" in (tmp_path / "bench" / "benchmark.md").read_text()


def test_benchmark_refuses_mixing_fleets_and_sites(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli_main(["benchmark", "--scenarios", "tri-tz-3site", "urban-12stall-bev"])
    assert code == 2
    assert "separate runs" in capsys.readouterr().err


@pytest.mark.slow
def test_train_on_a_fleet_writes_the_run_folder_and_compares(tmp_path: Path) -> None:
    cfg = parse_train_config(
        {
            "algo": "ppo",
            "scenario": "tri-tz-3site",
            "vec_env": "dummy",
            "n_envs": 2,
            "n_timesteps": 256,
            "n_steps": 64,
            "batch_size": 64,
            "n_epochs": 1,
            "config_overrides": SMALL,
            "policy_kwargs": {"net_arch": [16, 16]},
            "eval": {"freq": 128, "n_episodes": 1, "days": 0.25, "with_oracle": True},
            "checkpoint_freq": 128,
        },
        "test",
    )
    out = tmp_path / "run"
    metrics = train(cfg, out, progress=False, final_benchmark=True)
    assert (out / "fleet.yaml").is_file() and not (out / "scenario.yaml").exists()
    assert (out / "best" / "model.zip").is_file()
    assert np.isfinite(metrics["normalized_score"])
    table = (out / "eval" / "benchmark.md").read_text()
    assert "ppo (trained)" in table and "hindsight-optimum" in table
    assert list((out / "tb").rglob("events.out.tfevents.*"))
