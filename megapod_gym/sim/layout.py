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
    "car_departure_step",  # leaves at the start of this step (arrivals.NO_DEPARTURE_STEP: none)
    "car_max_kw",  # cap on the power into the car besides its curve and the stall (0: none)
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

# Column / row indices, spelled out so that editors and readers can follow them (the kernel
# compiles them as constants). tests/sim/test_layout.py checks each against its field tuple.

# parameter columns (PARAM_FIELDS)
P_DT_H = 0
P_STEP_MIN = 1
P_N_STEPS = 2
P_IMPORT_LIMIT_KW = 3
P_EXPORT_LIMIT_KW = 4
P_WINDOW_STEPS = 5
P_N_STALLS = 6
P_STALL_KW = 7
P_STALLS_PER_CABINET = 8
P_CABINET_KW = 9
P_CHARGER_EFFICIENCY = 10
P_WAIT_COST_USD_PER_MIN = 11
P_BALK_PENALTY_USD = 12
P_BATTERY_ENERGY_KWH = 13
P_BATTERY_CHARGE_KW = 14
P_BATTERY_DISCHARGE_KW = 15
P_BATTERY_CHARGE_EFFICIENCY = 16
P_BATTERY_DISCHARGE_EFFICIENCY = 17
P_BATTERY_SOC_MIN = 18
P_BATTERY_SOC_MAX = 19
P_BATTERY_DEGRADATION_USD_PER_KWH = 20
P_BATTERY_AUX_KW = 21
P_IT_KW = 22
P_TRAINING_EXPONENT = 23
P_INFERENCE_EXPONENT = 24
P_CAP_FLOOR_FRAC = 25
P_STANDBY_FRAC = 26
P_TRAINING_VALUE_USD_PER_KWH = 27
P_INFERENCE_VALUE_USD_PER_KWH = 28
P_SLA_PENALTY_USD_PER_KWH = 29
P_CHECKPOINT_MIN = 30
P_RESUME_MIN = 31
P_TRAINING_BACKLOG_MAX_KWH = 32
P_CARBON_PRICE_USD_PER_G = 33
P_SOFT_EV_PRIORITY = 34

# step output columns (OUT_FIELDS)
O_GRID_IMPORT_KW = 0
O_GRID_EXPORT_KW = 1
O_EV_REQUESTED_KW = 2
O_EV_KW = 3
O_EV_DELIVERED_KW = 4
O_CHARGER_LOSS_KW = 5
O_COMPUTE_KW = 6
O_IT_KW = 7
O_COOLING_KW = 8
O_BATTERY_CHARGE_KW = 9
O_BATTERY_DISCHARGE_KW = 10
O_BATTERY_AUX_KW = 11
O_BATTERY_LOSS_KW = 12
O_EV_REVENUE_USD = 13
O_COMPUTE_VALUE_USD = 14
O_ENERGY_COST_USD = 15
O_EXPORT_REVENUE_USD = 16
O_DEMAND_CHARGE_USD = 17
O_BATTERY_DEGRADATION_USD = 18
O_SLA_PENALTY_USD = 19
O_WAIT_PENALTY_USD = 20
O_BALK_PENALTY_USD = 21
O_PAUSE_RESUME_COST_USD = 22
O_CARBON_COST_USD = 23
O_TOTAL_USD = 24
O_COMPUTE_FRAC_REQUESTED = 25
O_COMPUTE_FRAC = 26
O_COMPUTE_CUT_KW = 27
O_EV_CUT_KW = 28
O_BATTERY_KW_REQUESTED = 29
O_BATTERY_KW = 30
O_BATTERY_LIMITED_KW = 31
O_BATTERY_OVERRIDE_KW = 32
O_PAUSED = 33
O_CARS_ARRIVED = 34
O_CARS_SERVED = 35
O_CARS_BALKED = 36
O_WAIT_MIN = 37
O_TRAINING_WORK_KWH = 38
O_INFERENCE_SERVED_KWH = 39
O_INFERENCE_UNMET_KWH = 40
O_ENERGY_BALANCE_RESIDUAL_KWH = 41
O_BATTERY_SOC_FRAC = 42
O_PEAK_DEMAND_KW = 43

# measurement columns (MEAS_FIELDS)
M_TIME_OF_DAY_SIN = 0
M_TIME_OF_DAY_COS = 1
M_IS_WEEKEND = 2
M_PRICE_USD_PER_KWH = 3
M_PRICE_NEXT_1H_USD_PER_KWH = 4
M_PRICE_NEXT_4H_MEAN_USD_PER_KWH = 5
M_PRICE_NEXT_4H_MAX_USD_PER_KWH = 6
M_PRICE_NEXT_24H_MEAN_USD_PER_KWH = 7
M_EV_PRICE_USD_PER_KWH = 8
M_DEMAND_HEADROOM_KW = 9
M_DEMAND_RATE_USD_PER_KW_MONTH = 10
M_BATTERY_SOC_FRAC = 11
M_STALLS_OCCUPIED_FRAC = 12
M_EV_REQUESTED_KW = 13
M_COMPUTE_HEADROOM_KW = 14
M_QUEUE_LENGTH = 15
M_LONGEST_WAIT_MIN = 16
M_EXPECTED_ARRIVALS_NEXT_H = 17
M_TRAINING_BACKLOG_H = 18
M_INFERENCE_DEMAND_FRAC = 19
M_AMBIENT_C = 20
M_PUE = 21
M_PREV_COMPUTE_FRAC = 22
M_PREV_BATTERY_KW = 23
M_PREV_EV_CAP_KW = 24
M_COMPUTE_PAUSED = 25
M_HOURS_LEFT_H = 26

# trace series rows (SERIES_FIELDS)
S_PRICE_USD_PER_KWH = 0
S_PRICE_FORECAST_USD_PER_KWH = 1
S_EXPORT_PRICE_USD_PER_KWH = 2
S_HOUR = 3
S_WEEKDAY = 4
S_ARRIVAL_RATE_PER_H = 5
S_EV_PRICE_USD_PER_KWH = 6
S_AMBIENT_C = 7
S_INFERENCE_DEMAND_FRAC = 8
S_TRAINING_ARRIVAL_KWH = 9
S_CARBON_G_PER_KWH = 10
S_PRICE_NEXT_1H_MEAN = 11
S_PRICE_NEXT_4H_MEAN = 12
S_PRICE_NEXT_4H_MAX = 13
S_PRICE_NEXT_24H_MEAN = 14

# car attribute rows (CAR_FIELDS)
C_CAR_ARRIVAL_STEP = 0
C_CAR_BATTERY_KWH = 1
C_CAR_ARRIVAL_SOC = 2
C_CAR_TARGET_SOC = 3
C_CAR_PATIENCE_MIN = 4
C_CAR_CURVE_ID = 5
C_CAR_POWER_SCALE = 6
C_CAR_DEPARTURE_STEP = 7
C_CAR_MAX_KW = 8

# float state columns (FSTATE_FIELDS)
F_BATTERY_SOC = 0
F_BACKLOG_KWH = 1
F_RUNNING = 2
F_PREV_IT_FRAC = 3
F_PREV_BATTERY_KW = 4
F_PREV_EV_KW = 5
F_WINDOW_KWH = 6
F_CARS_ARRIVED = 7
F_CARS_SERVED = 8
F_CARS_BALKED = 9
F_WAIT_MIN_TOTAL = 10
F_ARRIVED_THIS_STEP = 11

# integer state columns (ISTATE_FIELDS)
I_T = 0
I_WINDOW_POS = 1
I_NEXT_CAR = 2
I_QUEUE_HEAD = 3
I_N_CARS = 4

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
