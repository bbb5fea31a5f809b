"""Off-policy fine-tuning that stays near the demonstrations: TD3+BC and SAC+BC.

Fine-tuning a behaviour-cloned actor with plain TD3 or SAC lets a young critic pull it anywhere:
on the default site, plain TD3 took the clone of MPC from 90.8 to 43.1 on the test days
(``experiments/results_learning_td3-plain_2026-12-05.md``, final model). TD3+BC (Fujimoto & Gu,
"A Minimalist Approach to Offline Reinforcement Learning", NeurIPS 2021) adds a behaviour-cloning
term to the actor's loss and scales the Q term by the critic's own magnitude:

    actor loss = -alpha * mean Q(s, pi(s)) / mean |Q(s, pi(s))|  +  mean (pi(s_d) - a_d)^2

with ``s`` from the replay buffer (the online data) and ``(s_d, a_d)`` from the teacher's
demonstrations, so ``alpha`` (the paper's 2.5) weighs improvement against imitation whatever the
reward's scale. For SAC the Q term is its own ``ent_coef * log pi(a|s) - min Q(s, a)`` with
``a ~ pi(.|s)``, and the imitation term is on the actor's deterministic (mean) action.

The critic, target and entropy updates are stable-baselines3's own: :meth:`train` runs the
algorithm's update with the actor frozen, then takes the actor's steps with the loss above (as
often as the algorithm would: every ``policy_delay`` updates for TD3, every update for SAC); TD3's
target actor follows in the algorithm's next delayed update. While the critic warm-up keeps the
actor frozen, no actor step is taken.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from stable_baselines3 import SAC, TD3

DEFAULT_BC_ALPHA = 2.5  # TD3+BC's alpha


class _BCRegularized:
    """Mixin for TD3 / SAC: the actor update of TD3+BC (see the module docstring)."""

    bc_alpha: float = DEFAULT_BC_ALPHA
    bc_obs: np.ndarray | None = None
    bc_actions: np.ndarray | None = None

    def set_demonstrations(self, obs: np.ndarray, actions: np.ndarray, alpha: float) -> None:
        """The teacher's (observation, action) pairs the actor is kept near, and ``alpha``."""
        obs = np.asarray(obs, dtype=np.float32)
        actions = np.asarray(actions, dtype=np.float32)
        if obs.ndim != 2 or actions.ndim != 2 or obs.shape[0] != actions.shape[0] or not len(obs):
            raise ValueError(
                f"demonstrations must be [N, F] observations and [N, A] actions with N >= 1 "
                f"(got {obs.shape} and {actions.shape})"
            )
        if not np.isfinite(obs).all() or not np.isfinite(actions).all():
            raise ValueError("demonstrations contain NaN or infinite values")
        if not (np.isfinite(alpha) and alpha > 0.0):
            raise ValueError(f"bc_alpha must be > 0 (got {alpha})")
        self.bc_obs, self.bc_actions, self.bc_alpha = obs, actions, float(alpha)

    def _excluded_save_params(self) -> list[str]:
        # the demonstrations live in the cache, not in every checkpoint
        return [*super()._excluded_save_params(), "bc_obs", "bc_actions"]  # type: ignore[misc]

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        if self.bc_obs is None:
            raise RuntimeError(
                f"{type(self).__name__} needs demonstrations: call set_demonstrations() first"
            )
        params = list(self.actor.parameters())
        trainable = any(p.requires_grad for p in params)
        for p in params:  # the algorithm's own update: critics, targets, entropy; actor untouched
            p.requires_grad_(False)
        before = self._n_updates
        try:
            super().train(gradient_steps, batch_size)  # type: ignore[misc]
        finally:
            for p in params:
                p.requires_grad_(trainable)
        if not trainable:  # critic warm-up
            return
        losses, bc_losses = [], []
        for n in range(before + 1, self._n_updates + 1):
            if n % self._actor_every() == 0:
                loss, bc = self._actor_step(batch_size)
                losses.append(loss)
                bc_losses.append(bc)
        if losses:
            self.logger.record("train/actor_loss", float(np.mean(losses)))
            self.logger.record("train/bc_loss", float(np.mean(bc_losses)))

    def _actor_every(self) -> int:
        return 1

    def _demo_batch(self, batch_size: int) -> tuple[Any, Any]:
        import torch as th

        assert self.bc_obs is not None and self.bc_actions is not None
        idx = np.random.randint(0, len(self.bc_obs), size=batch_size)
        obs = th.as_tensor(self.bc_obs[idx], device=self.device)
        return obs, th.as_tensor(self.bc_actions[idx], device=self.device)

    def _actor_step(self, batch_size: int) -> tuple[float, float]:
        import torch as th
        import torch.nn.functional as F

        replay = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
        q_term, q_abs = self._q_term(replay.observations)
        demo_obs, demo_actions = self._demo_batch(batch_size)
        bc = F.mse_loss(self._deterministic_action(demo_obs), demo_actions)
        loss = self.bc_alpha * q_term / q_abs.detach().clamp_min(1e-6) + bc
        self.actor.optimizer.zero_grad()
        loss.backward()
        self.actor.optimizer.step()
        with th.no_grad():
            return float(loss), float(bc)


class TD3BC(_BCRegularized, TD3):
    """TD3 whose actor update is TD3+BC's (see the module docstring)."""

    def _actor_every(self) -> int:
        return self.policy_delay

    def _q_term(self, obs: Any) -> tuple[Any, Any]:
        q = self.critic.q1_forward(obs, self.actor(obs))
        return -q.mean(), q.abs().mean()

    def _deterministic_action(self, obs: Any) -> Any:
        return self.actor(obs)


class SACBC(_BCRegularized, SAC):
    """SAC whose actor update adds TD3+BC's imitation term (see the module docstring)."""

    def _q_term(self, obs: Any) -> tuple[Any, Any]:
        import torch as th

        actions, log_prob = self.actor.action_log_prob(obs)
        q = th.min(th.cat(self.critic(obs, actions), dim=1), dim=1, keepdim=True)[0]
        if self.ent_coef_optimizer is not None and self.log_ent_coef is not None:
            ent_coef = th.exp(self.log_ent_coef.detach())
        else:
            ent_coef = self.ent_coef_tensor
        return (ent_coef * log_prob.reshape(-1, 1) - q).mean(), q.abs().mean()

    def _deterministic_action(self, obs: Any) -> Any:
        return self.actor(obs, deterministic=True)


BC_REGULARIZED = {"td3": TD3BC, "sac": SACBC}
