"""Exogenous fleet traces: every site's trace on one shared date, the job pool, the outages.

``FleetTraceSampler(fleet).sample(seed)`` returns a :class:`FleetTrace`. Everything derives from
the fleet seed through ``numpy.random.SeedSequence`` (site ``k`` uses spawn key ``k``; jobs,
outages and the date use their own keys), so the same seed gives the same fleet day bit for bit.
Fleet seeds follow the single-site convention: seeds >= ``HELD_OUT_SEED_BASE`` are held out.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np

from megapod_gym.config.fleet import FleetConfig, fleet_site_configs
from megapod_gym.config.schema import ScenarioConfig
from megapod_gym.scenario.trace import ExogenousTrace, TraceSampler

_JOBS_KEY, _OUTAGE_KEY, _DATE_KEY = 1_000_000, 1_000_001, 1_000_002


@dataclass(frozen=True)
class JobTrace:
    """The training jobs of one fleet episode, sorted by arrival step (``[J]`` arrays)."""

    arrival_step: np.ndarray  # int64, 0 for the jobs queued at the start
    size_kwh: np.ndarray  # IT kWh at full speed
    deadline_step: np.ndarray  # int64: the job must finish by the end of step deadline_step - 1
    checkpoint_gb: np.ndarray  # what a migration moves

    @property
    def n_jobs(self) -> int:
        return int(self.arrival_step.shape[0])


@dataclass(frozen=True)
class FleetTrace:
    """One fleet episode: ``sites`` (an :class:`ExogenousTrace` with one row per site, all on the
    same UTC day), ``jobs`` and the outage mask ``outage [K, T]`` (True: site islanded)."""

    seed: int
    start_date_utc: dt.date
    sites: ExogenousTrace
    jobs: JobTrace
    outage: np.ndarray  # [K, T] bool

    @property
    def n_sites(self) -> int:
        return self.sites.batch_size

    @property
    def n_steps(self) -> int:
        return self.sites.n_steps


def _seed_int(seq: np.random.SeedSequence) -> int:
    return int(seq.generate_state(2, np.uint64).view(np.uint64)[0] >> np.uint64(1))


class FleetTraceSampler:
    """Samples :class:`FleetTrace` episodes of one fleet."""

    def __init__(
        self, fleet: FleetConfig, site_configs: list[ScenarioConfig] | None = None
    ) -> None:
        self.fleet = fleet
        self.site_configs = site_configs if site_configs is not None else fleet_site_configs(fleet)
        self.samplers = [TraceSampler(c) for c in self.site_configs]
        self.offsets_h = np.array(
            [s.utc_offset_h for s in fleet.sites for _ in range(s.count)], dtype=np.float64
        )
        first = self.site_configs[0].episode
        self.n_steps, self.step_min, self.dt_h = first.n_steps, first.step_min, first.dt_h
        self.it_kw = np.array([c.compute.it_kw for c in self.site_configs])
        self._days = self.samplers[0]._start_days

    def sample(self, seed: int) -> FleetTrace:
        seed = int(seed)
        if seed < 0:
            raise ValueError(f"fleet seeds must be non-negative integers (got {seed})")
        K = len(self.site_configs)
        date_rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_DATE_KEY,)))
        utc = self._days[int(date_rng.integers(len(self._days)))]
        rows = []
        for k in range(K):
            local = utc + dt.timedelta(days=math.floor(self.offsets_h[k] / 24.0))
            site_seed = _seed_int(np.random.SeedSequence(seed, spawn_key=(k,)))
            rows.append(self.samplers[k].sample([site_seed], start_dates=[local]))
        sites = ExogenousTrace.stack(rows)
        jobs = self._jobs(
            np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_JOBS_KEY,)))
        )
        outage = self._outages(
            np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_OUTAGE_KEY,))), K
        )
        return FleetTrace(seed % 2**63, utc, sites, jobs, outage)

    def _jobs(self, rng: np.random.Generator) -> JobTrace:
        j = self.fleet.jobs
        T, dt_h = self.n_steps, self.dt_h
        fleet_kw = float(self.it_kw.sum())
        size_med = j.size_mwh_median * 1000.0
        mean_size = size_med * math.exp(0.5 * j.size_log_sd**2)
        n0 = int(rng.poisson(j.initial_load_h * fleet_kw / mean_size))
        per_step = j.load_factor * fleet_kw * dt_h / mean_size
        counts = rng.poisson(per_step, size=T)
        counts[0] += n0
        arrival = np.repeat(np.arange(T, dtype=np.int64), counts)
        n = arrival.shape[0]
        size = size_med * np.exp(j.size_log_sd * rng.standard_normal(n))
        lo, hi = j.deadline_h
        deadline_h = rng.uniform(lo, hi, size=n)
        deadline = arrival + np.ceil(deadline_h / dt_h).astype(np.int64)
        gb = j.checkpoint_gb_median * np.exp(j.checkpoint_log_sd * rng.standard_normal(n))
        return JobTrace(arrival, size, deadline, gb)

    def _outages(self, rng: np.random.Generator, K: int) -> np.ndarray:
        o = self.fleet.outages
        T, dt_h = self.n_steps, self.dt_h
        mask = np.zeros((K, T), dtype=np.bool_)
        if o.rate_per_site_day > 0.0:
            p = min(o.rate_per_site_day * dt_h / 24.0, 1.0)
            starts = rng.random((K, T)) < p
            for k, t in zip(*np.nonzero(starts)):
                steps = max(1, int(math.ceil(rng.exponential(o.duration_h_mean) / dt_h)))
                mask[k, t : t + steps] = True
        for s in o.scheduled:
            t0 = int(round(s.start_h / dt_h))
            mask[s.site, t0 : t0 + max(1, int(math.ceil(s.duration_h / dt_h)))] = True
        return mask
