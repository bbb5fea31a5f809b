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
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field

import highspy
import numpy as np

from megapod_gym.config.schema import ScenarioConfig

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


# --------------------------------------------------------------------------------- parameters
@dataclass(frozen=True)
class SiteLPParams:
    """The site figures the LP needs, taken from a :class:`ScenarioConfig` (units in names)."""

    dt_h: float
    n_steps: int
    window_steps: int
    import_limit_kw: float
    export_limit_kw: float
    it_kw: float
    standby_frac: float
    cap_floor_frac: float
    training_exponent: float
    inference_exponent: float
    training_value_usd_per_kwh: float
    inference_value_usd_per_kwh: float
    sla_penalty_usd_per_kwh: float
    backlog_initial_kwh: float
    backlog_max_kwh: float
    battery_energy_kwh: float
    battery_charge_kw: float
    battery_discharge_kw: float
    battery_charge_efficiency: float
    battery_discharge_efficiency: float
    battery_soc_min: float
    battery_soc_max: float
    battery_initial_soc: float
    battery_degradation_usd_per_kwh: float
    battery_aux_kw: float
    charger_efficiency: float
    carbon_price_usd_per_g: float
    pue_temp_c: np.ndarray
    pue_values: np.ndarray
    demand_threshold_kw: np.ndarray  # [K]
    demand_rate_usd_per_kw: np.ndarray  # [K], prorated to the episode

    @staticmethod
    def from_config(config: ScenarioConfig) -> SiteLPParams:
        ep, grid, bat, comp, tariff = (
            config.episode,
            config.grid,
            config.battery,
            config.compute,
            config.tariff,
        )
        has_batt = bat.energy_kwh > 0.0
        prorate = ep.days / tariff.billing_days
        return SiteLPParams(
            dt_h=ep.dt_h,
            n_steps=ep.n_steps,
            window_steps=grid.demand_window_min // ep.step_min,
            import_limit_kw=grid.import_limit_kw,
            export_limit_kw=grid.export_limit_kw,
            it_kw=comp.it_kw,
            standby_frac=comp.standby_frac,
            cap_floor_frac=comp.cap_floor_frac,
            training_exponent=comp.training_exponent,
            inference_exponent=comp.inference_exponent,
            training_value_usd_per_kwh=comp.training_value_usd_per_kwh,
            inference_value_usd_per_kwh=comp.inference_value_usd_per_kwh,
            sla_penalty_usd_per_kwh=comp.sla_penalty_usd_per_kwh,
            backlog_initial_kwh=comp.training_backlog_initial_h * comp.it_kw,
            backlog_max_kwh=comp.training_backlog_max_h * comp.it_kw,
            battery_energy_kwh=bat.energy_kwh,
            battery_charge_kw=bat.charge_kw if has_batt else 0.0,
            battery_discharge_kw=bat.discharge_kw if has_batt else 0.0,
            battery_charge_efficiency=bat.charge_efficiency,
            battery_discharge_efficiency=bat.discharge_efficiency,
            battery_soc_min=bat.soc_min,
            battery_soc_max=bat.soc_max,
            battery_initial_soc=bat.initial_soc,
            battery_degradation_usd_per_kwh=bat.degradation_usd_per_kwh,
            battery_aux_kw=bat.aux_kw if has_batt else 0.0,
            charger_efficiency=config.chargers.efficiency,
            carbon_price_usd_per_g=tariff.carbon_price_usd_per_tonne / 1e6,
            pue_temp_c=np.asarray(comp.pue.temp_c, dtype=np.float64),
            pue_values=np.asarray(comp.pue.pue, dtype=np.float64),
            demand_threshold_kw=np.array([d.threshold_kw for d in tariff.demand_charges]),
            demand_rate_usd_per_kw=np.array(
                [d.usd_per_kw_month * prorate for d in tariff.demand_charges]
            ),
        )

    @property
    def n_demand_charges(self) -> int:
        return int(self.demand_threshold_kw.shape[0])

    def pue(self, ambient_c: np.ndarray) -> np.ndarray:
        """PUE at the given ambient temperatures (piecewise linear, flat outside, as the kernel)."""
        return np.interp(ambient_c, self.pue_temp_c, self.pue_values)


# ------------------------------------------------------------------------- compute functions
def compute_functions(
    params: SiteLPParams, it_frac: np.ndarray, inference_demand_frac: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The kernel's compute outcome of one step at an *applied* IT fraction (broadcasting).

    Returns ``(training_kwh, inference_served_frac)``: running (``x >= cap floor``) serves
    inference first, ``served = min(d, x^b_inf)``, and trains with what is left,
    ``(1 - served / x^b_inf) x^b_tr IT dt`` (before the backlog bound); below the cap floor the
    cluster is paused at standby and does neither.
    """
    p = params
    x = np.asarray(it_frac, dtype=np.float64)
    d = np.asarray(inference_demand_frac, dtype=np.float64)
    running = x >= p.cap_floor_frac
    xs = np.where(running, x, 1.0)
    f_inf = xs**p.inference_exponent
    f_tr = xs**p.training_exponent
    served = np.minimum(d, f_inf)
    train = (1.0 - served / f_inf) * f_tr * p.it_kw * p.dt_h
    return np.where(running, train, 0.0), np.where(running, served, 0.0)


@dataclass(frozen=True)
class Envelope:
    """Lines ``y <= intercept + slope x`` per step (``keep`` masks unused lines); each kept line
    is >= the function everywhere on ``{standby} U [cap floor, 1]``."""

    slope: np.ndarray  # [n, m]
    intercept: np.ndarray  # [n, m]
    keep: np.ndarray  # [n, m] bool
    # where the exact upper hull is known (concave case): the hull is the first line (from the
    # standby point) up to ``pause_end`` and the function itself beyond, so tangents at any
    # ``x > pause_end`` are valid lines too (used to refine the envelope lazily)
    exact: np.ndarray | None = None  # [n] bool
    pause_end: np.ndarray | None = None  # [n]

    def value(self, x: np.ndarray) -> np.ndarray:
        """Envelope at ``x`` (``[n]`` or ``[n, G]``)."""
        x = np.asarray(x, dtype=np.float64)
        xx = x[..., None] if x.ndim == 1 else x[:, :, None]
        sl = self.slope if x.ndim == 1 else self.slope[:, None, :]
        ic = self.intercept if x.ndim == 1 else self.intercept[:, None, :]
        kp = self.keep if x.ndim == 1 else self.keep[:, None, :]
        return np.min(np.where(kp, ic + sl * xx, np.inf), axis=-1)


def _tangent_points(params: SiteLPParams, n_lines: int) -> np.ndarray:
    """Fixed breakpoints on [cap floor, 1], denser near the floor where the curves bend most."""
    u = np.linspace(0.0, 1.0, max(n_lines, 2))
    return params.cap_floor_frac + (1.0 - params.cap_floor_frac) * u**2


def _training(params: SiteLPParams, x: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Training work (IT kWh) and its right derivative at running IT fractions ``x``."""
    p = params
    A = p.it_kw * p.dt_h
    a_tr, a_inf = p.training_exponent, p.inference_exponent
    q = a_tr - a_inf
    short = d > x**a_inf  # inference not fully served: no training
    f = np.where(short, 0.0, A * (x**a_tr - d * x**q))
    fp = np.where(short, 0.0, A * (a_tr * x ** (a_tr - 1.0) - d * q * x ** (q - 1.0)))
    return f, fp


def _served(params: SiteLPParams, x: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inference served (fraction) and its right derivative at running IT fractions ``x``."""
    a = params.inference_exponent
    short = d > x**a
    return np.where(short, x**a, d), np.where(short, a * x ** (a - 1.0), 0.0)


def _tangent_envelope(
    params: SiteLPParams,
    fun,  # (params, x, d) -> (f, f') for running x, broadcasting
    d: np.ndarray,  # [n, 1]
    f_standby: np.ndarray,  # [n, 1]
    n_lines: int,
) -> Envelope:
    """Exact upper hull of ``{(standby, f_s)} U graph(f on [floor, 1])`` for a *concave* ``f``:
    the line from the standby point to the point ``x_t`` of steepest ascent from it, and the
    tangents (supergradient lines) at the breakpoints ``>= x_t``. Each line supports the hull, so
    it is >= ``f`` on ``[floor, 1]`` and >= ``f_s`` at standby."""
    p = params
    sb, fl = p.standby_frac, p.cap_floor_frac

    def g(x: np.ndarray) -> np.ndarray:  # decreasing for concave f; root = tangency from standby
        f, fp = fun(p, x, d)
        return fp * (x - sb) - (f - f_standby)

    n = d.shape[0]
    lo = np.full((n, 1), fl)
    hi = np.ones((n, 1))
    g_hi = g(hi)
    x_t = np.where(g(lo) <= 0.0, lo, np.where(g_hi >= 0.0, hi, np.nan))
    # the steepest ascent from standby is at full power: f's own tangent there is steeper than the
    # hull and would cut off the standby point
    at_end = (x_t >= 1.0) & (g_hi > 0.0)
    todo = np.isnan(x_t[:, 0])
    if np.any(todo):
        a, b, dd, fs = lo[todo], hi[todo], d[todo], f_standby[todo]
        for _ in range(60):
            mid = 0.5 * (a + b)
            f, fp = fun(p, mid, dd)
            up = fp * (mid - sb) - (f - fs) > 0.0
            a = np.where(up, mid, a)
            b = np.where(up, b, mid)
        x_t[todo] = b  # g(b) <= 0: the slope from standby to b is within rounding of the max
    f_t, _ = fun(p, x_t, d)
    pause_slope = (f_t - f_standby) / (x_t - sb)
    pause_icpt = f_standby - pause_slope * sb
    xk = _tangent_points(p, n_lines)[None, :]
    f_k, fp_k = fun(p, xk, d)
    # the pause line through (x_t, f(x_t)) with the steepest slope also bounds f to the right of
    # x_t only if f is concave; at points left of x_t the tangents would cut off the standby point
    keep_k = (xk >= x_t) & ~(at_end & (xk >= 1.0))
    slope = np.concatenate([pause_slope, fp_k], axis=1)
    icpt = np.concatenate([pause_icpt, f_k - fp_k * xk], axis=1)
    keep = np.concatenate([np.ones((n, 1), dtype=bool), keep_k], axis=1)
    same = (slope[:, 1:] == slope[:, :-1]) & (icpt[:, 1:] == icpt[:, :-1])
    keep[:, 1:] &= ~same  # e.g. the flat tangents of min(d, x^b) beyond full service
    icpt = icpt + _MARGIN * np.maximum(np.abs(icpt) + np.abs(slope), 1.0)
    return Envelope(slope, icpt, keep, np.ones(n, dtype=bool), x_t[:, 0].copy())


_MARGIN = 1e-12  # relative safety margin added to every line's intercept (rounding)


def tangent_lines(
    params: SiteLPParams, which: str, x: np.ndarray, d: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Tangent (supergradient) lines ``(slope, intercept)`` of training work (``which =
    "training"``) or inference served (``"served"``) at running IT fractions ``x``: valid upper
    bounds wherever the function is concave on ``[floor, 1]`` and ``x`` lies beyond the pause
    line's end (see :class:`Envelope`)."""
    fun = _training if which == "training" else _served
    f, fp = fun(params, np.asarray(x, dtype=np.float64), np.asarray(d, dtype=np.float64))
    icpt = f - fp * x
    return fp, icpt + _MARGIN * np.maximum(np.abs(icpt) + np.abs(fp), 1.0)


def hull_value(
    params: SiteLPParams, which: str, env: Envelope, x: np.ndarray, d: np.ndarray
) -> np.ndarray:
    """The exact upper hull at ``x`` for the rows where ``env.exact`` (NaN elsewhere)."""
    assert env.exact is not None and env.pause_end is not None
    fun = _training if which == "training" else _served
    f, _ = fun(params, np.maximum(x, params.cap_floor_frac), d)
    pause = env.intercept[:, 0] + env.slope[:, 0] * x
    return np.where(env.exact, np.where(x <= env.pause_end, pause, f), np.nan)


def _grid_envelope(params: SiteLPParams, d: np.ndarray, n_lines: int, n_grid: int) -> Envelope:
    """Upper envelope of the training work for steps where it need not be concave on
    ``[floor, 1]`` (inference demand above what the floor serves, or strong curvature of the
    ``-d x^(b_tr - b_inf)`` term): secants between breakpoints of a fine grid, each raised by the
    largest excess of the function over it on the grid plus a bound on how far the function can
    rise above the chord between two grid points, ``h (max f' - min f') / 4``, with the derivative
    range bounded from the power-law terms at the interval ends (each term is monotone)."""
    p = params
    run = p.cap_floor_frac + (1.0 - p.cap_floor_frac) * np.linspace(0.0, 1.0, n_grid)
    xg = np.concatenate([[p.standby_frac], run])
    f = compute_functions(p, xg[None, :], d)[0]  # [n, G + 1]

    a_tr, a_inf = p.training_exponent, p.inference_exponent
    A = p.it_kw * p.dt_h
    xl, xr = run[None, :-1], run[None, 1:]
    h = xr - xl
    with np.errstate(divide="ignore"):
        x_star = np.where(d > 0.0, d ** (1.0 / a_inf), 0.0)  # inference fully served above x*
    upper = xr > x_star  # part of the interval where training runs
    lower = xl < x_star  # part where inference is short (no training, f' = 0)
    t1lo, t1hi = _power_term_range(A * np.ones_like(d), a_tr, xl, xr)
    t2lo, t2hi = _power_term_range(-A * d, a_tr - a_inf, xl, xr)
    f_lo = np.minimum(np.where(upper, t1lo + t2lo, np.inf), np.where(lower, 0.0, np.inf))
    f_hi = np.maximum(np.where(upper, t1hi + t2hi, -np.inf), np.where(lower, 0.0, -np.inf))
    eps = np.max(h * (f_hi - f_lo), axis=1) / 4.0

    u = np.linspace(0.0, 1.0, max(n_lines, 2))
    bp = np.concatenate([[0], np.unique(1 + np.round((n_grid - 1) * u**2).astype(np.int64))])
    x0, x1 = xg[bp[:-1]], xg[bp[1:]]
    f0, f1 = f[:, bp[:-1]], f[:, bp[1:]]
    slope = (f1 - f0) / (x1 - x0)
    icpt = f0 - slope * x0
    shift = np.empty_like(slope)
    for k in range(slope.shape[1]):
        shift[:, k] = np.max(f - (icpt[:, k : k + 1] + slope[:, k : k + 1] * xg), axis=1)
    icpt = icpt + np.maximum(shift, 0.0) + eps[:, None]
    n = slope.shape[0]
    return Envelope(
        slope, icpt, np.ones_like(slope, dtype=bool), np.zeros(n, dtype=bool), np.ones(n)
    )


def _power_term_range(
    coef: np.ndarray, power: float, xl: np.ndarray, xr: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Range of ``coef * power * x**(power - 1)`` (the derivative of ``coef x^power``) over
    ``[xl, xr]``; the term is monotone in ``x > 0`` so its endpoints bound it."""
    a = coef * power * xl ** (power - 1.0)
    b = coef * power * xr ** (power - 1.0)
    return np.minimum(a, b), np.maximum(a, b)


def training_is_concave(params: SiteLPParams, inference_demand_frac: np.ndarray) -> np.ndarray:
    """Per step: is the training work concave on ``[cap floor, 1]``?

    It is when inference is fully served at the floor (``d <= floor^b_inf``, so there is no kink)
    and ``W''/(IT dt) = -b_tr (1 - b_tr) x^(b_tr - 2) + d q (1 - q) x^(q - 2) <= 0`` with
    ``q = b_tr - b_inf``, i.e. ``d q (1 - q) x^(-b_inf) <= b_tr (1 - b_tr)``, checked at the floor
    where the left side is largest.
    """
    p = params
    d = np.asarray(inference_demand_frac, dtype=np.float64)
    a_tr, a_inf = p.training_exponent, p.inference_exponent
    q = a_tr - a_inf
    fl = p.cap_floor_frac
    served_at_floor = d <= fl**a_inf
    curv = d * q * (1.0 - q) * fl ** (-a_inf) <= a_tr * (1.0 - a_tr)
    return served_at_floor & curv


def compute_envelopes(
    params: SiteLPParams,
    inference_demand_frac: np.ndarray,
    n_lines: int = 16,
    n_grid: int = 256,
    n_tangents: int | None = None,
) -> tuple[Envelope, Envelope]:
    """Concave piecewise-linear upper envelopes of training work (IT kWh) and inference served
    (fraction) as functions of the applied IT fraction, one per step.

    Both must bound the kernel's functions (:func:`compute_functions`) from above on the set the
    kernel can realise, ``{standby} U [cap floor, 1]``:

    * inference served ``min(d, x^b_inf)`` is concave on ``[floor, 1]``, and so is training work
      in the usual case (:func:`training_is_concave`): the envelope is the exact upper hull of the
      standby point and the curve — the line from standby to the point of steepest ascent, then
      tangent lines at ``n_tangents`` (default ``n_lines``) breakpoints (no grid, no gap bound
      needed; :func:`solve_site_lp` adds tangents where the LP's solution needs them);
    * otherwise (training work when inference is short at the floor) ``n_lines`` secants on a
      fine grid of ``n_grid`` points raised by their largest excess plus a bound on the
      between-grid-points error (:func:`_grid_envelope`).

    Returns
    -------
    (training, served)
    """
    p = params
    d = np.asarray(inference_demand_frac, dtype=np.float64).reshape(-1, 1)
    n = d.shape[0]
    zero = np.zeros((n, 1))
    n_tan = n_lines if n_tangents is None else n_tangents
    served = _tangent_envelope(p, _served, d, zero, n_tan)
    # flat lines at d are implied by the column bound s <= d
    flat = (served.slope == 0.0) & (served.intercept >= d - 1e-12)
    flat[:, 0] = False  # the pause line stays (the lazy refinement reads it)
    served = Envelope(
        served.slope, served.intercept, served.keep & ~flat, served.exact, served.pause_end
    )
    concave = training_is_concave(p, d[:, 0])
    if np.all(concave):
        return _tangent_envelope(p, _training, d, zero, n_tan), served
    m = n_tan + 1
    slope = np.zeros((n, m))
    icpt = np.zeros((n, m))
    keep = np.zeros((n, m), dtype=bool)
    pause_end = np.ones(n)
    if np.any(concave):
        env = _tangent_envelope(p, _training, d[concave], zero[concave], n_tan)
        slope[concave], icpt[concave], keep[concave] = env.slope, env.intercept, env.keep
        pause_end[concave] = env.pause_end
    other = ~concave
    env = _grid_envelope(p, d[other], n_lines, n_grid)
    mg = env.slope.shape[1]
    if mg > m:
        pad = mg - m
        slope = np.pad(slope, ((0, 0), (0, pad)))
        icpt = np.pad(icpt, ((0, 0), (0, pad)))
        keep = np.pad(keep, ((0, 0), (0, pad)))
    slope[other, :mg], icpt[other, :mg], keep[other, :mg] = env.slope, env.intercept, env.keep
    keep[other, mg:] = False
    return Envelope(slope, icpt, keep, concave, pause_end), served


# ------------------------------------------------------------------------------ car block
@dataclass(frozen=True)
class CarBlock:
    """Per-car EV charging decisions for ``soft`` mode (a relaxation, see :mod:`agents.optim.oracle`).

    Car ``c`` may take DC power ``q_{c,j} >= 0`` in the steps ``start_step[c] <= j < end_step[c]``
    of the window (``end_step`` None: to the window end), at most ``cap_kw[c]`` (stall kW, or the
    car's own power cap if lower). A cumulative-energy variable ``y_{c,j}`` (DC kWh delivered up
    to the end of step ``j``) is at most ``energy_max_kwh[c]`` (up to the target SoC), and each
    line of a concave upper envelope of the acceptance curve x power scale caps the power:
    ``q_{c,j} <= icpt + slope * (soc0 + y / battery_kwh)`` with ``y`` taken after the step for
    rising lines and before it for falling ones (the step's mean SoC lies between, and a concave
    envelope of the curve bounds the mean of the curve over the step). Revenue: retail price x
    DC kWh.
    """

    start_step: np.ndarray  # [N] int, first window step the car may charge
    energy_max_kwh: np.ndarray  # [N] DC kWh up to the target SoC
    battery_kwh: np.ndarray  # [N]
    soc0: np.ndarray  # [N] SoC at the window start (or arrival)
    cap_kw: np.ndarray  # [N] stall power cap (or the car's own, if lower)
    curve_slope: np.ndarray  # [N, L] kW per unit SoC
    curve_icpt: np.ndarray  # [N, L] kW
    ev_price_usd_per_kwh: np.ndarray  # [n] retail price per step
    end_step: np.ndarray | None = None  # [N] int, first window step the car is gone (departure)


# ---------------------------------------------------------------------------------- inputs
@dataclass(frozen=True)
class SiteLPInputs:
    """Exogenous inputs and initial state of one LP window of ``n`` steps."""

    price_usd_per_kwh: np.ndarray  # [n]
    export_price_usd_per_kwh: np.ndarray  # [n]
    carbon_g_per_kwh: np.ndarray  # [n]
    ev_ac_kw: np.ndarray  # [n] fixed EV AC load (all of it in strict mode)
    pue: np.ndarray  # [n]
    inference_demand_frac: np.ndarray  # [n]
    training_arrival_kwh: np.ndarray  # [n]
    demand_active: np.ndarray  # [n, K] bool
    battery_soc_frac: float
    backlog_kwh: float
    peak0_kw: np.ndarray  # [K] peaks already set (the thresholds at the episode start)
    window_pos0: int = 0  # steps of the current demand window already elapsed before step 0
    window_prior_kwh: float = 0.0  # import in those steps
    count_partial_window: bool = False  # price a window cut off by the window end (MPC)
    terminal_value_usd_per_kwh: float = 0.0  # value of stored energy left at the end (MPC)
    shortfall_penalty_usd_per_kwh: float | None = None  # None: the balance must close exactly
    offset_usd: float = 0.0  # constant added to the objective (e.g. EV revenue - penalties)
    cars: CarBlock | None = None

    @property
    def n_steps(self) -> int:
        return int(self.price_usd_per_kwh.shape[0])


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


# ---------------------------------------------------------------------------------- builder
class _Coo:
    """Rows of a sparse matrix collected block by block as COO arrays."""

    def __init__(self) -> None:
        self.rows: list[np.ndarray] = []
        self.cols: list[np.ndarray] = []
        self.vals: list[np.ndarray] = []
        self.lo: list[np.ndarray] = []
        self.hi: list[np.ndarray] = []
        self.n = 0

    def add(
        self,
        rows: np.ndarray,
        cols: np.ndarray,
        vals: np.ndarray,
        lo: np.ndarray,
        hi: np.ndarray,
    ) -> int:
        """Add ``len(lo)`` rows; ``rows`` are block-local row numbers. Returns the first row."""
        first = self.n
        self.rows.append(np.asarray(rows, dtype=np.int64).ravel() + first)
        self.cols.append(np.asarray(cols, dtype=np.int64).ravel())
        self.vals.append(np.asarray(vals, dtype=np.float64).ravel())
        self.lo.append(np.asarray(lo, dtype=np.float64).ravel())
        self.hi.append(np.asarray(hi, dtype=np.float64).ravel())
        self.n += self.lo[-1].shape[0]
        return first


@dataclass
class _Layout:
    n: int
    x: int
    w: int
    s: int
    c: int
    d: int
    e: int
    imp: int
    exp: int
    z: int  # -1 when absent
    b: int  # -1 when absent
    p: int
    q: int  # -1 when absent, else start of the car block [N, n] row-major
    n_cols: int
    objective_offset: float
    car_cols: np.ndarray | None = field(default=None)  # [N, n] column ids (-1 = no variable)


def backlog_can_bind(params: SiteLPParams, inputs: SiteLPInputs) -> bool:
    """Whether the training backlog can ever limit training in the window: run the backlog with
    the most training any step can do (full power); fewer work only leaves more backlog."""
    w_max = compute_functions(params, np.ones(inputs.n_steps), inputs.inference_demand_frac)[0]
    b = float(inputs.backlog_kwh)
    for wj, aj in zip(w_max.tolist(), inputs.training_arrival_kwh.tolist()):
        if b < wj - 1e-9:
            return True
        b = min(b - wj + aj, params.backlog_max_kwh)
    return False


def build_site_lp(
    params: SiteLPParams,
    inputs: SiteLPInputs,
    envelopes: tuple[Envelope, Envelope] | None = None,
    n_lines: int = 16,
    n_grid: int = 256,
) -> tuple[LpArrays, _Layout]:
    """Assemble the LP (vectorised COO -> row-wise CSR) for :func:`solve_site_lp`, with the given
    compute envelopes (training, served) or ones from :func:`compute_envelopes`."""
    p, u = params, inputs
    n = u.n_steps
    if n < 1:
        raise ValueError("the LP window must have at least one step")
    K = p.n_demand_charges
    dt = p.dt_h
    A = p.it_kw * dt
    j = np.arange(n)
    ones = np.ones(n)
    inf = np.inf

    # ---- columns
    x, w, s, c, d, e, imp, exp = (k * n for k in range(8))
    col = 8 * n
    z = -1
    if u.shortfall_penalty_usd_per_kwh is not None:
        z, col = col, col + n
    bind = backlog_can_bind(p, u)
    b = -1
    if bind:
        b, col = col, col + n
    pk, col = col, col + K
    q = -1
    car_cols = y_cols = None
    if u.cars is not None:
        N = u.cars.start_step.shape[0]
        active = j[None, :] >= u.cars.start_step[:, None]  # [N, n]
        if u.cars.end_step is not None:
            active &= j[None, :] < u.cars.end_step[:, None]
        n_act = int(active.sum())
        car_cols = np.full((N, n), -1, dtype=np.int64)
        y_cols = np.full((N, n), -1, dtype=np.int64)
        car_cols[active] = col + np.arange(n_act)
        y_cols[active] = col + n_act + np.arange(n_act)
        q = col
        col += 2 * n_act
    n_cols = col

    lo = np.zeros(n_cols)
    hi = np.full(n_cols, inf)
    cost = np.zeros(n_cols)
    lo[x : x + n], hi[x : x + n] = p.standby_frac, 1.0
    hi[w : w + n] = inf
    lo[s : s + n], hi[s : s + n] = 0.0, np.clip(u.inference_demand_frac, 0.0, None)
    hi[c : c + n] = p.battery_charge_kw
    hi[d : d + n] = p.battery_discharge_kw
    e_lo = p.battery_soc_min * p.battery_energy_kwh
    e_hi = p.battery_soc_max * p.battery_energy_kwh
    lo[e : e + n], hi[e : e + n] = e_lo, e_hi
    hi[imp : imp + n] = p.import_limit_kw
    hi[exp : exp + n] = p.export_limit_kw
    lo[pk : pk + K] = u.peak0_kw
    e0 = float(np.clip(u.battery_soc_frac, p.battery_soc_min, p.battery_soc_max))
    e0 *= p.battery_energy_kwh

    cost[w : w + n] = p.training_value_usd_per_kwh
    cost[s : s + n] = (p.inference_value_usd_per_kwh + p.sla_penalty_usd_per_kwh) * A
    cost[d : d + n] = -p.battery_degradation_usd_per_kwh * dt
    carbon_usd = u.carbon_g_per_kwh * p.carbon_price_usd_per_g
    cost[imp : imp + n] = -(u.price_usd_per_kwh + carbon_usd) * dt
    cost[exp : exp + n] = u.export_price_usd_per_kwh * dt
    cost[e + n - 1] += u.terminal_value_usd_per_kwh
    cost[pk : pk + K] = -p.demand_rate_usd_per_kw
    offset = (
        u.offset_usd
        - p.sla_penalty_usd_per_kwh * A * float(np.sum(u.inference_demand_frac))
        + float(np.dot(p.demand_rate_usd_per_kw, u.peak0_kw))
    )
    if z >= 0:
        hi[z : z + n] = inf
        cost[z : z + n] = -float(u.shortfall_penalty_usd_per_kwh) * dt
    if b >= 0:
        hi[b : b + n] = p.backlog_max_kwh

    rows = _Coo()
    # ---- site balance: imp - exp + d - c - IT PUE x (+ z) (- sum_c q / eff) = ev + aux
    bal_cols = [imp + j, exp + j, d + j, c + j, x + j]
    bal_vals = [ones, -ones, ones, -ones, -p.it_kw * u.pue]
    if z >= 0:
        bal_cols.append(z + j)
        bal_vals.append(ones)
    k_bal = len(bal_cols)
    rhs = u.ev_ac_kw + p.battery_aux_kw
    bal_first = rows.add(
        np.tile(j, k_bal), np.concatenate(bal_cols), np.concatenate(bal_vals), rhs, rhs
    )

    # ---- battery energy: e_j - e_{j-1} - eta_c dt c_j + dt / eta_d d_j = 0 (e_{-1} = e0)
    eta_c, eta_d = p.battery_charge_efficiency, p.battery_discharge_efficiency
    rhs = np.zeros(n)
    rhs[0] = e0
    rows.add(
        np.concatenate([j, j[1:], j, j]),
        np.concatenate([e + j, e + j[1:] - 1, c + j, d + j]),
        np.concatenate([ones, -ones[1:], -eta_c * dt * ones, dt / eta_d * ones]),
        rhs,
        rhs,
    )

    # ---- compute envelopes: w - slope x <= icpt, s - slope x <= icpt
    if envelopes is None:
        envelopes = compute_envelopes(p, u.inference_demand_frac, n_lines, n_grid)
    env_w, env_s = envelopes
    for env, var in ((env_w, w), (env_s, s)):
        jj, kk = np.nonzero(env.keep)
        r = np.arange(jj.shape[0])
        rows.add(
            np.concatenate([r, r]),
            np.concatenate([var + jj, x + jj]),
            np.concatenate([np.ones(r.shape[0]), -env.slope[jj, kk]]),
            np.full(r.shape[0], -inf),
            env.intercept[jj, kk],
        )

    # ---- training backlog
    if b >= 0:
        # w_j - b_{j-1} <= 0 (b_{-1} = backlog now)
        rhs = np.zeros(n)
        rhs[0] = u.backlog_kwh
        rows.add(
            np.concatenate([j, j[1:]]),
            np.concatenate([w + j, b + j[1:] - 1]),
            np.concatenate([ones, -ones[1:]]),
            np.full(n, -inf),
            rhs,
        )
        # b_j - b_{j-1} + w_j <= arrival_j
        rhs = u.training_arrival_kwh.astype(np.float64).copy()
        rhs[0] += u.backlog_kwh
        rows.add(
            np.concatenate([j, j[1:], j]),
            np.concatenate([b + j, b + j[1:] - 1, w + j]),
            np.concatenate([ones, -ones[1:], ones]),
            np.full(n, -inf),
            rhs,
        )

    # ---- demand windows: mean import of the window - p_k <= -prior / denominator
    W = p.window_steps
    pos0 = int(u.window_pos0)
    g_of = (pos0 + j) // W  # window of each step
    n_win = int(g_of[-1]) + 1
    g = np.arange(n_win)
    first = np.maximum(g * W - pos0, 0)
    last = np.minimum((g + 1) * W - pos0, n) - 1
    complete = (g + 1) * W - pos0 <= n
    denom = np.where(complete, W, (last - first + 1) + np.where(g == 0, pos0, 0)).astype(float)
    prior = np.where(g == 0, u.window_prior_kwh / dt, 0.0)
    counted = complete | bool(u.count_partial_window)
    for k in range(K):
        sel = counted & u.demand_active[last, k]
        if not np.any(sel):
            continue
        gsel = g[sel]
        row_of_g = np.full(n_win, -1)
        row_of_g[gsel] = np.arange(gsel.shape[0])
        in_sel = sel[g_of]
        rj = row_of_g[g_of[in_sel]]
        r_all = np.concatenate([rj, np.arange(gsel.shape[0])])
        rows.add(
            r_all,
            np.concatenate([imp + j[in_sel], np.full(gsel.shape[0], pk + k)]),
            np.concatenate([1.0 / denom[g_of[in_sel]], -np.ones(gsel.shape[0])]),
            np.full(gsel.shape[0], -inf),
            -prior[gsel] / denom[gsel],
        )

    # ---- car block (soft mode): q = DC kW, y = cumulative DC kWh after the step
    if u.cars is not None and car_cols is not None and y_cols is not None:
        cars = u.cars
        ci, cj = np.nonzero(car_cols >= 0)
        qc = car_cols[ci, cj]
        yc = y_cols[ci, cj]
        hi[qc] = cars.cap_kw[ci]
        cost[qc] = cars.ev_price_usd_per_kwh[cj] * dt
        hi[yc] = cars.energy_max_kwh[ci]
        # the chargers' AC draw enters the site balance
        rows.rows.append(bal_first + cj)
        rows.cols.append(qc)
        rows.vals.append(np.full(qc.shape[0], -1.0 / p.charger_efficiency))
        # y_j - y_{j-1} - dt q_j = 0 (y before the car's first step is 0)
        r = np.arange(qc.shape[0])
        has_prev = cj > cars.start_step[ci]
        prev_y = y_cols[ci[has_prev], cj[has_prev] - 1]
        rows.add(
            np.concatenate([r, r, r[has_prev]]),
            np.concatenate([yc, qc, prev_y]),
            np.concatenate(
                [np.ones(r.shape[0]), np.full(r.shape[0], -dt), -np.ones(prev_y.shape[0])]
            ),
            np.zeros(r.shape[0]),
            np.zeros(r.shape[0]),
        )
        # acceptance lines: q_j <= a + b (soc0 + y / B), y after the step when b > 0, before it
        # when b <= 0 (the step's mean SoC lies between)
        for ell in range(cars.curve_slope.shape[1]):
            sl = cars.curve_slope[ci, ell]
            ic = cars.curve_icpt[ci, ell]
            rising = sl > 0.0
            use_prev = ~rising & has_prev
            ycol = np.where(rising, yc, -1)
            ycol[use_prev] = y_cols[ci[use_prev], cj[use_prev] - 1]
            with_y = ycol >= 0
            coef = -sl / cars.battery_kwh[ci]
            rows.add(
                np.concatenate([r, r[with_y]]),
                np.concatenate([qc, ycol[with_y]]),
                np.concatenate([np.ones(r.shape[0]), coef[with_y]]),
                np.full(r.shape[0], -inf),
                ic + sl * cars.soc0[ci],
            )

    layout = _Layout(n, x, w, s, c, d, e, imp, exp, z, b, pk, q, n_cols, offset, car_cols)
    return _to_arrays(rows, lo, hi, cost, offset), layout


@dataclass(frozen=True)
class LpArrays:
    """An LP in HiGHS's row-wise CSR form (maximisation), ready for ``Highs.passModel``."""

    col_cost: np.ndarray
    col_lower: np.ndarray
    col_upper: np.ndarray
    row_lower: np.ndarray
    row_upper: np.ndarray
    a_start: np.ndarray  # int32 [n_rows + 1]
    a_index: np.ndarray  # int32
    a_value: np.ndarray
    offset: float

    @property
    def n_cols(self) -> int:
        return int(self.col_cost.shape[0])

    @property
    def n_rows(self) -> int:
        return int(self.row_lower.shape[0])

    def pass_to(self, h: highspy.Highs) -> None:
        """Load the LP into a HiGHS instance (replacing its model)."""
        status = h.passModel(
            self.n_cols,
            self.n_rows,
            int(self.a_index.shape[0]),
            int(highspy.MatrixFormat.kRowwise),
            int(highspy.ObjSense.kMaximize),
            self.offset,
            self.col_cost,
            self.col_lower,
            self.col_upper,
            self.row_lower,
            self.row_upper,
            self.a_start,
            self.a_index,
            self.a_value,
            np.zeros(self.n_cols, dtype=np.int32),
        )
        if status != highspy.HighsStatus.kOk:
            raise RuntimeError(f"HiGHS rejected the site LP (status {status})")


def _to_arrays(
    rows: _Coo, lo: np.ndarray, hi: np.ndarray, cost: np.ndarray, offset: float
) -> LpArrays:
    r = np.concatenate(rows.rows)
    cidx = np.concatenate(rows.cols)
    v = np.concatenate(rows.vals)
    order = np.argsort(r, kind="stable")
    start = np.zeros(rows.n + 1, dtype=np.int32)
    np.cumsum(np.bincount(r, minlength=rows.n), out=start[1:])
    return LpArrays(
        col_cost=np.ascontiguousarray(cost, dtype=np.float64),
        col_lower=np.ascontiguousarray(lo, dtype=np.float64),
        col_upper=np.ascontiguousarray(hi, dtype=np.float64),
        row_lower=np.concatenate(rows.lo),
        row_upper=np.concatenate(rows.hi),
        a_start=start,
        a_index=cidx[order].astype(np.int32),
        a_value=np.ascontiguousarray(v[order]),
        offset=float(offset),
    )


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
