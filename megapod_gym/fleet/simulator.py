"""Fleet simulator: K heterogeneous sites in one :class:`SiteSimulator` batch + the job pool.

One step of the fleet (all sites advance together, ``dt`` = the sites' step):

1. jobs arriving this step join the pool;
2. the dispatcher's shares and rebalance fraction place and migrate jobs (:mod:`.jobs`);
3. sites in an outage are islanded for the step (the rules of :mod:`.outage`: no grid exchange,
   compute off drawing nothing, battery aux load not imported); cars may still charge from the
   battery;
4. every site's training backlog is set to the work it can run now (its jobs not in transit) and
   the compiled site kernel steps all sites (cars first, compute, battery, ledger);
5. each site's training work is spread over its jobs (earliest deadline first); finished jobs
   complete, jobs past their deadline are lost and the value already credited for their work is
   taken back, migrations advance.

Fleet ledger per site = the site's own ledger total - migration energy (billed at the receiving
site's price now, plus its carbon cost) - value forfeited by jobs lost there. The fleet total adds
the loss of jobs that expired unplaced. Work conservation holds exactly:
``work arrived = work done + work left (active) + work lost (remaining work of lost jobs)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from megapod_gym.config.fleet import FleetConfig, fleet_site_configs, load_fleet
from megapod_gym.fleet import jobs as J
from megapod_gym.fleet.ledger import FLEET_INDEX, SITE_FLEET_FIELDS, TOTAL_FIELDS, fleet_ledger
from megapod_gym.fleet.outage import connected_figures, islanded
from megapod_gym.fleet.trace import FleetTrace, FleetTraceSampler
from megapod_gym.sim import layout as L
from megapod_gym.sim.simulator import SiteSimulator

__all__ = ["FLEET_INDEX", "SITE_FLEET_FIELDS", "TOTAL_FIELDS", "FleetSimulator"]


class FleetSimulator:
    """K sites of a fleet stepped in lockstep with a shared job pool.

    >>> fs = FleetSimulator("tri-tz-3site")
    >>> fs.reset(seed=0)
    >>> fs.step(np.tile([1.0, 0.0, np.inf], (fs.n_sites, 1)), share=fs.it_kw, rebalance=0.0)
    >>> fs.fleet_total_usd
    """

    def __init__(self, fleet: str | FleetConfig | None = None) -> None:
        self.fleet: FleetConfig = load_fleet(fleet) if not isinstance(fleet, FleetConfig) else fleet
        self.site_configs = fleet_site_configs(self.fleet)
        self.sim = SiteSimulator(self.site_configs)
        self.sampler = FleetTraceSampler(self.fleet, self.site_configs)
        self.n_sites = len(self.site_configs)
        self.n_steps = self.sim.n_steps
        self.dt_h = self.sim.dt_h
        self.it_kw = np.array([c.compute.it_kw for c in self.site_configs])
        self.job_value_usd_per_kwh = self.fleet.jobs.value_usd_per_kwh
        net = self.fleet.network
        # seconds per GB = 8 / Gbps; steps per GB = that / step seconds
        self.steps_per_gb = 8.0 / net.bandwidth_gbps / (self.dt_h * 3600.0)
        self.energy_kwh_per_gb = net.energy_kwh_per_gb
        K = self.n_sites
        self.site_out = np.zeros((K, len(SITE_FLEET_FIELDS)))
        self.pool_loss_usd = 0.0
        self.pool_lost_kwh = 0.0
        self.fleet_total_usd = 0.0
        self._scratch = {n: np.zeros(K) for n in ("mig", "gb", "target", "assigned", "run", "done")}
        self._lost = {n: np.zeros(K + 1) for n in ("jobs", "kwh", "done")}
        par = self.sim.params.scalars
        # the sites' own values of the figures an islanded site changes (outage.py), restored
        # after every islanded step: [K, F] import kW, export kW, standby fraction, battery aux kW
        self._limits = connected_figures(par)
        self._carbon_price = par[:, L.P_CARBON_PRICE_USD_PER_G].copy()
        self.trace: FleetTrace | None = None
        self._totals = np.zeros(len(TOTAL_FIELDS))
        self._placed = np.zeros(K)
        self._moving = np.zeros(K)
        self._agg = np.zeros(len(J.AGG_FIELDS))
        self._summary_t = -1
        self._due_steps = (int(round(6.0 / self.dt_h)), int(round(24.0 / self.dt_h)))

    # ------------------------------------------------------------------------------- reset
    def reset(self, seed: int | None = None, trace: FleetTrace | None = None) -> FleetTrace:
        """Start an episode on ``trace`` or on the trace of ``seed``."""
        if trace is None:
            if seed is None:
                raise ValueError("reset needs a seed or a trace")
            trace = self.sampler.sample(seed)
        if trace.n_sites != self.n_sites or trace.n_steps != self.n_steps:
            raise ValueError(
                f"trace has {trace.n_sites} sites x {trace.n_steps} steps; the fleet has "
                f"{self.n_sites} x {self.n_steps}"
            )
        self.trace = trace
        self.sim.reset(trace.sites)
        jt = trace.jobs
        n = jt.n_jobs
        self.status = np.zeros(n, dtype=np.int64)
        self.site = np.full(n, -1, dtype=np.int64)
        self.transit = np.zeros(n, dtype=np.int64)
        self.left_kwh = jt.size_kwh.astype(np.float64).copy()
        self.done_kwh = np.zeros(n)
        self.order = np.argsort(jt.deadline_step, kind="stable").astype(np.int64)
        self._next_job = J.activate(0, jt.arrival_step, self.status, 0)
        self.site_out[:] = 0.0
        self.pool_loss_usd = 0.0
        self.pool_lost_kwh = 0.0
        self.fleet_total_usd = 0.0
        self._totals[:] = 0.0
        self._summary_t = -1
        return trace

    @property
    def t(self) -> int:
        return int(self.sim.t[0])

    @property
    def done(self) -> bool:
        return self.t >= self.n_steps

    # -------------------------------------------------------------------------------- step
    def outage_now(self) -> np.ndarray:
        """Sites in an outage during the current step ``[K]`` bool."""
        assert self.trace is not None
        t = min(self.t, self.n_steps - 1)
        return self.trace.outage[:, t]

    def step(
        self,
        setpoints: np.ndarray,
        share: np.ndarray | Sequence[float],
        rebalance: float,
    ) -> np.ndarray:
        """Advance the fleet one step.

        Parameters
        ----------
        setpoints
            ``[K, 3]``: requested IT fraction, battery kW (+ = discharge), EV cap kW per site.
        share
            ``[K]`` non-negative weights: each site's share of the pool's active work.
        rebalance
            Fraction in [0, 1] of the work placed above its site's share (or at a site in an
            outage) that may migrate this step.

        Returns the per-site fleet outputs ``[K, len(SITE_FLEET_FIELDS)]``; the site kernel's
        outputs are in ``self.sim.out``.
        """
        if self.trace is None:
            raise RuntimeError("reset the fleet before stepping it")
        if self.done:
            raise RuntimeError("the fleet episode is over: reset it")
        K = self.n_sites
        share = np.asarray(share, dtype=np.float64).reshape(-1)
        if share.shape[0] != K or not np.all(np.isfinite(share)) or np.any(share < 0.0):
            raise ValueError(
                f"share must be {K} finite non-negative weights (got {share.tolist()})"
            )
        rebalance = float(rebalance)
        if not (0.0 <= rebalance <= 1.0):
            raise ValueError(f"rebalance must be in [0, 1] (got {rebalance})")
        setpoints = np.array(setpoints, dtype=np.float64).reshape(K, 3)
        if np.isnan(setpoints).any() or not np.isfinite(setpoints[:, :2]).all():
            raise ValueError(f"setpoints must be finite (got {setpoints.tolist()})")
        t = self.t
        tr = self.trace
        jt = tr.jobs
        s = self._scratch
        self._next_job = J.activate(t, jt.arrival_step, self.status, self._next_job)
        outage = tr.outage[:, t]
        J.dispatch(
            share, rebalance, ~outage, self.order, self.status, self.site, self.transit,
            self.left_kwh, jt.checkpoint_gb, self.steps_per_gb, s["mig"], s["gb"], s["target"],
            s["assigned"],
        )  # fmt: skip
        J.runnable_kwh(self.status, self.site, self.transit, self.left_kwh, s["run"])
        sim = self.sim
        sim.fstate[:, L.F_BACKLOG_KWH] = s["run"]
        with islanded(sim.params.scalars, setpoints, outage, self._limits):
            out = sim.step_actions(setpoints)
        s["done"][:] = out[:, L.O_TRAINING_WORK_KWH]
        lost = self._lost
        completed = np.zeros(K)
        J.apply_work(
            t, s["done"], self.order, self.status, self.site, self.transit, self.left_kwh,
            self.done_kwh, jt.deadline_step, completed, lost["jobs"], lost["kwh"], lost["done"],
        )  # fmt: skip

        self.fleet_total_usd = fleet_ledger(
            t, out, sim.series, self._carbon_price, s["gb"], s["mig"], self.energy_kwh_per_gb,
            self.job_value_usd_per_kwh, completed, lost["jobs"], lost["kwh"], lost["done"],
            outage, s["target"], s["assigned"], self.dt_h, self.site_out, self._totals,
        )  # fmt: skip
        self.pool_loss_usd = float(lost["done"][K] * self.job_value_usd_per_kwh)
        self.pool_lost_kwh = float(lost["kwh"][K])
        self._summary_t = -1
        return self.site_out

    # ----------------------------------------------------------------------------- readers
    @property
    def totals(self) -> dict[str, float]:
        """Episode totals so far (see ``ledger.TOTAL_FIELDS``)."""
        return dict(zip(TOTAL_FIELDS, self._totals.tolist()))

    def job_summary(self) -> dict[str, float]:
        """Pool aggregates now (``jobs.AGG_FIELDS``; due_a / due_b = within 6 h / 24 h),
        cached until the next step or reset."""
        if self._summary_t != self.t:
            assert self.trace is not None
            jt = self.trace.jobs
            J.job_summary(
                self.t, self._due_steps[0], self._due_steps[1], self.status, self.site,
                self.transit, self.left_kwh, self.done_kwh, jt.size_kwh, jt.deadline_step,
                self._placed, self._moving, self._agg,
            )  # fmt: skip
            self._summary_t = self.t
        return dict(zip(J.AGG_FIELDS, self._agg.tolist()))

    def work_balance(self) -> dict[str, float]:
        """Work arrived, done, left (active) and lost so far, kWh (arrived = done + left + lost)."""
        a = self.job_summary()
        return {k: a[k] for k in ("arrived_kwh", "done_kwh", "left_kwh", "lost_kwh")}

    def placed_kwh(self) -> tuple[np.ndarray, np.ndarray, float]:
        """(work placed at each site incl. in transit ``[K]``, of it in transit ``[K]``,
        unplaced work in the pool)."""
        a = self.job_summary()
        return self._placed.copy(), self._moving.copy(), a["unplaced_kwh"]

    def kpis(self) -> dict[str, float]:
        """Fleet KPIs of the episode so far."""
        tot = self.totals
        a = self.job_summary()
        useful = a["done_kwh"] - a["lost_done_kwh"]
        site_kpis = self.sim.kpis()
        tot.update(
            {
                "jobs_arrived": a["arrived_jobs"],
                "jobs_on_time_frac": tot["jobs_completed"] / max(a["arrived_jobs"], 1.0),
                "work_arrived_kwh": a["arrived_kwh"],
                "work_done_kwh": a["done_kwh"],
                "work_left_kwh": a["left_kwh"],
                "useful_work_kwh": useful,
                "energy_per_useful_work": (tot["compute_energy_kwh"] + tot["migration_energy_kwh"])
                / max(useful, 1e-9),
                "cars_arrived": float(site_kpis["cars_arrived"].sum()),
                "cars_served": float(site_kpis["cars_served"].sum()),
                "cars_balked": float(site_kpis["cars_balked"].sum()),
            }
        )
        return tot
