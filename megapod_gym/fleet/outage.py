"""Grid outages of fleet sites: what an islanded site may do, defined once.

A site in a grid outage is **islanded** for the step. The physics of an islanded step:

* **no grid exchange**: the import and export limits are 0 kW;
* **compute off, drawing nothing**: the IT setpoint is 0 (below any cap floor, so the cluster
  pauses) and the paused cluster's standby draw is 0 as well, so no training or inference is done;
* **the battery's aux load is not imported**: the kernel treats it as an irreducible load that
  is always imported, so it is dropped for the step (otherwise an islanded site would import it
  whenever the battery cannot cover it);
* **cars may be cut**: the battery may still charge the cars; what it cannot carry goes unserved.

The rules are data: :data:`ISLANDED_SITE_FIGURES` (which site figures an islanded site takes, and
their values), :data:`ISLANDED_IT_FRAC` and :data:`ISLANDED_CARS_MAY_BE_CUT`. Two readers apply
them, so the simulator and its hindsight bound cannot drift apart:

* the fleet simulator (:class:`megapod_gym.fleet.simulator.FleetSimulator`) steps the kernel
  inside :func:`islanded`, which writes the islanded figures into the islanded sites' parameter
  rows and IT setpoints for that one kernel step and restores the rows afterwards;
* the fleet hindsight LP (:mod:`agents.optim.fleet_lp_blocks`) reads each site's per-step import
  and export limits, battery aux load, standby fraction, IT setpoint cap and where EV shortfall is
  allowed from :func:`islanded_step_figures` applied to the site's figures and outage mask.

A figure's name is the field of :class:`agents.optim.site_lp.SiteLPParams` and, upper-cased
with a ``P_`` prefix, its column in the kernel's parameter rows (:mod:`megapod_gym.sim.layout`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from megapod_gym.sim import layout as L

__all__ = [
    "ISLANDED_CARS_MAY_BE_CUT",
    "ISLANDED_IT_FRAC",
    "ISLANDED_SITE_FIGURES",
    "IslandedStepFigures",
    "connected_figures",
    "islanded",
    "islanded_step_figures",
    "kernel_columns",
]

#: Site figures an islanded site takes for the step, and their values (units in the names).
#: The order is the column order of :func:`connected_figures`.
ISLANDED_SITE_FIGURES: Mapping[str, float] = MappingProxyType(
    {
        "import_limit_kw": 0.0,  # no grid exchange
        "export_limit_kw": 0.0,
        "standby_frac": 0.0,  # compute off draws nothing, not even its standby power
        "battery_aux_kw": 0.0,  # the battery's aux load is not imported
    }
)
#: IT setpoint (fraction of IT kW) of an islanded site: compute off.
ISLANDED_IT_FRAC: float = 0.0
#: Whether an islanded site's cars may go (partly) unserved when the battery cannot carry them.
ISLANDED_CARS_MAY_BE_CUT: bool = True


def kernel_columns() -> list[int]:
    """Column of each islanded figure (in :data:`ISLANDED_SITE_FIGURES` order) in the kernel's
    parameter rows, ``megapod_gym.sim.layout.P_<FIGURE>``."""
    return [getattr(L, f"P_{name.upper()}") for name in ISLANDED_SITE_FIGURES]


def connected_figures(param_rows: np.ndarray) -> np.ndarray:
    """The sites' own (grid-connected) values of the islanded figures, ``[K, F]`` in
    :data:`ISLANDED_SITE_FIGURES` order, copied from the kernel's parameter rows ``[K, P]``."""
    return param_rows[:, kernel_columns()].copy()


@contextmanager
def islanded(
    param_rows: np.ndarray,
    setpoints: np.ndarray,
    outage: np.ndarray,
    connected: np.ndarray,
) -> Iterator[None]:
    """Island the sites in ``outage`` for one kernel step taken inside the ``with`` block.

    Parameters
    ----------
    param_rows
        The kernel's parameter rows ``[K, P]`` (``SiteSimulator.params.scalars``), changed in
        place: the islanded sites' rows take :data:`ISLANDED_SITE_FIGURES` and, on leaving the
        block (also on an exception), every site's figures are restored from ``connected``.
    setpoints
        The step's setpoints ``[K, 3]`` (IT fraction, battery kW, EV cap kW), changed in place and
        not restored: the islanded sites' IT fraction becomes :data:`ISLANDED_IT_FRAC`. Pass the
        step's own copy.
    outage
        ``[K]`` bool, True where the site is islanded this step. No outage: nothing changes.
    connected
        The sites' grid-connected figures ``[K, F]`` (:func:`connected_figures`).
    """
    if not outage.any():
        yield
        return
    columns = kernel_columns()
    for column, value in zip(columns, ISLANDED_SITE_FIGURES.values()):
        param_rows[outage, column] = value
    setpoints[outage, 0] = ISLANDED_IT_FRAC
    try:
        yield
    finally:
        for i, column in enumerate(columns):
            param_rows[:, column] = connected[:, i]


@dataclass(frozen=True)
class IslandedStepFigures:
    """One site's figures per step ``[T]`` with its outage mask applied: the site's own figure at
    grid-connected steps, the islanded value (:data:`ISLANDED_SITE_FIGURES`) at islanded steps."""

    islanded: np.ndarray  # [T] bool
    import_limit_kw: np.ndarray  # [T]
    export_limit_kw: np.ndarray  # [T]
    standby_frac: np.ndarray  # [T] IT power fraction drawn while paused
    battery_aux_kw: np.ndarray  # [T] battery aux load to be imported or covered by the battery
    it_frac_max: np.ndarray  # [T] largest IT setpoint: 1, or ISLANDED_IT_FRAC while islanded
    ev_shortfall_allowed: np.ndarray  # [T] bool: the cars may go (partly) unserved

    @property
    def compute_off(self) -> np.ndarray:
        """``[T]`` bool: compute is off and draws nothing (IT setpoint capped at 0, no standby
        draw), so no training or inference is done."""
        return (self.it_frac_max <= 0.0) & (self.standby_frac <= 0.0)


def islanded_step_figures(site: object, outage: np.ndarray) -> IslandedStepFigures:
    """Per-step figures of one site over an episode with the islanded rules applied.

    ``site`` carries the site's own figures as attributes named as the keys of
    :data:`ISLANDED_SITE_FIGURES` (e.g. :class:`agents.optim.site_lp.SiteLPParams`); ``outage`` is
    the site's ``[T]`` outage mask (True: islanded)."""
    out = np.asarray(outage, dtype=bool)
    own = {
        name: np.where(out, value, float(getattr(site, name)))
        for name, value in ISLANDED_SITE_FIGURES.items()
    }
    return IslandedStepFigures(
        islanded=out.copy(),
        **own,
        it_frac_max=np.where(out, ISLANDED_IT_FRAC, 1.0),
        ev_shortfall_allowed=out & ISLANDED_CARS_MAY_BE_CUT,
    )
