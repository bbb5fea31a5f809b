"""Native batched vector environment: N sites stepped by the same compiled core in one call."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from megapod_gym.config import ScenarioConfig, load_scenario
from megapod_gym.envs.site_env import (
    INFO_KPI_KEYS,
    make_decoder,
    make_encoder,
    site_measurements,
)
from megapod_gym.observation import OBS_CLIP
from megapod_gym.scenario.trace import HELD_OUT_SEED_BASE, TraceSampler
from megapod_gym.sim import layout as L
from megapod_gym.sim.reward import RewardComposer
from megapod_gym.sim.simulator import SiteSimulator


class MegapodVectorEnv(VectorEnv):
    """``num_envs`` independent sites of one scenario, stepped together without a Python loop.

    Sub-env ``i`` behaves exactly like ``MegapodSiteEnv`` reset with seed ``seed + i`` (or
    ``seed[i]``): same traces, observations, rewards and infos, across episode boundaries. Autoreset
    follows Gymnasium's ``NEXT_STEP`` mode: the step after a sub-env's episode ends resets it
    (its action is ignored, its reward is 0). Infos are a dict of arrays with ``_key`` masks.

    Parameters
    ----------
    num_envs
        Number of sites.
    scenario, config_overrides
        As for ``MegapodSiteEnv``.
    info_keys
        Step-output names to put in ``info`` (default: all, as the single env). Fewer keys make
        very large batches faster.
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}

    def __init__(
        self,
        num_envs: int = 1,
        scenario: str | Path | Mapping[str, Any] | ScenarioConfig | None = None,
        config_overrides: Mapping[str, Any] | None = None,
        render_mode: str | None = None,
        info_keys: Sequence[str] | None = None,
    ) -> None:
        if not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer (got {num_envs!r})")
        if render_mode is not None:
            raise ValueError(
                "MegapodVectorEnv does not render; use MegapodSiteEnv(render_mode=...) for plots"
            )
        self.config = load_scenario(scenario, config_overrides)
        self.num_envs = num_envs
        self.render_mode = None
        self.sampler = TraceSampler(self.config)
        self._start_yyyymmdd = np.zeros(num_envs, dtype=np.int64)  # local date of each's step 0
        self.sim = SiteSimulator(self.config, batch_size=num_envs)
        self.encoder = make_encoder(self.config)
        self.decoder = make_decoder(self.config)
        self.observation_names = self.encoder.names
        self.action_names = self.decoder.names
        self.single_observation_space = spaces.Box(
            -OBS_CLIP, OBS_CLIP, (self.encoder.size,), np.float32
        )
        self.single_action_space = spaces.Box(-1.0, 1.0, (self.decoder.size,), np.float32)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.reward_scale = self.config.reward.scale
        self.reward_of = RewardComposer(self.reward_scale, self.config.reward.weights)
        keys = tuple(info_keys) if info_keys is not None else L.OUT_FIELDS
        unknown = [k for k in keys if k not in L.OUT_INDEX]
        if unknown:
            raise ValueError(f"info_keys: unknown {unknown}; valid: {L.OUT_FIELDS}")
        self._info_cols = [(k, L.OUT_INDEX[k]) for k in keys]
        self._setpoints = np.zeros((num_envs, 3))
        self._autoreset = np.zeros(num_envs, dtype=np.bool_)
        self._rngs: list[np.random.Generator] = [seeding.np_random()[0] for _ in range(num_envs)]
        self._started = False

    # ------------------------------------------------------------------------------- core
    def _reset_sites(self, idx: np.ndarray, trace_seeds: Sequence[int]) -> None:
        trace = self.sampler.sample(trace_seeds)
        self.sim.reset(trace, sites=idx)
        self._start_yyyymmdd[idx] = trace.start_yyyymmdd

    def _next_trace_seeds(self, idx: np.ndarray) -> list[int]:
        """Trace seeds for sites reset without an explicit seed (as the single env draws them)."""
        return [int(self._rngs[i].integers(0, HELD_OUT_SEED_BASE)) for i in idx]

    def reset_sites(self, idx: np.ndarray) -> np.ndarray:
        """Start new episodes at once in sub-envs ``idx`` (traces drawn as an unseeded single-env
        reset would) and return the observations of all sub-envs. For adapters with same-step
        autoreset semantics (stable-baselines3)."""
        idx = np.asarray(idx, dtype=np.int64)
        self._reset_sites(idx, self._next_trace_seeds(idx))
        self._autoreset[idx] = False
        return self._observe()

    def _observe(self) -> np.ndarray:
        return self.encoder.encode(site_measurements(self.sim, self.encoder.carbon_priced))

    def _infos(self, out: np.ndarray, clipped: np.ndarray) -> dict[str, Any]:
        mask = np.ones(self.num_envs, dtype=np.bool_)
        info: dict[str, Any] = {}
        for key, col in self._info_cols:
            info[key] = out[:, col].copy()
            info["_" + key] = mask
        info["action_clipped"] = clipped
        info["_action_clipped"] = mask
        kpis = self.sim.kpis()
        for key in INFO_KPI_KEYS:
            info[key] = kpis[key]
            info["_" + key] = mask
        info["step"] = self.sim.t.copy()
        info["_step"] = mask
        info["start_date_yyyymmdd"] = self._start_yyyymmdd.copy()
        info["_start_date_yyyymmdd"] = mask
        return info

    # -------------------------------------------------------------------------------- API
    def reset(
        self,
        *,
        seed: int | Sequence[int | None] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset every sub-env. ``seed`` may be an int (sub-env i gets ``seed + i``) or a list."""
        if options:
            raise ValueError(f"MegapodVectorEnv.reset takes no options (got {sorted(options)})")
        if seed is None:
            seeds: list[int | None] = [None] * self.num_envs
        elif isinstance(seed, (int, np.integer)):
            seeds = [int(seed) + i for i in range(self.num_envs)]
        else:
            seeds = list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(f"seed list has {len(seeds)} entries for {self.num_envs} envs")
        trace_seeds = []
        for i, s in enumerate(seeds):
            if s is not None:
                self._rngs[i] = seeding.np_random(int(s))[0]
                trace_seeds.append(int(s))
            else:
                trace_seeds.append(int(self._rngs[i].integers(0, HELD_OUT_SEED_BASE)))
        self._reset_sites(np.arange(self.num_envs), trace_seeds)
        self._autoreset[:] = False
        self._started = True
        out = np.zeros((self.num_envs, L.N_OUT))
        return self._observe(), self._infos(out, np.zeros(self.num_envs, dtype=np.int64))

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        if not self._started:
            raise RuntimeError("call reset() before step()")
        clipped = self.decoder.decode(actions, self._setpoints)
        resetting = self._autoreset.copy()
        if resetting.any():
            idx = np.flatnonzero(resetting)
            self._reset_sites(idx, self._next_trace_seeds(idx))
            out = self.sim.step_actions(self._setpoints, active=~resetting)
            clipped[resetting] = 0
        else:
            out = self.sim.step_actions(self._setpoints)
        rewards = self.reward_of(out)
        truncated = self.sim.done.copy()
        truncated[resetting] = False
        self._autoreset = truncated
        terminated = np.zeros(self.num_envs, dtype=np.bool_)
        return (
            self._observe(),
            rewards,
            terminated,
            truncated,
            self._infos(out, clipped),
        )
