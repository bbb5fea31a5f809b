"""Batch-first site simulator: state arrays, per-site reset, and the step.

``SiteSimulator`` holds ``B`` sites that step in lockstep. Each site has its own trace row and may
be reset on its own (the vector env's autoreset). It imports neither gymnasium nor torch.

>>> sim = SiteSimulator(load_scenario(), batch_size=2)
>>> sim.reset(TraceSampler(sim.configs[0]).sample([0, 1]))
>>> out = sim.step(compute_frac=1.0, battery_kw=0.0)  # [B, len(layout.OUT_FIELDS)]
>>> sim.outputs()["grid_import_kw"].shape
(2,)
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Sequence

import numba
import numpy as np

from megapod_gym.config.schema import ScenarioConfig
from megapod_gym.scenario.trace import ExogenousTrace
from megapod_gym.sim import layout as L
from megapod_gym.sim.forecast import WINDOW_NAMES, forecast_windows
from megapod_gym.sim.kernel import (
    STEP_BAD_ACTION,
    STEP_EPISODE_OVER,
    KernelParams,
    KernelState,
    prepare_sites,
    step_batch,
    step_batch_mt,
)
from megapod_gym.sim.params import SiteParams, build_params

# Batches at least this large step on all of numba's threads (``numba.set_num_threads(n)`` or the
# NUMBA_NUM_THREADS environment variable; 1 keeps everything on the calling thread). Below it the
# threads' start-up costs more than they save (experiments/bench_throughput.py measures both).
MIN_SITES_PER_THREADED_STEP = 256

_compile_notice_checked = False


def kernels_cached() -> bool | None:
    """Whether numba's cache holds the compiled step for this install's source (None: numba's
    cache layout could not be read; it is private API)."""
    try:
        return bool(step_batch._cache._cache_file._load_index())
    except Exception:  # noqa: BLE001 - any change in numba's internals means "cannot tell"
        return None


def _announce_first_compile() -> None:
    """One line on stderr, once per process, when the kernels still have to be compiled: a fresh
    install's first run spends 10-20 s there (later runs load them from numba's cache)."""
    global _compile_notice_checked
    if _compile_notice_checked:
        return
    _compile_notice_checked = True
    if kernels_cached() is False:
        print(
            "megapod-gym: compiling the simulation kernels for this install (10-20 s, once; later "
            "runs load them from numba's cache)",
            file=sys.stderr,
        )


class SiteSimulator:
    """``B`` sites stepped by one compiled kernel.

    Parameters
    ----------
    configs
        One scenario for every site, or one per site (same step length and episode length).
    batch_size
        Number of sites when a single config is given.

    The state lives in a few packed arrays (see ``layout``) so that one kernel call takes few
    arguments; read it through :meth:`state`, :meth:`measurements` and :meth:`outputs`.
    """

    def __init__(
        self, configs: ScenarioConfig | Sequence[ScenarioConfig], batch_size: int = 1
    ) -> None:
        _announce_first_compile()
        self.configs: list[ScenarioConfig] = (
            [configs] * batch_size if isinstance(configs, ScenarioConfig) else list(configs)
        )
        self.params: SiteParams = build_params(self.configs)
        B = self.params.batch_size
        ep = self.configs[0].episode
        self.n_steps = ep.n_steps
        self.step_min = ep.step_min
        self.dt_h = ep.dt_h
        self.horizon_steps = int(round(ep.forecast_horizon_h * 60 / ep.step_min))
        T, H, K = self.n_steps, self.horizon_steps, self.params.n_demand_charges
        S = self.params.max_stalls
        self.series = np.zeros((B, len(L.SERIES_FIELDS), T + H))
        self.demand_active = np.zeros((B, K, T), dtype=np.bool_)
        self.fstate = np.zeros((B, len(L.FSTATE_FIELDS)))
        self.istate = np.zeros((B, len(L.ISTATE_FIELDS)), dtype=np.int64)
        self.peak_kw = np.zeros((B, K))
        self.stall_car = np.full((B, S), -1, dtype=np.int64)
        self.stall_work = np.zeros((B, 3, S))
        self.cars = np.zeros((B, len(L.CAR_FIELDS), 0))
        self.car_status = np.zeros((B, 0), dtype=np.int8)
        self.car_dyn = np.zeros((B, 2, 0))  # SoC, wait minutes
        self.actions = np.zeros((B, 3))
        self.out = np.zeros((B, L.N_OUT))
        self._initial_soc = np.array([c.battery.initial_soc for c in self.configs])
        self._initial_backlog_kwh = np.array(
            [c.compute.training_backlog_initial_h * c.compute.it_kw for c in self.configs]
        )
        self.meas = np.zeros((B, L.N_MEAS))
        self.start_date = np.zeros(B, dtype="datetime64[D]")
        self.seeds = np.zeros(B, dtype=np.int64)
        self._all = np.ones(B, dtype=np.bool_)
        self._grow_cars(64)

    @property
    def batch_size(self) -> int:
        return self.params.batch_size

    def _grow_cars(self, n: int) -> None:
        """Make room for ``n`` cars per site (keeps existing contents)."""
        old = self.cars.shape[2]
        if n <= old:
            return
        n = max(n, 2 * old)
        B = self.batch_size
        cars = np.zeros((B, len(L.CAR_FIELDS), n))
        cars[:, L.C_CAR_ARRIVAL_STEP] = self.n_steps
        cars[:, :, :old] = self.cars
        status = np.zeros((B, n), dtype=np.int8)
        status[:, :old] = self.car_status
        dyn = np.zeros((B, 2, n))
        dyn[:, :, :old] = self.car_dyn
        self.cars, self.car_status, self.car_dyn = cars, status, dyn
        self._bind()

    def _bind(self) -> None:
        p = self.params
        # the kernel's named bundles (views of the arrays above; rebuilt when the car arrays grow)
        self._kernel_args = (
            KernelParams(scalars=p.scalars, curves=p.curves, pue=p.pue, demand=p.demand),
            KernelState(
                series=self.series,
                demand_active=self.demand_active,
                cars=self.cars,
                fstate=self.fstate,
                istate=self.istate,
                peak_kw=self.peak_kw,
                stall_car=self.stall_car,
                stall_work=self.stall_work,
                car_status=self.car_status,
                car_dyn=self.car_dyn,
            ),
        )

    # ------------------------------------------------------------------------------- reset
    def reset(self, trace: ExogenousTrace, sites: Sequence[int] | np.ndarray | None = None) -> None:
        """Load ``trace`` rows into ``sites`` (all sites by default) and reset their state."""
        idx = (
            np.arange(self.batch_size)
            if sites is None
            else np.asarray(sites, dtype=np.int64).reshape(-1)
        )
        if trace.batch_size != idx.shape[0]:
            raise ValueError(f"trace has {trace.batch_size} rows for {idx.shape[0]} sites")
        if (trace.n_steps, trace.horizon_steps, trace.step_min) != (
            self.n_steps,
            self.horizon_steps,
            self.step_min,
        ):
            raise ValueError(
                "trace length, horizon or step does not match the simulator's scenario"
            )
        if trace.demand_active.shape[2] != self.params.n_demand_charges:
            raise ValueError("trace has a different number of demand charges than the scenario")
        T = self.n_steps
        self._grow_cars(trace.car_arrival_step.shape[1])
        # A run of consecutive sites (every site, in a vector env's synchronized autoreset) is
        # written through a slice: views instead of fancy-index scatters.
        at: slice | np.ndarray = idx
        if idx.shape[0] and np.array_equal(idx, np.arange(idx[0], idx[0] + idx.shape[0])):
            at = slice(int(idx[0]), int(idx[0]) + idx.shape[0])
        for name in L.SERIES_FIELDS[: L.S_PRICE_NEXT_1H_MEAN]:
            values = getattr(trace, name)
            self.series[at, L.SERIES_INDEX[name], : values.shape[1]] = values
            self.series[at, L.SERIES_INDEX[name], values.shape[1] :] = 0.0
        steps_h = max(int(round(60 / self.step_min)), 1)
        windows = forecast_windows(trace.price_forecast_usd_per_kwh, steps_h)
        for k, name in enumerate(WINDOW_NAMES):
            self.series[at, L.SERIES_INDEX[name]] = windows[:, k]
        self.demand_active[at] = np.swapaxes(trace.demand_active, 1, 2)
        n = trace.car_arrival_step.shape[1]
        self.cars[at] = 0.0
        self.cars[at, L.C_CAR_ARRIVAL_STEP] = T
        for i, name in enumerate(L.CAR_FIELDS):
            self.cars[at, i, :n] = getattr(trace, name)
        self.car_status[at] = 0
        self.car_dyn[at] = 0.0
        self.start_date[at] = trace.start_date
        self.seeds[at] = trace.seeds

        self.fstate[at] = 0.0
        self.fstate[at, L.F_BATTERY_SOC] = self._initial_soc[idx]
        self.fstate[at, L.F_BACKLOG_KWH] = self._initial_backlog_kwh[idx]
        self.fstate[at, L.F_RUNNING] = 1.0
        self.fstate[at, L.F_PREV_IT_FRAC] = 1.0
        self.istate[at] = 0
        self.istate[at, L.I_N_CARS] = trace.n_cars
        self.peak_kw[at] = self.params.demand[idx, L.D_THRESHOLD]
        self.stall_car[at] = -1
        self.stall_work[at] = 0.0
        prepare_sites(idx, *self._kernel_args, self.meas)

    # -------------------------------------------------------------------------------- step
    def step(
        self,
        compute_frac: np.ndarray | float,
        battery_kw: np.ndarray | float,
        ev_cap_kw: np.ndarray | float = np.inf,
    ) -> np.ndarray:
        """Advance all sites one step.

        Parameters
        ----------
        compute_frac
            Requested IT power fraction in [0, 1] per site (below the cap floor = pause).
        battery_kw
            Requested battery power per site, kW; positive discharges into the site, negative
            charges. Clipped to SoC and power limits (reported).
        ev_cap_kw
            Cap on the chargers' total AC power per site (used only in ``soft`` EV-priority mode).

        Returns
        -------
        numpy.ndarray
            The step outputs ``[B, len(layout.OUT_FIELDS)]`` (overwritten by the next step).
        """
        a = self.actions
        a[:, L.A_COMPUTE_FRAC] = compute_frac
        a[:, L.A_BATTERY_KW] = battery_kw
        a[:, L.A_EV_CAP_KW] = ev_cap_kw
        return self.step_actions(a)

    def step_actions(self, actions: np.ndarray, active: np.ndarray | None = None) -> np.ndarray:
        """Like :meth:`step` with the setpoints as one array ``[B, 3]`` (IT fraction, battery kW,
        EV cap kW); NaN anywhere or an infinite IT fraction or battery power is a ``ValueError``.
        ``active`` (bool ``[B]``) leaves the other sites untouched (output rows zeroed)."""
        if actions.shape != (self.batch_size, 3) or actions.dtype != np.float64:
            actions = np.ascontiguousarray(
                np.broadcast_to(actions, (self.batch_size, 3)), dtype=np.float64
            )
        kernel = (
            step_batch_mt
            if self.batch_size >= MIN_SITES_PER_THREADED_STEP and numba.get_num_threads() > 1
            else step_batch
        )
        code = kernel(
            self._all if active is None else active,
            actions,
            *self._kernel_args,
            self.out,
            self.meas,
        )
        if code == STEP_BAD_ACTION:
            bad = ~np.isfinite(actions[:, :2]).all(axis=1) | np.isnan(actions[:, 2])
            rows = np.flatnonzero(bad)
            raise ValueError(
                "setpoints must be finite numbers (the EV cap may be +inf); bad in site(s) "
                f"{rows[:5].tolist()}{f' ... ({rows.size} in all)' if rows.size > 5 else ''} "
                f"(site {int(rows[0])}: {actions[rows[0]].tolist()})"
            )
        if code == STEP_EPISODE_OVER:
            raise RuntimeError("the episode is over for some sites: reset them before stepping")
        return self.out

    # ----------------------------------------------------------------------------- readers
    def outputs(self) -> dict[str, np.ndarray]:
        """The last step's outputs by name (views, shape ``[B]``)."""
        return {name: self.out[:, i] for i, name in enumerate(L.OUT_FIELDS)}

    def measurements(self) -> dict[str, np.ndarray]:
        """Raw measurements at the start of the current step by name (views, shape ``[B]``)."""
        return {name: self.meas[:, i] for i, name in enumerate(L.MEAS_FIELDS)}

    @property
    def t(self) -> np.ndarray:
        """Current step index of each site."""
        return self.istate[:, L.I_T]

    @property
    def done(self) -> np.ndarray:
        """Sites whose episode has ended (their next call must be a reset)."""
        return self.istate[:, L.I_T] >= self.n_steps

    def kpis(self) -> dict[str, np.ndarray]:
        """Cumulative per-site KPIs of the current episode."""
        f = self.fstate
        arrived = f[:, L.F_CARS_ARRIVED].copy()
        wait = f[:, L.F_WAIT_MIN_TOTAL].copy()
        return {
            "cars_arrived": arrived,
            "cars_served": f[:, L.F_CARS_SERVED].copy(),
            "cars_balked": f[:, L.F_CARS_BALKED].copy(),
            "wait_min_total": wait,
            "mean_wait_min": wait / np.maximum(arrived, 1.0),
        }

    def clone(self) -> SiteSimulator:
        """A deep copy (state and trace); stepping it leaves this simulator untouched (for MPC)."""
        twin = copy.copy(self)
        for name, value in vars(self).items():
            if isinstance(value, np.ndarray):
                setattr(twin, name, value.copy())
        twin._bind()
        return twin
