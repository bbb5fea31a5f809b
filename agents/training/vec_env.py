"""A stable-baselines3 ``VecEnv`` backed by the native batched ``MegapodVectorEnv``.

SB3 does not accept Gymnasium vector envs: it wants same-step autoreset (the observation returned
with ``done`` is the next episode's first one, the last one is in ``info["terminal_observation"]``)
and a list of info dicts. This adapter provides exactly that over the native core, with no Python
loop over sites in the step. Per-step infos carry only what SB3 uses (episode return/length at the
end of an episode, terminal observation, ``TimeLimit.truncated``); the full ledger is available
from the native env or through evaluation.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvStepReturn

from megapod_gym.envs.vector_env import MegapodVectorEnv


class NativeSB3VecEnv(VecEnv):
    """``num_envs`` sites of one scenario as an SB3 ``VecEnv``.

    Sub-env ``i`` reset with seed ``s`` runs on trace ``s + i`` (SB3's ``seed()`` convention).
    ``terminate_at_end=True`` reports the episode's end as a termination (SB3 then does not
    bootstrap the critic's value of the final state), matching the score, which gives energy left
    at the end no value. ``privileged=True`` appends the privileged critic features of
    :mod:`agents.training.asymmetric` to every observation (training only).
    """

    def __init__(
        self,
        num_envs: int,
        scenario: Any = None,
        config_overrides: Mapping[str, Any] | None = None,
        terminate_at_end: bool = False,
        privileged: bool = False,
    ) -> None:
        self.venv = MegapodVectorEnv(
            num_envs=num_envs, scenario=scenario, config_overrides=config_overrides, info_keys=()
        )
        self.privileged = privileged
        obs_space = self.venv.single_observation_space
        if privileged:
            from gymnasium import spaces

            from agents.training.asymmetric import N_PRIVILEGED

            n = obs_space.shape[0] + N_PRIVILEGED
            obs_space = spaces.Box(-10.0, 10.0, (n,), np.float32)
        super().__init__(num_envs, obs_space, self.venv.single_action_space)
        self._actions: np.ndarray | None = None
        # True: the episode's end is reported as a termination (no bootstrapped value after it)
        self.terminate_at_end = terminate_at_end
        self._returns = np.zeros(num_envs)
        self._lengths = np.zeros(num_envs, dtype=np.int64)
        self._t0 = time.time()
        self.render_mode = None

    def reset(self) -> np.ndarray:
        seeds = self._seeds if any(s is not None for s in self._seeds) else None
        obs, _ = self.venv.reset(seed=seeds)
        self._reset_seeds()
        self._returns[:] = 0.0
        self._lengths[:] = 0
        return self._with_privileged(obs)

    def _with_privileged(self, obs: np.ndarray) -> np.ndarray:
        if not self.privileged:
            return obs
        from agents.training.asymmetric import privileged_features

        return np.concatenate([obs, privileged_features(self.venv.sim)], axis=1)

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self) -> VecEnvStepReturn:
        assert self._actions is not None, "step_async() first"
        obs, rewards, terminated, truncated, _ = self.venv.step(self._actions)
        obs = self._with_privileged(obs)
        self._returns += rewards
        self._lengths += 1
        dones = terminated | truncated
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        if dones.any():
            idx = np.flatnonzero(dones)
            for i in idx:
                infos[i] = {
                    "terminal_observation": obs[i].copy(),
                    "TimeLimit.truncated": bool(
                        truncated[i] and not terminated[i] and not self.terminate_at_end
                    ),
                    "episode": {
                        "r": float(self._returns[i]),
                        "l": int(self._lengths[i]),
                        "t": round(time.time() - self._t0, 6),
                    },
                }
            obs = self._with_privileged(self.venv.reset_sites(idx))
            self._returns[idx] = 0.0
            self._lengths[idx] = 0
        return obs, rewards.astype(np.float32), dones, infos

    def close(self) -> None:
        self.venv.close()

    # SB3 introspection hooks: the adapter has no wrapped sub-env objects.
    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return [getattr(self.venv, attr_name)] * len(self._indices(indices))

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        setattr(self.venv, attr_name, value)

    def env_method(
        self,
        method_name: str,
        *method_args: Any,
        indices: VecEnvIndices = None,
        **method_kwargs: Any,
    ) -> list[Any]:
        if method_name == "render":
            return [None] * len(self._indices(indices))
        raise AttributeError(
            f"NativeSB3VecEnv has no per-site env objects to call {method_name!r} on"
        )

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        return [False] * len(self._indices(indices))

    def _indices(self, indices: VecEnvIndices) -> Sequence[int]:
        if indices is None:
            return range(self.num_envs)
        if isinstance(indices, int):
            return [indices]
        return list(indices) if isinstance(indices, Iterable) else [indices]
