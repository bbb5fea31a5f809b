"""Demonstrations, behaviour cloning, the critic warm-up, the day-end convention and seed splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agents.evaluation.rollout import (
    TRAIN_SEED_LIMIT,
    eval_seeds,
    run_policy,
    validation_seeds,
)
from agents.policies.registry import make_policy
from agents.policies.trained import TrainedPolicy
from agents.training.behaviour_cloning import (
    actor_action,
    actor_parameters,
    clone_actor,
    imitation_mse,
    set_actor_trainable,
)
from agents.training.config import TrainConfigError, parse_train_config
from agents.training.demonstrations import (
    DEMO_SEED_BASE,
    MAX_DEMO_DAYS,
    collect_demonstrations,
    demonstrations,
)
from agents.training.vec_env import NativeSB3VecEnv


@pytest.fixture(scope="module")
def tou_demos(config):
    return collect_demonstrations(config, "tou-arbitrage", n_days=6, noisy_frac=0.5, progress=False)


def _ppo(config, **kw):
    from stable_baselines3 import PPO

    env = NativeSB3VecEnv(2, config)
    return PPO(
        "MlpPolicy",
        env,
        n_steps=72,
        batch_size=72,
        n_epochs=2,
        seed=0,
        device="cpu",
        policy_kwargs={"net_arch": [64, 64], "log_std_init": -2.0},
        **kw,
    )


def test_demonstrations_shape_labels_and_jobs_independence(config, tou_demos) -> None:
    n_steps = 72
    assert tou_demos.obs.shape == (6 * n_steps, 27)
    assert tou_demos.actions.shape == (6 * n_steps, 2)
    assert np.isfinite(tou_demos.obs).all() and np.all(np.abs(tou_demos.actions) <= 1.0)
    assert tou_demos.seeds == tuple(range(DEMO_SEED_BASE, DEMO_SEED_BASE + 6))
    assert max(tou_demos.seeds) < TRAIN_SEED_LIMIT
    # the clean days replay the expert exactly: same profit as an ordinary evaluation run
    clean = run_policy(make_policy("tou-arbitrage"), config, tou_demos.seeds[:3]).rows
    assert tou_demos.profit_usd == pytest.approx(np.mean([r["profit_usd"] for r in clean]))
    two = collect_demonstrations(config, "tou-arbitrage", 6, jobs=2, progress=False)
    np.testing.assert_array_equal(two.obs, tou_demos.obs)
    np.testing.assert_array_equal(two.actions, tou_demos.actions)


def test_noisy_days_visit_other_states_with_clean_labels(config) -> None:
    clean = collect_demonstrations(config, "tou-arbitrage", 2, noisy_frac=0.0, progress=False)
    noisy = collect_demonstrations(config, "tou-arbitrage", 2, noisy_frac=1.0, progress=False)
    assert not np.allclose(clean.obs, noisy.obs)  # perturbed execution drifts the state
    assert np.all(np.abs(noisy.actions) <= 1.0)


def test_bad_demonstration_settings_are_refused(config) -> None:
    with pytest.raises(ValueError, match="n_days"):
        collect_demonstrations(config, "greedy", MAX_DEMO_DAYS + 1)
    with pytest.raises(ValueError, match="noise_std"):
        collect_demonstrations(config, "greedy", 2, noise_std=-0.1)


def test_cache_round_trip(config, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MEGAPOD_CACHE", str(tmp_path))
    first = demonstrations(config, "greedy", n_days=2, progress=False)
    assert len(list((tmp_path / "demos").glob("*.npz"))) == 1
    second = demonstrations(config, "greedy", n_days=2, progress=False)
    np.testing.assert_array_equal(first.obs, second.obs)
    np.testing.assert_array_equal(first.actions, second.actions)
    assert second.profit_usd == pytest.approx(first.profit_usd)


def test_cache_writers_side_by_side_do_not_collide(config, tmp_path: Path, monkeypatch) -> None:
    """Two runs that miss the cache at once both write it: each through its own temporary file."""
    import agents.training.demonstrations as demo_module

    monkeypatch.setenv("MEGAPOD_CACHE", str(tmp_path))
    written: list[str] = []
    real_replace = demo_module.os.replace

    def replace(src, dst):  # the other writer renames its file in before this one's lands
        written.append(Path(src).name)
        if len(written) == 1:
            demonstrations(config, "greedy", n_days=2, progress=False, cache=True)
        real_replace(src, dst)

    monkeypatch.setattr(demo_module.os, "replace", replace)
    demonstrations(config, "greedy", n_days=2, progress=False)  # must not raise
    assert len(written) == 2 and written[0] != written[1]
    assert [p.name for p in (tmp_path / "demos").iterdir()] == [
        Path(written[0]).name.split(".")[0] + ".npz"
    ]


def test_cloning_reproduces_a_simple_expert(config, tou_demos) -> None:
    model = _ppo(config)
    before = imitation_mse(model, tou_demos)
    losses = clone_actor(model, tou_demos, epochs=60, batch_size=64, progress=False)
    after = imitation_mse(model, tou_demos)
    assert losses[-1] < losses[0]
    assert after < 0.1 * before and after < 0.01
    seeds = list(range(900, 904))  # training days the cloning never saw
    cloned = run_policy(TrainedPolicy(model, None), config, seeds).rows
    expert = run_policy(make_policy("tou-arbitrage"), config, seeds).rows
    greedy = run_policy(make_policy("greedy"), config, seeds).rows
    # the cloned policy's profit is the expert's, not greedy's: its distance to the expert is a
    # small fraction of the expert's distance to greedy (here: night-time battery charging)
    to_expert = abs(sum(c["profit_usd"] - e["profit_usd"] for c, e in zip(cloned, expert)))
    expert_vs_greedy = abs(sum(e["profit_usd"] - g["profit_usd"] for e, g in zip(expert, greedy)))
    assert expert_vs_greedy > 100.0
    assert to_expert < 0.2 * expert_vs_greedy


def _recurrent_ppo(config):
    from sb3_contrib import RecurrentPPO

    env = NativeSB3VecEnv(2, config)
    return RecurrentPPO(
        "MlpLstmPolicy",
        env,
        n_steps=72,
        batch_size=72,
        n_epochs=1,
        seed=0,
        device="cpu",
        policy_kwargs={"net_arch": [32], "lstm_hidden_size": 16, "log_std_init": -2.0},
    )


def test_recurrent_cloning_runs_the_lstm_through_each_day_as_the_policy_does(
    config, tou_demos
) -> None:
    import torch

    model = _recurrent_ppo(config)
    T = tou_demos.steps_per_day
    assert T == 72 and len(tou_demos.seeds) * T == len(tou_demos)
    before = imitation_mse(model, tou_demos)
    losses = clone_actor(model, tou_demos, epochs=40, batch_size=2 * T, progress=False)
    assert losses[-1] < 0.3 * losses[0] and imitation_mse(model, tou_demos) < 0.3 * before
    # training-time path (whole days through the LSTM) == run-time path (one step at a time,
    # the state carried, reset at the day's first step), also for the DAgger executor
    from agents.training.demonstrations import ActorExecutor

    days = tou_demos.obs[: 2 * T].reshape(2, T, -1)
    with torch.no_grad():
        batch = actor_action(model, torch.as_tensor(tou_demos.obs[: 2 * T]), n_seq=2).numpy()
    policy, executor = TrainedPolicy(model, None), ActorExecutor(model)
    policy._state, policy._starts = None, np.ones(2, dtype=bool)
    executor._state, executor._start = None, True
    stepped = np.stack([policy.act(days[:, t]) for t in range(T)], axis=1)
    executed = np.stack([executor.act(days[:, t]) for t in range(T)], axis=1)
    np.testing.assert_allclose(stepped, np.clip(batch.reshape(2, T, -1), -1, 1), atol=1e-5)
    np.testing.assert_allclose(executed, stepped, atol=1e-6)
    # the actor's output depends on the day so far: the same observation after a different
    # history gives a different action
    with torch.no_grad():
        late = actor_action(model, torch.as_tensor(days[0, T // 2 :]), n_seq=1).numpy()
    assert not np.allclose(late[0], batch.reshape(2, T, -1)[0, T // 2], atol=1e-4)
    with pytest.raises(ValueError, match="n_seq"):
        actor_action(model, torch.as_tensor(tou_demos.obs[:T]))


def test_critic_warmup_leaves_the_actor_unchanged(config) -> None:
    import torch

    model = _ppo(config)
    actor0 = [p.detach().clone() for p in actor_parameters(model)]
    critic0 = [p.detach().clone() for p in model.policy.value_net.parameters()]
    set_actor_trainable(model, False)
    model.learn(144)
    assert all(torch.equal(a, p) for a, p in zip(actor0, actor_parameters(model)))
    assert not all(torch.equal(a, p) for a, p in zip(critic0, model.policy.value_net.parameters()))
    set_actor_trainable(model, True)
    model.learn(144)
    assert not all(torch.equal(a, p) for a, p in zip(actor0, actor_parameters(model)))


@pytest.mark.parametrize("terminate", [False, True])
def test_day_end_convention(config, terminate: bool) -> None:
    env = NativeSB3VecEnv(2, config, terminate_at_end=terminate)
    env.seed(0)
    env.reset()
    for _ in range(72):
        _, _, dones, infos = env.step(np.zeros((2, 2), np.float32))
    assert dones.all()
    assert all(info["TimeLimit.truncated"] is (not terminate) for info in infos)


def test_validation_and_test_seeds_are_disjoint_and_held_out() -> None:
    val, test = set(validation_seeds(1000)), set(eval_seeds(1000))
    assert not val & test
    assert min(val | test) >= 1_000_000 > TRAIN_SEED_LIMIT


def test_pretrain_config_validation() -> None:
    base = {"algo": "ppo", "normalize": {"norm_obs": False}, "pretrain": {"expert": "mpc"}}
    assert parse_train_config(base, "t").pretrain.expert == "mpc"
    with pytest.raises(TrainConfigError, match="norm_obs"):
        parse_train_config({**base, "normalize": True}, "t")
    with pytest.raises(TrainConfigError, match="expert"):
        parse_train_config({**base, "pretrain": {"expert": "nope"}}, "t")
    with pytest.raises(TrainConfigError, match="day_end"):
        parse_train_config({**base, "vec_env": "dummy", "day_end": "terminate"}, "t")
    recurrent = {**base, "algo": "recurrent_ppo", "policy": "MlpLstmPolicy"}
    assert parse_train_config(recurrent, "t").pretrain.expert == "mpc"
    with pytest.raises(TrainConfigError, match="search supports algo ppo and a2c"):
        parse_train_config({**recurrent, "pretrain": {"expert": "mpc", "search": {}}}, "t")


def test_action_noise_is_a_std_on_every_action_dimension() -> None:
    base = {"algo": "td3", "normalize": False}
    noise = parse_train_config({**base, "action_noise": 0.1}, "t").algo_kwargs(2)["action_noise"]
    np.testing.assert_array_equal(noise._sigma, [0.1, 0.1])
    for bad in (-0.1, 2.0, "big", True):
        with pytest.raises(TrainConfigError, match="action_noise"):
            parse_train_config({**base, "action_noise": bad}, "t")
    with pytest.raises(TrainConfigError, match="action_noise"):
        parse_train_config({"algo": "ppo", "action_noise": 0.1}, "t")  # PPO takes none


def test_sac_exploration_starts_at_the_given_std(config) -> None:
    import torch
    from stable_baselines3 import SAC

    from agents.training.behaviour_cloning import set_sac_exploration_std

    model = SAC("MlpPolicy", NativeSB3VecEnv(1, config), seed=0, device="cpu")
    obs = torch.as_tensor(np.random.default_rng(0).uniform(-1, 1, (4, 27)), dtype=torch.float32)
    set_sac_exploration_std(model, 0.15)
    _, log_std, _ = model.actor.get_action_dist_params(obs)
    np.testing.assert_allclose(log_std.detach().numpy(), np.log(0.15), rtol=1e-6)
    with pytest.raises(ValueError, match="std"):
        set_sac_exploration_std(model, 0.0)


@pytest.mark.slow
def test_auto_expert_keeps_the_better_clone(config, monkeypatch, tmp_path: Path) -> None:
    import agents.training.pretrain as pretrain_module
    from agents.training.config import PretrainSettings

    monkeypatch.setenv("MEGAPOD_CACHE", str(tmp_path))
    monkeypatch.setattr(pretrain_module, "N_SELECT_DAYS", 2)
    model = _ppo(config)
    settings = PretrainSettings(expert="auto", n_days=2, epochs=5)
    info = pretrain_module.pretrain(model, settings, config, progress=False)
    profits = {k: v["clone_selection_profit_usd"] for k, v in info["candidates"].items()}
    assert set(profits) == {"mpc", "tuned-rule"}
    assert info["expert"] == max(profits, key=profits.__getitem__)
    # the model holds the chosen clone: it earns what the selection measured
    rows = run_policy(TrainedPolicy(model, None), config, [8_000, 8_001]).rows
    assert np.mean([r["profit_usd"] for r in rows]) == pytest.approx(profits[info["expert"]])


def test_dagger_data_follow_the_learner_with_the_expert_labels(config, tou_demos) -> None:
    """With an executor, the executor drives (other states than the expert's own) and the labels
    stay the expert's (not what the executor did)."""
    driven = collect_demonstrations(
        config,
        "tou-arbitrage",
        n_days=2,
        noisy_frac=0.0,
        executor=make_policy("greedy"),
        progress=False,
    )
    own = collect_demonstrations(config, "tou-arbitrage", n_days=2, noisy_frac=0.0, progress=False)
    greedy = collect_demonstrations(config, "greedy", n_days=2, noisy_frac=0.0, progress=False)
    np.testing.assert_array_equal(driven.obs, greedy.obs)  # greedy drove: greedy's states
    assert not np.array_equal(driven.obs, own.obs)
    assert not np.allclose(driven.actions, greedy.actions)  # ... labelled by tou-arbitrage
    assert driven.profit_usd == pytest.approx(greedy.profit_usd)
    with pytest.raises(ValueError, match="first_day"):
        collect_demonstrations(config, "greedy", n_days=2, first_day=MAX_DEMO_DAYS - 1)


def test_actor_executor_pickles_and_acts_as_the_model(config) -> None:
    import pickle

    from agents.training.demonstrations import ActorExecutor

    model = _ppo(config)
    obs = np.random.default_rng(0).uniform(-1, 1, (5, model.observation_space.shape[0]))
    executor = pickle.loads(pickle.dumps(ActorExecutor(model)))
    np.testing.assert_allclose(
        executor.act(obs), TrainedPolicy(model, None).act(obs.astype(np.float32)), atol=1e-6
    )


def test_dagger_rounds_aggregate_learner_visited_days(config, monkeypatch, tmp_path) -> None:
    import agents.training.pretrain as pretrain_module
    from agents.training.config import PretrainSettings

    monkeypatch.setenv("MEGAPOD_CACHE", str(tmp_path))
    model = _ppo(config)
    settings = PretrainSettings(
        expert="tou-arbitrage", n_days=2, epochs=3, dagger_rounds=2, dagger_days=2
    )
    info = pretrain_module.pretrain(model, settings, config, progress=False)
    steps_per_day = info["demo_steps"] // 2
    assert [r["demo_steps"] for r in info["dagger"]] == [4 * steps_per_day, 6 * steps_per_day]
    assert all(np.isfinite(r["learner_profit_usd"]) for r in info["dagger"])
    with pytest.raises(ValueError, match="dagger_rounds"):
        PretrainSettings(n_days=MAX_DEMO_DAYS, dagger_rounds=1)
