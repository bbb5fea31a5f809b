"""Behaviour cloning into a stable-baselines3 policy, and the actor freeze of a critic warm-up.

:func:`clone_actor` fits the deterministic action of the model's actor — the Gaussian mean of
PPO/A2C, the squashed mean of SAC, the TD3 actor — to the expert's clean actions by mean squared
error. The critic and PPO's ``log_std`` are left as they are: after cloning, fine-tuning first
trains the critic with the actor frozen (:func:`set_actor_trainable`) so that the first policy
updates rest on a critic that knows the cloned policy's values instead of random ones.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from tqdm.auto import tqdm

from agents.policies.trained import actor_obs
from agents.training.demonstrations import Demonstrations


def actor_parameters(model: Any) -> list[Any]:
    """The parameters that set the model's action (not the critic's, not PPO's ``log_std``)."""
    policy = model.policy
    if hasattr(policy, "action_net"):  # PPO / A2C ActorCriticPolicy
        params = [*policy.mlp_extractor.policy_net.parameters(), *policy.action_net.parameters()]
        if not policy.share_features_extractor:
            params += list(policy.pi_features_extractor.parameters())
        return params
    if hasattr(model, "actor"):  # SAC / TD3
        return list(model.actor.parameters())
    raise TypeError(f"behaviour cloning does not support {type(model).__name__}")


def actor_action(model: Any, obs: Any) -> Any:
    """The deterministic action tensor of the model's actor for an observation tensor."""
    policy = model.policy
    if hasattr(policy, "action_net"):
        from stable_baselines3.common.policies import BaseModel

        features = BaseModel.extract_features(policy, obs, policy.pi_features_extractor)
        return policy.action_net(policy.mlp_extractor.forward_actor(features))
    if type(model).__name__ == "SAC":
        return model.actor(obs, deterministic=True)
    return model.actor(obs)


def clone_actor(
    model: Any,
    demos: Demonstrations,
    epochs: int = 30,
    batch_size: int = 256,
    learning_rate: float = 1e-3,
    seed: int = 0,
    progress: bool = True,
) -> list[float]:
    """Fit the actor to ``demos`` by MSE (Adam); returns the mean loss of every epoch."""
    import torch

    if type(model).__name__ == "RecurrentPPO":
        raise TypeError(
            "behaviour cloning does not support recurrent_ppo; use ppo, a2c, sac or td3"
        )
    obs = torch.as_tensor(actor_obs(model, demos.obs), dtype=torch.float32)
    target = torch.as_tensor(demos.actions, dtype=torch.float32)
    params = actor_parameters(model)
    opt = torch.optim.Adam(params, lr=learning_rate)
    gen = torch.Generator().manual_seed(seed)
    n = obs.shape[0]
    losses: list[float] = []
    model.policy.set_training_mode(True)
    for _ in tqdm(range(epochs), desc="behaviour cloning", disable=not progress, mininterval=2.0):
        perm = torch.randperm(n, generator=gen)
        total = 0.0
        for start in range(0, n, batch_size):
            idx = perm[start : start + batch_size]
            loss = torch.nn.functional.mse_loss(actor_action(model, obs[idx]), target[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * idx.shape[0]
        losses.append(total / n)
    model.policy.set_training_mode(False)
    if hasattr(model, "actor_target"):  # TD3 / SAC keep target copies of the actor (TD3)
        model.actor_target.load_state_dict(model.actor.state_dict())
    return losses


def set_actor_trainable(model: Any, trainable: bool) -> None:
    """Freeze (``False``) or unfreeze the actor, incl. PPO's ``log_std``: a frozen parameter gets no
    gradient, so the optimizer leaves it unchanged while the critic trains."""
    params = actor_parameters(model)
    log_std = getattr(model.policy, "log_std", None)
    if log_std is not None:
        params.append(log_std)
    for p in params:
        p.requires_grad_(trainable)


def imitation_mse(model: Any, demos: Demonstrations) -> float:
    """Mean squared error of the actor's deterministic action on ``demos``."""
    import torch

    with torch.no_grad():
        obs = torch.as_tensor(actor_obs(model, demos.obs), dtype=torch.float32)
        pred = actor_action(model, obs).numpy()
    return float(np.mean((pred - demos.actions) ** 2))
