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
from agents.training.config import TrainConfig, parse_train_config
from agents.training.train import train
from megapod_gym.fleet.simulator import FleetSimulator

SMALL = {"episode.days": 0.25}


def small_fleet():
    return fleet_for_eval("tri-tz-3site", 0.25)


def small_fleet_train_config(
    n_timesteps: int, with_oracle: bool = True, **extra: object
) -> TrainConfig:
    """PPO on a quarter-day tri-tz-3site, small enough for a test."""
    return parse_train_config(
        {
            "algo": "ppo",
            "scenario": "tri-tz-3site",
            "vec_env": "dummy",
            "n_envs": 2,
            "n_timesteps": n_timesteps,
            "n_steps": 64,
            "batch_size": 64,
            "n_epochs": 1,
            "config_overrides": SMALL,
            "policy_kwargs": {"net_arch": [16, 16]},
            "eval": {"freq": 128, "n_episodes": 1, "days": 0.25, "with_oracle": with_oracle},
            "checkpoint_freq": 128,
            **extra,
        },
        "test",
    )


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
    cfg = small_fleet_train_config(n_timesteps=256)
    out = tmp_path / "run"
    metrics = train(cfg, out, progress=False, final_benchmark=True)
    assert (out / "fleet.yaml").is_file() and not (out / "scenario.yaml").exists()
    assert (out / "best" / "model.zip").is_file()
    assert np.isfinite(metrics["normalized_score"])
    table = (out / "eval" / "benchmark.md").read_text()
    assert "ppo (trained)" in table and "hindsight-optimum" in table
    assert list((out / "tb").rglob("events.out.tfevents.*"))


def test_battery_env_with_idle_batteries_is_global_greedy() -> None:
    """``fleet_action: battery``'s env: an all-zero action plays global-greedy step for step, the
    action is the K batteries only, and a non-zero action moves only the batteries."""
    from agents.training.fleet_battery_env import GlobalGreedyBatteryEnv
    from megapod_gym.envs.fleet_env import MegapodFleetEnv

    cfg = small_fleet()
    seed = eval_seeds(1)[0]
    env = GlobalGreedyBatteryEnv(MegapodFleetEnv(cfg))
    assert env.action_space.shape == (env.n_sites,)
    ref = run_fleet_policy(GlobalGreedy(), cfg, [seed])[0]
    env.reset(seed=seed)
    while True:
        _, _, _, truncated, info = env.step(np.zeros(env.n_sites, np.float32))
        if truncated:
            break
    assert info["episode_kpis"]["fleet_total_usd"] == pytest.approx(ref["profit_usd"], rel=1e-9)

    env.reset(seed=seed)
    rule = env.rule
    obs0 = env._obs
    full = rule.with_battery(obs0, np.full(env.n_sites, 0.5))[0]
    idle = rule.with_battery(obs0, np.zeros(env.n_sites))[0]
    K = env.n_sites
    battery = np.zeros(full.shape, bool)
    battery[1 : 2 * K : 2] = True
    assert np.array_equal(full[~battery], idle[~battery])
    assert np.allclose(full[battery], 0.5)
    with pytest.raises(ValueError, match="NaN"):
        env.step(np.full(K, np.nan, np.float32))


def test_fleet_action_battery_needs_a_fleet() -> None:
    from agents.training.config import TrainConfigError

    with pytest.raises((TrainConfigError, ValueError), match="fleet_action: battery needs a fleet"):
        parse_train_config(
            {"algo": "ppo", "scenario": "urban-12stall-bev", "fleet_action": "battery"}, "test"
        )


@pytest.mark.slow
def test_train_battery_only_on_a_fleet_loads_as_global_greedy_with_the_model(
    tmp_path: Path,
) -> None:
    from agents.policies.fleet_battery import ModelBatteryGlobalGreedy
    from agents.policies.trained import load_trained_policy

    cfg = small_fleet_train_config(n_timesteps=128, fleet_action="battery", with_oracle=False)
    out = tmp_path / "run"
    train(cfg, out, progress=False, final_benchmark=False)
    policy = load_trained_policy(out / "final")
    assert isinstance(policy, ModelBatteryGlobalGreedy)
    assert policy.battery.model.action_space.shape == (3,)
    fleet = fleet_for_eval("tri-tz-3site", 0.25)
    row = run_fleet_policy(policy, fleet, eval_seeds(1))[0]
    assert np.isfinite(row["profit_usd"])
    # the step-0 model (battery mean near 0: global-greedy) was a candidate for best/ too
    from agents.evaluation.compare import read_scalars

    steps, _ = read_scalars(out)["eval/profit_usd"]
    assert steps[0] == 0 and len(steps) >= 2
