"""The hindsight optimum: a linear program (HiGHS) over one whole trace with perfect knowledge of
prices, temperature, inference demand and car arrivals, and its step-by-step replay as a policy.

``solve_hindsight(config, trace.site(i))`` returns the LP's optimal profit (USD, as the ledger
counts it) and schedule. The LP is built by :mod:`agents.optim.site_lp` (shared with MPC); its value is
a **true upper bound** on the profit of any controller in the simulator, because the LP is a
relaxation of the simulator:

``strict`` EV-priority mode (the default)
    Cars do not depend on the controller: the safety layer cuts battery charging, then compute down
    to standby, then discharges the battery, before it ever cuts a car. The EV AC load per step,
    EV revenue, wait and balk penalties are therefore taken from one run of the real simulator
    (:func:`reference_ev_run`) with compute at standby and the battery idle, and are fixed inputs.
    That run must cut no car (:class:`ValueError` otherwise: the EV load would then depend on the
    controller). If it needed no battery override either (``ReferenceEV.max_battery_override_kw
    == 0``, true for every preset), cars plus standby compute fit under the grid limit at every
    step, so no controller can ever cut a car and the bound holds for all of them; otherwise it
    holds for every controller that never lets the battery run too low to cover the cars (the
    replay and MPC plan that discharge explicitly).

``soft`` EV-priority mode
    EV charging is a decision: per-car DC energy variables
    (:class:`agents.optim.site_lp_inputs.CarBlock`).
    Each car may take energy from its arrival step on (until its departure step, if it has one),
    up to its target energy, at a power per step capped by the stall kW (or the car's own
    ``car_max_kw``, if lower) and by the concave upper envelope of its acceptance curve x power
    scale (evaluated at the SoC that bounds the step's mean SoC); revenue per DC kWh.

Relaxations (each can only raise the LP value above what the simulator can reach):

* pause/resume costs are ignored (they are costs >= 0);
* pausing is not an integer decision: between standby and the cap floor the LP time-shares
  (the concave envelope joins the standby point to the running curve);
* compute value: concave piecewise-linear *upper* envelopes of the kernel's exact training-work
  and inference-served functions of the IT fraction, evaluated exactly as the kernel does
  (inference first, then training with what is left, SLA penalty on unmet inference, nothing
  while paused). Every line is >= the function everywhere on ``{standby} U [floor, 1]``: exact
  tangents of the concave curve plus the line from the standby point, refined lazily where the
  LP's solution needs them (:func:`agents.optim.site_lp.solve_site_lp`), or, where the training curve
  is not concave, grid secants raised by their excess plus a bound on the between-grid error
  (:func:`agents.optim.compute_envelopes.compute_envelopes`). The two envelopes (training,
  inference) are separate, which can only loosen the bound;
* the battery may charge and discharge in the same step; grid import and export may both be
  positive in the same step;
* training backlog: modelled (when it can bind at all) as ``w_t <= b_t`` and
  ``b_{t+1} <= b_t - w_t + arrival_t``, ``b <= cap``: the kernel's cap ``min(., cap)`` is relaxed
  to ``<=``;
* no terminal condition on the battery or the backlog (as in the ledger);
* ``soft`` mode only: no stall, cabinet or queue limit, cars may charge at any step after they
  arrive, and wait and balk penalties are relaxed to zero.

The demand charge is exact: one peak variable per component, above its threshold and above the
mean import of every complete demand window (fixed blocks from the episode start, as the kernel)
whose last step is in the component's active hours, charged at the prorated rate.

:class:`HindsightPolicy` (``"oracle-replay"``) solves the LP for each trace row at ``reset`` and
replays the schedule (IT fraction and battery power) step by step; its simulated profit is below
the LP value by what the relaxations are worth.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from agents.optim.compute_envelopes import compute_functions
from agents.optim.site_lp import SiteLPSolution, new_highs, solve_site_lp
from agents.optim.site_lp_inputs import CarBlock, SiteLPInputs, SiteLPParams
from agents.policies.base import PolicyContext
from megapod_gym.config import ScenarioConfig
from megapod_gym.scenario.trace import ExogenousTrace
from megapod_gym.sim import layout as L
from megapod_gym.sim.simulator import SiteSimulator

EV_CUT_TOLERANCE_KW = 1e-6


@dataclass(frozen=True)
class ReferenceEV:
    """EV side of one trace under compute-at-standby, battery-idle control (``strict`` mode)."""

    ev_ac_kw: np.ndarray  # [T] AC kW drawn by the chargers
    ev_revenue_usd: float
    wait_penalty_usd: float
    balk_penalty_usd: float
    max_ev_cut_kw: float
    # extra discharge the safety layer needed to keep the cars whole with compute at standby; 0
    # means the cars fit under the grid limit at every step whatever the controller does
    max_battery_override_kw: float


def _check_row(trace_row: ExogenousTrace) -> None:
    if trace_row.batch_size != 1:
        raise ValueError(
            f"trace_row must hold one trace row (got {trace_row.batch_size}); use trace.site(i)"
        )


def reference_ev_run(config: ScenarioConfig, trace_row: ExogenousTrace) -> ReferenceEV:
    """Run the simulator on ``trace_row`` with compute at standby and the battery idle and return
    the cars' AC load per step and the EV ledger terms.

    Raises
    ------
    ValueError
        If a car is cut in that run (more than ``EV_CUT_TOLERANCE_KW``): the cars' load would then
        depend on the controller and the ``strict``-mode LP would not be an upper bound.
    """
    _check_row(trace_row)
    sim = SiteSimulator(config, batch_size=1)
    sim.reset(trace_row)
    T = sim.n_steps
    ev = np.empty(T)
    rev = wait = balk = 0.0
    cut = override = 0.0
    actions = np.array([[config.compute.standby_frac, 0.0, np.inf]])
    for t in range(T):
        out = sim.step_actions(actions)[0]
        ev[t] = out[L.O_EV_KW]
        rev += out[L.O_EV_REVENUE_USD]
        wait += out[L.O_WAIT_PENALTY_USD]
        balk += out[L.O_BALK_PENALTY_USD]
        cut = max(cut, out[L.O_EV_CUT_KW])
        override = max(override, out[L.O_BATTERY_OVERRIDE_KW])
    if cut > EV_CUT_TOLERANCE_KW:
        raise ValueError(
            f"cars are cut by {cut:.3f} kW even with compute at standby and the battery idle "
            "(grid limit too small for the chargers and the battery too small to cover them): "
            "the cars' load then depends on the controller and the strict-mode hindsight LP does "
            "not apply; raise grid.import_limit_kw or the battery, or use fewer stalls"
        )
    return ReferenceEV(ev, float(rev), float(wait), float(balk), float(cut), float(override))


@dataclass(frozen=True)
class HindsightSolution:
    """The hindsight optimum of one trace row.

    ``objective_usd`` is the LP value: an upper bound on the episode profit (ledger total) of any
    controller. Per-step arrays have shape ``[T]``.
    """

    objective_usd: float
    it_frac: np.ndarray  # IT power fraction requested (below the cap floor = time-shared pause)
    battery_kw: np.ndarray  # net battery AC kW, + = discharge
    battery_charge_kw: np.ndarray
    battery_discharge_kw: np.ndarray
    battery_soc_frac: np.ndarray  # [T + 1], SoC at the start of each step and at the end
    grid_import_kw: np.ndarray
    grid_export_kw: np.ndarray
    ev_ac_kw: np.ndarray  # chargers' AC kW (fixed in strict mode, decided in soft mode)
    training_work_kwh: np.ndarray
    inference_served_frac: np.ndarray
    peak_kw: np.ndarray  # [K] demand-charge peaks the schedule sets (>= thresholds)
    ledger_usd: dict[str, float]  # the ledger terms the LP assumes (keys as layout.LEDGER_FIELDS)
    solve_time_s: float  # HiGHS time
    total_time_s: float  # reference run + envelopes + build + solve
    n_rows: int
    n_cols: int
    ev_priority: str

    def setpoints(self, cap_floor_frac: float) -> np.ndarray:
        """Setpoints ``[T, 3]`` (IT fraction, battery kW, EV cap kW) that replay the schedule.

        An IT fraction at (or within 1e-7 of) the cap floor is nudged 1e-6 above it, so rounding in
        the action encoding cannot turn "run at the floor" into a pause.
        """
        x = self.it_frac.copy()
        near = x >= cap_floor_frac - 1e-7
        x[near] = np.minimum(np.maximum(x[near], cap_floor_frac) + 1e-6, 1.0)
        ev_cap = self.ev_ac_kw + 1e-6 if self.ev_priority == "soft" else np.full(x.shape, np.inf)
        return np.stack([x, self.battery_kw, ev_cap], axis=1)


def car_block(config: ScenarioConfig, trace_row: ExogenousTrace) -> CarBlock:
    """The ``soft``-mode per-car relaxation of one trace row (see the module docstring)."""
    _check_row(trace_row)
    n = int(trace_row.n_cars[0])
    T = trace_row.n_steps
    arrive = trace_row.car_arrival_step[0, :n].astype(np.int64)
    keep = arrive < T
    arrive = arrive[keep]
    batt = trace_row.car_battery_kwh[0, :n][keep]
    soc0 = trace_row.car_arrival_soc[0, :n][keep]
    target = trace_row.car_target_soc[0, :n][keep]
    curve_id = trace_row.car_curve_id[0, :n][keep]
    scale = trace_row.car_power_scale[0, :n][keep]
    depart = trace_row.car_departure_step[0, :n][keep]  # NO_DEPARTURE_STEP: beyond any window
    max_kw = trace_row.car_max_kw[0, :n][keep]  # 0: no cap of its own
    stall_kw = config.chargers.stall_kw
    names = sorted(config.ev.curves)
    hulls = [_upper_hull(config.ev.curves[nm].soc, config.ev.curves[nm].kw) for nm in names]
    n_lines = max(len(h[0]) for h in hulls)
    slope = np.zeros((arrive.shape[0], n_lines))
    icpt = np.zeros((arrive.shape[0], n_lines))
    for cid, (sl, ic) in enumerate(hulls):
        rows = curve_id == cid
        pad = n_lines - len(sl)  # repeat the last line (a duplicate row is harmless)
        sl_p = np.concatenate([sl, np.repeat(sl[-1:], pad)])
        ic_p = np.concatenate([ic, np.repeat(ic[-1:], pad)])
        slope[rows] = sl_p[None, :] * scale[rows, None]
        icpt[rows] = ic_p[None, :] * scale[rows, None]
    return CarBlock(
        start_step=arrive,
        energy_max_kwh=np.maximum(target - soc0, 0.0) * batt,
        battery_kwh=batt,
        soc0=soc0,
        cap_kw=np.where((max_kw > 0.0) & (max_kw < stall_kw), max_kw, stall_kw),
        curve_slope=slope,
        curve_icpt=icpt,
        ev_price_usd_per_kwh=trace_row.ev_price_usd_per_kwh[0].astype(np.float64),
        end_step=np.minimum(depart, T),
    )


def _upper_hull(soc: tuple[float, ...], kw: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Lines (slope, intercept) of the upper concave hull of a piecewise-linear curve; being the
    hull of the curve's own breakpoints, it is >= the curve everywhere on [0, 1]."""
    pts: list[tuple[float, float]] = []
    for pt in zip(soc, kw):
        while len(pts) >= 2:
            (x1, y1), (x2, y2) = pts[-2], pts[-1]
            if (x2 - x1) * (pt[1] - y1) - (y2 - y1) * (pt[0] - x1) >= 0.0:  # not a right turn
                pts.pop()
            else:
                break
        pts.append(pt)
    xs = np.array([p[0] for p in pts])
    ys = np.array([p[1] for p in pts])
    sl = np.diff(ys) / np.diff(xs)
    return sl, ys[:-1] - sl * xs[:-1]


def solve_hindsight(
    config: ScenarioConfig,
    trace_row: ExogenousTrace,
    n_lines: int = 16,
    n_grid: int = 256,
    threads: int = 1,
) -> HindsightSolution:
    """Solve the hindsight LP of one trace row.

    Parameters
    ----------
    config
        The scenario the trace was sampled from.
    trace_row
        One row of an :class:`ExogenousTrace` (``trace.site(i)``).
    n_lines, n_grid
        Resolution of the compute-value envelopes (lines per step, evaluation grid).
    threads
        HiGHS threads.

    Returns
    -------
    HindsightSolution
        Optimal profit (an upper bound on any controller's), schedule, ledger terms and timings.
    """
    _check_row(trace_row)
    t_start = time.perf_counter()
    params = SiteLPParams.from_config(config)
    T = trace_row.n_steps
    if T != params.n_steps:
        raise ValueError(f"trace has {T} steps but the scenario's episode has {params.n_steps}")
    if trace_row.demand_active.shape[2] != params.n_demand_charges:
        raise ValueError("trace and scenario have different numbers of demand charges")
    soft = config.ev_priority == "soft"
    if soft:
        ref = None
        cars = car_block(config, trace_row)
        ev_fixed = np.zeros(T)
        offset = 0.0
    else:
        ref = reference_ev_run(config, trace_row)
        cars = None
        ev_fixed = ref.ev_ac_kw
        offset = ref.ev_revenue_usd - ref.wait_penalty_usd - ref.balk_penalty_usd
    inputs = SiteLPInputs(
        price_usd_per_kwh=trace_row.price_usd_per_kwh[0, :T].astype(np.float64),
        export_price_usd_per_kwh=trace_row.export_price_usd_per_kwh[0, :T].astype(np.float64),
        carbon_g_per_kwh=trace_row.carbon_g_per_kwh[0, :T].astype(np.float64),
        ev_ac_kw=ev_fixed,
        pue=params.pue(trace_row.ambient_c[0, :T]),
        inference_demand_frac=trace_row.inference_demand_frac[0, :T].astype(np.float64),
        training_arrival_kwh=trace_row.training_arrival_kwh[0, :T].astype(np.float64),
        demand_active=trace_row.demand_active[0, :T].astype(bool),
        battery_soc_frac=params.battery_initial_soc,
        backlog_kwh=params.backlog_initial_kwh,
        peak0_kw=params.demand_threshold_kw.copy(),
        offset_usd=offset,
        cars=cars,
    )
    sol = solve_site_lp(params, inputs, new_highs(threads), n_lines, n_grid)
    total = time.perf_counter() - t_start
    return _to_hindsight(config, params, inputs, sol, ref, total)


def _to_hindsight(
    config: ScenarioConfig,
    params: SiteLPParams,
    inputs: SiteLPInputs,
    sol: SiteLPSolution,
    ref: ReferenceEV | None,
    total_s: float,
) -> HindsightSolution:
    e = params.battery_energy_kwh
    soc = (
        np.concatenate([[params.battery_initial_soc], sol.battery_energy_kwh / e])
        if e > 0
        else (np.zeros(inputs.n_steps + 1))
    )
    terms = sol.terms_usd
    if ref is not None:
        ev_ac = ref.ev_ac_kw.copy()
        ev_rev, wait, balk = ref.ev_revenue_usd, ref.wait_penalty_usd, ref.balk_penalty_usd
    else:
        ev_ac = sol.ev_dc_kw / params.charger_efficiency
        ev_rev, wait, balk = terms["ev_revenue_usd"], 0.0, 0.0
    ledger = {
        "ev_revenue_usd": ev_rev,
        "compute_value_usd": terms["compute_value_usd"],
        "energy_cost_usd": terms["energy_cost_usd"],
        "export_revenue_usd": terms["export_revenue_usd"],
        "demand_charge_usd": terms["demand_charge_usd"],
        "battery_degradation_usd": terms["battery_degradation_usd"],
        "sla_penalty_usd": terms["sla_penalty_usd"],
        "wait_penalty_usd": wait,
        "balk_penalty_usd": balk,
        "pause_resume_cost_usd": 0.0,
        "carbon_cost_usd": terms["carbon_cost_usd"],
        "total_usd": sol.objective_usd,
    }
    return HindsightSolution(
        objective_usd=sol.objective_usd,
        it_frac=sol.it_frac,
        battery_kw=sol.battery_kw,
        battery_charge_kw=sol.battery_charge_kw,
        battery_discharge_kw=sol.battery_discharge_kw,
        battery_soc_frac=soc,
        grid_import_kw=sol.grid_import_kw,
        grid_export_kw=sol.grid_export_kw,
        ev_ac_kw=ev_ac,
        training_work_kwh=sol.training_kwh,
        inference_served_frac=sol.inference_served_frac,
        peak_kw=sol.peak_kw,
        ledger_usd=ledger,
        solve_time_s=sol.solve_time_s,
        total_time_s=total_s,
        n_rows=sol.n_rows,
        n_cols=sol.n_cols,
        ev_priority=config.ev_priority,
    )


def true_compute_value_usd(
    config: ScenarioConfig, it_frac: np.ndarray, inference_demand_frac: np.ndarray
) -> np.ndarray:
    """Kernel compute value minus SLA penalty per step at the given *applied* IT fractions
    (backlog not binding, no pause/resume cost): what the envelopes bound from above."""
    p = SiteLPParams.from_config(config)
    train, served = compute_functions(p, it_frac, inference_demand_frac)
    A = p.it_kw * p.dt_h
    d = np.asarray(inference_demand_frac, dtype=np.float64)
    return (
        train * p.training_value_usd_per_kwh
        + served * A * p.inference_value_usd_per_kwh
        - (d - served) * A * p.sla_penalty_usd_per_kwh
    )


class HindsightPolicy:
    """**oracle-replay**: solve the hindsight LP of every trace row at ``reset`` and replay its
    schedule (IT fraction and battery power) step by step.

    Not causal: it reads the realized trace. ``solutions`` holds the LP results; their
    ``objective_usd`` is the upper bound the replayed profit is compared with.

    In ``soft`` EV-priority mode the bound comes from the soft LP, whose per-car relaxation has
    no stalls or queue: replaying its EV caps defers cars into a queue that the LP never sees
    (wait and balk penalties). With ``soft_replay="cars-first"`` (default) the policy replays
    instead the optimum of the same trace under cars-first (``strict``) dispatch, with the EV cap
    open; ``soft_replay="planned"`` replays the soft LP's compute, battery and EV AC power as the
    cap. ``replay_solutions`` holds the schedules replayed.

    Parameters
    ----------
    n_lines, n_grid, threads
        Passed to :func:`solve_hindsight`.
    soft_replay
        ``"cars-first"`` or ``"planned"`` (``soft`` mode only).
    """

    name = "oracle-replay"

    def __init__(
        self,
        n_lines: int = 16,
        n_grid: int = 256,
        threads: int = 1,
        soft_replay: str = "cars-first",
    ) -> None:
        if soft_replay not in ("cars-first", "planned"):
            raise ValueError(f"soft_replay must be 'cars-first' or 'planned' (got {soft_replay!r})")
        self.n_lines, self.n_grid, self.threads = n_lines, n_grid, threads
        self.soft_replay = soft_replay
        self.solutions: list[HindsightSolution] = []
        self.replay_solutions: list[HindsightSolution] = []
        self._ctx: PolicyContext | None = None
        self._setpoints = np.zeros((0, 0, 3))
        self._t = 0

    def reset(self, context: PolicyContext) -> None:
        self._ctx = context
        cfg = context.config
        rows = [context.trace.site(i) for i in range(context.batch_size)]
        self.solutions = [
            solve_hindsight(cfg, row, self.n_lines, self.n_grid, self.threads) for row in rows
        ]
        self.replay_solutions = self.solutions
        if cfg.ev_priority == "soft" and self.soft_replay == "cars-first":
            strict = cfg.model_copy(update={"ev_priority": "strict"})
            self.replay_solutions = [
                solve_hindsight(strict, row, self.n_lines, self.n_grid, self.threads)
                for row in rows
            ]
        floor = cfg.compute.cap_floor_frac
        self._setpoints = np.stack([s.setpoints(floor) for s in self.replay_solutions])
        self._t = 0

    def act(self, obs: np.ndarray) -> np.ndarray:
        if self._ctx is None:
            raise RuntimeError("call reset(context) before act()")
        obs = np.asarray(obs)
        if obs.ndim == 1:
            obs = obs[None]
        B, T = self._setpoints.shape[0], self._setpoints.shape[1]
        if obs.shape[0] != B:
            raise ValueError(f"expected observations for {B} sites, got {obs.shape[0]}")
        t = step_index(self._ctx, obs, self._t, T)
        self._t = t + 1
        return self._ctx.decoder.encode(self._setpoints[:, t]).astype(np.float32)


def step_index(ctx: PolicyContext, obs: np.ndarray, counted: int, n_steps: int) -> int:
    """The current step: the policy's own count of ``act`` calls since ``reset``, re-synchronised
    from the ``hours_left_h`` feature in the last 24 h of the episode (where it is not capped)."""
    t = counted
    if "hours_left_h" in ctx.encoder.index:
        left_h = float(np.min(ctx.encoder.decode(obs, "hours_left_h")))
        if left_h < 24.0 - 1e-3:
            t = n_steps - int(round(left_h / ctx.config.episode.dt_h))
    if not 0 <= t < n_steps:
        raise RuntimeError(
            f"step {t} is outside the episode (0..{n_steps - 1}); call reset(context) at the start "
            "of every episode"
        )
    return t
