"""Sweep files on pydantic models: unknown keys, bad ranges and non-numbers are refused naming the
key; the shipped sweep files load to the same values as before the models replaced the
hand-written validator."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from agents.evaluation.rollout import TRAIN_SEED_LIMIT
from agents.sweeps.config import Dim, SweepError
from agents.sweeps.spec import load_sweep, parse_sweep
from megapod_gym.config import scenario_names

ROOT = Path(__file__).resolve().parents[3]
SMOKE = ROOT / "configs" / "sweeps" / "ppo-smoke.yaml"
PAPER = ROOT / "configs" / "sweeps" / "paper.yaml"


def smoke_data(**changes: object) -> dict:
    data = yaml.safe_load(SMOKE.read_text())
    data.update(copy.deepcopy(changes))
    return data


def refusal(**changes: object) -> str:
    with pytest.raises(SweepError) as err:
        parse_sweep(smoke_data(**changes), "bad.yaml")
    message = str(err.value)
    assert "bad.yaml" in message
    return message


# ------------------------------------------------------------------------------ unknown keys
@pytest.mark.parametrize(
    ("changes", "line"),
    [
        ({"grdi": 1}, "grdi: unknown key (got 1)"),
        ({"resources_per_trial": {"cpu": 1, "mem": 4}}, "resources_per_trial.mem: unknown key"),
        (
            {"scheduler": {"type": "asha", "max_t": 100, "grace_period": 10, "eta": 3}},
            "scheduler.eta: unknown key",
        ),
    ],
)
def test_unknown_key_is_refused_naming_it(changes: dict, line: str) -> None:
    message = refusal(**changes)
    assert message.startswith("invalid sweep config (bad.yaml):")
    assert line in message
    assert len(message.splitlines()) == 2  # the header and one line: short, like other configs


# ---------------------------------------------------------------------------- search space
@pytest.mark.parametrize(
    ("space", "line"),
    [
        (
            {"learning_rate": {"uniform": [1e-3, 1e-5]}},
            "space.learning_rate.uniform: low must be below high; expected [low, high] with "
            "low < high",
        ),
        (
            {"learning_rate": {"loguniform": [1e-3, 1e-3]}},
            "space.learning_rate.loguniform: low must be below high",
        ),
        ({"n_epochs": {"randint": [5, 5]}}, "space.n_epochs.randint: low must be below high"),
        (
            {"learning_rate": {"loguniform": [0, 1e-3]}},
            "space.learning_rate.loguniform: low must be > 0 on a log scale",
        ),
        ({"n_epochs": {"lograndint": [0, 8]}}, "space.n_epochs.lograndint: low must be > 0"),
        ({"learning_rate": {"quniform": [1e-4, 1e-3, 0]}}, "space.learning_rate.quniform: q must"),
        (
            {"learning_rate": {"loguniform": [1e-5]}},
            "space.learning_rate.loguniform: expected [low, high] with 0 < low < high",
        ),
        ({"n_epochs": {"grid": []}}, "space.n_epochs.grid: expected a non-empty list of values"),
        ({"n_epochs": {"choice": 4}}, "space.n_epochs.choice: expected a non-empty list"),
        (
            {"policy_kwargs": {"net_arch": {"choice": []}}},
            "space.policy_kwargs.net_arch.choice: expected a non-empty list",
        ),
        ({"n_epochs": {"randint": [1.5, 8]}}, "space.n_epochs.randint.0: Input should be a valid"),
        ({"gamma": {"grid": [0.9], "choice": [0.99]}}, "space.gamma: a search-space type goes"),
        ({"seed": {"uniform": [0, 100]}}, "space.seed: seeds are integers"),
        ({"seed": True}, f"space.seed: seeds must be integers in [0, {TRAIN_SEED_LIMIT})"),
    ],
)
def test_bad_search_space_is_refused_naming_the_field(space: dict, line: str) -> None:
    seeds = None if "seed" in space else 1
    assert line in refusal(space=space, seeds=seeds)


def test_bad_range_of_a_scheduler_is_refused_naming_the_field() -> None:
    message = refusal(scheduler={"type": "asha", "max_t": 100, "grace_period": 200})
    assert "scheduler.grace_period: must not exceed max_t (100) (got 200)" in message


def test_valid_search_space_dimensions() -> None:
    spec = parse_sweep(
        smoke_data(
            space={
                "learning_rate": {"loguniform": ["1e-5", "1e-3"]},  # PyYAML 1.1 reads a string
                "gamma": {"uniform": [0.9, 0.999]},
                "clip_range": {"quniform": [0.1, 0.3, 0.05]},
                "n_epochs": {"randint": [1.0, 8]},
                "batch_size": {"lograndint": [16, 129]},
                "policy_kwargs": {"net_arch": {"choice": [[32], [64, 64]]}},
            }
        ),
        "space.yaml",
    )
    assert spec.space["learning_rate"] == Dim("loguniform", (1e-5, 1e-3))
    assert spec.space["n_epochs"] == Dim("randint", (1, 8))
    assert type(spec.space["n_epochs"].args[0]) is int
    assert spec.space["policy_kwargs"]["net_arch"] == Dim("choice", ([32], [64, 64]))


# ---------------------------------------------------------------------------- not numbers
@pytest.mark.parametrize(
    ("changes", "line"),
    [
        ({"num_samples": "3"}, "num_samples: must be a number, not a string (got '3')"),
        ({"sweep_seed": True}, "sweep_seed: must be a number, not a boolean"),
        ({"max_failures": 1.5}, "max_failures: Input should be a valid integer"),
        ({"seeds": "3"}, "seeds.replicates: must be a number, not a string"),
        ({"seeds": [1, True]}, "seeds.list.1: must be a number, not a boolean"),
        ({"resources_per_trial": {"cpu": "2"}}, "resources_per_trial.cpu: must be a number"),
        ({"resources_per_trial": {"cpu": float("inf")}}, "resources_per_trial.cpu: Input should be a finite"),
        ({"space": {"learning_rate": {"loguniform": ["a", 1e-3]}}}, "loguniform.0: must be a number"),
        ({"space": {"learning_rate": {"uniform": [float("nan"), 1e-3]}}}, "uniform.0: Input should be a finite"),
        ({"scheduler": {"type": "asha", "max_t": "100", "grace_period": 10}}, "scheduler.max_t: must be a number"),
        ({"final_benchmark": "yes"}, "final_benchmark: Input should be a valid boolean"),
    ],
)  # fmt: skip
def test_non_number_where_a_number_is_meant_is_refused(changes: dict, line: str) -> None:
    assert line in refusal(**changes)


# ----------------------------------------------------------------------------- shipped files
# Recorded from the hand-written validator before the pydantic models replaced it.
SMOKE_BEFORE = {
    "name": "ppo-smoke",
    "sweep_seed": 0,
    "scenarios": ["urban-12stall-bev"],
    "seeds": 1,
    "space": {"learning_rate": {"grid": [0.0003, 0.001]}},
    "num_samples": 1,
    "resources_per_trial": {"cpu": 1.0},
    "max_concurrent_trials": None,
    "max_failures": 0,
    "scheduler": "none",
    "metric": "eval/profit_usd",
    "mode": "max",
    "final_benchmark": False,
}
SMOKE_BASE_BEFORE = {  # the keys the sweep file sets on top of configs/train/ppo.yaml
    "algo": "ppo",
    "n_timesteps": 256,
    "n_envs": 2,
    "n_steps": 128,
    "batch_size": 64,
    "n_epochs": 2,
    "eval": {"freq": 1000000000, "n_episodes": 1, "days": 0.25, "with_oracle": False},
    "checkpoint_freq": 1000000000,
}
PAPER_BEFORE = {
    "name": "paper",
    "sweep_seed": 20250101,
    "seeds": 3,
    "space": {},
    "num_samples": 1,
    "resources_per_trial": {"cpu": 1.0},
    "max_concurrent_trials": None,
    "max_failures": 2,
    "scheduler": "none",
    "metric": "eval/normalized_score",
    "mode": "max",
    "final_benchmark": True,
}


def test_shipped_sweep_files_load_to_the_same_values() -> None:
    smoke = load_sweep(SMOKE)
    d = smoke.to_dict()
    assert {k: v for k, v in d.items() if k != "algos"} == SMOKE_BEFORE
    assert list(d["algos"]) == ["ppo"]
    base = d["algos"]["ppo"]
    assert {k: base[k] for k in SMOKE_BASE_BEFORE} == SMOKE_BASE_BEFORE
    assert base["policy_kwargs"]["net_arch"] == [32, 32]
    assert base["policy_kwargs"]["activation_fn"] == "tanh"  # from ppo.yaml, merged
    assert (smoke.replicates, smoke.seeds, smoke.n_trials) == (1, None, 2)
    assert smoke.scheduler is None and smoke.resources == {"cpu": 1.0}

    paper = load_sweep(PAPER)
    d = paper.to_dict()
    assert {k: d[k] for k in PAPER_BEFORE} == PAPER_BEFORE
    assert d["scenarios"] == scenario_names()
    assert list(d["algos"]) == ["ppo", "sac", "td3", "recurrent_ppo"]
    for algo, base in d["algos"].items():
        assert base["algo"] == algo
        assert {k: base["eval"][k] for k in ("n_episodes", "days", "with_oracle")} == {
            "n_episodes": 10,
            "days": 1,
            "with_oracle": True,
        }
    assert paper.n_trials == 4 * len(scenario_names()) * 3


def test_training_yaml_paths_resolve_from_any_folder(tmp_path, monkeypatch) -> None:
    """``configs/train/ppo.yaml`` in a sweep file resolves against the repository, not only the
    working folder (before, the fallback root was ``agents/``)."""
    monkeypatch.chdir(tmp_path)
    assert load_sweep(SMOKE).bases["ppo"]["n_steps"] == 128
