"""The site's linear program over a window of steps: the one LP builder behind the hindsight oracle
(:mod:`agents.optim.oracle`) and MPC (:mod:`agents.optim.mpc`).

Variables per step ``j`` of the window (all powers are step averages, as in the kernel):

* ``x_j`` IT power fraction applied, in ``[standby_frac, 1]`` (values below the cap floor stand for
  a time-share between pausing and running at the floor: the LP is a relaxation there);
* ``w_j`` training work (IT kWh at full speed) and ``s_j`` inference served (fraction of full-speed
  IT), each bounded by a concave piecewise-linear **upper** envelope of the kernel's exact
  function of ``x_j`` (see :func:`compute_envelopes`); compute value = ``v_tr w + v_inf s IT dt``,
  SLA penalty = ``sla (d - s) IT dt``;
* ``c_j, d_j`` battery charge / discharge AC kW (both may be positive in the same step), stored
  energy ``e_j`` after the step: ``e_j = e_{j-1} + (eta_c c_j - d_j / eta_d) dt`` within the SoC
  window (no terminal condition; MPC may value the terminal energy);
* ``imp_j <= import limit``, ``exp_j <= export limit``; the site balance
  ``imp - exp + d - c = EV AC + IT x PUE + battery aux`` (``+ z_j``, an optional penalised shortfall
  that keeps MPC feasible when its EV forecast overshoots);
* training backlog (only when it can bind): ``w_j <= b_j`` and ``b_{j+1} <= b_j - w_j + arrival_j``,
  ``0 <= b <= backlog cap`` — the kernel's ``min(., cap)`` relaxed to ``<=`` (work may be dropped);
* one peak variable per demand-charge component ``k``: ``p_k >= peak0_k`` and ``p_k >=`` the
  average import of every demand window (fixed blocks of ``grid.demand_window_min`` from the
  episode start, as in the kernel) whose last step is in the component's active hours; cost
  ``rate_k (p_k - peak0_k)`` with the rate prorated to the episode.

Objective (USD, maximised): compute value - SLA penalty - energy cost (+ carbon) + export revenue
- demand charge - degradation on discharged AC kWh (+ MPC's terminal value of stored energy
- shortfall penalty) + a constant offset supplied by the caller (e.g. EV revenue minus wait and
balk penalties, which the controller cannot change in ``strict`` mode).

An optional block of per-car energy variables (``soft`` EV-priority mode, see
:class:`CarBlock`) adds EV charging as a decision: each car's DC energy per step, its retail
revenue, and its AC draw in the site balance.

The code lives in four modules: the inputs (:mod:`agents.optim.site_lp_inputs`), the compute
functions and their envelopes (:mod:`agents.optim.compute_envelopes`), the LP assembly
(:mod:`agents.optim.site_lp_builder`) and, here, the HiGHS solve with the lazy envelope
refinement and the solution. This module re-exports the public names of the other three
(``from agents.optim.site_lp import SiteLPParams`` keeps working).
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass

import highspy
import numpy as np

from agents.optim.compute_envelopes import (
    Envelope,
    compute_envelopes,
    compute_functions,
    hull_value,
    tangent_lines,
    training_is_concave,
)
from agents.optim.site_lp_builder import LpArrays, _Layout, backlog_can_bind, build_site_lp
from agents.optim.site_lp_inputs import CarBlock, SiteLPInputs, SiteLPParams

__all__ = [
    "CarBlock",
    "Envelope",
    "LpArrays",
    "SiteLPInputs",
    "SiteLPParams",
    "SiteLPSolution",
    "backlog_can_bind",
    "build_site_lp",
    "compute_envelopes",
    "compute_functions",
    "hull_value",
    "new_highs",
    "solve_site_lp",
    "tangent_lines",
    "training_is_concave",
]

_STATUS_OPTIMAL = highspy.HighsModelStatus.kOptimal


def new_highs(threads: int = 1) -> highspy.Highs:
    """A silent HiGHS instance.

    HiGHS prints a copyright banner on stdout the first time a solver is created in a process;
    the file descriptor is redirected while constructing so that this library stays print-free.
    """
    try:
        sys.stdout.flush()
        saved = os.dup(1)
    except (OSError, ValueError, AttributeError):  # no real stdout (e.g. embedded interpreter)
        saved = None
    if saved is not None:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)
    try:
        h = highspy.Highs()
    finally:
        if saved is not None:
            os.dup2(saved, 1)
            os.close(saved)
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", int(threads))
    # the LP is small and sparse; HiGHS's presolve costs ~5x the dual simplex solve here
    h.setOptionValue("presolve", "off")
    return h


@dataclass
class SiteLPSolution:
    """Optimal schedule of one LP window (arrays ``[n]`` unless noted)."""

    objective_usd: float
    it_frac: np.ndarray
    training_kwh: np.ndarray
    inference_served_frac: np.ndarray
    battery_charge_kw: np.ndarray
    battery_discharge_kw: np.ndarray
    battery_energy_kwh: np.ndarray  # after each step
    grid_import_kw: np.ndarray
    grid_export_kw: np.ndarray
    shortfall_kw: np.ndarray
    peak_kw: np.ndarray  # [K]
    ev_dc_kw: np.ndarray  # [n] DC power of the car block (zeros without one)
    car_energy_kw: np.ndarray | None  # [N, n] per-car DC kW of the car block
    terms_usd: dict[str, float]
    build_time_s: float
    solve_time_s: float
    n_rows: int
    n_cols: int
    refine_rounds: int = 0  # lazy envelope refinement rounds (see solve_site_lp)

    @property
    def battery_kw(self) -> np.ndarray:
        """Net battery power, + = discharge (the action's sign convention)."""
        return self.battery_discharge_kw - self.battery_charge_kw


def solve_site_lp(
    params: SiteLPParams,
    inputs: SiteLPInputs,
    highs: highspy.Highs | None = None,
    n_lines: int = 16,
    n_grid: int = 256,
    lazy: bool = True,
    refine_tol: float = 1e-5,
    max_rounds: int = 50,
) -> SiteLPSolution:
    """Build and solve the LP of one window.

    Parameters
    ----------
    params, inputs
        Site figures and the window's exogenous inputs and initial state.
    highs
        A HiGHS instance to reuse (MPC keeps one per site); a new silent one by default.
    n_lines, n_grid
        Envelope resolution (see :func:`compute_envelopes`).
    lazy
        Start the concave envelopes with 3 tangents per step and add, round by round (warm
        started), the tangent at the LP's IT fraction wherever the LP's training work or
        inference served exceeds the exact hull there by more than ``refine_tol`` (x IT kWh of
        the step for training). Every line is a valid upper bound, so the LP value is a true upper
        bound after any round; the rounds only tighten it to within ``refine_tol`` at the
        solution. Much smaller LPs than ``n_lines`` tangents everywhere (``lazy=False``).
    max_rounds
        Limit on refinement rounds (the value stays an upper bound if it is reached).

    Raises
    ------
    RuntimeError
        If HiGHS does not report an optimal solution (e.g. the EV load cannot be served within the
        import limit even with compute at standby and the battery discharging, and no shortfall
        is allowed).
    """
    t0 = time.perf_counter()
    p, u = params, inputs
    d = np.asarray(u.inference_demand_frac, dtype=np.float64)
    envs = compute_envelopes(p, d, n_lines, n_grid, n_tangents=3 if lazy else n_lines)
    lp, lay = build_site_lp(p, u, envs)
    t1 = time.perf_counter()
    h = highs if highs is not None else new_highs()
    # presolve pays off only for the large soft-mode LP with per-car variables
    h.setOptionValue("presolve", "on" if u.cars is not None else "off")
    lp.pass_to(h)
    build_s = t1 - t0
    solve_s = _run(h)
    n, A = lay.n, p.it_kw * p.dt_h
    j = np.arange(n)
    rounds = 0
    while lazy and rounds < max_rounds:
        sol = np.asarray(h.getSolution().col_value)
        x = np.clip(sol[lay.x : lay.x + n], p.standby_frac, 1.0)
        t2 = time.perf_counter()
        blocks = []
        for which, env, var, tol in (
            ("training", envs[0], lay.w, refine_tol * A),
            ("served", envs[1], lay.s, refine_tol),
        ):
            assert env.exact is not None and env.pause_end is not None
            over = sol[var : var + n] - hull_value(p, which, env, x, d) > tol
            viol = env.exact & (x > env.pause_end) & over
            if np.any(viol):
                slope, icpt = tangent_lines(p, which, x[viol], d[viol])
                blocks.append((var + j[viol], lay.x + j[viol], slope, icpt))
        if not blocks:
            break
        cols_a = np.concatenate([b[0] for b in blocks])
        cols_x = np.concatenate([b[1] for b in blocks])
        slope = np.concatenate([b[2] for b in blocks])
        icpt = np.concatenate([b[3] for b in blocks])
        k = cols_a.shape[0]
        index = np.empty(2 * k, dtype=np.int32)
        index[0::2], index[1::2] = cols_a, cols_x
        value = np.empty(2 * k)
        value[0::2], value[1::2] = 1.0, -slope
        h.addRows(
            k, np.full(k, -np.inf), icpt, 2 * k, np.arange(0, 2 * k, 2, dtype=np.int32),
            index, value,
        )  # fmt: skip
        build_s += time.perf_counter() - t2
        solve_s += _run(h)
        rounds += 1
    status = h.getModelStatus()
    if status != _STATUS_OPTIMAL:
        raise RuntimeError(
            f"site LP not solved to optimality: HiGHS status {h.modelStatusToString(status)!r} "
            f"({h.getNumRow()} rows, {h.getNumCol()} columns)"
        )
    sol = np.asarray(h.getSolution().col_value)
    out = _extract(p, u, lay, sol, float(h.getInfo().objective_function_value),
                   build_s, solve_s, int(h.getNumRow()), int(h.getNumCol()))  # fmt: skip
    out.refine_rounds = rounds
    return out


def _run(h: highspy.Highs) -> float:
    t = time.perf_counter()
    h.run()
    return time.perf_counter() - t


def _extract(
    p: SiteLPParams,
    u: SiteLPInputs,
    lay: _Layout,
    sol: np.ndarray,
    objective: float,
    build_s: float,
    solve_s: float,
    n_rows: int,
    n_cols: int,
) -> SiteLPSolution:
    n, dt = lay.n, p.dt_h
    A = p.it_kw * dt

    def seg(start: int) -> np.ndarray:
        return sol[start : start + n].copy()

    x = np.clip(seg(lay.x), p.standby_frac, 1.0)
    w, s = seg(lay.w), seg(lay.s)
    c, d = np.maximum(seg(lay.c), 0.0), np.maximum(seg(lay.d), 0.0)
    imp, exp = np.maximum(seg(lay.imp), 0.0), np.maximum(seg(lay.exp), 0.0)
    z = seg(lay.z) if lay.z >= 0 else np.zeros(n)
    peak = sol[lay.p : lay.p + p.n_demand_charges].copy()
    car_kw = None
    ev_dc = np.zeros(n)
    ev_rev = 0.0
    if lay.car_cols is not None:
        car_kw = np.where(lay.car_cols >= 0, sol[np.maximum(lay.car_cols, 0)], 0.0)
        ev_dc = car_kw.sum(axis=0)
        assert u.cars is not None
        ev_rev = float(np.sum(ev_dc * dt * u.cars.ev_price_usd_per_kwh))
    carbon = u.carbon_g_per_kwh * p.carbon_price_usd_per_g
    terms = {
        "compute_value_usd": float(
            np.sum(w) * p.training_value_usd_per_kwh + np.sum(s) * A * p.inference_value_usd_per_kwh
        ),
        "sla_penalty_usd": float(
            np.sum(u.inference_demand_frac - s) * A * p.sla_penalty_usd_per_kwh
        ),
        "energy_cost_usd": float(np.sum(imp * dt * u.price_usd_per_kwh)),
        "export_revenue_usd": float(np.sum(exp * dt * u.export_price_usd_per_kwh)),
        "demand_charge_usd": float(np.dot(p.demand_rate_usd_per_kw, peak - u.peak0_kw)),
        "battery_degradation_usd": float(np.sum(d) * dt * p.battery_degradation_usd_per_kwh),
        "carbon_cost_usd": float(np.sum(imp * dt * carbon)),
        "ev_revenue_usd": ev_rev,
        "terminal_value_usd": float(sol[lay.e + n - 1] * u.terminal_value_usd_per_kwh),
        "shortfall_penalty_usd": float(np.sum(z) * dt * (u.shortfall_penalty_usd_per_kwh or 0.0)),
    }
    return SiteLPSolution(
        objective_usd=objective,
        it_frac=x,
        training_kwh=w,
        inference_served_frac=s,
        battery_charge_kw=c,
        battery_discharge_kw=d,
        battery_energy_kwh=seg(lay.e),
        grid_import_kw=imp,
        grid_export_kw=exp,
        shortfall_kw=z,
        peak_kw=peak,
        ev_dc_kw=ev_dc,
        car_energy_kw=car_kw,
        terms_usd=terms,
        build_time_s=build_s,
        solve_time_s=solve_s,
        n_rows=n_rows,
        n_cols=n_cols,
    )
