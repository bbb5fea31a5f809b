"""TD3+BC and SAC+BC: the imitation term acts, the warm-up freeze holds, checkpoints stay lean."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agents.training.bc_regularized import SACBC, TD3BC
from agents.training.behaviour_cloning import set_actor_trainable
from agents.training.config import TrainConfigError, parse_train_config
from agents.training.vec_env import NativeSB3VecEnv


def _model(cls, config, alpha: float):
    model = cls(
        "MlpPolicy",
        NativeSB3VecEnv(2, config),
        learning_rate=3e-3,
        learning_starts=0,
        batch_size=64,
        buffer_size=2_000,
        seed=0,
        device="cpu",
        policy_kwargs={"net_arch": [32, 32]},
    )
    rng = np.random.default_rng(0)
    obs = rng.uniform(-1, 1, (256, model.observation_space.shape[0])).astype(np.float32)
    # a simple teacher: the first action is the first feature, the second its negative
    actions = np.stack([np.tanh(obs[:, 0]), -np.tanh(obs[:, 0])], axis=1).astype(np.float32)
    model.set_demonstrations(obs, actions, alpha)
    return model, obs, actions


def _imitation_mse(model, obs, actions) -> float:
    import torch

    with torch.no_grad():
        x = torch.as_tensor(obs)
        pred = model.actor(x, deterministic=True) if isinstance(model, SACBC) else model.actor(x)
    return float(np.mean((pred.numpy() - actions) ** 2))


@pytest.mark.parametrize("cls", [TD3BC, SACBC])
def test_the_imitation_term_pulls_the_actor_to_the_teacher(config, cls) -> None:
    # alpha tiny: the loss is nearly pure imitation, so the actor must learn the teacher
    model, obs, actions = _model(cls, config, alpha=1e-4)
    before = _imitation_mse(model, obs, actions)
    model.learn(600)
    assert _imitation_mse(model, obs, actions) < 0.3 * before


@pytest.mark.parametrize("cls", [TD3BC, SACBC])
def test_frozen_actor_takes_no_step_while_the_critic_learns(config, cls) -> None:
    import torch

    model, _, _ = _model(cls, config, alpha=2.5)
    actor0 = [p.detach().clone() for p in model.actor.parameters()]
    critic0 = [p.detach().clone() for p in model.critic.parameters()]
    set_actor_trainable(model, False)
    model.learn(200)
    assert all(torch.equal(a, p) for a, p in zip(actor0, model.actor.parameters()))
    assert not all(torch.equal(a, p) for a, p in zip(critic0, model.critic.parameters()))
    assert not any(p.requires_grad for p in model.actor.parameters())  # still frozen after
    set_actor_trainable(model, True)
    model.learn(200)
    assert not all(torch.equal(a, p) for a, p in zip(actor0, model.actor.parameters()))


def test_demonstrations_are_required_checked_and_not_saved(config, tmp_path: Path) -> None:
    from stable_baselines3 import TD3

    model, obs, actions = _model(TD3BC, config, alpha=2.5)
    with pytest.raises(ValueError, match="bc_alpha"):
        model.set_demonstrations(obs, actions, 0.0)
    with pytest.raises(ValueError, match="NaN"):
        model.set_demonstrations(np.full_like(obs, np.nan), actions, 2.5)
    with pytest.raises(ValueError, match=r"\[N, F\]"):
        model.set_demonstrations(obs, actions[:10], 2.5)
    model.save(tmp_path / "m.zip")
    loaded = TD3BC.load(tmp_path / "m.zip", device="cpu")
    assert loaded.bc_obs is None  # the checkpoint holds no demonstrations ...
    with pytest.raises(RuntimeError, match="set_demonstrations"):
        loaded.set_env(NativeSB3VecEnv(2, config))
        loaded.learn(100)
    plain = TD3.load(tmp_path / "m.zip", device="cpu")  # ... and loads as plain TD3 for inference
    np.testing.assert_allclose(
        plain.predict(obs[:4], deterministic=True)[0],
        model.predict(obs[:4], deterministic=True)[0],
        atol=1e-6,
    )


def test_bc_alpha_config() -> None:
    base = {"normalize": {"norm_obs": False}, "pretrain": {"expert": "mpc", "bc_alpha": 2.5}}
    assert parse_train_config({**base, "algo": "td3"}, "t").model_class() is TD3BC
    assert parse_train_config({**base, "algo": "sac"}, "t").model_class() is SACBC
    with pytest.raises(TrainConfigError, match="bc_alpha supports algo sac and td3"):
        parse_train_config({**base, "algo": "ppo"}, "t")
    with pytest.raises(TrainConfigError, match="bc_alpha"):
        parse_train_config(
            {**base, "algo": "td3", "pretrain": {"expert": "mpc", "bc_alpha": -1}}, "t"
        )
