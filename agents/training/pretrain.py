"""Pretraining a model from demonstrations before RL (``pretrain:`` in a training config).

``expert: auto`` clones each of :data:`AUTO_EXPERTS` in turn and keeps the clone whose policy
earns the most on :data:`N_SELECT_DAYS` selection days (training days, disjoint from the
demonstration, validation and test days). The clone is judged rather than the expert because a
cloned policy is not its expert: a clone of MPC can beat MPC itself (it acts on a smooth function
of the observation instead of re-solving on noisy forecasts), so the most profitable expert is not
always the best teacher (measured on `caiso-rt-spring`: the tuned rule out-earns MPC on training
days, yet the clone of MPC scores far higher on test days).

``dagger_rounds`` then runs DAgger with the chosen teacher: each round the current clone drives
``dagger_days`` fresh training days (``noisy_frac`` of them with its actions perturbed) while the
teacher labels every visited state; the actor is refitted on all data so far (continuing from its
weights). A clone drifts into states its teacher never visits (a battery emptier or fuller than
the teacher would leave it at that hour); DAgger teaches it the way back from there.

``search`` (run by :func:`agents.training.train.pretrain_model` after this) then improves the
clone beyond its teacher by policy search on whole training days with common random numbers
(:mod:`agents.training.policy_search`).
"""

from __future__ import annotations

import copy
import os
import time
from typing import Any

import numpy as np

from agents.evaluation.rollout import N_SELECT_DAYS, run_policy, selection_seeds
from agents.policies.trained import TrainedPolicy
from agents.training.behaviour_cloning import (
    clone_actor,
    imitation_mse,
    set_sac_exploration_std,
)
from agents.training.demonstrations import (
    ActorExecutor,
    Demonstrations,
    collect_demonstrations,
    demonstrations,
)
from megapod_gym.config import ScenarioConfig

AUTO_EXPERTS = ("mpc", "tuned-rule")


def pretrain(
    model: Any, settings: Any, scenario: ScenarioConfig, seed: int = 0, progress: bool = True
) -> dict[str, Any]:
    """Clone the configured expert (or the best of :data:`AUTO_EXPERTS`) into ``model``'s actor;
    returns what was done and measured (also for ``pretrain.json``)."""
    candidates = AUTO_EXPERTS if settings.expert == "auto" else (settings.expert,)
    initial = copy.deepcopy(model.policy.state_dict())
    select_seeds = selection_seeds(N_SELECT_DAYS)
    results: dict[str, dict[str, Any]] = {}
    best_state: dict[str, Any] | None = None
    best_name = candidates[0]
    data: dict[str, Demonstrations] = {}
    for name in candidates:
        model.policy.load_state_dict(initial)
        t0 = time.time()
        demos = demonstrations(
            scenario,
            name,
            n_days=settings.n_days,
            noisy_frac=settings.noisy_frac,
            noise_std=settings.noise_std,
            jobs=os.cpu_count() or 1,
            progress=progress,
        )
        data[name] = demos
        t1 = time.time()
        losses = clone_actor(
            model,
            demos,
            settings.epochs,
            settings.batch_size,
            settings.learning_rate,
            seed=seed,
            progress=progress,
        )
        res: dict[str, Any] = {
            "expert_demo_profit_usd": demos.profit_usd,
            "demo_steps": len(demos),
            "bc_loss_first_epoch": losses[0],
            "bc_loss_last_epoch": losses[-1],
            "bc_mse": imitation_mse(model, demos),
            "demo_seconds": t1 - t0,
            "bc_seconds": time.time() - t1,
        }
        if len(candidates) > 1:
            rows = run_policy(TrainedPolicy(model, None), scenario, select_seeds).rows
            res["clone_selection_profit_usd"] = float(np.mean([r["profit_usd"] for r in rows]))
            best = results.get(best_name, {}).get("clone_selection_profit_usd", -np.inf)
            if best_state is None or res["clone_selection_profit_usd"] > best:
                best_name, best_state = name, copy.deepcopy(model.policy.state_dict())
        results[name] = res
    if best_state is not None:
        model.policy.load_state_dict(best_state)
    chosen = results[best_name]
    rounds = dagger(model, settings, scenario, best_name, data[best_name], seed, progress)
    if settings.noise_std > 0.0:  # SAC explores at the demonstrations' noise level at first
        set_sac_exploration_std(model, settings.noise_std)
    return {
        "expert": best_name,
        "candidates": results,
        "selection_days": N_SELECT_DAYS if len(candidates) > 1 else 0,
        **chosen,
        "dagger": rounds,
        "demo_seconds": sum(r["demo_seconds"] for r in [*results.values(), *rounds]),
        "bc_seconds": sum(r["bc_seconds"] for r in [*results.values(), *rounds]),
    }


def dagger(
    model: Any,
    settings: Any,
    scenario: ScenarioConfig,
    expert: str,
    demos: Demonstrations,
    seed: int = 0,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """``settings.dagger_rounds`` DAgger rounds on top of the clone in ``model`` (see the module
    docstring); returns per round the learner's mean profit on its clean days, the data size and
    the times. The rounds' data are not cached: they depend on the learner."""
    rounds: list[dict[str, Any]] = []
    obs, actions, seeds = [demos.obs], [demos.actions], list(demos.seeds)
    for r in range(settings.dagger_rounds):
        t0 = time.time()
        new = collect_demonstrations(
            scenario,
            expert,
            n_days=settings.dagger_days,
            noisy_frac=settings.noisy_frac,
            noise_std=settings.noise_std,
            seed=seed,
            jobs=os.cpu_count() or 1,
            progress=progress,
            executor=ActorExecutor(model),
            first_day=settings.n_days + r * settings.dagger_days,
        )
        obs.append(new.obs)
        actions.append(new.actions)
        seeds += new.seeds
        t1 = time.time()
        merged = Demonstrations(
            np.concatenate(obs), np.concatenate(actions), expert, tuple(seeds), float("nan")
        )
        losses = clone_actor(
            model,
            merged,
            settings.dagger_epochs or settings.epochs,
            settings.batch_size,
            settings.learning_rate,
            seed=seed + r + 1,
            progress=progress,
        )
        rounds.append(
            {
                "round": r + 1,
                "learner_profit_usd": new.profit_usd,
                "demo_steps": len(merged),
                "bc_loss_last_epoch": losses[-1],
                "demo_seconds": t1 - t0,
                "bc_seconds": time.time() - t1,
            }
        )
    return rounds
