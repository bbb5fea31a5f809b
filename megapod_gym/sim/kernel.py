"""Compiled step of a batch of sites (numba; one thread, or several for large batches).

Everything here works on plain NumPy arrays with a leading batch axis; ``SiteSimulator`` owns the
arrays and calls these functions. The loop over sites is compiled, so a batch of 4,096 sites costs
one call. Order of events in step ``t`` (all powers are averages over the step):

1. Dispatch (safety layer): clip the battery request to its SoC and power limits; pause compute if
   the requested IT fraction is below the cap floor; if the grid import limit binds, cut battery
   charging first, then compute (pausing it if needed), then — in ``strict`` mode — discharge the
   battery further, and only then cut the cars, which share what is left by water-filling. In
   ``soft`` mode the cars are first capped at the action's EV cap. Discharge beyond load + export
   limit is curtailed.
2. Apply: cars absorb their allocation and leave at their target SoC, or, if they have a
   departure step, at that step whether done or not (a car with a departure that is done stays
   parked in its stall, drawing nothing, until it departs); a car leaving its stall counts as
   served. The battery SoC moves with its efficiencies; compute serves inference first, then
   training (bounded by the backlog); ledger.
3. Queue: waiting cars accumulate wait; a car whose wait reaches its patience leaves (balks), and
   so does a car still waiting at its departure step (counted and penalised as a balk).
4. Demand window: at the end of each window the average import may set a new peak, charged
   incrementally (prorated rate x increase).
5. Advance to ``t + 1`` and prepare it: arrivals join the FIFO queue, free stalls take the queue
   head, each car's request is the average power its acceptance curve allows over the step
   (1-minute sub-steps; capped by the stall, by the car's own ``car_max_kw`` if set (> 0) and by
   the energy left to its target SoC), cabinets share their limit by water-filling, and measurements are
   written.

A car "departs at step d" (``car_departure_step``) when it is present for steps ``< d`` and gone at
step ``d``; ``NO_DEPARTURE_STEP`` (every synthetic car) means it has none and leaves at its target.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit, prange
from numba.extending import register_jitable

import megapod_gym.sim.layout as L
from megapod_gym.scenario.arrivals import NO_DEPARTURE_STEP
from megapod_gym.sim.curves import charge_for_minutes, interp
from megapod_gym.sim.dispatch import compute_request, curtail_export, dispatch

register_jitable(compute_request)  # callable from compiled code (dispatch and the step below)
_dispatch = njit(cache=True)(dispatch)
_curtail_export = njit(cache=True)(curtail_export)

WAITING, CHARGING, DONE, BALKED = 1, 2, 3, 4
STEP_BAD_ACTION, STEP_EPISODE_OVER = 1, 2


class KernelParams(NamedTuple):
    """The site parameters a step reads and never writes (one row per site; see ``layout``)."""

    scalars: np.ndarray  # [B, N_PARAMS] site figures, columns layout.P_*
    curves: np.ndarray  # [B, C, 2, P] acceptance curves (megapod_gym.sim.curves tables)
    pue: np.ndarray  # [B, 2, Q] PUE vs ambient temperature table
    demand: np.ndarray  # [B, K, len(DEMAND_FIELDS)] demand charges, columns layout.D_*


class KernelState(NamedTuple):
    """Everything a step reads and writes, one row per site (exogenous series included)."""

    series: np.ndarray  # [B, len(SERIES_FIELDS), T+H] exogenous series, rows layout.S_*
    demand_active: np.ndarray  # [B, K, T] bool: demand charge k counts at step t
    cars: np.ndarray  # [B, len(CAR_FIELDS), N] static car attributes, rows layout.C_*
    fstate: np.ndarray  # [B, len(FSTATE_FIELDS)] float state, columns layout.F_*
    istate: np.ndarray  # [B, len(ISTATE_FIELDS)] int state, columns layout.I_*
    peak_kw: np.ndarray  # [B, K] peak import so far per demand charge
    stall_car: np.ndarray  # [B, S] car on each stall (-1 = free)
    stall_work: np.ndarray  # [B, 3, S] per-stall request / allocation scratch, rows layout.ST_*
    car_status: np.ndarray  # [B, N] int8: 0 not arrived, WAITING, CHARGING, DONE, BALKED
    car_dyn: np.ndarray  # [B, 2, N] each car's SoC and minutes waited


@njit(cache=True)
def _water_fill(request: np.ndarray, lo: int, hi: int, budget: float, out: np.ndarray) -> None:
    """Share ``budget`` among ``request[lo:hi]``: equal shares, capped at each request."""
    total = 0.0
    for s in range(lo, hi):
        out[s] = request[s]
        total += request[s]
    if total <= budget:
        return
    remaining = budget
    n_open = 0
    for s in range(lo, hi):
        out[s] = 0.0
        if request[s] > 0.0:
            n_open += 1
    # each round either spends the budget (nobody capped) or closes at least one request
    for _ in range(hi - lo + 1):
        if n_open == 0 or remaining <= 1e-12:
            break
        share = remaining / n_open
        n_next = 0
        for s in range(lo, hi):
            gap = request[s] - out[s]
            if gap <= 0.0:
                continue
            give = gap if gap < share else share
            out[s] += give
            remaining -= give
            if request[s] - out[s] > 1e-12:
                n_next += 1
        n_open = n_next


@njit(cache=True, inline="always")
def _car_cap_kw(stall_kw: float, car_max_kw: float) -> float:
    """The power cap of a car on a stall: the stall's, or the car's own if set (> 0) and lower."""
    return car_max_kw if 0.0 < car_max_kw < stall_kw else stall_kw


@njit(cache=True)
def prepare_site(
    b: int,
    params: KernelParams,
    state: KernelState,
    meas: np.ndarray,
) -> None:
    """Arrivals, stall assignment, car requests and measurements for site ``b`` at its step t."""
    par, curves, pue_tab, dem = params
    ser, dact, car, fs, ist, peak, stall, stf, cstat, cdyn = state
    p = par[b]
    f = fs[b]
    s_ = ser[b]
    t = ist[b, L.I_T]
    T = int(p[L.P_N_STEPS])
    tc = t if t < T else T - 1  # measurements after the last step reuse the last step's data
    n_stalls = int(p[L.P_N_STALLS])
    step_min = int(p[L.P_STEP_MIN])
    cars = car[b]
    status = cstat[b]
    soc_c = cdyn[b, 0]
    wait_c = cdyn[b, 1]

    # 1. arrivals join the queue
    arrived = 0.0
    nc = ist[b, L.I_N_CARS]
    nxt = ist[b, L.I_NEXT_CAR]
    while nxt < nc and cars[L.C_CAR_ARRIVAL_STEP, nxt] <= t:
        status[nxt] = WAITING
        soc_c[nxt] = cars[L.C_CAR_ARRIVAL_SOC, nxt]
        wait_c[nxt] = 0.0
        arrived += 1.0
        nxt += 1
    ist[b, L.I_NEXT_CAR] = nxt
    f[L.F_CARS_ARRIVED] += arrived
    f[L.F_ARRIVED_THIS_STEP] = arrived

    # 2. free stalls take the queue head (FIFO)
    i = ist[b, L.I_QUEUE_HEAD]
    for s in range(n_stalls):
        if stall[b, s] >= 0:
            continue
        while i < nxt and status[i] != WAITING:
            i += 1
        if i >= nxt:
            break
        stall[b, s] = i
        status[i] = CHARGING
        i += 1
    h = ist[b, L.I_QUEUE_HEAD]
    while h < nxt and status[h] != WAITING:
        h += 1
    ist[b, L.I_QUEUE_HEAD] = h

    # 3. each car's request over the step, then cabinet limits
    occupied = 0
    scratch = stf[b, L.ST_SCRATCH]
    request = stf[b, L.ST_REQUEST]
    for s in range(n_stalls):
        c = stall[b, s]
        if c < 0:
            scratch[s] = 0.0
            continue
        occupied += 1
        # average DC kW the car can take over the step
        scratch[s] = (
            charge_for_minutes(
                soc_c[c],
                cars[L.C_CAR_TARGET_SOC, c],
                cars[L.C_CAR_BATTERY_KWH, c],
                curves[b, int(cars[L.C_CAR_CURVE_ID, c])],
                cars[L.C_CAR_POWER_SCALE, c],
                _car_cap_kw(p[L.P_STALL_KW], cars[L.C_CAR_MAX_KW, c]),
                float(step_min),
            )[0]
            * 60.0
            / step_min
        )
    per_cab = int(p[L.P_STALLS_PER_CABINET])
    ev_req_dc = 0.0
    for lo in range(0, n_stalls, per_cab):
        hi = min(lo + per_cab, n_stalls)
        _water_fill(scratch, lo, hi, p[L.P_CABINET_KW], request)
        for s in range(lo, hi):
            ev_req_dc += request[s]
    ev_req_ac = ev_req_dc / p[L.P_CHARGER_EFFICIENCY]

    # 4. queue statistics (FIFO: the first waiting car has waited longest)
    q_len = 0
    longest = 0.0
    for j in range(h, nxt):
        if status[j] == WAITING:
            q_len += 1
            if wait_c[j] > longest:
                longest = wait_c[j]

    # 5. measurements
    m = meas[b]
    hr = s_[L.S_HOUR, t]
    m[L.M_TIME_OF_DAY_SIN] = math.sin(2.0 * math.pi * hr / 24.0)
    m[L.M_TIME_OF_DAY_COS] = math.cos(2.0 * math.pi * hr / 24.0)
    m[L.M_IS_WEEKEND] = 1.0 if s_[L.S_WEEKDAY, t] >= 5.0 else 0.0
    m[L.M_PRICE_USD_PER_KWH] = s_[L.S_PRICE_USD_PER_KWH, t]
    m[L.M_PRICE_NEXT_1H_USD_PER_KWH] = s_[L.S_PRICE_NEXT_1H_MEAN, t]
    m[L.M_PRICE_NEXT_4H_MEAN_USD_PER_KWH] = s_[L.S_PRICE_NEXT_4H_MEAN, t]
    m[L.M_PRICE_NEXT_4H_MAX_USD_PER_KWH] = s_[L.S_PRICE_NEXT_4H_MAX, t]
    m[L.M_PRICE_NEXT_24H_MEAN_USD_PER_KWH] = s_[L.S_PRICE_NEXT_24H_MEAN, t]
    m[L.M_EV_PRICE_USD_PER_KWH] = s_[L.S_EV_PRICE_USD_PER_KWH, tc]
    # demand charges: headroom to the tightest active peak, sum of active rates
    window_steps = int(p[L.P_WINDOW_STEPS])
    headroom = p[L.P_IMPORT_LIMIT_KW]
    rate = 0.0
    so_far_kw = f[L.F_WINDOW_KWH] / (window_steps * p[L.P_DT_H])  # import already in this window
    for k in range(dem.shape[2]):
        if dact[b, k, tc]:
            rate += dem[b, L.D_RATE_MONTH, k]
            room = peak[b, k] - so_far_kw
            if room < headroom:
                headroom = room
    m[L.M_DEMAND_HEADROOM_KW] = headroom
    m[L.M_DEMAND_RATE_USD_PER_KW_MONTH] = rate
    m[L.M_BATTERY_SOC_FRAC] = f[L.F_BATTERY_SOC]
    m[L.M_STALLS_OCCUPIED_FRAC] = occupied / n_stalls
    m[L.M_EV_REQUESTED_KW] = ev_req_ac
    aux = p[L.P_BATTERY_AUX_KW] if p[L.P_BATTERY_ENERGY_KWH] > 0.0 else 0.0
    m[L.M_COMPUTE_HEADROOM_KW] = max(p[L.P_IMPORT_LIMIT_KW] - ev_req_ac - aux, 0.0)
    m[L.M_QUEUE_LENGTH] = q_len
    m[L.M_LONGEST_WAIT_MIN] = longest
    m[L.M_EXPECTED_ARRIVALS_NEXT_H] = s_[L.S_ARRIVAL_RATE_PER_H, t]
    m[L.M_TRAINING_BACKLOG_H] = f[L.F_BACKLOG_KWH] / p[L.P_IT_KW]
    m[L.M_INFERENCE_DEMAND_FRAC] = s_[L.S_INFERENCE_DEMAND_FRAC, tc]
    m[L.M_AMBIENT_C] = s_[L.S_AMBIENT_C, tc]
    m[L.M_PUE] = interp(s_[L.S_AMBIENT_C, tc], pue_tab[b])
    m[L.M_PREV_COMPUTE_FRAC] = f[L.F_PREV_IT_FRAC]
    m[L.M_PREV_BATTERY_KW] = f[L.F_PREV_BATTERY_KW]
    m[L.M_PREV_EV_CAP_KW] = f[L.F_PREV_EV_KW]
    m[L.M_COMPUTE_PAUSED] = 0.0 if f[L.F_RUNNING] > 0.5 else 1.0
    m[L.M_HOURS_LEFT_H] = min((T - t) * p[L.P_DT_H], 24.0)


@njit(cache=True)
def prepare_sites(
    sites: np.ndarray,
    params: KernelParams,
    state: KernelState,
    meas: np.ndarray,
) -> None:
    """``prepare_site`` for each listed site (after a reset)."""
    for b in sites:
        prepare_site(
            b,
            params,
            state,
            meas,
        )
    return 0


def _step_batch(
    active: np.ndarray,
    act: np.ndarray,
    params: KernelParams,
    state: KernelState,
    out: np.ndarray,
    meas: np.ndarray,
) -> int:
    """Advance every site ``b`` with ``active[b]`` one step with the requested setpoints
    ``act[b] = (IT fraction, battery kW (+ discharge), EV AC cap kW)``; inactive sites are left
    untouched (their output row is zeroed).

    Returns 0, or without touching any state: ``STEP_BAD_ACTION`` if a setpoint is NaN (or the IT
    fraction or battery power infinite), ``STEP_EPISODE_OVER`` if a site needs a reset first.
    """
    par, curves, pue_tab, dem = params
    ser, dact, car, fs, ist, peak, stall, stf, cstat, cdyn = state
    B = par.shape[0]
    for b in range(B):
        if not active[b]:
            continue
        if ist[b, L.I_T] >= int(par[b, L.P_N_STEPS]):
            return STEP_EPISODE_OVER
        if not (math.isfinite(act[b, 0]) and math.isfinite(act[b, 1])) or math.isnan(act[b, 2]):
            return STEP_BAD_ACTION
    for b in prange(B):  # sites are independent: each iteration writes only row b
        o = out[b]
        o[:] = 0.0
        if not active[b]:
            continue
        p = par[b]
        f = fs[b]
        s_ = ser[b]
        t = ist[b, L.I_T]
        dt_h = p[L.P_DT_H]
        step_min = p[L.P_STEP_MIN]
        n_stalls = int(p[L.P_N_STALLS])
        eff_ch = p[L.P_CHARGER_EFFICIENCY]
        strict = p[L.P_SOFT_EV_PRIORITY] < 0.5
        request = stf[b, L.ST_REQUEST]
        alloc = stf[b, L.ST_ALLOC]

        # ------------------------------------------------------------- 1. dispatch
        ev_req_ac = 0.0
        for s in range(n_stalls):
            ev_req_ac += request[s]
        ev_req_ac /= eff_ch
        pue = interp(s_[L.S_AMBIENT_C, t], pue_tab[b])
        it_cap = p[L.P_IT_KW]
        floor = p[L.P_CAP_FLOOR_FRAC]
        frac_req = min(max(act[b, L.A_COMPUTE_FRAC], 0.0), 1.0)
        comp_req = compute_request(frac_req, it_cap, floor, p[L.P_STANDBY_FRAC], pue)[0]
        batt_req = act[b, L.A_BATTERY_KW]
        e_kwh = p[L.P_BATTERY_ENERGY_KWH]
        eta_c = p[L.P_BATTERY_CHARGE_EFFICIENCY]
        eta_d = p[L.P_BATTERY_DISCHARGE_EFFICIENCY]
        ev_ac, comp, it_frac, running_now, batt, override, limited, aux = _dispatch(
            ev_req_ac, act[b, L.A_EV_CAP_KW], strict, frac_req, it_cap, floor, p[L.P_STANDBY_FRAC], pue,
            batt_req, f[L.F_BATTERY_SOC], e_kwh, p[L.P_BATTERY_SOC_MIN], p[L.P_BATTERY_SOC_MAX],
            p[L.P_BATTERY_CHARGE_KW], p[L.P_BATTERY_DISCHARGE_KW], eta_c, eta_d, p[L.P_BATTERY_AUX_KW],
            p[L.P_IMPORT_LIMIT_KW], dt_h,
        )  # fmt: skip
        run_now = running_now > 0.5
        soc = f[L.F_BATTERY_SOC]
        o[L.O_BATTERY_LIMITED_KW] = limited

        # ------------------------------------------------------------- 2. apply: cars
        _water_fill(request, 0, n_stalls, ev_ac * eff_ch, alloc)
        soc_c = cdyn[b, 0]
        cars = car[b]
        status = cstat[b]
        ev_dc = 0.0
        served = 0
        for s in range(n_stalls):
            c = stall[b, s]
            if c < 0:
                continue
            ev_dc += alloc[s]
            soc_c[c] += alloc[s] * dt_h / cars[L.C_CAR_BATTERY_KWH, c]
            departure = cars[L.C_CAR_DEPARTURE_STEP, c]
            if departure < NO_DEPARTURE_STEP:  # holds the stall until it departs, done or not
                leaves = departure <= t + 1
            else:
                leaves = soc_c[c] >= cars[L.C_CAR_TARGET_SOC, c] - 1e-9
            if leaves:
                status[c] = DONE
                stall[b, s] = -1
                served += 1
        ev_ac_used = ev_dc / eff_ch
        batt, net = _curtail_export(ev_ac_used + comp + aux, batt, p[L.P_EXPORT_LIMIT_KW])
        imp = max(net, 0.0)
        exp_kw = max(-net, 0.0)

        # battery
        if batt > 0.0:
            soc -= batt * dt_h / eta_d / e_kwh
            loss = batt * (1.0 / eta_d - 1.0)
        elif batt < 0.0:
            soc += -batt * dt_h * eta_c / e_kwh
            loss = -batt * (1.0 - eta_c)
        else:
            loss = 0.0
        if e_kwh > 0.0:
            soc = min(max(soc, p[L.P_BATTERY_SOC_MIN]), p[L.P_BATTERY_SOC_MAX])
        f[L.F_BATTERY_SOC] = soc

        # compute: inference first, then training bounded by the backlog
        inf_d = s_[L.S_INFERENCE_DEMAND_FRAC, t]
        if run_now:
            f_inf = it_frac ** p[L.P_INFERENCE_EXPONENT]
            f_tr = it_frac ** p[L.P_TRAINING_EXPONENT]
            if inf_d <= f_inf:
                share = inf_d / f_inf
                inf_served = inf_d
            else:
                share = 1.0
                inf_served = f_inf
            train = (1.0 - share) * f_tr * it_cap * dt_h
        else:
            inf_served = 0.0
            train = 0.0
        backlog = f[L.F_BACKLOG_KWH]
        if train > backlog:
            train = backlog
        backlog = min(
            backlog - train + s_[L.S_TRAINING_ARRIVAL_KWH, t], p[L.P_TRAINING_BACKLOG_MAX_KWH]
        )
        f[L.F_BACKLOG_KWH] = backlog
        inf_unmet = inf_d - inf_served
        pr_cost = 0.0
        was_running = f[L.F_RUNNING] > 0.5
        value_tr = p[L.P_TRAINING_VALUE_USD_PER_KWH]
        if was_running and not run_now:  # checkpoint minutes are lost work
            prev_frac = max(f[L.F_PREV_IT_FRAC], floor)
            pr_cost = (
                p[L.P_CHECKPOINT_MIN]
                / 60.0
                * it_cap
                * prev_frac ** p[L.P_TRAINING_EXPONENT]
                * value_tr
            )
        elif run_now and not was_running:  # restore minutes are lost work
            pr_cost = (
                p[L.P_RESUME_MIN] / 60.0 * it_cap * it_frac ** p[L.P_TRAINING_EXPONENT] * value_tr
            )
        f[L.F_RUNNING] = 1.0 if run_now else 0.0

        # ------------------------------------------------------------- 3. queue
        wait_c = cdyn[b, 1]
        waiting = 0
        balked = 0
        nxt = ist[b, L.I_NEXT_CAR]
        for j in range(ist[b, L.I_QUEUE_HEAD], nxt):
            if status[j] == WAITING:
                waiting += 1
                wait_c[j] += step_min
                if (
                    wait_c[j] >= cars[L.C_CAR_PATIENCE_MIN, j]
                    or cars[L.C_CAR_DEPARTURE_STEP, j] <= t + 1
                ):
                    status[j] = BALKED
                    balked += 1
        h = ist[b, L.I_QUEUE_HEAD]
        while h < nxt and status[h] != WAITING:
            h += 1
        ist[b, L.I_QUEUE_HEAD] = h

        # ------------------------------------------------------------- 4. demand window
        f[L.F_WINDOW_KWH] += imp * dt_h
        ist[b, L.I_WINDOW_POS] += 1
        demand_usd = 0.0
        if ist[b, L.I_WINDOW_POS] >= int(p[L.P_WINDOW_STEPS]):
            avg_kw = f[L.F_WINDOW_KWH] / (ist[b, L.I_WINDOW_POS] * dt_h)
            for k in range(dem.shape[2]):
                if dact[b, k, t] and avg_kw > peak[b, k]:
                    demand_usd += dem[b, L.D_RATE_EPISODE, k] * (avg_kw - peak[b, k])
                    peak[b, k] = avg_kw
            f[L.F_WINDOW_KWH] = 0.0
            ist[b, L.I_WINDOW_POS] = 0
        peak_any = 0.0
        for k in range(dem.shape[2]):
            if peak[b, k] > peak_any:
                peak_any = peak[b, k]

        # ------------------------------------------------------------- ledger and outputs
        dis = batt if batt > 0.0 else 0.0
        chg = -batt if batt < 0.0 else 0.0
        o[L.O_GRID_IMPORT_KW] = imp
        o[L.O_GRID_EXPORT_KW] = exp_kw
        o[L.O_EV_REQUESTED_KW] = ev_req_ac
        o[L.O_EV_KW] = ev_ac_used
        o[L.O_EV_DELIVERED_KW] = ev_dc
        o[L.O_CHARGER_LOSS_KW] = ev_ac_used - ev_dc
        o[L.O_COMPUTE_KW] = comp
        o[L.O_IT_KW] = comp / pue
        o[L.O_COOLING_KW] = comp - comp / pue
        o[L.O_BATTERY_CHARGE_KW] = chg
        o[L.O_BATTERY_DISCHARGE_KW] = dis
        o[L.O_BATTERY_AUX_KW] = aux
        o[L.O_BATTERY_LOSS_KW] = loss
        ev_rev = ev_dc * dt_h * s_[L.S_EV_PRICE_USD_PER_KWH, t]
        comp_val = (
            train * value_tr + inf_served * it_cap * dt_h * p[L.P_INFERENCE_VALUE_USD_PER_KWH]
        )
        energy = imp * dt_h * s_[L.S_PRICE_USD_PER_KWH, t]
        export_rev = exp_kw * dt_h * s_[L.S_EXPORT_PRICE_USD_PER_KWH, t]
        degr = dis * dt_h * p[L.P_BATTERY_DEGRADATION_USD_PER_KWH]
        sla = inf_unmet * it_cap * dt_h * p[L.P_SLA_PENALTY_USD_PER_KWH]
        wait_pen = waiting * step_min * p[L.P_WAIT_COST_USD_PER_MIN]
        balk_pen = balked * p[L.P_BALK_PENALTY_USD]
        carbon_cost = imp * dt_h * s_[L.S_CARBON_G_PER_KWH, t] * p[L.P_CARBON_PRICE_USD_PER_G]
        o[L.O_EV_REVENUE_USD] = ev_rev
        o[L.O_COMPUTE_VALUE_USD] = comp_val
        o[L.O_ENERGY_COST_USD] = energy
        o[L.O_EXPORT_REVENUE_USD] = export_rev
        o[L.O_DEMAND_CHARGE_USD] = demand_usd
        o[L.O_BATTERY_DEGRADATION_USD] = degr
        o[L.O_SLA_PENALTY_USD] = sla
        o[L.O_WAIT_PENALTY_USD] = wait_pen
        o[L.O_BALK_PENALTY_USD] = balk_pen
        o[L.O_PAUSE_RESUME_COST_USD] = pr_cost
        o[L.O_CARBON_COST_USD] = carbon_cost
        o[L.O_TOTAL_USD] = (
            ev_rev
            + comp_val
            - energy
            + export_rev
            - demand_usd
            - degr
            - sla
            - wait_pen
            - balk_pen
            - pr_cost
            - carbon_cost
        )
        o[L.O_COMPUTE_FRAC_REQUESTED] = frac_req
        o[L.O_COMPUTE_FRAC] = it_frac
        o[L.O_COMPUTE_CUT_KW] = comp_req - comp if comp_req > comp else 0.0
        o[L.O_EV_CUT_KW] = ev_req_ac - ev_ac_used if ev_req_ac > ev_ac_used else 0.0
        o[L.O_BATTERY_KW_REQUESTED] = batt_req
        o[L.O_BATTERY_KW] = batt
        o[L.O_BATTERY_OVERRIDE_KW] = override
        o[L.O_PAUSED] = 0.0 if run_now else 1.0
        o[L.O_CARS_ARRIVED] = f[L.F_ARRIVED_THIS_STEP]
        o[L.O_CARS_SERVED] = served
        o[L.O_CARS_BALKED] = balked
        o[L.O_WAIT_MIN] = waiting * step_min
        o[L.O_TRAINING_WORK_KWH] = train
        o[L.O_INFERENCE_SERVED_KWH] = inf_served * it_cap * dt_h
        o[L.O_INFERENCE_UNMET_KWH] = inf_unmet * it_cap * dt_h
        o[L.O_ENERGY_BALANCE_RESIDUAL_KWH] = (
            imp - exp_kw + dis - chg - ev_ac_used - comp - aux
        ) * dt_h
        o[L.O_BATTERY_SOC_FRAC] = soc
        o[L.O_PEAK_DEMAND_KW] = peak_any

        f[L.F_PREV_IT_FRAC] = it_frac
        f[L.F_PREV_BATTERY_KW] = batt
        f[L.F_PREV_EV_KW] = ev_ac_used
        f[L.F_CARS_SERVED] += served
        f[L.F_CARS_BALKED] += balked
        f[L.F_WAIT_MIN_TOTAL] += waiting * step_min

        # ------------------------------------------------------------- 5. next step
        ist[b, L.I_T] = t + 1
        prepare_site(
            b,
            params,
            state,
            meas,
        )
    return 0


# One body, compiled twice: ``step_batch`` runs the sites on the calling thread; ``step_batch_mt``
# spreads them over numba's threads (``numba.set_num_threads``), for large batches where the
# thread start-up (tens of microseconds) is small against the step. Results are identical.
step_batch = njit(cache=True)(_step_batch)
step_batch_mt = njit(cache=True, parallel=True)(_step_batch)
