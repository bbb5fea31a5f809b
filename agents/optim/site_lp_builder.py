"""Assembly of the site LP (:mod:`agents.optim.site_lp`, whose docstring states the formulation):
the column layout of one window (:class:`_Layout`), its rows collected block by block as COO
arrays (:class:`_Coo`: site balance, battery energy, compute envelopes, training backlog, demand
windows, the optional car block) and the result in HiGHS's row-wise CSR form
(:class:`LpArrays`), built by :func:`build_site_lp`."""

from __future__ import annotations

from dataclasses import dataclass, field

import highspy
import numpy as np

from agents.optim.compute_envelopes import Envelope, compute_envelopes, compute_functions
from agents.optim.site_lp_inputs import SiteLPInputs, SiteLPParams

__all__ = ["LpArrays", "backlog_can_bind", "build_site_lp"]


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
    """Assemble the LP (vectorised COO -> row-wise CSR) for
    :func:`agents.optim.site_lp.solve_site_lp`, with the given compute envelopes (training,
    served) or ones from :func:`agents.optim.compute_envelopes.compute_envelopes`."""
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
