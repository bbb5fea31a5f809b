"""Policy search on whole days with common random numbers: augmented random search (ARS) on the
cloned actor, after behaviour cloning and DAgger (``pretrain.search`` in a training config).

Why: PPO fine-tuning of a clone of MPC barely moves it, or moves it the wrong way. Its advantage
of an action is the rest of the day's profit, whose day-to-day noise (which cars come, what the
real-time price does) is larger than the control value it should detect. Here the simulator
itself removes that noise: a day is a seed, so two versions of the actor played on the *same*
days differ only by what they did. Each iteration of ARS (Mania, Guy and Recht 2018, "Simple
random search provides a competitive approach to reinforcement learning", V1-t) draws
``directions`` random directions δ in the space of the searched parameters, plays θ + ν δ and
θ − ν δ on the same ``days`` training days (2 × directions × days sites in one batch of the native
vector env), and steps along the directions whose day profits differ most:

    θ ← θ + α / (b σ) Σ_{top b} (R(θ + ν δ) − R(θ − ν δ)) δ

(R = mean profit per day, σ = standard deviation of the 2b top returns). The actor is
deterministic here, as it is evaluated and exported. Every ``select_every`` iterations the current
θ plays the selection days (training days set aside, disjoint from demonstrations, validation and
test days); the best θ on them, the clone included, is kept, so the search never returns a worse
actor on those days than the one it started from.

``layers: head`` searches the actor's output layer only (a few hundred parameters: fast, and the
measured better choice on the default site); ``layers: actor`` every actor parameter.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from agents.evaluation.rollout import DEMO_SEED_BASE, N_SELECT_DAYS, run_policy, selection_seeds
from agents.policies.base import PolicyContext
from agents.policies.trained import actor_obs
from megapod_gym.config import ScenarioConfig


def searched_parameters(model: Any, layers: str) -> list[Any]:
    """The torch parameters the search moves: the actor's output layer (``head``) or the whole
    actor (``actor``); PPO/A2C policies only (their deterministic action is ``action_net``'s)."""
    policy = model.policy
    if not hasattr(policy, "action_net") or type(model).__name__ == "RecurrentPPO":
        raise TypeError(f"policy search supports ppo and a2c models (got {type(model).__name__})")
    head = list(policy.action_net.parameters())
    if layers == "head":
        return head
    if layers == "actor":
        return [*policy.mlp_extractor.policy_net.parameters(), *head]
    raise ValueError(f"layers must be 'head' or 'actor' (got {layers!r})")


class PerturbedActors:
    """One batch of sites, ``len(thetas)`` actors: rows ``[k * n_days, (k + 1) * n_days)`` are
    played by the model's actor with the searched parameters set to ``thetas[k]``."""

    name = "perturbed-actors"

    def __init__(self, model: Any, params: list[Any], thetas: np.ndarray, n_days: int) -> None:
        self.model, self.params, self.thetas, self.n_days = model, params, thetas, n_days
        head = list(model.policy.action_net.parameters())
        # only the output layer searched: the trunk's latent is shared by every actor
        self.head_only = len(params) == len(head) and all(p is q for p, q in zip(params, head))

    def reset(self, context: PolicyContext) -> None:
        if context.batch_size != len(self.thetas) * self.n_days:
            raise ValueError(
                f"batch of {context.batch_size} sites for {len(self.thetas)} actors x "
                f"{self.n_days} days"
            )

    def act(self, obs: np.ndarray) -> np.ndarray:
        import torch
        from stable_baselines3.common.policies import BaseModel

        x = torch.as_tensor(actor_obs(self.model, obs), dtype=torch.float32)
        policy = self.model.policy
        k = len(self.thetas)
        with torch.no_grad():
            features = BaseModel.extract_features(policy, x, policy.pi_features_extractor)
            if self.head_only:  # the trunk's latent is shared by every actor
                h = policy.mlp_extractor.forward_actor(features)
                layers = [policy.action_net]
            else:
                n_actor = getattr(policy.mlp_extractor, "n_actor_features", None)
                h = features if n_actor is None else features[..., :n_actor]
                layers = [*policy.mlp_extractor.policy_net, policy.action_net]
            h = h.reshape(k, self.n_days, -1)
            thetas = torch.as_tensor(self.thetas, dtype=torch.float32)
            offset = 0
            for layer in layers:  # parameters_to_vector order: each Linear's weight, then bias
                if not isinstance(layer, torch.nn.Linear):
                    h = layer(h)
                    continue
                n_w, n_b = layer.weight.numel(), layer.out_features
                weight = thetas[:, offset : offset + n_w].reshape(k, *layer.weight.shape)
                bias = thetas[:, offset + n_w : offset + n_w + n_b]
                h = torch.baddbmm(bias[:, None, :], h, weight.transpose(1, 2))
                offset += n_w + n_b
        if offset != thetas.shape[1]:
            raise ValueError(
                f"{thetas.shape[1]} searched parameters, the actor's layers hold {offset}"
            )
        return np.clip(h.reshape(x.shape[0], -1).numpy(), -1.0, 1.0)


def day_profits(
    model: Any, params: list[Any], thetas: np.ndarray, scenario: ScenarioConfig, days: list[int]
) -> np.ndarray:
    """``[len(thetas), len(days)]`` profit of every actor on every day (one batch; the searched
    parameters are restored afterwards)."""
    import torch
    from torch.nn.utils import parameters_to_vector, vector_to_parameters

    saved = parameters_to_vector(params).detach().clone()
    try:
        rows = run_policy(
            PerturbedActors(model, params, thetas, len(days)), scenario, days * len(thetas)
        ).rows
    finally:
        with torch.no_grad():
            vector_to_parameters(saved, params)
    return np.array([r["profit_usd"] for r in rows], dtype=np.float64).reshape(
        len(thetas), len(days)
    )


def ars_search(
    theta: np.ndarray,
    day_profits_of: Callable[[np.ndarray, list[int]], np.ndarray],
    settings: Any,
    rng: np.random.Generator,
    progress: bool = True,
    desc: str = "policy search",
) -> dict[str, Any]:
    """ARS with common random numbers from ``theta`` (see the module docstring).

    ``day_profits_of(thetas [P, n], days)`` returns the ``[P, len(days)]`` profit of every
    parameter vector on every day; ``settings`` carries the fields of
    :class:`~agents.training.config.ArsSettings`. Returns the selected parameters
    (``"theta"``) and what was measured: the selection-day profit before and after, the selected
    iteration and the curve.
    """
    from tqdm.auto import tqdm

    theta = np.asarray(theta, dtype=np.float64).copy()
    select_days = selection_seeds(N_SELECT_DAYS)
    top = settings.top or settings.directions

    def select_profit(th: np.ndarray) -> float:
        return float(day_profits_of(th[None], select_days).mean())

    t0 = time.time()
    best_theta, best_profit, best_iteration = theta.copy(), select_profit(theta), 0
    curve = [{"iteration": 0, "selection_profit_usd": best_profit, "seconds": time.time() - t0}]
    start_profit = best_profit
    for it in tqdm(
        range(1, settings.iterations + 1), desc=desc, disable=not progress, mininterval=2
    ):
        days = rng.integers(0, DEMO_SEED_BASE, settings.days).tolist()
        deltas = rng.standard_normal((settings.directions, theta.size))
        thetas = np.concatenate(
            [theta + settings.noise_std * deltas, theta - settings.noise_std * deltas]
        )
        returns = day_profits_of(thetas, days).mean(axis=1)
        plus, minus = returns[: settings.directions], returns[settings.directions :]
        best_dirs = np.argsort(-np.maximum(plus, minus))[:top]
        sigma = float(np.std(np.concatenate([plus[best_dirs], minus[best_dirs]])))
        if sigma > 0.0:
            step = ((plus - minus)[best_dirs, None] * deltas[best_dirs]).sum(axis=0)
            theta = theta + settings.step_size / (top * sigma) * step
        if it % settings.select_every == 0 or it == settings.iterations:
            profit = select_profit(theta)
            curve.append(
                {"iteration": it, "selection_profit_usd": profit, "seconds": time.time() - t0}
            )
            if profit > best_profit:
                best_theta, best_profit, best_iteration = theta.copy(), profit, it
    return {
        "theta": best_theta,
        "parameters": int(theta.size),
        "selection_days": N_SELECT_DAYS,
        "selection_profit_usd_before": start_profit,
        "selection_profit_usd_after": best_profit,
        "selected_iteration": best_iteration,
        "curve": curve,
        "search_seconds": time.time() - t0,
    }


def search_actor(
    model: Any,
    settings: Any,
    scenario: ScenarioConfig,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """ARS on ``model``'s actor (see the module docstring); leaves the selected parameters in the
    model and returns what was measured (for ``pretrain.json``)."""
    import torch
    from torch.nn.utils import parameters_to_vector, vector_to_parameters

    params = searched_parameters(model, settings.layers)
    theta = parameters_to_vector(params).detach().double().numpy().copy()
    info = ars_search(
        theta,
        lambda thetas, days: day_profits(model, params, thetas, scenario, days),
        settings,
        np.random.default_rng([seed, 0xA125]),
        progress,
    )
    best_theta = info.pop("theta")
    with torch.no_grad():
        vector_to_parameters(torch.as_tensor(best_theta, dtype=torch.float32), params)
    return {"layers": settings.layers, **info}
