"""The privileged critic: its features are right, and they never reach the actor or the export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agents.policies.trained import TrainedPolicy, actor_obs
from agents.training.asymmetric import (
    N_PRIVILEGED,
    PRIVILEGED_NAMES,
    AsymmetricActorCriticPolicy,
    privileged_features,
)
from agents.training.vec_env import NativeSB3VecEnv
from megapod_gym.sim import layout as L


def _model(config):
    from stable_baselines3 import PPO

    env = NativeSB3VecEnv(2, config, privileged=True)
    return PPO(
        AsymmetricActorCriticPolicy,
        env,
        n_steps=72,
        batch_size=72,
        n_epochs=1,
        seed=0,
        device="cpu",
        policy_kwargs={"net_arch": [16, 16], "n_actor_features": 27},
    )


def test_privileged_features_follow_the_trace(config) -> None:
    env = NativeSB3VecEnv(2, config, privileged=True)
    env.seed(3)
    obs = env.reset()
    assert obs.shape == (2, 27 + N_PRIVILEGED) == (2, 27 + len(PRIVILEGED_NAMES))
    sim = env.venv.sim
    T = sim.n_steps
    price = sim.series[:, L.SERIES_INDEX["price_usd_per_kwh"], :T]
    priv = obs[:, 27:]
    np.testing.assert_allclose(priv[:, 0], price.mean(axis=1), rtol=1e-5)
    np.testing.assert_allclose(priv[:, 1], price.max(axis=1), rtol=1e-5)
    capacity = sim.params.scalars[:, L.PARAM_INDEX["battery_energy_kwh"]]
    soc = sim.fstate[:, L.FSTATE_INDEX["battery_soc"]]
    np.testing.assert_allclose(priv[:, 5], soc * capacity / 1000.0, rtol=1e-5)
    for _ in range(T - 1):
        obs, _, dones, infos = env.step(np.zeros((2, 2), np.float32))
    assert not dones.any()
    np.testing.assert_allclose(obs[:, 27 + 1], price[:, -1], rtol=1e-5)  # only the last step left
    obs, _, dones, infos = env.step(np.zeros((2, 2), np.float32))
    assert dones.all()
    assert np.all(infos[0]["terminal_observation"][27:] == 0.0)  # nothing left of the day
    assert np.isfinite(privileged_features(env.venv.sim)).all()


def test_privileged_features_never_reach_the_actor(config) -> None:
    import torch

    model = _model(config)
    rng = np.random.default_rng(0)
    obs = rng.uniform(-1, 1, (16, 27 + N_PRIVILEGED)).astype(np.float32)
    other = obs.copy()
    other[:, 27:] = rng.uniform(-5, 5, (16, N_PRIVILEGED))
    a1, _ = model.predict(obs, deterministic=True)
    a2, _ = model.predict(other, deterministic=True)
    np.testing.assert_array_equal(a1, a2)
    x = torch.tensor(obs, requires_grad=True)
    dist = model.policy.get_distribution(x)
    dist.distribution.mean.sum().backward()
    assert torch.all(x.grad[:, 27:] == 0) and torch.any(x.grad[:, :27] != 0)
    v1 = model.policy.predict_values(torch.as_tensor(obs))
    v2 = model.policy.predict_values(torch.as_tensor(other))
    assert not torch.allclose(v1, v2)  # the critic does read them
    # evaluation pads plain observations; the padding does not matter to the actor
    plain = obs[:, :27]
    assert actor_obs(model, plain).shape == obs.shape
    np.testing.assert_array_equal(TrainedPolicy(model, None).act(plain), a1)


def test_export_takes_only_the_env_features(config, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    import onnxruntime as ort

    from agents.training.config import parse_train_config
    from agents.training.train import train

    cfg = parse_train_config(
        {
            "algo": "ppo",
            "n_envs": 2,
            "n_timesteps": 144,
            "n_steps": 72,
            "batch_size": 72,
            "n_epochs": 1,
            "privileged_critic": True,
            "normalize": False,
            "config_overrides": {"episode.days": 0.25},
            "policy_kwargs": {"net_arch": [16, 16]},
            "eval": {"freq": 144, "n_episodes": 1, "days": 0.25, "with_oracle": False},
        },
        "test",
    )
    train(cfg, tmp_path / "run", progress=False, final_benchmark=False)
    from agents.export.onnx import export_policy

    out = export_policy(tmp_path / "run", tmp_path / "policy.onnx")
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[1] == 27
