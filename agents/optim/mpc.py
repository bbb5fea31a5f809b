"""Model-predictive control: the hindsight LP of :mod:`agents.optim.site_lp` over a rolling horizon from
the current state, on forecasts only.

Every ``resolve_every`` steps (default 1), for each site (batch row) separately, :class:`MPCPolicy`
solves the site LP over the next ``horizon_h`` hours (default **36 h**, cut at the episode end) and
applies the first step of the plan (the following ones until the next solve). The horizon must
reach past the end of the day: with a 4-h window (the former default) the LP priced a whole demand
charge against 4 h of the compute it allows, so it kept the facility peak low and crept it up
window by window (compute throttled all day in ``internal-training-lowvalue``, the battery spent at
night shaving a peak that the day sets anyway in ``demand-charge-heavy``), and it could not see the
evening peak from the cheap hours. 36 h covers every shipped (1-day) episode from its start and, on
longer episodes, sees tomorrow's evening peak from today's. What it knows:

* **state** from the observation (read by feature name): battery SoC, training backlog, and the
  cars plugged in now (``ev_requested_kw``, exact for the current step);
* **demand-charge state** from its own bookkeeping: each step it reconstructs the previous step's
  grid import from the observation's applied setpoints (``prev_ev_cap_kw`` = chargers' AC kW,
  ``prev_compute_frac`` x IT kW x that step's PUE, ``prev_battery_kw``, battery aux), sums it per
  demand window and updates the peaks it has set when a window closes (as the kernel does);
* **demand charges beyond the horizon**: when the window ends before the episode, each charge's
  rate is scaled by the window's share of the episode's remaining steps in that charge's active
  hours (a peak raised now serves the rest of the billing period; 1 for the shipped scenarios);
* **forecasts**: energy price = the price now (observed) then the trace's
  ``price_forecast_usd_per_kwh`` x the observed ratio price / forecast fading as the real-time
  price noise's AR(1) does in log space (``ratio^(phi^k)``, clipped to 3 noise sigmas; a no-op
  for TOU and replayed prices); export at the tariff's share of it; carbon intensity and
  demand-charge hours from the calendar; PUE from an ambient-temperature forecast (the weather
  config's monthly mean + daily cosine, plus the observed anomaly fading with a 164-min time
  constant, the generator's AR(1)); inference demand likewise (the configured daily cosine + the
  observed anomaly, fading); the EV load = the cars plugged in now, decaying exponentially with
  half a typical session as time constant, + the queue and the expected arrivals
  (``arrival_rate_per_h``) each drawing a typical session profile (fleet- and share-weighted, from
  the mean arrival and target SoC on each acceptance curve), capped at the chargers' capacity;
  training arrivals at the configured rate;
* **end of the horizon**: stored energy left is worth the discharge efficiency x the mean price
  forecast over the following 24 h (not below 0); nothing beyond the episode end (the shipped
  1-day episodes are always in view to their end, so this rule only applies to longer ones). A
  penalised shortfall (``shortfall_penalty_usd_per_kwh``) keeps the LP feasible when the EV
  forecast overshoots what the grid and battery can carry; the site's safety layer handles the
  rest.

Each site keeps one HiGHS instance for the episode; a solve rebuilds the window LP with vectorised
NumPy and passes it in (5-30 ms on average over a shipped 1-day episode of 288 five-minute steps,
refinement rounds of the compute envelopes included; about twice the former 4-h window's time).

``perfect_forecast=True`` uses the realized trace instead (prices, temperature, inference demand)
and the exact EV load (from :func:`agents.optim.oracle.reference_ev_run`); with a horizon covering the
episode it reproduces the hindsight optimum. In ``soft`` EV-priority mode MPC leaves the cars
uncapped (cars first) and optimises compute and battery around them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from agents.optim.oracle import reference_ev_run, step_index
from agents.optim.site_lp import (
    SiteLPInputs,
    SiteLPParams,
    SiteLPSolution,
    new_highs,
    solve_site_lp,
)
from agents.policies.base import PolicyContext
from megapod_gym.config import ScenarioConfig
from megapod_gym.sim.curves import charge_for_minutes, curve_tables
from megapod_gym.sim.figures import site_figures


def session_profile_kw(config: ScenarioConfig) -> np.ndarray:
    """Expected AC kW drawn by one arriving car in each step after it plugs in (``[L]``).

    Fleet-share-weighted over the vehicle models: each charges from the mean arrival SoC to the
    mean target SoC on its acceptance curve x power scale, capped at the stall, with the kernel's
    1-minute Euler steps; cabinet sharing is ignored.
    """
    ev, ch, ep = config.ev, config.chargers, config.episode
    shares = np.array([v.share for v in ev.fleet], dtype=np.float64)
    shares = shares / shares.sum()
    soc0, target = ev.arrival_soc.mean, max(ev.target_soc.mean, ev.arrival_soc.mean + 0.05)
    target = min(target, 1.0)
    tables = curve_tables(ev)
    names = sorted(ev.curves)
    profiles = []
    for v in ev.fleet:
        curve = tables[names.index(v.curve)]
        s = soc0
        per_min = []
        for _ in range(24 * 60):  # a day at most
            if s >= target:
                break
            de, s = charge_for_minutes(
                s, target, v.battery_kwh, curve, v.power_scale, ch.stall_kw, 1.0
            )
            per_min.append(de * 60.0)
        mins = np.asarray(per_min)
        n = max(int(math.ceil(mins.shape[0] / ep.step_min)), 1)
        padded = np.zeros(n * ep.step_min)
        padded[: mins.shape[0]] = mins
        profiles.append(padded.reshape(n, ep.step_min).mean(axis=1) / ch.efficiency)
    L = max(p.shape[0] for p in profiles)
    out = np.zeros(L)
    for w, p in zip(shares, profiles):
        out[: p.shape[0]] += w * p
    return out


@dataclass
class _SiteState:
    """MPC's own record of one site's episode."""

    peak_kw: np.ndarray  # [K] demand peaks set so far
    window_kwh: float  # import so far in the current demand window
    prev_pue: float  # PUE of the previous step (for the import reconstruction)
    plan: np.ndarray  # [m, 3] setpoints from the last solve
    plan_t0: int  # step of the plan's first row
    last: SiteLPSolution | None


class MPCPolicy:
    """**mpc**: the site LP over a rolling horizon on forecasts (see the module docstring).

    Parameters
    ----------
    horizon_h
        Look-ahead in hours (cut at the episode end).
    resolve_every
        Solve every this many steps; in between, apply the plan of the last solve.
    perfect_forecast
        Use the realized trace and the exact EV load instead of forecasts (not causal).
    ev_decay_min
        Time constant of the decay of the cars plugged in now; default half the typical session.
    shortfall_penalty_usd_per_kwh
        Price of the LP's slack on the site balance (forecast EV load it cannot carry).
    n_lines
        Lines per compute-value envelope (see :func:`agents.optim.site_lp.compute_envelopes`).
    refine_tol
        Tolerance of the lazy envelope refinement (see :func:`agents.optim.site_lp.solve_site_lp`).
    price_persistence
        Let the observed real-time price deviation from the forecast fade (AR(1)) rather than
        vanish after the current step.
    weather_persistence_min, inference_persistence_min
        Time constants of the fading of the observed ambient-temperature and inference-demand
        anomalies from their calendar means; ``None`` persists the observed PUE / demand.
    """

    name = "mpc"

    def __init__(
        self,
        horizon_h: float = 36.0,
        resolve_every: int = 1,
        perfect_forecast: bool = False,
        ev_decay_min: float | None = None,
        shortfall_penalty_usd_per_kwh: float = 50.0,
        n_lines: int = 16,
        refine_tol: float = 1e-5,
        price_persistence: bool = True,
        weather_persistence_min: float | None = 164.0,
        inference_persistence_min: float | None = 164.0,
    ) -> None:
        if not horizon_h > 0.0:
            raise ValueError(f"horizon_h must be > 0 (got {horizon_h})")
        if int(resolve_every) < 1:
            raise ValueError(f"resolve_every must be >= 1 (got {resolve_every})")
        if ev_decay_min is not None and not ev_decay_min > 0.0:
            raise ValueError(f"ev_decay_min must be > 0 (got {ev_decay_min})")
        if not refine_tol > 0.0:
            raise ValueError(f"refine_tol must be > 0 (got {refine_tol})")
        for name, tau in (
            ("weather_persistence_min", weather_persistence_min),
            ("inference_persistence_min", inference_persistence_min),
        ):
            if tau is not None and not tau > 0.0:
                raise ValueError(f"{name} must be > 0 or None (got {tau})")
        self.horizon_h = float(horizon_h)
        self.resolve_every = int(resolve_every)
        self.perfect_forecast = bool(perfect_forecast)
        self.ev_decay_min = ev_decay_min
        self.shortfall_penalty_usd_per_kwh = float(shortfall_penalty_usd_per_kwh)
        self.n_lines = int(n_lines)
        self.refine_tol = float(refine_tol)
        self.price_persistence = bool(price_persistence)
        self.weather_persistence_min = weather_persistence_min
        self.inference_persistence_min = inference_persistence_min
        self._ctx: PolicyContext | None = None
        self._sites: list[_SiteState] = []
        self._t = 0
        self.solve_count = 0
        self.solve_time_s = 0.0

    @property
    def peaks_kw(self) -> np.ndarray:
        """Demand-charge peaks ``[B, K]`` the policy has booked so far this episode."""
        return np.stack([st.peak_kw for st in self._sites]) if self._sites else np.zeros((0, 0))

    # ------------------------------------------------------------------------------ reset
    def reset(self, context: PolicyContext) -> None:
        cfg = context.config
        self._ctx = context
        self.params = SiteLPParams.from_config(cfg)
        p = self.params
        self.n_steps = p.n_steps
        self.horizon_steps = max(int(round(self.horizon_h / p.dt_h)), 1)
        self.profile_kw = session_profile_kw(cfg)
        session_min = float(np.sum(self.profile_kw) / max(self.profile_kw.max(), 1e-9))
        session_min *= cfg.episode.step_min
        self.decay_min = self.ev_decay_min or max(0.5 * session_min, cfg.episode.step_min)
        self.ev_capacity_kw = site_figures(cfg).ev_capacity_kw
        self.carbon_table = np.asarray(cfg.tariff.carbon_g_per_kwh, dtype=np.float64)
        self.export_frac = cfg.tariff.export_price_frac_of_energy
        self.training_arrival_kwh = (
            cfg.compute.training_arrival_h_per_day / 24.0 * cfg.compute.it_kw * p.dt_h
        )
        rt = cfg.tariff.realtime
        step_ratio = cfg.episode.step_min / 5.0
        self.price_phi = (
            rt.noise_autocorr**step_ratio if cfg.tariff.energy_price == "realtime" else 0.0
        )
        self.price_log_clip = 3.0 * rt.noise_sigma
        w, c = cfg.weather, cfg.compute
        self.weather = (
            np.asarray(w.monthly_mean_c, dtype=np.float64),
            w.daily_amplitude_c,
            w.peak_hour,
        )
        self.inference_clim = (
            c.inference_mean_frac,
            c.inference_amplitude_frac,
            c.inference_peak_hour,
        )
        self.highs = [new_highs() for _ in range(context.batch_size)]
        self.exact_ev: list[np.ndarray] = []
        if self.perfect_forecast:
            strict = (
                cfg
                if cfg.ev_priority == "strict"
                else cfg.model_copy(update={"ev_priority": "strict"})
            )
            self.exact_ev = [
                reference_ev_run(strict, context.trace.site(i)).ev_ac_kw
                for i in range(context.batch_size)
            ]
        self._sites = [
            _SiteState(p.demand_threshold_kw.copy(), 0.0, 1.0, np.zeros((0, 3)), 0, None)
            for _ in range(context.batch_size)
        ]
        self._t = 0
        self.solve_count = 0
        self.solve_time_s = 0.0

    # -------------------------------------------------------------------------------- act
    def act(self, obs: np.ndarray) -> np.ndarray:
        if self._ctx is None:
            raise RuntimeError("call reset(context) before act()")
        ctx = self._ctx
        obs = np.asarray(obs)
        if obs.ndim == 1:
            obs = obs[None]
        B = len(self._sites)
        if obs.shape[0] != B:
            raise ValueError(f"expected observations for {B} sites, got {obs.shape[0]}")
        t = step_index(ctx, obs, self._t, self.n_steps)
        self._t = t + 1
        f = {name: ctx.encoder.decode(obs, name) for name in ctx.encoder.names}
        setpoints = np.empty((B, 3))
        for i, st in enumerate(self._sites):
            row = {k: float(v[i]) for k, v in f.items()}
            self._track_import(i, st, row, t)
            k = t - st.plan_t0
            if st.last is None or k >= min(self.resolve_every, st.plan.shape[0]) or k < 0:
                self._solve(i, st, row, t)
                k = 0
            setpoints[i] = st.plan[k]
        return ctx.decoder.encode(setpoints).astype(np.float32)

    def _track_import(self, i: int, st: _SiteState, row: dict[str, float], t: int) -> None:
        """Add the previous step's import (reconstructed from the observation) to the demand
        window and close the window as the kernel does."""
        p = self.params
        if t > 0:
            net = (
                row["prev_ev_cap_kw"]
                + row["prev_compute_frac"] * p.it_kw * st.prev_pue
                + p.battery_aux_kw
                - row["prev_battery_kw"]
            )
            st.window_kwh += max(net, 0.0) * p.dt_h
            W = p.window_steps
            if t % W == 0:
                avg = st.window_kwh / (W * p.dt_h)
                assert self._ctx is not None
                active = self._ctx.trace.demand_active[i, t - 1]
                st.peak_kw = np.where(active & (avg > st.peak_kw), avg, st.peak_kw)
                st.window_kwh = 0.0
        st.prev_pue = row["pue"]

    # ------------------------------------------------------------------------------ solve
    def _solve(self, i: int, st: _SiteState, row: dict[str, float], t: int) -> None:
        assert self._ctx is not None
        inputs = self.inputs(i, row, t, st)
        sol = solve_site_lp(
            self.window_params(i, t, inputs.n_steps),
            inputs,
            self.highs[i],
            n_lines=self.n_lines,
            refine_tol=self.refine_tol,
        )
        self.solve_count += 1
        self.solve_time_s += sol.build_time_s + sol.solve_time_s
        floor = self.params.cap_floor_frac
        x = sol.it_frac.copy()
        near = x >= floor - 1e-7
        x[near] = np.minimum(np.maximum(x[near], floor) + 1e-6, 1.0)
        st.plan = np.stack([x, sol.battery_kw, np.full(x.shape, np.inf)], axis=1)
        st.plan_t0 = t
        st.last = sol

    def window_params(self, i: int, t: int, n: int) -> SiteLPParams:
        """The site figures for the window ``[t, t + n)``: each demand charge's rate scaled by the
        share of the episode's remaining active steps that the window sees (1 when the window
        reaches the episode end), so a peak raised now is paid for by the window's share of the
        work it lets the site do until the end of the billing period."""
        assert self._ctx is not None
        p = self.params
        if p.n_demand_charges == 0 or t + n >= self.n_steps:
            return p
        active = self._ctx.trace.demand_active[i, t:]
        seen = active[:n].sum(axis=0)
        left = active.sum(axis=0)
        share = np.where(left > 0, seen / np.maximum(left, 1), 1.0)
        return replace(p, demand_rate_usd_per_kw=p.demand_rate_usd_per_kw * share)

    def inputs(self, i: int, row: dict[str, float], t: int, st: _SiteState) -> SiteLPInputs:
        """The LP inputs of site ``i`` at step ``t`` (forecasts or, with ``perfect_forecast``,
        the realized trace) given its decoded observation ``row``."""
        assert self._ctx is not None
        p, tr = self.params, self._ctx.trace
        n = min(self.horizon_steps, self.n_steps - t)
        sl = slice(t, t + n)
        hour_idx = np.floor(tr.hour[i, sl]).astype(np.int64) % 24
        if self.perfect_forecast:
            price = tr.price_usd_per_kwh[i, sl].astype(np.float64)
            export = tr.export_price_usd_per_kwh[i, sl].astype(np.float64)
            carbon = tr.carbon_g_per_kwh[i, sl].astype(np.float64)
            ev = self.exact_ev[i][sl].copy()
            pue = p.pue(tr.ambient_c[i, sl])
            infer = tr.inference_demand_frac[i, sl].astype(np.float64)
            arrivals = tr.training_arrival_kwh[i, sl].astype(np.float64)
            future_price = tr.price_usd_per_kwh[i]
        else:
            price = self.price_forecast(i, row, t, n)
            export = price * self.export_frac
            carbon = self.carbon_table[hour_idx]
            ev = self.ev_forecast(i, row, t, n)
            pue = self.pue_forecast(i, row, t, n)
            infer = self.inference_forecast(i, row, t, n)
            arrivals = np.full(n, self.training_arrival_kwh)
            future_price = tr.price_forecast_usd_per_kwh[i]
        terminal = 0.0
        if t + n < self.n_steps and p.battery_energy_kwh > 0.0:
            day = int(round(24.0 / p.dt_h))
            tail = future_price[t + n : t + n + day]
            if tail.size:
                terminal = p.battery_discharge_efficiency * max(float(np.mean(tail)), 0.0)
        return SiteLPInputs(
            price_usd_per_kwh=price,
            export_price_usd_per_kwh=export,
            carbon_g_per_kwh=carbon,
            ev_ac_kw=ev,
            pue=pue,
            inference_demand_frac=infer,
            training_arrival_kwh=arrivals,
            demand_active=tr.demand_active[i, sl].astype(bool),
            battery_soc_frac=row["battery_soc_frac"],
            backlog_kwh=max(row["training_backlog_h"], 0.0) * p.it_kw,
            peak0_kw=st.peak_kw.copy(),
            window_pos0=t % p.window_steps,
            window_prior_kwh=st.window_kwh,
            count_partial_window=True,
            terminal_value_usd_per_kwh=terminal,
            shortfall_penalty_usd_per_kwh=self.shortfall_penalty_usd_per_kwh,
        )

    def price_forecast(self, i: int, row: dict[str, float], t: int, n: int) -> np.ndarray:
        """Energy price over the next ``n`` steps: the observed price now, then the trace's
        forecast x the observed ratio price / forecast, fading as the real-time noise's AR(1) in
        log space (``ratio^(phi^k)``, log ratio clipped to 3 noise sigmas; no fading for TOU)."""
        assert self._ctx is not None
        fc = self._ctx.trace.price_forecast_usd_per_kwh[i, t : t + n].astype(np.float64)
        now = row["price_usd_per_kwh"]
        price = fc.copy()
        price[0] = now
        if self.price_persistence and self.price_phi > 0.0 and n > 1 and now > 0.0 and fc[0] > 0.0:
            log_r = float(np.clip(np.log(now / fc[0]), -self.price_log_clip, self.price_log_clip))
            k = np.arange(1, n)
            pos = fc[1:] > 0.0
            price[1:] = np.where(pos, fc[1:] * np.exp(log_r * self.price_phi**k), fc[1:])
        return price

    def _persist(self, now: float, clim: np.ndarray, tau_min: float | None, n: int) -> np.ndarray:
        """``clim`` (a calendar mean over the next ``n`` steps) + the observed anomaly ``now -
        clim[0]`` decaying with time constant ``tau_min``; ``tau_min=None`` persists ``now``."""
        if tau_min is None:
            return np.full(n, now)
        lag_min = np.arange(n) * self.params.dt_h * 60.0
        return clim + (now - clim[0]) * np.exp(-lag_min / tau_min)

    def pue_forecast(self, i: int, row: dict[str, float], t: int, n: int) -> np.ndarray:
        """PUE over the next ``n`` steps from an ambient-temperature forecast: the weather
        config's monthly mean + daily cosine, plus the observed anomaly fading with
        ``weather_persistence_min``."""
        assert self._ctx is not None
        if self.weather_persistence_min is None or "ambient_c" not in row:
            return np.full(n, row["pue"])
        tr = self._ctx.trace
        monthly, amp, peak = self.weather
        hour = tr.hour[i, t : t + n].astype(np.float64)
        clim = monthly[tr.month[i, t : t + n] - 1] + amp * np.cos(2 * np.pi * (hour - peak) / 24.0)
        amb = self._persist(row["ambient_c"], clim, self.weather_persistence_min, n)
        pue = self.params.pue(amb)
        pue[0] = row["pue"]
        return pue

    def inference_forecast(self, i: int, row: dict[str, float], t: int, n: int) -> np.ndarray:
        """Inference demand over the next ``n`` steps: the configured daily cosine plus the
        observed anomaly fading with ``inference_persistence_min``."""
        assert self._ctx is not None
        mean, amp, peak = self.inference_clim
        hour = self._ctx.trace.hour[i, t : t + n].astype(np.float64)
        clim = mean + amp * np.cos(2 * np.pi * (hour - peak) / 24.0)
        now = min(max(row["inference_demand_frac"], 0.0), 1.0)
        return np.clip(self._persist(now, clim, self.inference_persistence_min, n), 0.0, 1.0)

    def ev_forecast(self, i: int, row: dict[str, float], t: int, n: int) -> np.ndarray:
        """Expected chargers' AC kW over the next ``n`` steps (step 0 = the observed request)."""
        assert self._ctx is not None
        dt_min = self.params.dt_h * 60.0
        lag = np.arange(n)
        now = row["ev_requested_kw"] * np.exp(-lag * dt_min / self.decay_min)
        prof = self.profile_kw
        rate = self._ctx.trace.arrival_rate_per_h[i, t + 1 : t + n].astype(np.float64)
        expected = np.zeros(n)
        if n > 1:
            # cars arriving at step t + s (s >= 1) draw prof[u - s] at step t + u
            expected[1:] = np.convolve(rate * self.params.dt_h, prof)[: n - 1]
            queue = max(row["queue_length"], 0.0)
            expected[1:] += (
                queue
                * prof[np.minimum(lag[: n - 1], prof.shape[0] - 1)]
                * (lag[: n - 1] < prof.shape[0])
            )
        return np.minimum(now + expected, self.ev_capacity_kw)
