"""The dispatch safety layer: requested setpoints -> feasible ones, in plain Python.

This one source runs compiled inside the simulator's kernel (``numba.njit`` of these functions)
and as ordinary Python in the exported controller runtime, so a site controller applies exactly
the rules the policy was trained under. Rules, in order, when the grid import limit binds:

1. the battery request is first clipped to its power limits and to what its SoC window allows;
2. compute below the cap floor pauses at standby power;
3. over the limit: cut battery charging, then throttle compute (pausing it when even the cap
   floor does not fit), then — in ``strict`` EV-priority mode — discharge the battery further to
   keep the cars whole, and only then cut the cars (who share what is left);
4. in ``soft`` mode the cars are first capped at the controller's EV cap;
5. (:func:`curtail_export`) discharge beyond load + export limit is curtailed.

All powers in kW (AC side), averaged over the step; battery power positive = discharge.
"""

from __future__ import annotations


def compute_request(
    compute_frac_request: float,
    it_kw: float,
    cap_floor_frac: float,
    standby_frac: float,
    pue: float,
) -> tuple[float, float, bool]:
    """``(site kW, IT fraction, running)`` compute asks for before any cut: the requested IT
    fraction clipped to [0, 1], or the standby fraction (paused) below the cap floor; x PUE."""
    frac = min(max(compute_frac_request, 0.0), 1.0)
    running = frac >= cap_floor_frac
    it_frac = frac if running else standby_frac
    return it_kw * it_frac * pue, it_frac, running


def dispatch(
    ev_request_kw: float,
    ev_cap_kw: float,
    strict: bool,
    compute_frac_request: float,
    it_kw: float,
    cap_floor_frac: float,
    standby_frac: float,
    pue: float,
    battery_kw_request: float,
    battery_soc: float,
    battery_energy_kwh: float,
    battery_soc_min: float,
    battery_soc_max: float,
    battery_charge_kw: float,
    battery_discharge_kw: float,
    battery_charge_efficiency: float,
    battery_discharge_efficiency: float,
    battery_aux_kw: float,
    import_limit_kw: float,
    dt_h: float,
) -> tuple[float, float, float, float, float, float, float, float]:
    """Feasible setpoints for one site and one step.

    Returns
    -------
    tuple
        ``(ev_kw, compute_kw, it_frac, running, battery_kw, override_kw, battery_limited_kw,
        aux_kw)``: car AC power allowed, compute site power (IT x PUE), applied IT fraction,
        1.0 if compute runs (0.0 paused), battery power (+ = discharge), extra discharge added to
        keep cars whole, |requested - feasible| battery power, battery auxiliary load.
    """
    ev = ev_request_kw
    if not strict and ev_cap_kw < ev:
        ev = max(ev_cap_kw, 0.0)

    comp, it_frac, running = compute_request(
        compute_frac_request, it_kw, cap_floor_frac, standby_frac, pue
    )

    if battery_energy_kwh > 0.0:
        dis_max = min(
            battery_discharge_kw,
            max(battery_soc - battery_soc_min, 0.0)
            * battery_energy_kwh
            * battery_discharge_efficiency
            / dt_h,
        )
        ch_max = min(
            battery_charge_kw,
            max(battery_soc_max - battery_soc, 0.0)
            * battery_energy_kwh
            / (battery_charge_efficiency * dt_h),
        )
        aux = battery_aux_kw
    else:
        dis_max = 0.0
        ch_max = 0.0
        aux = 0.0
    batt = min(max(battery_kw_request, -ch_max), dis_max)
    limited = abs(battery_kw_request - batt)

    override = 0.0
    net = ev + comp + aux - batt
    if net > import_limit_kw:
        excess = net - import_limit_kw
        if batt < 0.0:  # first stop charging the battery
            r = min(excess, -batt)
            batt += r
            excess -= r
        if excess > 0.0 and running:  # then throttle compute, pausing it if needed
            if comp - excess >= it_kw * cap_floor_frac * pue:
                comp -= excess
                excess = 0.0
            else:
                running = False
                comp = it_kw * standby_frac * pue
                excess = max(ev + comp + aux - batt - import_limit_kw, 0.0)
            it_frac = comp / (it_kw * pue)
        if excess > 0.0 and strict:  # strict: the battery covers the cars before they are cut
            r = min(excess, dis_max - batt)
            if r > 0.0:
                batt += r
                override = r
                excess -= r
        if excess > 0.0:
            ev = max(ev - excess, 0.0)
    return ev, comp, it_frac, 1.0 if running else 0.0, batt, override, limited, aux


def curtail_export(
    load_kw: float, battery_kw: float, export_limit_kw: float
) -> tuple[float, float]:
    """Curtail discharge that would export more than the limit; returns ``(battery_kw, net_kw)``
    where ``net_kw`` = import (+) or export (-) for a site load ``load_kw`` (cars + compute + aux)."""
    net = load_kw - battery_kw
    if net < -export_limit_kw:
        return load_kw + export_limit_kw, -export_limit_kw
    return battery_kw, net
