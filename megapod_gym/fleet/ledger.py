"""The fleet ledger of one step (numba-compiled): per-site fleet outputs and episode totals.

Per-site columns are :data:`SITE_FLEET_FIELDS`; episode totals :data:`TOTAL_FIELDS`. A site's
fleet net = its own ledger total - migration energy (at its import price + carbon) - the value of
work done on jobs lost there. The fleet total adds the loss of jobs that expired unplaced.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from megapod_gym.sim import layout as L

SITE_FLEET_FIELDS: tuple[str, ...] = (
    "site_total_usd",  # the site kernel's ledger total
    "migration_energy_kwh",  # energy to move checkpoints to this site
    "migration_usd",  # its cost at this site's import price (floored at 0) + carbon cost
    "deadline_loss_usd",  # value taken back from jobs lost at this site
    "net_usd",  # site_total - migration - deadline loss
    "migrations_in",
    "jobs_completed",
    "jobs_lost",
    "work_done_kwh",
    "work_lost_kwh",
    "outage",
    "share_target_kwh",
    "placed_kwh",  # work placed at the site after dispatch (incl. in transit)
)
FLEET_INDEX = {n: i for i, n in enumerate(SITE_FLEET_FIELDS)}
TOTAL_FIELDS: tuple[str, ...] = (
    "fleet_total_usd",
    "migration_usd",
    "migration_energy_kwh",
    "deadline_loss_usd",
    "migrations",
    "jobs_completed",
    "jobs_lost",
    "work_lost_kwh",
    "compute_energy_kwh",
    "grid_import_kwh",
    "carbon_kg",
)
(
    _SITE_TOTAL, _MIG_KWH, _MIG_USD, _LOSS_USD, _NET, _MIG_IN, _DONE_JOBS, _LOST_JOBS, _WORK,
    _LOST_KWH, _OUTAGE, _TARGET, _PLACED,
) = range(len(SITE_FLEET_FIELDS))  # fmt: skip


@njit(cache=True)
def fleet_ledger(
    t: int,
    out: np.ndarray,  # [K, N_OUT] site kernel outputs of the step
    series: np.ndarray,  # [K, S, T+H] site traces (price, carbon)
    carbon_price_usd_per_g: np.ndarray,  # [K]
    migrated_gb: np.ndarray,  # [K]
    migrations: np.ndarray,  # [K]
    energy_kwh_per_gb: float,
    value_usd_per_kwh: float,
    completed: np.ndarray,  # [K]
    lost_jobs: np.ndarray,  # [K+1]
    lost_kwh: np.ndarray,  # [K+1]
    lost_done_kwh: np.ndarray,  # [K+1]
    outage: np.ndarray,  # [K] bool
    target_kwh: np.ndarray,  # [K]
    placed_kwh: np.ndarray,  # [K]
    dt_h: float,
    f: np.ndarray,  # [K, len(SITE_FLEET_FIELDS)] out
    totals: np.ndarray,  # [len(TOTAL_FIELDS)] accumulated
) -> float:
    """Fill ``f``, add the step to ``totals``; return the fleet total of the step (USD)."""
    K = out.shape[0]
    fleet = -lost_done_kwh[K] * value_usd_per_kwh
    for k in range(K):
        # network energy is bought, never sold: a negative price is not a credit for moving jobs
        price = max(series[k, L.S_PRICE_USD_PER_KWH, t], 0.0)
        carbon_g = series[k, L.S_CARBON_G_PER_KWH, t]
        mig_kwh = migrated_gb[k] * energy_kwh_per_gb
        mig_usd = mig_kwh * (price + carbon_g * carbon_price_usd_per_g[k])
        loss = lost_done_kwh[k] * value_usd_per_kwh
        site_total = out[k, L.O_TOTAL_USD]
        net = site_total - mig_usd - loss
        r = f[k]
        r[_SITE_TOTAL] = site_total
        r[_MIG_KWH] = mig_kwh
        r[_MIG_USD] = mig_usd
        r[_LOSS_USD] = loss
        r[_NET] = net
        r[_MIG_IN] = migrations[k]
        r[_DONE_JOBS] = completed[k]
        r[_LOST_JOBS] = lost_jobs[k]
        r[_WORK] = out[k, L.O_TRAINING_WORK_KWH]
        r[_LOST_KWH] = lost_kwh[k]
        r[_OUTAGE] = 1.0 if outage[k] else 0.0
        r[_TARGET] = target_kwh[k]
        r[_PLACED] = placed_kwh[k]
        fleet += net
        imp_kwh = out[k, L.O_GRID_IMPORT_KW] * dt_h
        totals[1] += mig_usd
        totals[2] += mig_kwh
        totals[3] += loss
        totals[4] += migrations[k]
        totals[5] += completed[k]
        totals[8] += out[k, L.O_COMPUTE_KW] * dt_h
        totals[9] += imp_kwh
        totals[10] += (imp_kwh + mig_kwh) * carbon_g / 1000.0
    for k in range(K + 1):
        totals[6] += lost_jobs[k]
        totals[7] += lost_kwh[k]
    totals[3] += lost_done_kwh[K] * value_usd_per_kwh
    totals[0] += fleet
    return fleet
