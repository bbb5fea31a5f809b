"""Behaviour cloning into a stable-baselines3 policy, and the actor freeze of a critic warm-up.

:func:`clone_actor` fits the deterministic action of the model's actor — the Gaussian mean of
PPO/A2C, the squashed mean of SAC, the TD3 actor, the Gaussian mean of RecurrentPPO's LSTM actor
— to the expert's clean actions by mean squared error. A recurrent actor is fitted on whole days:
its LSTM starts from zeros at a day's first step (as in the environment, where an episode is a
day) and runs through the day's demonstration in order, so it learns from the day so far.

The critic and PPO's ``log_std`` are left as they are: after cloning, fine-tuning first trains the
critic with the actor frozen (:func:`set_actor_trainable`) so that the first policy updates rest on
a critic that knows the cloned policy's values instead of random ones.
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
    if hasattr(policy, "action_net"):  # PPO / A2C ActorCriticPolicy (and the recurrent one)
        params = [*policy.mlp_extractor.policy_net.parameters(), *policy.action_net.parameters()]
        if not policy.share_features_extractor:
            params += list(policy.pi_features_extractor.parameters())
        if getattr(policy, "lstm_actor", None) is not None:
            params += list(policy.lstm_actor.parameters())
        return params
    if hasattr(model, "actor"):  # SAC / TD3
        return list(model.actor.parameters())
    raise TypeError(f"behaviour cloning does not support {type(model).__name__}")


def is_recurrent(model: Any) -> bool:
    """Whether the model's actor carries an LSTM state (sb3-contrib's RecurrentPPO)."""
    return type(model).__name__ == "RecurrentPPO"


def actor_action(model: Any, obs: Any, n_seq: int | None = None) -> Any:
    """The deterministic action tensor of the model's actor for an observation tensor.

    A recurrent actor needs ``n_seq``: ``obs`` then holds ``n_seq`` whole sequences one after the
    other (``[n_seq * T, F]``), each run from a zero LSTM state."""
    policy = model.policy
    if is_recurrent(model):
        import torch

        if n_seq is None:
            raise ValueError("a recurrent actor needs n_seq (the number of whole days in obs)")
        from stable_baselines3.common.policies import BaseModel

        features = BaseModel.extract_features(policy, obs, policy.pi_features_extractor)
        lstm = policy.lstm_actor
        zeros = torch.zeros(lstm.num_layers, n_seq, lstm.hidden_size)
        latent, _ = policy._process_sequence(
            features, (zeros, zeros.clone()), torch.zeros(obs.shape[0]), lstm
        )
        return policy.action_net(policy.mlp_extractor.forward_actor(latent))
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
    """Fit the actor to ``demos`` by MSE (Adam); returns the mean loss of every epoch.

    Minibatches hold ``batch_size`` steps drawn at random; for a recurrent actor they hold
    ``max(1, batch_size // steps_per_day)`` whole days (truncated back-propagation over a day)."""
    import torch

    obs = torch.as_tensor(actor_obs(model, demos.obs), dtype=torch.float32)
    target = torch.as_tensor(demos.actions, dtype=torch.float32)
    params = actor_parameters(model)
    opt = torch.optim.Adam(params, lr=learning_rate)
    gen = torch.Generator().manual_seed(seed)
    n = obs.shape[0]
    recurrent = is_recurrent(model)
    T = demos.steps_per_day if recurrent else 1
    units = n // T  # days (recurrent) or steps
    per_batch = max(1, batch_size // T) if recurrent else batch_size
    losses: list[float] = []
    model.policy.set_training_mode(True)
    for _ in tqdm(range(epochs), desc="behaviour cloning", disable=not progress, mininterval=2.0):
        perm = torch.randperm(units, generator=gen)
        total = 0.0
        for start in range(0, units, per_batch):
            picked = perm[start : start + per_batch]
            idx = (picked[:, None] * T + torch.arange(T)).reshape(-1) if recurrent else picked
            pred = actor_action(model, obs[idx], n_seq=picked.shape[0] if recurrent else None)
            loss = torch.nn.functional.mse_loss(pred, target[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * idx.shape[0]
        losses.append(total / n)
    model.policy.set_training_mode(False)
    if hasattr(model, "actor_target"):  # TD3 / SAC keep target copies of the actor (TD3)
        model.actor_target.load_state_dict(model.actor.state_dict())
    return losses


def set_sac_exploration_std(model: Any, std: float) -> None:
    """Start SAC's state-dependent exploration at a constant ``std`` (pre-squash) on every state:
    its log-std head is not cloned (the expert has no spread), and from its random start
    (std ≈ 1) the first steps after cloning would act nearly at random. Other algorithms: no-op."""
    import math

    import torch

    log_std = getattr(getattr(model, "actor", None), "log_std", None)
    if type(model).__name__ != "SAC" or not isinstance(log_std, torch.nn.Linear):
        return
    if not 0.0 < std <= 1.0:
        raise ValueError(f"std must be in (0, 1] (got {std})")
    with torch.no_grad():
        log_std.weight.zero_()
        log_std.bias.fill_(math.log(std))


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
        n_seq = len(demos.seeds) if is_recurrent(model) else None
        pred = actor_action(model, obs, n_seq=n_seq).numpy()
    return float(np.mean((pred - demos.actions) ** 2))
