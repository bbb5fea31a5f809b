"""Policy search (ARS with common random numbers) on a cloned actor."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn.utils import parameters_to_vector

from agents.evaluation.rollout import run_policy
from agents.policies.trained import TrainedPolicy
from agents.training.config import SearchSettings, TrainConfigError, parse_train_config
from agents.training.policy_search import (
    PerturbedActors,
    day_profits,
    search_actor,
    searched_parameters,
)
from agents.training.vec_env import NativeSB3VecEnv


def _ppo(config, privileged: bool = False):
    from stable_baselines3 import PPO

    from agents.training.asymmetric import N_PRIVILEGED, AsymmetricActorCriticPolicy

    env = NativeSB3VecEnv(2, config, privileged=privileged)
    kwargs: dict = {"net_arch": [32, 32]}
    if privileged:  # the actor reads the env's features only, the critic also the privileged ones
        kwargs["n_actor_features"] = env.observation_space.shape[0] - N_PRIVILEGED
    return PPO(
        AsymmetricActorCriticPolicy if privileged else "MlpPolicy",
        env,
        n_steps=72,
        batch_size=72,
        seed=0,
        device="cpu",
        policy_kwargs=kwargs,
    )


@pytest.mark.parametrize("privileged", [False, True], ids=["mlp", "privileged-critic"])
@pytest.mark.parametrize("layers", ["head", "actor"])
def test_each_actor_plays_its_own_rows_and_the_model_is_restored(
    config, layers: str, privileged: bool
) -> None:
    model = _ppo(config, privileged)
    params = searched_parameters(model, layers)
    theta = parameters_to_vector(params).detach().double().numpy()
    moved = theta + 0.5
    days = [11, 12]
    before = theta.copy()
    profits = day_profits(model, params, np.stack([theta, moved]), config, days)
    assert profits.shape == (2, 2)
    np.testing.assert_array_equal(parameters_to_vector(params).detach().double().numpy(), before)
    # the first actor is the model itself: same profit as the model run alone on those days
    alone = [r["profit_usd"] for r in run_policy(TrainedPolicy(model, None), config, days).rows]
    np.testing.assert_allclose(profits[0], alone, rtol=1e-9)
    assert not np.allclose(profits[1], profits[0])
    with pytest.raises(ValueError, match="3 sites for 2 actors"):
        run_policy(PerturbedActors(model, params, np.stack([theta, moved]), 2), config, [1, 2, 3])


def test_search_lifts_a_bad_actor_and_keeps_what_it_selected(config, monkeypatch) -> None:
    import agents.training.policy_search as search_module

    monkeypatch.setattr(search_module, "N_SELECT_DAYS", 4)
    model = _ppo(config)
    with torch.no_grad():  # every action at -1: no compute at all, far below greedy
        model.policy.action_net.weight.zero_()
        model.policy.action_net.bias.fill_(-1.5)
    settings = SearchSettings(
        iterations=6, directions=4, top=2, days=4, noise_std=0.2, step_size=0.2, select_every=2
    )
    info = search_actor(model, settings, config, progress=False)
    assert info["parameters"] == 33 * 2
    gain = info["selection_profit_usd_after"] - info["selection_profit_usd_before"]
    assert gain > 100.0, info["curve"]
    # the model holds the selected actor: it earns on the selection days what the search measured
    rows = run_policy(TrainedPolicy(model, None), config, search_module.selection_seeds(4)).rows
    assert np.mean([r["profit_usd"] for r in rows]) == pytest.approx(
        info["selection_profit_usd_after"]
    )
    assert [c["iteration"] for c in info["curve"]] == [0, 2, 4, 6]


def test_search_never_returns_an_actor_worse_on_the_selection_days(config, monkeypatch) -> None:
    import agents.training.policy_search as search_module

    monkeypatch.setattr(search_module, "N_SELECT_DAYS", 2)
    model = _ppo(config)
    settings = SearchSettings(iterations=2, directions=2, top=1, days=2, step_size=1.0)
    info = search_actor(model, settings, config, progress=False)
    assert info["selection_profit_usd_after"] >= info["selection_profit_usd_before"]
    assert info["selection_profit_usd_after"] == max(
        c["selection_profit_usd"] for c in info["curve"]
    )


def test_search_settings_are_validated() -> None:
    base = {"algo": "ppo", "normalize": {"norm_obs": False}, "pretrain": {"expert": "mpc"}}
    ok = parse_train_config({**base, "pretrain": {"search": {"layers": "actor"}}}, "t")
    assert ok.pretrain.search.layers == "actor"
    with pytest.raises(TrainConfigError, match="top"):
        parse_train_config({**base, "pretrain": {"search": {"directions": 4, "top": 8}}}, "t")
    with pytest.raises(TrainConfigError, match="layers"):
        parse_train_config({**base, "pretrain": {"search": {"layers": "critic"}}}, "t")
    with pytest.raises(TrainConfigError, match="pretrain.search supports algo ppo and a2c"):
        parse_train_config({**base, "algo": "sac", "pretrain": {"search": {}}}, "t")


@pytest.mark.slow
def test_train_searches_after_cloning_and_keeps_both_models(tmp_path, monkeypatch) -> None:
    import json

    import agents.training.policy_search as search_module
    from agents.policies.trained import load_trained_policy
    from agents.training.train import train

    monkeypatch.setenv("MEGAPOD_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(search_module, "N_SELECT_DAYS", 2)
    cfg = parse_train_config(
        {
            "algo": "ppo",
            "n_envs": 2,
            "n_timesteps": 64,
            "n_steps": 32,
            "batch_size": 64,
            "n_epochs": 1,
            "config_overrides": {"episode.days": 0.25},
            "normalize": {"norm_obs": False},
            "policy_kwargs": {"net_arch": [16, 16]},
            "pretrain": {
                "expert": "tou-arbitrage",
                "n_days": 2,
                "epochs": 2,
                "critic_warmup_steps": 0,
                "search": {
                    "iterations": 2,
                    "directions": 2,
                    "top": 1,
                    "days": 2,
                    "select_every": 1,
                },
            },
            "eval": {"freq": 64, "n_episodes": 2, "days": 0.25, "with_oracle": False},
            "checkpoint_freq": 64,
        },
        "test",
    )
    run = tmp_path / "run"
    metrics = train(cfg, run, progress=False, final_benchmark=False)
    info = json.loads((run / "pretrain.json").read_text())
    assert [c["iteration"] for c in info["search"]["curve"]] == [0, 1, 2]
    assert metrics["pretrain"]["search"]["parameters"] == 16 * 2 + 2
    searched = load_trained_policy(run / "searched").model.policy.action_net.weight
    cloned = load_trained_policy(run / "pretrained").model.policy.action_net.weight
    assert searched.shape == cloned.shape
    if info["search"]["selected_iteration"] > 0:  # the search moved the head: both are kept
        assert not torch.equal(searched, cloned)
