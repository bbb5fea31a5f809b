"""Names of the columns of the simulator's flat arrays (parameters, step outputs, measurements).

The compiled kernel reads and writes 2-D arrays ``[batch, field]``; these tuples fix the column of
each named field. Python code addresses columns by name through ``*_INDEX`` dicts; the kernel
uses the module-level integer constants below (compile-time constants for numba).
"""

from __future__ import annotations

PARAM_FIELDS: tuple[str, ...] = (
    "dt_h",
    "step_min",
    "n_steps",
    "import_limit_kw",
    "export_limit_kw",
    "window_steps",
    "n_stalls",
    "stall_kw",
    "stalls_per_cabinet",
    "cabinet_kw",
    "charger_efficiency",
    "wait_cost_usd_per_min",
    "balk_penalty_usd",
    "battery_energy_kwh",
    "battery_charge_kw",
    "battery_discharge_kw",
    "battery_charge_efficiency",
    "battery_discharge_efficiency",
    "battery_soc_min",
    "battery_soc_max",
    "battery_degradation_usd_per_kwh",
    "battery_aux_kw",
    "it_kw",
    "training_exponent",
    "inference_exponent",
    "cap_floor_frac",
    "standby_frac",
    "training_value_usd_per_kwh",
    "inference_value_usd_per_kwh",
    "sla_penalty_usd_per_kwh",
    "checkpoint_min",
    "resume_min",
    "training_backlog_max_kwh",
    "carbon_price_usd_per_g",
    "soft_ev_priority",
)

# Per-step outputs: power flows (kW, averaged over the step), ledger terms (USD in the step),
# dispatch report and KPIs. Sign conventions: every flow is >= 0; battery_kw (in the action) is
# positive when the battery discharges into the site.
OUT_FIELDS: tuple[str, ...] = (
    # power flows, kW
    "grid_import_kw",
    "grid_export_kw",
    "ev_requested_kw",  # AC kW the cars could take this step (after stall and cabinet limits)
    "ev_kw",  # AC kW drawn by the chargers
    "ev_delivered_kw",  # DC kW into the cars' batteries
    "charger_loss_kw",
    "compute_kw",  # IT + cooling
    "it_kw",
    "cooling_kw",
    "battery_charge_kw",  # AC side
    "battery_discharge_kw",  # AC side
    "battery_aux_kw",
    "battery_loss_kw",  # conversion losses inside the battery
    # ledger, USD in this step
    "ev_revenue_usd",
    "compute_value_usd",
    "energy_cost_usd",
    "export_revenue_usd",
    "demand_charge_usd",
    "battery_degradation_usd",
    "sla_penalty_usd",
    "wait_penalty_usd",
    "balk_penalty_usd",
    "pause_resume_cost_usd",
    "carbon_cost_usd",
    "total_usd",
    # dispatch report
    "compute_frac_requested",
    "compute_frac",  # IT power fraction actually drawn (standby when paused)
    "compute_cut_kw",  # site kW of compute removed by the grid limit
    "ev_cut_kw",  # AC kW the cars wanted but did not get
    "battery_kw_requested",
    "battery_kw",  # positive = discharge
    "battery_limited_kw",  # |requested - feasible| from SoC/power limits
    "battery_override_kw",  # extra discharge the safety layer added to keep cars whole (strict)
    "paused",
    # KPIs
    "cars_arrived",
    "cars_served",
    "cars_balked",
    "wait_min",  # car-minutes spent waiting in the queue this step
    "training_work_kwh",  # useful work, IT kWh at full speed
    "inference_served_kwh",
    "inference_unmet_kwh",
    "energy_balance_residual_kwh",
    "battery_soc_frac",
    "peak_demand_kw",  # highest demand-window average import so far (any component)
)

# Raw measurements at the start of a step, in physical units; the observation encoder scales them.
MEAS_FIELDS: tuple[str, ...] = (
    "time_of_day_sin",
    "time_of_day_cos",
    "is_weekend",
    "price_usd_per_kwh",
    "price_next_1h_usd_per_kwh",
    "price_next_4h_mean_usd_per_kwh",
    "price_next_4h_max_usd_per_kwh",
    "price_next_24h_mean_usd_per_kwh",
    "ev_price_usd_per_kwh",
    "demand_headroom_kw",
    "demand_rate_usd_per_kw_month",
    "battery_soc_frac",
    "stalls_occupied_frac",
    "ev_requested_kw",
    "compute_headroom_kw",
    "queue_length",
    "longest_wait_min",
    "expected_arrivals_next_h",
    "training_backlog_h",
    "inference_demand_frac",
    "ambient_c",
    "pue",
    "prev_compute_frac",
    "prev_battery_kw",
    "prev_ev_cap_kw",
    "compute_paused",
    "hours_left_h",  # hours to the episode end, capped at 24 (stationary over long episodes)
)

# Trace series packed in one array [B, len(SERIES_FIELDS), T + H] (step-only series are zero-padded
# over the forecast horizon).
SERIES_FIELDS: tuple[str, ...] = (
    "price_usd_per_kwh",
    "price_forecast_usd_per_kwh",
    "export_price_usd_per_kwh",
    "hour",
    "weekday",
    "arrival_rate_per_h",
    "ev_price_usd_per_kwh",
    "ambient_c",
    "inference_demand_frac",
    "training_arrival_kwh",
    "carbon_g_per_kwh",
    # derived at reset from the price forecast (mean / max over the steps after t)
    "price_next_1h_mean",
    "price_next_4h_mean",
    "price_next_4h_max",
    "price_next_24h_mean",
)
# Static attributes of each car, packed in one array [B, len(CAR_FIELDS), N].
CAR_FIELDS: tuple[str, ...] = (
    "car_arrival_step",
    "car_battery_kwh",
    "car_arrival_soc",
    "car_target_soc",
    "car_patience_min",
    "car_curve_id",
    "car_power_scale",
)
# Site state, float part [B, len(FSTATE_FIELDS)] and integer part [B, len(ISTATE_FIELDS)].
FSTATE_FIELDS: tuple[str, ...] = (
    "battery_soc",
    "backlog_kwh",
    "running",
    "prev_it_frac",
    "prev_battery_kw",
    "prev_ev_kw",
    "window_kwh",
    "cars_arrived",
    "cars_served",
    "cars_balked",
    "wait_min_total",
    "arrived_this_step",
)
ISTATE_FIELDS: tuple[str, ...] = ("t", "window_pos", "next_car", "queue_head", "n_cars")

PARAM_INDEX = {n: i for i, n in enumerate(PARAM_FIELDS)}
SERIES_INDEX = {n: i for i, n in enumerate(SERIES_FIELDS)}
CAR_INDEX = {n: i for i, n in enumerate(CAR_FIELDS)}
FSTATE_INDEX = {n: i for i, n in enumerate(FSTATE_FIELDS)}
ISTATE_INDEX = {n: i for i, n in enumerate(ISTATE_FIELDS)}
OUT_INDEX = {n: i for i, n in enumerate(OUT_FIELDS)}
MEAS_INDEX = {n: i for i, n in enumerate(MEAS_FIELDS)}
LEDGER_FIELDS: tuple[str, ...] = OUT_FIELDS[
    OUT_INDEX["ev_revenue_usd"] : OUT_INDEX["total_usd"] + 1
]

for _prefix, _fields in (
    ("P_", PARAM_FIELDS),
    ("O_", OUT_FIELDS),
    ("M_", MEAS_FIELDS),
    ("S_", SERIES_FIELDS),
    ("C_", CAR_FIELDS),
    ("F_", FSTATE_FIELDS),
    ("I_", ISTATE_FIELDS),
):
    for _i, _name in enumerate(_fields):
        globals()[_prefix + _name.upper()] = _i
N_PARAMS = len(PARAM_FIELDS)
N_OUT = len(OUT_FIELDS)
N_MEAS = len(MEAS_FIELDS)
# actions [B, 3]: requested IT fraction, battery kW (+ = discharge), EV AC cap kW (soft mode)
A_COMPUTE_FRAC, A_BATTERY_KW, A_EV_CAP_KW = 0, 1, 2
# tables: curves [B, C, 2, P] (soc row, kW row), pue [B, 2, Q] (temp row, pue row),
# demand [B, 3, K] (threshold kW, $/kW-month, $/kW prorated to the episode)
D_THRESHOLD, D_RATE_MONTH, D_RATE_EPISODE = 0, 1, 2
# per-stall float work arrays [B, 3, S]: request after cabinet limits, scratch, allocation
ST_REQUEST, ST_SCRATCH, ST_ALLOC = 0, 1, 2
