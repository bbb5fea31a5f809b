"""The blocks of the fleet hindsight LP (:mod:`agents.optim.fleet_lp`) and their assembly.

One strict-mode site LP per site (:mod:`agents.optim.site_lp`) with the fleet changes: no own
backlog, and at outage steps the islanded site of :mod:`megapod_gym.fleet.outage` (no grid
exchange, compute off, no battery aux load, a priced EV shortfall; :func:`_site_block`); the job
pool's bounds ``A_t``/``D_t`` (:func:`_pool_bounds`); and the block-diagonal fleet LP with the
pool columns and rows that couple the sites (:func:`_stack`). The formulation and why it bounds
the fleet simulator are in the docstring of :mod:`agents.optim.fleet_lp`, which solves it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from agents.optim.compute_envelopes import Envelope, compute_envelopes
from agents.optim.oracle import ReferenceEV, reference_ev_run
from agents.optim.site_lp_builder import LpArrays, _Layout, backlog_can_bind, build_site_lp
from agents.optim.site_lp_inputs import SiteLPInputs, SiteLPParams
from megapod_gym.config.schema import ScenarioConfig
from megapod_gym.fleet.outage import IslandedStepFigures, islanded_step_figures
from megapod_gym.fleet.trace import FleetTrace, JobTrace
from megapod_gym.scenario.trace import ExogenousTrace


@dataclass
class _SiteBlock:
    """One site's LP inside the fleet model."""

    name: str
    params: SiteLPParams
    inputs: SiteLPInputs
    envelopes: tuple[Envelope, Envelope]
    lp: LpArrays
    lay: _Layout
    outage: np.ndarray  # [T] bool
    steps: IslandedStepFigures  # per-step figures with the islanded rules applied
    ref: ReferenceEV
    shortfall_usd_per_kwh: np.ndarray  # [T] penalty per unserved AC kWh
    col0: int = 0  # first column of the block in the fleet model


def _site_row(trace: FleetTrace, k: int, params: SiteLPParams) -> ExogenousTrace:
    """Site ``k``'s trace row with the demand-charge axis trimmed to the site's own charges
    (a stacked fleet trace pads it to the largest count of any site)."""
    row = trace.sites.site(k)
    n_dc = params.n_demand_charges
    if row.demand_active.shape[2] != n_dc:
        row = dataclasses.replace(row, demand_active=row.demand_active[:, :, :n_dc])
    return row


def _site_block(
    name: str,
    config: ScenarioConfig,
    row: ExogenousTrace,
    outage: np.ndarray,
    n_lines: int,
    n_grid: int,
    ev_shortfall_usd_per_kwh: float | None,
) -> _SiteBlock:
    """Build one site's strict-mode hindsight LP with the fleet changes (docstring of
    :mod:`agents.optim.fleet_lp`)."""
    if config.ev_priority != "strict":
        raise ValueError(
            f"site {name!r} uses ev_priority={config.ev_priority!r}; the fleet LP supports "
            "'strict' only"
        )
    base = SiteLPParams.from_config(config)
    # no own backlog: the pool rows bound the work (backlog block absent)
    params = dataclasses.replace(base, backlog_initial_kwh=np.inf, backlog_max_kwh=np.inf)
    T = row.n_steps
    if T != params.n_steps:
        raise ValueError(f"site {name!r}: trace has {T} steps, the scenario {params.n_steps}")
    ref = reference_ev_run(config, row)
    # the islanded rules (megapod_gym.fleet.outage) applied to the site's figures, per step
    steps = islanded_step_figures(params, outage)
    off = steps.compute_off
    pue = params.pue(row.ambient_c[0, :T])
    pue = np.where(off, 0.0, pue)  # compute draws nothing while islanded
    may_cut = steps.ev_shortfall_allowed
    has_cut = bool(may_cut.any())
    inputs = SiteLPInputs(
        price_usd_per_kwh=row.price_usd_per_kwh[0, :T].astype(np.float64),
        export_price_usd_per_kwh=row.export_price_usd_per_kwh[0, :T].astype(np.float64),
        carbon_g_per_kwh=row.carbon_g_per_kwh[0, :T].astype(np.float64),
        ev_ac_kw=ref.ev_ac_kw,
        pue=pue,
        inference_demand_frac=row.inference_demand_frac[0, :T].astype(np.float64),
        training_arrival_kwh=np.zeros(T),
        demand_active=row.demand_active[0, :T].astype(bool),
        battery_soc_frac=params.battery_initial_soc,
        backlog_kwh=np.inf,
        peak0_kw=params.demand_threshold_kw.copy(),
        shortfall_penalty_usd_per_kwh=0.0 if has_cut else None,  # per step, set below
        offset_usd=ref.ev_revenue_usd - ref.wait_penalty_usd - ref.balk_penalty_usd,
    )
    assert not backlog_can_bind(params, inputs)
    d = inputs.inference_demand_frac
    envs = compute_envelopes(params, d, n_lines, n_grid)
    lp, lay = build_site_lp(params, inputs, envs)
    if ev_shortfall_usd_per_kwh is None:  # lost revenue: retail price per DC kWh
        penalty = row.ev_price_usd_per_kwh[0, :T].astype(np.float64) * params.charger_efficiency
    else:
        penalty = np.full(T, float(ev_shortfall_usd_per_kwh))
    penalty = np.where(may_cut, penalty, 0.0)
    n = lay.n
    lo, hi, cost = lp.col_lower, lp.col_upper, lp.col_cost
    # grid exchange per step (0 while islanded)
    hi[lay.imp : lay.imp + n] = steps.import_limit_kw
    hi[lay.exp : lay.exp + n] = steps.export_limit_kw
    # the balance row of step j (row j of the site LP) reads imp - exp + d - c - IT PUE x (+ z)
    # = EV AC load + the step's battery aux load (0 while islanded: not imported)
    lp.row_lower[:n] = lp.row_upper[:n] = ref.ev_ac_kw + steps.battery_aux_kw
    # compute off: no work, nothing served; x is pinned at the site's standby fraction only so
    # that the envelope rows stay feasible (with PUE 0 it draws no power)
    o = np.nonzero(off)[0]
    lo[lay.x + o] = hi[lay.x + o] = params.standby_frac
    hi[lay.w + o] = 0.0
    hi[lay.s + o] = 0.0
    if has_cut:
        # shortfall: where the cars may be cut only, at most the cars' load
        hi[lay.z : lay.z + n] = np.where(may_cut, ref.ev_ac_kw, 0.0)
        cost[lay.z : lay.z + n] = -penalty * params.dt_h
    # the x coefficients of compute-off balance rows are 0 (PUE 0): drop them from the matrix
    return _SiteBlock(name, params, inputs, envs, _drop_zeros(lp), lay, outage, steps, ref, penalty)


def _drop_zeros(lp: LpArrays) -> LpArrays:
    """``lp`` without explicit zero matrix entries (rows and columns unchanged)."""
    nz = lp.a_value != 0.0
    if np.all(nz):
        return lp
    n_rows = lp.n_rows
    row_of = np.repeat(np.arange(n_rows), np.diff(lp.a_start))
    start = np.zeros(n_rows + 1, dtype=np.int32)
    np.cumsum(np.bincount(row_of[nz], minlength=n_rows), out=start[1:])
    return dataclasses.replace(
        lp, a_start=start, a_index=lp.a_index[nz].copy(), a_value=lp.a_value[nz].copy()
    )


def _pool_bounds(jobs: JobTrace, T: int) -> tuple[np.ndarray, np.ndarray]:
    """``(A_t, D_t)``: work arrived by step ``t`` and work due by the end of step ``t``."""
    size = jobs.size_kwh.astype(np.float64)
    arrived = np.zeros(T)
    inside = jobs.arrival_step < T
    np.add.at(arrived, np.maximum(jobs.arrival_step[inside], 0), size[inside])
    due = np.zeros(T)
    last = jobs.deadline_step - 1  # the last step in which the job can still be worked on
    inside = last < T
    np.add.at(due, np.maximum(last[inside], 0), size[inside])
    A = np.cumsum(arrived)
    D = np.minimum(np.cumsum(due), A)  # deadline > arrival always; min guards rounding only
    return A, D


def _stack(blocks: list[_SiteBlock], A: np.ndarray, D: np.ndarray) -> tuple[LpArrays, int, int]:
    """Block-diagonal fleet LP plus the pool columns ``M`` and ``l`` and the pool rows (last).

    Sets each block's ``col0``; returns the LP and the first columns of ``M`` and ``l``."""
    T = A.shape[0]
    col = 0
    costs, los, his, rlo, rhi, starts, idx, vals = [], [], [], [], [], [], [], []
    nnz = 0
    offset = 0.0
    for b in blocks:
        b.col0 = col
        lp = b.lp
        costs.append(lp.col_cost)
        los.append(lp.col_lower)
        his.append(lp.col_upper)
        rlo.append(lp.row_lower)
        rhi.append(lp.row_upper)
        starts.append(lp.a_start[:-1].astype(np.int64) + nnz)
        idx.append(lp.a_index.astype(np.int64) + col)
        vals.append(lp.a_value)
        nnz += int(lp.a_index.shape[0])
        offset += lp.offset
        col += lp.n_cols
    m0, l0 = col, col + T
    n_cols = col + 2 * T
    costs.append(np.zeros(2 * T))
    los.append(np.concatenate([D, np.zeros(T)]))
    his.append(np.concatenate([A, np.full(T, np.inf)]))
    # pool rows: M_t - M_{t-1} - l_t - sum_k w_{k,t} = 0
    K = len(blocks)
    t = np.arange(T)
    w_cols = np.stack([b.col0 + b.lay.w + t for b in blocks], axis=1)  # [T, K]
    prev = np.where(t > 0, m0 + t - 1, -1)
    row_idx = np.concatenate(
        [(m0 + t)[:, None], prev[:, None], (l0 + t)[:, None], w_cols], axis=1
    )  # [T, K + 3]
    row_val = np.concatenate(
        [np.ones((T, 1)), -np.ones((T, 1)), -np.ones((T, 1)), -np.ones((T, K))], axis=1
    )
    keep = row_idx >= 0
    counts = keep.sum(axis=1)
    starts.append(nnz + np.concatenate([[0], np.cumsum(counts)[:-1]]))
    idx.append(row_idx[keep])
    vals.append(row_val[keep])
    rlo.append(np.zeros(T))
    rhi.append(np.zeros(T))
    nnz += int(counts.sum())

    a_start = np.concatenate(starts + [np.array([nnz])])
    a_index = np.concatenate(idx)
    a_value = np.concatenate(vals)
    lp = LpArrays(
        col_cost=np.concatenate(costs),
        col_lower=np.concatenate(los),
        col_upper=np.concatenate(his),
        row_lower=np.concatenate(rlo),
        row_upper=np.concatenate(rhi),
        a_start=a_start.astype(np.int32),
        a_index=a_index.astype(np.int32),
        a_value=np.ascontiguousarray(a_value, dtype=np.float64),
        offset=offset,
    )
    assert lp.n_cols == n_cols
    return lp, m0, l0
