"""The shared job pool: placement, migration, work accounting and deadlines (numba-compiled).

Job state lives in flat arrays ``[J]`` (one entry per job of the episode's :class:`JobTrace`):

* ``status``: ``PENDING`` (not arrived), ``ACTIVE``, ``DONE`` or ``LOST``;
* ``site``: where the job is (or is moving to), ``-1`` = unplaced in the pool;
* ``transit``: steps left in a migration (the job cannot run meanwhile);
* ``left_kwh`` / ``done_kwh``: work remaining / done (IT kWh at full speed).

Every step the dispatcher gives each site a **share** of the pool's active work and a
**rebalance** fraction ``r`` in [0, 1] (see :func:`dispatch`): unplaced jobs are placed where the
site is furthest below its share (free: the data streams in with the job); placed jobs stay
unless their site is above its share or in an outage, and then at most ``r`` x that excess work
moves (migration: the checkpoint crosses the network, taking ``checkpoint_gb x 8 /
bandwidth_gbps`` seconds, rounded up to steps, and ``checkpoint_gb x energy_kwh_per_gb`` kWh).
Jobs are visited in earliest-deadline-first order throughout, and each site runs its jobs in that
order (:func:`apply_work`). A job still unfinished at its deadline is lost with its value.
"""

from __future__ import annotations

import numpy as np
from numba import njit

PENDING, ACTIVE, DONE, LOST = 0, 1, 2, 3
_EPS_KWH = 1e-9


@njit(cache=True)
def activate(t: int, arrival: np.ndarray, status: np.ndarray, nxt: int) -> int:
    """Jobs arriving at step ``t`` become active; returns the next pending job index."""
    n = arrival.shape[0]
    while nxt < n and arrival[nxt] <= t:
        status[nxt] = ACTIVE
        nxt += 1
    return nxt


@njit(cache=True)
def dispatch(
    share: np.ndarray,  # [K] >= 0
    rebalance: float,
    available: np.ndarray,  # [K] bool: not in an outage
    order: np.ndarray,  # [J] job indices by deadline
    status: np.ndarray,
    site: np.ndarray,
    transit: np.ndarray,
    left_kwh: np.ndarray,
    checkpoint_gb: np.ndarray,
    steps_per_gb: float,
    migrations: np.ndarray,  # [K] out: jobs migrated to each site this step
    migrated_gb: np.ndarray,  # [K] out: checkpoint GB moved to each site this step
    target_kwh: np.ndarray,  # [K] out: work share of each site
    assigned_kwh: np.ndarray,  # [K] out: work placed at each site after dispatch
) -> None:
    """Place and migrate jobs toward the sites' shares (see the module docstring)."""
    K = share.shape[0]
    migrations[:] = 0.0
    migrated_gb[:] = 0.0
    assigned_kwh[:] = 0.0
    w_sum = 0.0
    for k in range(K):
        if available[k] and share[k] > 0.0:
            w_sum += share[k]
    total = 0.0
    for i in order:
        if status[i] == ACTIVE:
            total += left_kwh[i]
    for k in range(K):
        target_kwh[k] = (
            share[k] / w_sum * total if (w_sum > 0.0 and available[k] and share[k] > 0.0) else 0.0
        )
    # pass 1: jobs in transit keep their destination; placed jobs stay while their site is
    # below its share (a job is kept if it brings the site closer to its target)
    candidate = np.zeros(order.shape[0], dtype=np.bool_)
    excess = 0.0
    for n in range(order.shape[0]):
        i = order[n]
        if status[i] != ACTIVE or site[i] < 0:
            continue
        k = site[i]
        if transit[i] > 0:
            assigned_kwh[k] += left_kwh[i]
        elif available[k] and assigned_kwh[k] + 0.5 * left_kwh[i] <= target_kwh[k]:
            assigned_kwh[k] += left_kwh[i]
        else:
            candidate[n] = True
            excess += left_kwh[i]
    budget = rebalance * excess
    # pass 2: unplaced jobs and candidates, earliest deadline first, to the largest deficit
    for n in range(order.shape[0]):
        i = order[n]
        if status[i] != ACTIVE or not (site[i] < 0 or candidate[n]):
            continue
        best = -1
        best_gap = -np.inf
        if w_sum > 0.0:
            for k in range(K):
                if available[k] and share[k] > 0.0:
                    gap = target_kwh[k] - assigned_kwh[k]
                    if gap > best_gap:
                        best_gap = gap
                        best = k
        here = site[i]
        if here < 0:
            if best >= 0:
                site[i] = best
                assigned_kwh[best] += left_kwh[i]
            continue
        if best >= 0 and best != here and budget > _EPS_KWH and best_gap > 0.0:
            budget -= left_kwh[i]
            site[i] = best
            transit[i] = max(1, int(np.ceil(checkpoint_gb[i] * steps_per_gb - 1e-9)))
            migrations[best] += 1.0
            migrated_gb[best] += checkpoint_gb[i]
            assigned_kwh[best] += left_kwh[i]
        else:
            assigned_kwh[here] += left_kwh[i]


@njit(cache=True)
def runnable_kwh(
    status: np.ndarray, site: np.ndarray, transit: np.ndarray, left_kwh: np.ndarray, out: np.ndarray
) -> None:
    """Work each site can run this step (its active jobs not in transit) into ``out [K]``."""
    out[:] = 0.0
    for i in range(status.shape[0]):
        if status[i] == ACTIVE and site[i] >= 0 and transit[i] == 0:
            out[site[i]] += left_kwh[i]


@njit(cache=True)
def apply_work(
    t: int,
    work_kwh: np.ndarray,  # [K] work each site did this step
    order: np.ndarray,
    status: np.ndarray,
    site: np.ndarray,
    transit: np.ndarray,
    left_kwh: np.ndarray,
    done_kwh: np.ndarray,
    deadline: np.ndarray,
    completed: np.ndarray,  # [K] out: jobs finished on time at each site this step
    lost_jobs: np.ndarray,  # [K+1] out: jobs lost at their deadline (by site; row K = unplaced)
    lost_kwh: np.ndarray,  # [K+1] out: their remaining work
    lost_done_kwh: np.ndarray,  # [K+1] out: work done on them (its value is forfeited)
) -> None:
    """Spread each site's work over its runnable jobs (EDF), then finish, expire and advance
    migrations at the end of step ``t``."""
    K = work_kwh.shape[0]
    completed[:] = 0.0
    lost_jobs[:] = 0.0
    lost_kwh[:] = 0.0
    lost_done_kwh[:] = 0.0
    rest = work_kwh.copy()
    for i in order:
        if status[i] != ACTIVE:
            continue
        k = site[i]
        if k >= 0 and transit[i] == 0 and rest[k] > 0.0:
            w = min(rest[k], left_kwh[i])
            rest[k] -= w
            left_kwh[i] -= w
            done_kwh[i] += w
            if left_kwh[i] <= _EPS_KWH * max(1.0, w):
                done_kwh[i] += left_kwh[i]
                left_kwh[i] = 0.0
                status[i] = DONE
                completed[k] += 1.0
                continue
        if deadline[i] <= t + 1:
            status[i] = LOST
            row = k if k >= 0 else K
            lost_jobs[row] += 1.0
            lost_kwh[row] += left_kwh[i]
            lost_done_kwh[row] += done_kwh[i]
        elif transit[i] > 0:
            transit[i] -= 1


# job_summary's aggregates (``agg`` array)
AGG_FIELDS: tuple[str, ...] = (
    "arrived_kwh",
    "done_kwh",
    "left_kwh",  # active jobs
    "lost_kwh",  # remaining work of lost jobs
    "unplaced_kwh",
    "due_a_kwh",  # active work due within due_a steps
    "due_b_kwh",
    "active_jobs",
    "arrived_jobs",
    "lost_done_kwh",  # work done on jobs later lost
)


@njit(cache=True)
def job_summary(
    t: int,
    due_a: int,
    due_b: int,
    status: np.ndarray,
    site: np.ndarray,
    transit: np.ndarray,
    left_kwh: np.ndarray,
    done_kwh: np.ndarray,
    size_kwh: np.ndarray,
    deadline: np.ndarray,
    placed: np.ndarray,  # [K] out: active work placed at each site (incl. in transit)
    moving: np.ndarray,  # [K] out: of it in transit
    agg: np.ndarray,  # [len(AGG_FIELDS)] out
) -> None:
    """One pass over the jobs: per-site placed / moving work and the pool aggregates."""
    placed[:] = 0.0
    moving[:] = 0.0
    agg[:] = 0.0
    for i in range(status.shape[0]):
        st = status[i]
        if st == PENDING:
            continue
        agg[0] += size_kwh[i]
        agg[1] += done_kwh[i]
        agg[8] += 1.0
        if st == LOST:
            agg[3] += left_kwh[i]
            agg[9] += done_kwh[i]
        elif st == ACTIVE:
            agg[2] += left_kwh[i]
            agg[7] += 1.0
            if deadline[i] <= t + due_a:
                agg[5] += left_kwh[i]
            if deadline[i] <= t + due_b:
                agg[6] += left_kwh[i]
            k = site[i]
            if k < 0:
                agg[4] += left_kwh[i]
            else:
                placed[k] += left_kwh[i]
                if transit[i] > 0:
                    moving[k] += left_kwh[i]
