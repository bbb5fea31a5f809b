"""The multi-agent fleet environment: a PettingZoo ``ParallelEnv`` with one agent per site and a
job dispatcher, over the same :class:`FleetSimulator` and :class:`FleetInterface` as the
centralized :class:`~megapod_gym.envs.fleet_env.MegapodFleetEnv` (one simulation, two interfaces).

PettingZoo is an optional dependency: ``pip install "megapod-gym[multiagent]"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding

try:
    from pettingzoo import ParallelEnv
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        'megapod_gym.envs.fleet_parallel needs PettingZoo: pip install "megapod-gym[multiagent]"'
    ) from exc

from megapod_gym.config.fleet import FleetConfig, load_fleet
from megapod_gym.envs.fleet_interface import GLOBAL_FEATURES, SITE_ACTION_NAMES, FleetInterface
from megapod_gym.fleet.simulator import FLEET_INDEX, SITE_FLEET_FIELDS, FleetSimulator
from megapod_gym.observation import OBS_CLIP
from megapod_gym.scenario.trace import HELD_OUT_SEED_BASE
from megapod_gym.sim import layout as L

DISPATCHER = "dispatcher"

# Site-kernel outputs reported in each site agent's info, besides the ledger terms.
_SITE_INFO_OUTPUTS: tuple[str, ...] = (
    "grid_import_kw",
    "grid_export_kw",
    "compute_kw",
    "ev_kw",
    "battery_kw",
    "battery_soc_frac",
    "training_work_kwh",
)


def site_agent(k: int) -> str:
    """Agent id of site ``k`` (``site_0``, ``site_1``, ...)."""
    return f"site_{k}"


class MegapodFleetParallelEnv(ParallelEnv):
    """## Description

    The fleet of :class:`~megapod_gym.envs.fleet_env.MegapodFleetEnv` (``K`` Megapod sites
    sharing one pool of deferrable training jobs, with migration and outages) as a cooperative-
    competitive multi-agent game: each site is an agent that sets its own IT fraction and battery
    power, and a ``dispatcher`` agent places and migrates the jobs. All agents act at once every
    step (PettingZoo Parallel API); the step is the same :class:`FleetSimulator` step the
    centralized env takes for the concatenated action, so the two envs give identical
    trajectories for the same actions and seed.

    ## Agents

    | Agent                         | Controls                                        |
    |-------------------------------|-------------------------------------------------|
    | ``site_0`` .. ``site_{K-1}``  | its site's IT power fraction and battery power   |
    | ``dispatcher``                | the job shares of the sites and the rebalance    |

    ``possible_agents`` lists the sites first, then the dispatcher; ``site_names[k]`` is the
    scenario label of ``site_k``.

    ## Action Space

    Site agent ``site_k``: ``Box(-1, 1, (2,), float32)``

    | Index | Action        | Mapping of a in [-1, 1]                                          |
    |-------|---------------|------------------------------------------------------------------|
    | 0     | compute_frac  | IT power fraction (a + 1) / 2 (below the cap floor: pause)         |
    | 1     | battery_kw    | a x discharge kW if a >= 0 (+ = discharge), else a x charge kW     |

    Dispatcher: ``Box(-1, 1, (K + 1,), float32)``

    | Index | Action        | Mapping of a in [-1, 1]                                          |
    |-------|---------------|------------------------------------------------------------------|
    | k < K | share of k    | weight (a + 1) / 2 of the pool's active work (sites in an outage  |
    |       |               | get none; all zero keeps the jobs where they are)                 |
    | K     | rebalance     | (a + 1) / 2 of the misplaced work may migrate this step           |

    Out-of-range values are clipped and counted (``info["action_clipped"]``); NaN or infinite
    values, a wrong shape or a missing agent raise ``ValueError``.

    ## Observation Space

    | Agent        | Space                                         | Content                          |
    |--------------|-----------------------------------------------|----------------------------------|
    | ``site_k``   | ``Box(-10, 10, (31 + 6,), float32)``          | site k's 31 features + the 6     |
    |              |                                               | global fleet features            |
    | dispatcher   | ``Box(-10, 10, (K x 31 + 6,), float32)``      | the centralized observation: all |
    |              |                                               | sites' features + global         |

    Site features: the single-site env's 27 scaled features of that site (local time of day,
    prices, battery, cars, queue, compute, ...; the training backlog is the work placed at the
    site) and ``outage``, ``placed_work_h``, ``in_transit_h``, ``it_share``. Global features:
    ``pool_active_work_h``, ``pool_unplaced_work_h``, ``work_due_6h_h``, ``work_due_24h_h``,
    ``active_jobs``, ``fleet_hours_left_h`` (see :mod:`megapod_gym.envs.fleet_interface`).
    ``observation_names(agent)`` lists them; :meth:`state` is the dispatcher's observation.

    ## Rewards

    | Agent        | Reward per step                                                          |
    |--------------|--------------------------------------------------------------------------|
    | ``site_k``   | site k's fleet-ledger ``net_usd`` (its site ledger - migration energy   |
    |              | cost of jobs moved to it - value of jobs lost there) x ``site_reward_scale`` |
    |              | (default: the site scenario's ``reward.scale``, e.g. 0.01)               |
    | dispatcher   | the fleet total (sum of the sites' ``net_usd`` - value of jobs lost     |
    |              | unplaced) x ``reward_scale`` (default 0.01 / K: the centralized reward)  |

    ## Starting State

    ``reset(seed=s)`` runs on fleet trace ``s`` (the same day as ``MegapodFleetEnv`` with seed
    ``s``); without a seed the trace seed is drawn below 1,000,000 from the env's generator
    (seeds from 1,000,000 up are held out); ``options={"trace_seed": n}`` picks the trace
    directly. The fleet starts at UTC midnight (each site at its local time).

    ## Episode End

    No agent terminates; all are truncated together after the sites' episode length, and
    ``agents`` is then empty (``reset`` to start again). The final step's dispatcher info carries
    ``episode_kpis``.

    ## Arguments

    ``fleet``: preset name (``tri-tz-3site``, ``fleet-20site``), YAML path, mapping or
    :class:`FleetConfig`; ``fleet_overrides``: dotted keys merged on top; ``reward_scale``: the
    dispatcher's scale; ``site_reward_scale``: the site agents' scale (one for all sites).
    """

    metadata = {"name": "megapod_fleet_v0", "render_modes": [], "is_parallelizable": True}

    def __init__(
        self,
        fleet: str | Path | Mapping[str, Any] | FleetConfig | None = None,
        fleet_overrides: Mapping[str, Any] | None = None,
        reward_scale: float | None = None,
        site_reward_scale: float | None = None,
    ) -> None:
        self.fleet_config = load_fleet(fleet, fleet_overrides)
        self.fleet_sim = FleetSimulator(self.fleet_config)
        self.interface = FleetInterface(self.fleet_sim)
        self.render_mode: str | None = None
        K = self.fleet_sim.n_sites
        self.n_sites = K
        self.site_names: list[str] = [c.name for c in self.fleet_sim.site_configs]
        self.site_agents: list[str] = [site_agent(k) for k in range(K)]
        self.possible_agents: list[str] = self.site_agents + [DISPATCHER]
        self.agents: list[str] = []
        self.reward_scale = (
            float(reward_scale)
            if reward_scale is not None
            else self.fleet_sim.site_configs[0].reward.scale / K
        )
        self.site_reward_scale: np.ndarray = (
            np.full(K, float(site_reward_scale))
            if site_reward_scale is not None
            else np.array([c.reward.scale for c in self.fleet_sim.site_configs], dtype=np.float64)
        )

        iface = self.interface
        n_site_obs = iface.site_obs_size + iface.global_obs_size
        n_disp_obs = K * iface.site_obs_size + iface.global_obs_size
        self.observation_spaces: dict[str, spaces.Box] = {
            a: spaces.Box(-OBS_CLIP, OBS_CLIP, (n_site_obs,), np.float32) for a in self.site_agents
        }
        self.observation_spaces[DISPATCHER] = spaces.Box(
            -OBS_CLIP, OBS_CLIP, (n_disp_obs,), np.float32
        )
        self.action_spaces: dict[str, spaces.Box] = {
            a: spaces.Box(-1.0, 1.0, (2,), np.float32) for a in self.site_agents
        }
        self.action_spaces[DISPATCHER] = spaces.Box(-1.0, 1.0, (K + 1,), np.float32)
        self._observation_names: dict[str, tuple[str, ...]] = {
            a: tuple(iface.site_feature_names) + tuple(GLOBAL_FEATURES) for a in self.site_agents
        }
        self._observation_names[DISPATCHER] = tuple(
            f"{name}/{f}" for name in self.site_names for f in iface.site_feature_names
        ) + tuple(GLOBAL_FEATURES)
        self._action_names: dict[str, tuple[str, ...]] = {
            a: SITE_ACTION_NAMES for a in self.site_agents
        }
        self._action_names[DISPATCHER] = tuple(f"{n}/share" for n in self.site_names) + (
            "rebalance",
        )
        self._np_random: np.random.Generator | None = None
        self.np_random_seed: int | None = None
        self._site_actions = np.zeros((K, 2))
        self._started = False

    # ------------------------------------------------------------------------------ spaces
    def observation_space(self, agent: str) -> spaces.Box:
        """The observation space of ``agent`` (the same object on every call)."""
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Box:
        """The action space of ``agent`` (the same object on every call)."""
        return self.action_spaces[agent]

    def observation_names(self, agent: str) -> tuple[str, ...]:
        """Feature names of ``agent``'s observation vector."""
        return self._observation_names[agent]

    def action_names(self, agent: str) -> tuple[str, ...]:
        """Names of ``agent``'s action entries."""
        return self._action_names[agent]

    @property
    def np_random(self) -> np.random.Generator:
        """The env's generator (draws unseeded trace seeds); created unseeded on first use."""
        if self._np_random is None:
            self._np_random, self.np_random_seed = seeding.np_random()
        return self._np_random

    # ------------------------------------------------------------------------ observations
    def _observations(self) -> dict[str, np.ndarray]:
        iface = self.interface
        site = iface.site_obs()
        glob = iface.global_obs()
        obs: dict[str, np.ndarray] = {
            a: np.concatenate([site[k], glob]) for k, a in enumerate(self.site_agents)
        }
        obs[DISPATCHER] = np.concatenate([site.reshape(-1), glob])
        return obs

    def state(self) -> np.ndarray:
        """Global state for centralized critics: the dispatcher's (= centralized) observation."""
        iface = self.interface
        return np.concatenate([iface.site_obs().reshape(-1), iface.global_obs()])

    # ----------------------------------------------------------------------------- reset
    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
        """Start an episode on fleet trace ``seed`` (or ``options["trace_seed"]``, or a seed
        drawn below 1,000,000); every possible agent becomes live."""
        if seed is not None:
            self._np_random, self.np_random_seed = seeding.np_random(seed)
            trace_seed = int(seed)
        else:
            trace_seed = int(self.np_random.integers(HELD_OUT_SEED_BASE))
        if options and "trace_seed" in options:
            trace_seed = int(options["trace_seed"])
        self.fleet_sim.reset(seed=trace_seed)
        self.agents = list(self.possible_agents)
        self._started = True
        infos: dict[str, dict[str, Any]] = {
            a: {"trace_seed": trace_seed, "site_name": self.site_names[k]}
            for k, a in enumerate(self.site_agents)
        }
        infos[DISPATCHER] = {"trace_seed": trace_seed, "site_names": list(self.site_names)}
        return self._observations(), infos

    # ------------------------------------------------------------------------------ step
    def _check_actions(self, actions: Mapping[str, Any]) -> None:
        if not self._started:
            raise RuntimeError("reset the environment before stepping it")
        if not self.agents:
            raise RuntimeError("the fleet episode is over (no live agents): reset it")
        missing = [a for a in self.agents if a not in actions]
        if missing:
            raise ValueError(
                f"actions are missing for agent(s) {', '.join(missing)}; every live agent "
                f"({', '.join(self.agents)}) must act each step"
            )
        unknown = [a for a in actions if a not in self.possible_agents]
        if unknown:
            raise ValueError(
                f"actions given for unknown agent(s) {', '.join(map(str, unknown))}; agents are "
                f"{', '.join(self.possible_agents)}"
            )

    def _agent_action(self, agent: str, action: Any) -> np.ndarray:
        shape = self.action_spaces[agent].shape
        a = np.asarray(action, dtype=np.float64).reshape(-1)
        if a.shape != shape:
            raise ValueError(f"action of {agent} must have shape {shape}; got {a.shape}")
        if not np.isfinite(a).all():
            raise ValueError(f"action of {agent} contains NaN or infinite values: {a.tolist()}")
        return a

    def step(
        self, actions: Mapping[str, Any]
    ) -> tuple[
        dict[str, np.ndarray],
        dict[str, float],
        dict[str, bool],
        dict[str, bool],
        dict[str, dict[str, Any]],
    ]:
        """Advance the fleet one step with every live agent's action."""
        self._check_actions(actions)
        site_a = self._site_actions
        for k, agent in enumerate(self.site_agents):
            site_a[k] = self._agent_action(agent, actions[agent])
        disp_a = self._agent_action(DISPATCHER, actions[DISPATCHER])
        iface = self.interface
        setpoints, _ = iface.decode_sites(site_a)
        share, rebalance, clipped_d = iface.decode_dispatch(disp_a)
        clipped_s = (np.abs(site_a) > 1.0).sum(axis=1)

        fs = self.fleet_sim
        fleet_out = fs.step(setpoints, share, rebalance)
        net = fleet_out[:, FLEET_INDEX["net_usd"]]
        site_rewards = net * self.site_reward_scale
        rewards: dict[str, float] = {
            a: float(site_rewards[k]) for k, a in enumerate(self.site_agents)
        }
        rewards[DISPATCHER] = float(fs.fleet_total_usd * self.reward_scale)
        truncated = fs.done
        truncations = dict.fromkeys(self.agents, truncated)
        terminations = dict.fromkeys(self.agents, False)
        infos = self._infos(fleet_out, clipped_s, clipped_d)
        if truncated:
            infos[DISPATCHER]["episode_kpis"] = fs.kpis()
        obs = self._observations()
        if truncated:
            self.agents = []
        return obs, rewards, terminations, truncations, infos

    def _infos(
        self, fleet_out: np.ndarray, clipped_sites: np.ndarray, clipped_dispatch: int
    ) -> dict[str, dict[str, Any]]:
        """Site agents: their fleet fields of the step (``net_usd``, ``migration_usd``, ...), site
        ledger terms (``site/...``, USD in the step) and power flows; dispatcher: the fleet totals
        of the step (USD), the shares it produced, the work balance and the episode totals."""
        fs = self.fleet_sim
        out = fs.sim.out
        infos: dict[str, dict[str, Any]] = {}
        for k, agent in enumerate(self.site_agents):
            info: dict[str, Any] = {
                n: float(fleet_out[k, i]) for i, n in enumerate(SITE_FLEET_FIELDS)
            }
            for name in L.LEDGER_FIELDS + _SITE_INFO_OUTPUTS:
                info[f"site/{name}"] = float(out[k, L.OUT_INDEX[name]])
            info["action_clipped"] = int(clipped_sites[k])
            infos[agent] = info
        infos[DISPATCHER] = {
            "fleet_total_usd": fs.fleet_total_usd,
            "pool_deadline_loss_usd": fs.pool_loss_usd,
            "pool_lost_kwh": fs.pool_lost_kwh,
            "migrations": float(fleet_out[:, FLEET_INDEX["migrations_in"]].sum()),
            "migration_usd": float(fleet_out[:, FLEET_INDEX["migration_usd"]].sum()),
            "deadline_loss_usd": float(fleet_out[:, FLEET_INDEX["deadline_loss_usd"]].sum())
            + fs.pool_loss_usd,
            "share_target_kwh": fleet_out[:, FLEET_INDEX["share_target_kwh"]].copy(),
            "placed_kwh": fleet_out[:, FLEET_INDEX["placed_kwh"]].copy(),
            "work_balance": fs.work_balance(),
            "totals": dict(fs.totals),  # cumulative over the episode so far
            "action_clipped": int(clipped_dispatch),
        }
        return infos

    def render(self) -> None:
        """No rendering (``render_modes`` is empty)."""
        return None

    def close(self) -> None:
        """Nothing to release."""


def parallel_env(**kwargs: Any) -> MegapodFleetParallelEnv:
    """PettingZoo-style factory: ``parallel_env(fleet="tri-tz-3site")``."""
    return MegapodFleetParallelEnv(**kwargs)
