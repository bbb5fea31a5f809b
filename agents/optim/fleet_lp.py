"""Hindsight LP optimum of a **fleet** of sites sharing one pool of training jobs.

``solve_fleet_hindsight(fleet, trace)`` stacks the K single-site hindsight LPs of
:mod:`agents.optim.site_lp` (``strict`` EV mode, as :func:`agents.optim.oracle.solve_hindsight` builds them
per site from ``trace.sites.site(k)``) block-diagonally into one HiGHS model and couples them
through the job pool. Its value is an upper bound on the episode's fleet profit
(``FleetSimulator.totals["fleet_total_usd"]``) of any dispatcher and site controllers, up to the
outage caveat below.

Changes to the single-site LPs
------------------------------
* **No own backlog.** Fleet sites have no own training backlog or arrivals (the pool replaces
  them): the per-site backlog block is absent (initial and maximum backlog set to infinity, so
  ``backlog_can_bind`` is False) and training work ``w_{k,t}`` is bounded only by the compute
  envelope and the pool rows below.
* **Job pool (fluid, free instantaneous migration).** With ``A_t`` = work (IT kWh) of the jobs
  arrived by step ``t`` (``arrival_step <= t``) and ``D_t`` = work of the jobs whose deadline falls
  by the end of step ``t`` (``deadline_step <= t + 1``), cumulative fleet work
  ``C_t = sum_k sum_{tau <= t} w_{k,tau}`` and cumulative lost work ``L_t`` (non-decreasing,
  ``>= 0``) satisfy ``D_t <= C_t + L_t <= A_t``. Implemented sparsely with ``M_t = C_t + L_t``
  as a column bounded by ``[D_t, A_t]``, lost increments ``l_t >= 0`` and one row per step
  ``M_t - M_{t-1} - sum_k w_{k,t} - l_t = 0``. Lost work earns nothing; the objective is unchanged
  (the site objective values ``w`` at the job value).
* **Outages.** At steps where site ``k`` is islanded the simulator and the LP apply the same
  rules, defined once in :mod:`megapod_gym.fleet.outage`: import and export limits 0, compute
  off with no standby draw, no battery aux load, cars may be cut. The LP takes its per-step
  import and export limits, aux load and compute-off steps from
  :func:`megapod_gym.fleet.outage.islanded_step_figures`. It fixes the IT fraction at standby
  (so that the envelope rows stay feasible), removes compute power from the site balance (the
  PUE input is 0 at those steps, so the ``x`` coefficient of that step's balance row is 0 and is
  dropped) and the aux load from its right-hand side, and bounds training work, inference
  served, import and export by 0 (inference demand then pays its SLA penalty, as in the kernel).
  The cars' fixed reference load may not be coverable by the battery alone: the site LP's
  shortfall variable ``z`` (unserved EV AC kW, at most the EV load) is allowed at outage steps
  only, charged at the EV revenue it loses, ``retail price x charger efficiency`` per AC kWh
  (revenue is billed per DC kWh), or at ``ev_shortfall_usd_per_kwh``.

Why the LP is a relaxation of the fleet simulator
-------------------------------------------------
Take any run of the simulator. Let ``w'_{k,t}`` be the work site ``k`` does in step ``t`` on jobs
that are *not* lost by the end of the episode (completed or still active), and let ``L_t`` be the
full size of the jobs lost by the end of step ``t``. Then ``w' <= w_sim <= envelope(x)``, ``L`` is
non-decreasing, ``C'_t + L_t <= A_t`` (``C'_t`` and ``L_t`` count disjoint sets of arrived jobs,
each at most its size: work can only be done on arrived jobs) and ``C'_t + L_t >= D_t`` (each job
due by the end of step ``t`` is either finished by then, its whole size in ``C'_t``, or lost, its
whole size in ``L_t``). This point is feasible for the LP with the run's IT fractions, battery
and grid powers, and its LP objective equals the run's fleet ledger plus what the LP ignores:
value of work on lost jobs (taken back by the simulator, absent from ``w'``), migration energy,
transit times and placement (which site may run which job), pause/resume costs and the other
single-site relaxations listed in :mod:`agents.optim.oracle`. The argument needs no particular job order
(EDF merely makes the simulator approach the fluid bound).

Caveat (outages only). The EV side is fixed from one reference run without outages. When an
outage cuts cars, the simulator's cars stay plugged in and charge after the outage (recovering
their energy and most of its revenue), while queued cars wait longer or balk; the LP instead
prices the cut as lost revenue and keeps the reference load afterwards. With outages that the
battery cannot carry, a policy may therefore exceed the LP value by about the revenue the LP
charges for the shortfall (``site_terms_usd[k]["shortfall_penalty_usd"]``; 0 whenever the
battery carries the cars through), more only through retail price differences between the
outage and the recovery or through queue effects. ``ev_shortfall_usd_per_kwh=0`` makes the
shortfall free (looser, but it no longer charges for energy the cars recover later). Without
outages the value is a true upper bound under the same condition as the single-site strict
oracle (the reference run needs no battery override, true for every preset).

Solution: the K blocks are first solved alone for a warm-start basis, then the fleet LP is solved
and its envelopes are refined round by round (see :func:`solve_fleet_hindsight`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import highspy
import numpy as np

from agents.optim.compute_envelopes import hull_value, tangent_lines
from agents.optim.fleet_lp_blocks import (
    _pool_bounds,
    _site_block,
    _site_row,
    _SiteBlock,
    _stack,
)
from agents.optim.site_lp import _extract, new_highs
from agents.optim.site_lp_inputs import SiteLPParams
from megapod_gym.config.fleet import FleetConfig, fleet_site_configs, load_fleet
from megapod_gym.fleet.simulator import FleetSimulator
from megapod_gym.fleet.trace import FleetTrace

_STATUS_OPTIMAL = highspy.HighsModelStatus.kOptimal


@dataclass(frozen=True)
class FleetHindsightSolution:
    """The fleet hindsight optimum of one :class:`FleetTrace`.

    ``objective_usd`` is an upper bound on ``FleetSimulator.totals["fleet_total_usd"]`` summed
    over the episode (see the module docstring for the outage caveat). Arrays ``[K, T]`` are per
    site and step; ``[T]`` arrays are fleet-wide.
    """

    objective_usd: float
    site_names: list[str]
    site_objective_usd: np.ndarray  # [K] each site's share of the objective (incl. EV offset)
    site_terms_usd: list[dict[str, float]]  # per-site objective terms (keys as SiteLPSolution)
    it_frac: np.ndarray  # [K, T] IT fraction (0 at outage steps: compute off)
    training_kwh: np.ndarray  # [K, T] training work w (IT kWh at full speed)
    inference_served_frac: np.ndarray  # [K, T]
    battery_kw: np.ndarray  # [K, T] net battery AC kW, + = discharge
    battery_energy_kwh: np.ndarray  # [K, T] stored energy after each step
    grid_import_kw: np.ndarray  # [K, T]
    grid_export_kw: np.ndarray  # [K, T]
    ev_ac_kw: np.ndarray  # [K, T] reference (strict) EV AC load
    ev_shortfall_kw: np.ndarray  # [K, T] unserved EV AC kW (outage steps only)
    outage: np.ndarray  # [K, T] bool
    work_arrived_kwh: np.ndarray  # [T] A_t: work of the jobs arrived by step t
    work_due_kwh: np.ndarray  # [T] D_t: work of the jobs due by the end of step t
    work_done_cum_kwh: np.ndarray  # [T] C_t: cumulative fleet training work
    work_lost_cum_kwh: np.ndarray  # [T] L_t: cumulative work lost at deadlines
    build_time_s: float  # all but HiGHS: reference EV runs, envelopes, assembly, cuts
    solve_time_s: float  # HiGHS: per-site warm-start solves + fleet solve + refinement rounds
    total_time_s: float
    n_rows: int  # final LP size (after refinement)
    n_cols: int
    refine_rounds: int

    @property
    def work_done_kwh(self) -> float:
        """Total training work of the schedule (IT kWh)."""
        return float(self.training_kwh.sum())

    @property
    def work_lost_kwh(self) -> float:
        """Work lost at deadlines by the end of the episode (IT kWh)."""
        return float(self.work_lost_cum_kwh[-1]) if self.work_lost_cum_kwh.size else 0.0


Cuts = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # (w/s cols, x cols, slope, icpt)


def _refinement_rows(
    blocks: list[_SiteBlock], sol: np.ndarray, refine_tol: float
) -> tuple[Cuts, float]:
    """Tangent cuts (fleet column numbers) where a site's w or s in the fleet solution ``sol``
    exceeds the exact hull at its IT fraction by more than ``refine_tol`` (x IT kWh of the step
    for training), and the overshoot in USD.

    ``overshoot_usd`` is the objective value of all excess over the exact hull (at the steps where
    the hull is known). Capping ``w`` and ``s`` at the hull (and counting the removed work as lost,
    which keeps the pool rows satisfied) gives a point that is feasible for the LP with exact
    hulls, so the current LP value minus ``overshoot_usd`` is a lower bound on that LP's value:
    ``overshoot_usd`` bounds how much further refinement could still lower the bound."""
    out: list[Cuts] = []
    overshoot_usd = 0.0
    for b in blocks:
        p, lay, n = b.params, b.lay, b.lay.n
        col0 = b.col0
        j = np.arange(n)
        sol_k = sol[col0 : col0 + lay.n_cols]
        x = np.clip(sol_k[lay.x : lay.x + n], p.standby_frac, 1.0)
        d = b.inputs.inference_demand_frac
        A = p.it_kw * p.dt_h
        for which, env, var, tol, usd in (
            ("training", b.envelopes[0], lay.w, refine_tol * A, p.training_value_usd_per_kwh),
            (
                "served",
                b.envelopes[1],
                lay.s,
                refine_tol,
                (p.inference_value_usd_per_kwh + p.sla_penalty_usd_per_kwh) * A,
            ),
        ):
            assert env.exact is not None and env.pause_end is not None
            excess = sol_k[var : var + n] - hull_value(p, which, env, x, d)
            known = env.exact & ~b.steps.compute_off
            overshoot_usd += usd * float(np.sum(np.maximum(excess[known], 0.0)))
            viol = known & (x > env.pause_end) & (excess > tol)
            if np.any(viol):
                slope, icpt = tangent_lines(p, which, x[viol], d[viol])
                out.append((col0 + var + j[viol], col0 + lay.x + j[viol], slope, icpt))
    return _concat_cuts(out), overshoot_usd


def _concat_cuts(parts: list[Cuts]) -> Cuts:
    """One block of cuts from several (an empty block for none)."""
    if not parts:
        e = np.zeros(0)
        return e.astype(np.int64), e.astype(np.int64), e, e
    return tuple(np.concatenate([c[i] for c in parts]) for i in range(4))  # type: ignore[return-value]


def _n_cuts(cuts: Cuts) -> int:
    return int(cuts[0].shape[0])


def _add_cuts(h: highspy.Highs, cuts: Cuts) -> None:
    """Add tangent cuts ``a - slope x <= icpt`` (two entries per row) to a HiGHS model."""
    cols_a, cols_x, slope, icpt = cuts
    k = _n_cuts(cuts)
    index = np.empty(2 * k, dtype=np.int32)
    index[0::2], index[1::2] = cols_a, cols_x
    value = np.empty(2 * k)
    value[0::2], value[1::2] = 1.0, -slope
    start = np.arange(0, 2 * k, 2, dtype=np.int32)
    h.addRows(k, np.full(k, -np.inf), icpt, 2 * k, start, index, value)


def _run(h: highspy.Highs) -> float:
    t = time.perf_counter()
    h.run()
    return time.perf_counter() - t


def solve_fleet_hindsight(
    fleet: FleetSimulator | FleetConfig | str | Path,
    trace: FleetTrace,
    threads: int = 1,
    n_lines: int = 16,
    n_grid: int = 256,
    lazy: bool = True,
    refine_tol: float = 1e-5,
    gap_tol_rel: float = 1e-4,
    max_rounds: int = 30,
    ev_shortfall_usd_per_kwh: float | None = None,
) -> FleetHindsightSolution:
    """Solve the fleet hindsight LP of ``trace`` (see the module docstring).

    Solution strategy (it affects speed and how tight the envelopes are, never validity: the
    value is an upper bound after every round):

    1. each site's block is solved alone (pool rows dropped, work unlimited) for its basis;
    2. the fleet LP (all blocks + pool rows) starts its dual simplex from the union of those
       optimal bases with the pool rows' slacks basic: the pool rows' duals are then 0, so the
       start is dual feasible and only the pool's primal infeasibilities remain to be repaired
       (at 20 sites far faster than a cold start, which took ~200 s);
    3. with ``lazy``, refinement rounds: the exact tangent at the fleet solution's IT fraction is
       added wherever a site's training work or inference served exceeds the exact hull by more
       than ``refine_tol`` (x IT kWh of the step for training, as in
       :func:`agents.optim.site_lp.solve_site_lp`), and the fleet LP is re-solved warm. Rounds stop
       when the objective value of all excess over the exact hulls (a bound on how much further
       refinement could still lower the value, see :func:`_refinement_rows`) is at most
       ``gap_tol_rel`` x |value|, when no step exceeds ``refine_tol``, or after ``max_rounds``.

    The envelopes start with ``n_lines`` tangents per step (not 3 as the single-site lazy LP):
    the fleet LP's re-solves cost seconds each at 20 sites; on ``fleet-20site`` 16 tangents leave
    an overshoot of ~1.5e-4 of the value (one round to reach the default ``gap_tol_rel``), 3
    tangents ~4e-3 (some twenty rounds). The value after the rounds is within ``gap_tol_rel`` of
    the fully refined LP's (measured: ~1e-5) and an upper bound either way.

    Parameters
    ----------
    fleet
        The :class:`FleetSimulator`, :class:`FleetConfig` or fleet name / YAML path the trace
        belongs to (site scenarios from :func:`megapod_gym.config.fleet.fleet_site_configs`).
    trace
        One fleet episode (``FleetTraceSampler.sample`` / ``FleetSimulator.reset``).
    threads
        HiGHS threads.
    n_lines, n_grid
        Envelope resolution (:func:`agents.optim.compute_envelopes.compute_envelopes`):
        tangents per step, and lines and grid points where the training curve is not concave.
    lazy, refine_tol, gap_tol_rel, max_rounds
        Refinement rounds (above).
    ev_shortfall_usd_per_kwh
        Price of EV AC energy left unserved during an outage. None (default): the revenue it
        loses, the step's retail price x charger efficiency. ``0.0`` treats it as recovered
        later (the simulator's cut cars stay plugged in and charge after the outage; see the
        module docstring).

    Raises
    ------
    ValueError
        On a trace of another shape, a ``soft`` EV-priority site, or cars cut in a site's
        reference run (:func:`agents.optim.oracle.reference_ev_run`).
    RuntimeError
        If HiGHS does not report an optimal solution.
    """
    t_start = time.perf_counter()
    if isinstance(fleet, FleetSimulator):
        site_configs = fleet.site_configs
    elif isinstance(fleet, (FleetConfig, str, Path)):
        site_configs = fleet_site_configs(load_fleet(fleet))
    else:
        raise TypeError(
            f"fleet must be a FleetSimulator, FleetConfig or fleet name (got {type(fleet).__name__})"
        )
    K, T = len(site_configs), site_configs[0].episode.n_steps
    if trace.n_sites != K or trace.n_steps != T or trace.outage.shape != (K, T):
        raise ValueError(
            f"trace has {trace.n_sites} sites x {trace.n_steps} steps; the fleet has {K} x {T}"
        )
    blocks = []
    for k, cfg in enumerate(site_configs):
        params = SiteLPParams.from_config(cfg)
        row = _site_row(trace, k, params)
        out_k = np.asarray(trace.outage[k], dtype=bool)
        blocks.append(
            _site_block(cfg.name, cfg, row, out_k, n_lines, n_grid, ev_shortfall_usd_per_kwh)
        )
    solve_s = 0.0
    # 1. each site alone (work unlimited): its optimal basis
    bases: list[tuple[list, list] | None] = []
    for blk in blocks:
        h_k = new_highs(threads)
        blk.lp.pass_to(h_k)
        solve_s += _run(h_k)
        if h_k.getModelStatus() == _STATUS_OPTIMAL:
            basis = h_k.getBasis()
            bases.append((list(basis.col_status), list(basis.row_status)))
        else:
            bases.append(None)
    # 2. the fleet LP, warm-started from the sites' bases
    A, D = _pool_bounds(trace.jobs, T)
    lp, m0, l0 = _stack(blocks, A, D)
    h = new_highs(threads)
    # Devex pricing: measured ~20 % faster than steepest edge on this LP (fleet-20site)
    h.setOptionValue("simplex_dual_edge_weight_strategy", 1)
    lp.pass_to(h)
    if all(bs is not None for bs in bases):
        hs = highspy.HighsBasisStatus
        basis = highspy.HighsBasis()
        basis.col_status = [st for bs in bases for st in bs[0]] + [hs.kLower] * (2 * T)
        basis.row_status = [st for bs in bases for st in bs[1]] + [hs.kBasic] * T
        basis.valid = True
        h.setBasis(basis)  # were it rejected, HiGHS would merely start cold
    solve_s += _run(h)
    # 3. refinement rounds
    rounds = 0
    while lazy and rounds < max_rounds and h.getModelStatus() == _STATUS_OPTIMAL:
        col_value = np.asarray(h.getSolution().col_value)
        cuts, overshoot_usd = _refinement_rows(blocks, col_value, refine_tol)
        value = float(h.getInfo().objective_function_value)
        if _n_cuts(cuts) == 0 or overshoot_usd <= gap_tol_rel * max(abs(value), 1.0):
            break
        _add_cuts(h, cuts)
        solve_s += _run(h)
        rounds += 1
    status = h.getModelStatus()
    if status != _STATUS_OPTIMAL:
        raise RuntimeError(
            f"fleet LP not solved to optimality: HiGHS status {h.modelStatusToString(status)!r} "
            f"({h.getNumRow()} rows, {h.getNumCol()} columns)"
        )
    col_value = np.asarray(h.getSolution().col_value)
    objective = float(h.getInfo().objective_function_value)
    total_s = time.perf_counter() - t_start
    return _to_solution(blocks, col_value, objective, A, D, m0, l0, trace, total_s - solve_s,
                        solve_s, total_s, int(h.getNumRow()), int(h.getNumCol()),
                        rounds)  # fmt: skip


def _to_solution(
    blocks: list[_SiteBlock],
    sol: np.ndarray,
    objective: float,
    A: np.ndarray,
    D: np.ndarray,
    m0: int,
    l0: int,
    trace: FleetTrace,
    build_s: float,
    solve_s: float,
    total_s: float,
    n_rows: int,
    n_cols: int,
    rounds: int,
) -> FleetHindsightSolution:
    T = A.shape[0]
    site_obj = np.zeros(len(blocks))
    terms: list[dict[str, float]] = []
    per: dict[str, list[np.ndarray]] = {
        k: [] for k in ("x", "w", "s", "batt", "e", "imp", "exp", "ev", "z")
    }
    for i, b in enumerate(blocks):
        sol_k = sol[b.col0 : b.col0 + b.lp.n_cols]
        site_obj[i] = float(b.lp.col_cost @ sol_k) + b.lp.offset
        s = _extract(b.params, b.inputs, b.lay, sol_k, site_obj[i], 0.0, 0.0, 0, 0)
        t_usd = dict(s.terms_usd)
        t_usd["shortfall_penalty_usd"] = float(
            np.sum(s.shortfall_kw * b.params.dt_h * b.shortfall_usd_per_kwh)
        )
        t_usd["ev_revenue_usd"] = b.ref.ev_revenue_usd
        t_usd["wait_penalty_usd"] = b.ref.wait_penalty_usd
        t_usd["balk_penalty_usd"] = b.ref.balk_penalty_usd
        t_usd["total_usd"] = site_obj[i]
        terms.append(t_usd)
        per["x"].append(np.where(b.steps.compute_off, 0.0, s.it_frac))
        per["w"].append(np.maximum(s.training_kwh, 0.0))
        per["s"].append(s.inference_served_frac)
        per["batt"].append(s.battery_kw)
        per["e"].append(s.battery_energy_kwh)
        per["imp"].append(s.grid_import_kw)
        per["exp"].append(s.grid_export_kw)
        per["ev"].append(b.ref.ev_ac_kw.copy())
        per["z"].append(np.maximum(s.shortfall_kw, 0.0))
    M = sol[m0 : m0 + T]
    lost_cum = np.cumsum(np.maximum(sol[l0 : l0 + T], 0.0))
    return FleetHindsightSolution(
        objective_usd=objective,
        site_names=[b.name for b in blocks],
        site_objective_usd=site_obj,
        site_terms_usd=terms,
        it_frac=np.stack(per["x"]),
        training_kwh=np.stack(per["w"]),
        inference_served_frac=np.stack(per["s"]),
        battery_kw=np.stack(per["batt"]),
        battery_energy_kwh=np.stack(per["e"]),
        grid_import_kw=np.stack(per["imp"]),
        grid_export_kw=np.stack(per["exp"]),
        ev_ac_kw=np.stack(per["ev"]),
        ev_shortfall_kw=np.stack(per["z"]),
        outage=np.asarray(trace.outage, dtype=bool).copy(),
        work_arrived_kwh=A,
        work_due_kwh=D,
        work_done_cum_kwh=M - lost_cum,
        work_lost_cum_kwh=lost_cum,
        build_time_s=build_s,
        solve_time_s=solve_s,
        total_time_s=total_s,
        n_rows=n_rows,
        n_cols=n_cols,
        refine_rounds=rounds,
    )
