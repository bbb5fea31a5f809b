"""The single-site Gymnasium environment."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from megapod_gym.action import ActionDecoder
from megapod_gym.config import ScenarioConfig, load_scenario
from megapod_gym.observation import OBS_CLIP, ObservationEncoder, carbon_measurements
from megapod_gym.scenario.trace import HELD_OUT_SEED_BASE, ExogenousTrace, TraceSampler
from megapod_gym.sim import layout as L
from megapod_gym.sim.figures import site_figures
from megapod_gym.sim.reward import RewardComposer
from megapod_gym.sim.simulator import SiteSimulator

# cumulative episode KPIs in every info (besides the step outputs of layout.OUT_FIELDS)
INFO_KPI_KEYS: tuple[str, ...] = (
    "cars_arrived",
    "cars_served",
    "cars_balked",
    "wait_min_total",
    "mean_wait_min",
)


def make_encoder(config: ScenarioConfig) -> ObservationEncoder:
    """The observation encoder for a scenario (with the carbon features if it prices carbon)."""
    fig = site_figures(config)
    return ObservationEncoder(
        fig.import_limit_kw,
        config.chargers.n_stalls,
        fig.battery_power_kw,
        carbon_priced=config.tariff.carbon_price_usd_per_tonne > 0.0,
    )


def site_measurements(sim: SiteSimulator, carbon_priced: bool) -> np.ndarray:
    """Raw measurements ``[B, F]`` of every site in the encoder's order: the kernel's
    ``sim.meas``, followed by the carbon features when ``carbon_priced``."""
    if not carbon_priced:
        return sim.meas
    steps_h = max(int(round(60 / sim.step_min)), 1)
    carbon = sim.series[:, L.S_CARBON_G_PER_KWH, : sim.n_steps]
    return np.concatenate([sim.meas, carbon_measurements(carbon, sim.t, steps_h)], axis=1)


def make_decoder(config: ScenarioConfig) -> ActionDecoder:
    """The action decoder for a scenario."""
    fig = site_figures(config)
    return ActionDecoder(
        soft_ev_priority=config.ev_priority == "soft",
        battery_charge_kw=fig.battery_charge_kw,
        battery_discharge_kw=fig.battery_discharge_kw,
        ev_capacity_kw=fig.ev_capacity_kw,
    )


class MegapodSiteEnv(gym.Env[np.ndarray, np.ndarray]):
    """## Description

    One EV fast-charging site (Supercharger-like stalls) that shares its grid connection with a
    Megapod AI-compute container and a Megapack-like battery. Every step (5 min by default) the
    controller requests an IT power fraction for the compute and a battery power; the site's
    safety layer turns the request into feasible setpoints: the grid import limit is never
    exceeded, the battery respects its SoC window and power limits, and cars come first — when the
    limit binds, battery charging is cut, then compute (down to a pause), then (``strict`` mode) the
    battery discharges to keep the cars whole, and only then do the cars share what is left. In
    ``soft`` EV-priority mode a third action caps the chargers' power, and a car's delay costs
    what the customer's time and a lost sale are worth.

    Exogenous inputs (prices, temperature, inference demand, EV arrivals) are sampled once per
    episode into an :class:`~megapod_gym.scenario.trace.ExogenousTrace`; ``reset(seed=s)`` runs on
    trace ``s`` so baselines, the hindsight optimum and MPC can be compared on the same days.

    ## Action Space

    ``Box(-1, 1, (2,), float32)`` (``(3,)`` in ``soft`` mode), rescaled inside:

    | Index | Action       | Unit | Mapping of a in [-1, 1]                                         |
    |-------|--------------|------|-----------------------------------------------------------------|
    | 0     | compute_frac | -    | IT power fraction (a + 1) / 2; below the cap floor (0.29) = pause |
    | 1     | battery_kw   | kW   | a x discharge power if a >= 0 (**positive = discharge**), a x charge power if a < 0 |
    | 2     | ev_cap_kw    | kW   | soft mode only: chargers' AC cap (a + 1) / 2 x stall capacity  |

    Out-of-range actions are clipped and counted in ``info["action_clipped"]``; NaN or infinite
    actions raise ``ValueError``.

    ## Observation Space

    ``Box(-10, 10, (27,), float32)`` (``(30,)`` when the scenario prices carbon, see below);
    feature = clip((raw - center) / scale, -10, 10). Names are in
    ``env.unwrapped.observation_names``; the raw value of a feature is
    ``env.unwrapped.encoder.decode(obs, name)``. ``L`` = grid import limit (kW), ``S`` = stalls,
    ``P`` = battery power (kW).

    | Index | Feature                          | Unit         | Center | Scale |
    |-------|----------------------------------|--------------|--------|-------|
    | 0     | time_of_day_sin                  | -            | 0      | 1     |
    | 1     | time_of_day_cos                  | -            | 0      | 1     |
    | 2     | is_weekend                       | 0/1          | 0      | 1     |
    | 3     | price_usd_per_kwh                | USD/kWh      | 0      | 0.5   |
    | 4     | price_next_1h_usd_per_kwh        | USD/kWh      | 0      | 0.5   |
    | 5     | price_next_4h_mean_usd_per_kwh   | USD/kWh      | 0      | 0.5   |
    | 6     | price_next_4h_max_usd_per_kwh    | USD/kWh      | 0      | 0.5   |
    | 7     | price_next_24h_mean_usd_per_kwh  | USD/kWh      | 0      | 0.5   |
    | 8     | ev_price_usd_per_kwh             | USD/kWh      | 0      | 0.5   |
    | 9     | demand_headroom_kw               | kW           | 0      | L     |
    | 10    | demand_rate_usd_per_kw_month     | USD/kW-month | 0      | 20    |
    | 11    | battery_soc_frac                 | -            | 0.5    | 0.5   |
    | 12    | stalls_occupied_frac             | -            | 0      | 1     |
    | 13    | ev_requested_kw                  | kW           | 0      | L     |
    | 14    | compute_headroom_kw              | kW           | 0      | L     |
    | 15    | queue_length                     | cars         | 0      | S     |
    | 16    | longest_wait_min                 | min          | 0      | 30    |
    | 17    | expected_arrivals_next_h         | cars/h       | 0      | S     |
    | 18    | training_backlog_h               | h            | 0      | 24    |
    | 19    | inference_demand_frac            | -            | 0      | 1     |
    | 20    | ambient_c                        | degC         | 20     | 15    |
    | 21    | pue                              | -            | 1      | 0.3   |
    | 22    | prev_compute_frac                | -            | 0      | 1     |
    | 23    | prev_battery_kw                  | kW           | 0      | P     |
    | 24    | prev_ev_cap_kw                   | kW           | 0      | L     |
    | 25    | compute_paused                   | 0/1          | 0      | 1     |
    | 26    | hours_left_h                     | h            | 0      | 24    |

    A scenario that prices carbon (``tariff.carbon_price_usd_per_tonne > 0``; no shipped preset
    does) appends three features; the forecasts are the trace's own carbon series (exact, as for
    TOU prices), steps past the episode repeating its last value:

    | Index | Feature                          | Unit         | Center | Scale |
    |-------|----------------------------------|--------------|--------|-------|
    | 27    | carbon_g_per_kwh                 | g/kWh        | 0      | 500   |
    | 28    | carbon_next_1h_mean_g_per_kwh    | g/kWh        | 0      | 500   |
    | 29    | carbon_next_4h_mean_g_per_kwh    | g/kWh        | 0      | 500   |

    Price forecasts are exact for TOU tariffs; for real-time prices they are the day-ahead view
    (daily shape, day level and negative-price hours, without intraday noise or spikes).

    ## Rewards

    reward = ledger total (USD in the step) x ``reward.scale`` (0.01 by default), where

    total = ev_revenue + compute_value - energy_cost + export_revenue - demand_charge
    - battery_degradation - sla_penalty - wait_penalty - balk_penalty - pause_resume_cost
    - carbon_cost.

    ``reward.weights`` (e.g. ``{wait_penalty_usd: 3}``) weights single terms of that sum
    (HighwayEnv style; ``megapod_gym.sim.reward``); profit, score and ``info`` never change.

    Every term (``*_usd``), every power flow (``*_kw``, averaged over the step), the dispatch
    report (what was requested, applied, cut or clipped) and the KPIs are in ``info`` with the same
    keys at every step; ``info["energy_balance_residual_kwh"]`` is ~0 by construction.

    ## Starting State

    Local midnight of a sampled day; battery at ``battery.initial_soc``; compute running; no cars;
    the training backlog at ``compute.training_backlog_initial_h``.

    ## Episode End

    Never terminated (the site does not fail); truncated after ``episode.days`` (1 day = 288 steps
    of 5 min by default).

    ## Arguments

    | Argument           | Default               | Meaning                                             |
    |--------------------|-----------------------|-----------------------------------------------------|
    | `scenario`         | `"urban-12stall-bev"` | preset name, YAML path, mapping or `ScenarioConfig` |
    | `config_overrides` | `None`                | nested or dotted keys, e.g. `{"battery.energy_kwh": 0}` |
    | `render_mode`      | `None`                | `"rgb_array"` (episode plot) or `"ansi"` (one line) |

    ``reset(options={"trace": trace})`` runs on a given one-row ``ExogenousTrace``.
    Scenarios: :func:`megapod_gym.scenario_names`.

    ## Training agents

    PPO from scratch loses to simple rules here: the control value is small beside day-to-day
    profit noise, and energy stored at night pays off ~190 steps later. What works (README
    "Training"): clone MPC from demonstrations on training days, with DAgger rounds; improve the
    clone by policy search that plays every candidate on the same days (seeds), so the day-to-day
    noise cancels; then fine-tune with gamma = GAE lambda = 1, the day's end reported as
    termination, a small trust region and a privileged critic: ``configs/train/ppo-search-long.yaml``
    (what ``megapod demo`` runs; ``ppo-search.yaml`` with half the search, ``ppo-dagger.yaml``
    without it, ``ppo-bc.yaml`` without DAgger).
    Evaluate on the held-out seeds (>= 1,000,000) with the normalized score.

    ## Vectorized environment

    :class:`~megapod_gym.envs.vector_env.MegapodVectorEnv` steps N sites with the same compiled
    core in one call: ``gym.make_vec("megapod_gym/MegapodSite-v0", num_envs=N,
    vectorization_mode="vector_entry_point")``.

    ## Version History

    * v0: initial release; later, carbon features appended only for scenarios that price carbon
      (the observation of every scenario without a carbon price is unchanged).
    """

    metadata = {"render_modes": ["rgb_array", "ansi"], "render_fps": 4}

    def __init__(
        self,
        scenario: str | Path | Mapping[str, Any] | ScenarioConfig | None = None,
        config_overrides: Mapping[str, Any] | None = None,
        render_mode: str | None = None,
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be one of {self.metadata['render_modes']} or None (got {render_mode!r})"
            )
        self.config = load_scenario(scenario, config_overrides)
        self.render_mode = render_mode
        self.sampler = TraceSampler(self.config)
        self.sim = SiteSimulator(self.config, batch_size=1)
        self.encoder = make_encoder(self.config)
        self.decoder = make_decoder(self.config)
        self.observation_names = self.encoder.names
        self.action_names = self.decoder.names
        self.observation_space = spaces.Box(-OBS_CLIP, OBS_CLIP, (self.encoder.size,), np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (self.decoder.size,), np.float32)
        self.reward_scale = self.config.reward.scale
        self.reward_of = RewardComposer(self.reward_scale, self.config.reward.weights)
        self.trace: ExogenousTrace | None = None
        self._start_yyyymmdd = 0
        self._setpoints = np.zeros((1, 3))
        self._history = np.zeros((self.sim.n_steps, L.N_OUT))

    # ------------------------------------------------------------------------------ API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        options = options or {}
        unknown = set(options) - {"trace", "trace_seed"}
        if unknown:
            raise ValueError(
                f"unknown reset options {sorted(unknown)}; allowed: 'trace', 'trace_seed'"
            )
        if "trace" in options:
            trace = options["trace"]
            if not isinstance(trace, ExogenousTrace) or trace.batch_size != 1:
                raise ValueError(
                    "options['trace'] must be an ExogenousTrace with one row (use trace.site(i))"
                )
        else:
            if "trace_seed" in options:
                trace_seed = int(options["trace_seed"])
            elif seed is not None:
                trace_seed = int(seed)
            else:
                trace_seed = int(self.np_random.integers(0, HELD_OUT_SEED_BASE))
            trace = self.sampler.sample([trace_seed])
        self.trace = trace
        self._start_yyyymmdd = int(trace.start_yyyymmdd[0])
        self.sim.reset(trace)
        self._history[:] = 0.0
        return self._observe(), self._info(np.zeros(L.N_OUT), 0)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self.trace is None:
            raise RuntimeError("call reset() before step()")
        clipped = self.decoder.decode_one(action, self._setpoints[0])
        t = int(self.sim.istate[0, L.I_T])
        out = self.sim.step_actions(self._setpoints)[0]
        self._history[t] = out
        reward = float(self.reward_of(out))
        obs = self._observe()
        return obs, reward, False, t + 1 >= self.sim.n_steps, self._info(out, clipped)

    def _observe(self) -> np.ndarray:
        return self.encoder.encode(site_measurements(self.sim, self.encoder.carbon_priced)[0])

    def _info(self, out: np.ndarray, clipped: int) -> dict[str, Any]:
        info: dict[str, Any] = dict(zip(L.OUT_FIELDS, out.tolist()))
        info["action_clipped"] = clipped
        f = self.sim.fstate[0].tolist()
        arrived, wait = f[L.F_CARS_ARRIVED], f[L.F_WAIT_MIN_TOTAL]
        info["cars_arrived"] = arrived
        info["cars_served"] = f[L.F_CARS_SERVED]
        info["cars_balked"] = f[L.F_CARS_BALKED]
        info["wait_min_total"] = wait
        info["mean_wait_min"] = wait / max(arrived, 1.0)
        info["step"] = int(self.sim.istate[0, L.I_T])
        info["start_date_yyyymmdd"] = self._start_yyyymmdd  # local date of step 0, a number
        return info

    # ---------------------------------------------------------------------------- render
    @property
    def history(self) -> dict[str, np.ndarray]:
        """Step outputs of the episode so far by name, each ``[steps done]``."""
        n = int(self.sim.t[0])
        return {name: self._history[:n, i].copy() for i, name in enumerate(L.OUT_FIELDS)}

    def render(self) -> np.ndarray | str | None:
        if self.render_mode is None:
            gym.logger.warn(
                "render() called without a render_mode; pass render_mode='rgb_array' or 'ansi'"
            )
            return None
        if self.trace is None:
            raise RuntimeError("call reset() before render()")
        if self.render_mode == "ansi":
            return self._status_line()
        from megapod_gym.render import render_episode

        return render_episode(
            self.history, self.trace.price_usd_per_kwh[0], self.sim.dt_h, title=self.config.name
        )

    def _status_line(self) -> str:
        t = int(self.sim.t[0])
        m = dict(zip(L.MEAS_FIELDS, self.sim.meas[0].tolist()))
        last = self._history[t - 1] if t > 0 else np.zeros(L.N_OUT)
        minutes = t * self.sim.step_min
        return (
            f"day {minutes // 1440} {minutes % 1440 // 60:02d}:{minutes % 60:02d} | "
            f"grid {last[L.O_GRID_IMPORT_KW]:7.0f} kW | cars {last[L.O_EV_KW]:6.0f} kW "
            f"({m['stalls_occupied_frac'] * self.config.chargers.n_stalls:.0f} plugged, {m['queue_length']:.0f} queued) | "
            f"compute {last[L.O_COMPUTE_KW]:6.0f} kW | battery {last[L.O_BATTERY_KW]:+6.0f} kW SoC {m['battery_soc_frac']:.0%} | "
            f"price ${m['price_usd_per_kwh']:.3f}/kWh | step ${last[L.O_TOTAL_USD]:8.2f}"
        )
