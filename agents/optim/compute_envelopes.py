"""The site's compute value as a function of the IT fraction, and the concave piecewise-linear
upper envelopes that stand for it in the site LP (:mod:`agents.optim.site_lp`).

:func:`compute_functions` is the kernel's exact compute outcome of one step (training work and
inference served at an applied IT fraction); :func:`compute_envelopes` bounds both from above by
lines per step (:class:`Envelope`): the exact upper hull where the function is concave
(:func:`training_is_concave`), secants on a fine grid raised by an error bound elsewhere.
:func:`tangent_lines` and :func:`hull_value` serve the lazy refinement of the envelopes in
:func:`agents.optim.site_lp.solve_site_lp` and :func:`agents.optim.fleet_lp.solve_fleet_hindsight`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agents.optim.site_lp_inputs import SiteLPParams

__all__ = [
    "Envelope",
    "compute_envelopes",
    "compute_functions",
    "hull_value",
    "tangent_lines",
    "training_is_concave",
]


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
      needed; :func:`agents.optim.site_lp.solve_site_lp` adds tangents where the LP's solution
      needs them);
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
