"""The exported-policy controller runtime (megapod_gym.runtime.controller).

Policies here are small hand-built ONNX graphs (linear layer + tanh, scaled by 1.2 so some
actions fall outside [-1, 1]) with sidecars from :func:`agents.export.build_sidecar`, so these
tests need no training; trained SB3 policies are covered in tests/agents/export/test_onnx.py.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper  # noqa: E402

import megapod_gym.runtime.controller as controller_module  # noqa: E402
import megapod_gym.sim.dispatch as dispatch_module  # noqa: E402
from agents.export.onnx import build_sidecar  # noqa: E402
from megapod_gym.config import ScenarioConfig, load_scenario  # noqa: E402
from megapod_gym.envs.site_env import MegapodSiteEnv, make_decoder, make_encoder  # noqa: E402
from megapod_gym.runtime import (  # noqa: E402
    SETPOINT_KEYS,
    InfeasibleSetpointError,
    MeasurementError,
    PolicyController,
    PolicyFileError,
    integrity_digest,
    seal_sidecar,
    sidecar_path,
)
from megapod_gym.sim import layout as L  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SITES = {
    "strict": {},
    "soft": {"ev_priority": "soft"},
    "export": {"grid.export_limit_kw": 300.0},
    "no-battery": {"battery.energy_kwh": 0.0},
}


def write_policy(
    path: Path,
    config: ScenarioConfig,
    *,
    seed: int = 0,
    n_in: int | None = None,
    fixed_batch: bool = False,
    nan: bool = False,
) -> Path:
    """A linear+tanh ONNX policy ``obs [batch, F] -> action [batch, n]`` and its sidecar."""
    n_in = n_in or make_encoder(config).size
    n_out = make_decoder(config).size
    rng = np.random.default_rng(seed)
    w = rng.normal(0.0, 0.3, (n_in, n_out)).astype(np.float32)
    b = rng.normal(0.0, 0.3, n_out).astype(np.float32)
    gain = np.full(n_out, np.nan if nan else 1.2, dtype=np.float32)
    batch: Any = 1 if fixed_batch else "batch"
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["obs", "w"], ["h"]),
            helper.make_node("Add", ["h", "b"], ["h2"]),
            helper.make_node("Tanh", ["h2"], ["t"]),
            helper.make_node("Mul", ["t", "gain"], ["action"]),
        ],
        "linear_tanh_policy",
        [helper.make_tensor_value_info("obs", TensorProto.FLOAT, [batch, n_in])],
        [helper.make_tensor_value_info("action", TensorProto.FLOAT, [batch, n_out])],
        initializer=[
            helper.make_tensor("w", TensorProto.FLOAT, w.shape, w.ravel().tolist()),
            helper.make_tensor("b", TensorProto.FLOAT, b.shape, b.tolist()),
            helper.make_tensor("gain", TensorProto.FLOAT, gain.shape, gain.tolist()),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    sidecar = seal_sidecar(
        build_sidecar(config, "linear-tanh-test", sha, path.name, n_out), path.read_bytes()
    )
    sidecar_path(path).write_text(json.dumps(sidecar, indent=2))
    return path


@pytest.fixture(scope="module")
def configs() -> dict[str, ScenarioConfig]:
    return {name: load_scenario(None, overrides) for name, overrides in SITES.items()}


@pytest.fixture
def policy(tmp_path: Path, configs: dict[str, ScenarioConfig]) -> Path:
    return write_policy(tmp_path / "policy.onnx", configs["strict"])


@pytest.fixture(scope="module")
def sample_measurements() -> dict[str, float]:
    """Real measurements of the default site mid-morning with cars charging."""
    env = MegapodSiteEnv()
    env.reset(seed=1_000_000)
    for _ in range(110):
        env.step(np.array([1.0, -0.3], dtype=np.float32))
    return {k: float(v[0]) for k, v in env.sim.measurements().items()}


def random_measurements(rng: np.random.Generator, n: int) -> list[dict[str, float]]:
    """Measurements spread over (and to the edges of) their valid ranges."""
    angle = rng.uniform(0, 2 * np.pi, n)
    soc = rng.uniform(0.0, 1.0, n)
    soc[: n // 10] = rng.choice([0.0, 0.05, 0.95, 1.0], n // 10)
    cols = {
        "time_of_day_sin": np.sin(angle),
        "time_of_day_cos": np.cos(angle),
        "is_weekend": rng.integers(0, 2, n),
        "price_usd_per_kwh": rng.uniform(-0.1, 1.5, n),
        "price_next_1h_usd_per_kwh": rng.uniform(-0.1, 1.5, n),
        "price_next_4h_mean_usd_per_kwh": rng.uniform(-0.1, 1.0, n),
        "price_next_4h_max_usd_per_kwh": rng.uniform(0.0, 1.5, n),
        "price_next_24h_mean_usd_per_kwh": rng.uniform(0.0, 0.6, n),
        "ev_price_usd_per_kwh": rng.uniform(0.3, 0.55, n),
        "demand_headroom_kw": rng.uniform(-500, 1500, n),
        "demand_rate_usd_per_kw_month": rng.uniform(0, 30, n),
        "battery_soc_frac": soc,
        "stalls_occupied_frac": rng.uniform(0, 1, n),
        "ev_requested_kw": rng.choice([0.0, 1.0], n) * rng.uniform(0, 3500, n),
        "compute_headroom_kw": rng.uniform(0, 1500, n),
        "queue_length": rng.integers(0, 10, n),
        "longest_wait_min": rng.uniform(0, 30, n),
        "expected_arrivals_next_h": rng.uniform(0, 12, n),
        "training_backlog_h": rng.uniform(0, 168, n),
        "inference_demand_frac": rng.uniform(0, 0.5, n),
        "ambient_c": rng.uniform(-10, 45, n),
        "pue": rng.uniform(1.0, 1.3, n),
        "prev_compute_frac": rng.uniform(0, 1, n),
        "prev_battery_kw": rng.uniform(-2000, 2000, n),
        "prev_ev_cap_kw": rng.uniform(0, 3000, n),
        "compute_paused": rng.integers(0, 2, n),
        "hours_left_h": rng.uniform(0, 24, n),
    }
    return [{k: float(v[i]) for k, v in cols.items()} for i in range(n)]


def feasible_range_kw(config: ScenarioConfig, soc: float) -> tuple[float, float]:
    bat, dt_h = config.battery, config.episode.dt_h
    if bat.energy_kwh <= 0:
        return 0.0, 0.0
    dis = min(
        bat.discharge_kw,
        max(soc - bat.soc_min, 0) * bat.energy_kwh * bat.discharge_efficiency / dt_h,
    )
    ch = min(
        bat.charge_kw, max(bat.soc_max - soc, 0) * bat.energy_kwh / (bat.charge_efficiency * dt_h)
    )
    return -ch, dis


# ----------------------------------------------------------------------------------- decisions
def test_runtime_calls_the_shared_plain_python_dispatch() -> None:
    assert controller_module.dispatch is dispatch_module.dispatch
    assert controller_module.curtail_export is dispatch_module.curtail_export
    assert inspect.isfunction(dispatch_module.dispatch)  # not a numba dispatcher


def test_decide_returns_documented_setpoints(policy: Path, sample_measurements: dict) -> None:
    c = PolicyController.load(policy)
    d = c.decide(sample_measurements)
    assert tuple(d) == SETPOINT_KEYS
    assert d["ev_cap_kw_requested"] is None  # strict mode has no EV action
    assert d["ev_kw"] == pytest.approx(sample_measurements["ev_requested_kw"])  # cars first
    assert d["it_kw"] * sample_measurements["pue"] == pytest.approx(d["compute_kw"])
    json.dumps(d, allow_nan=False)  # serializable, no NaN


def test_decision_is_encoder_graph_decoder_dispatch(
    policy: Path, sample_measurements: dict
) -> None:
    """decide() = shared encoder -> ONNX -> shared decoder -> shared dispatch, nothing else."""
    import onnxruntime as ort

    c = PolicyController.load(policy)
    config = load_scenario()
    enc, dec = make_encoder(config), make_decoder(config)
    obs = enc.encode(enc.from_mapping(sample_measurements)[None])
    action = ort.InferenceSession(str(policy)).run(None, {"obs": obs})[0]
    req = np.empty((1, 3))
    dec.decode(action, req)
    b, g, m = config.battery, config.grid, sample_measurements
    ev, comp, frac, running, batt, _, _, aux = dispatch_module.dispatch(
        m["ev_requested_kw"], req[0, 2], True, req[0, 0], config.compute.it_kw,
        config.compute.cap_floor_frac, config.compute.standby_frac, m["pue"], req[0, 1],
        m["battery_soc_frac"], b.energy_kwh, b.soc_min, b.soc_max, b.charge_kw, b.discharge_kw,
        b.charge_efficiency, b.discharge_efficiency, b.aux_kw, g.import_limit_kw,
        config.episode.dt_h,
    )  # fmt: skip
    batt, net = dispatch_module.curtail_export(ev + comp + aux, batt, g.export_limit_kw)
    d = c.decide(m)
    assert d["action"] == pytest.approx(action[0].tolist(), abs=0)
    assert d["grid_import_kw"] == max(net, 0.0)
    assert (d["compute_frac"], d["compute_kw"], d["battery_kw"], d["ev_kw"]) == (
        frac,
        comp,
        batt,
        ev,
    )


@pytest.mark.parametrize("site", list(SITES))
def test_setpoints_always_feasible(tmp_path: Path, configs: dict, site: str) -> None:
    config = configs[site]
    c = PolicyController.load(write_policy(tmp_path / "p.onnx", config, seed=3))
    rows = random_measurements(np.random.default_rng(7), 600)
    decisions = c.decide(rows)
    assert len(decisions) == len(rows)
    aux = config.battery.aux_kw if config.battery.energy_kwh > 0 else 0.0
    clipped = 0
    for m, d in zip(rows, decisions):
        for key in SETPOINT_KEYS:
            v = d[key]
            assert v is None or isinstance(v, (bool, int, list)) or math.isfinite(v), key
        assert d["grid_import_kw"] <= config.grid.import_limit_kw + 1e-6
        assert d["grid_export_kw"] <= config.grid.export_limit_kw + 1e-6
        lo, hi = feasible_range_kw(config, m["battery_soc_frac"])
        assert lo - 1e-6 <= d["battery_kw"] <= hi + 1e-6
        assert 0.0 <= d["compute_frac"] <= 1.0
        assert 0.0 <= d["ev_kw"] <= m["ev_requested_kw"] + 1e-9
        balance = d["ev_kw"] + d["compute_kw"] + aux - d["battery_kw"]
        assert d["grid_import_kw"] - d["grid_export_kw"] == pytest.approx(balance, abs=1e-6)
        clipped += d["action_clipped"]
    assert clipped > 0  # the 1.2 gain pushes some actions out of range: reported, then clipped
    # a batch decides exactly like single calls
    for m, d in list(zip(rows, decisions))[:20]:
        assert c.decide(m) == d


# what the simulator reports about the request (the controller sends the feasible setpoints, so
# these differ from the env's report on the raw request; every flow and ledger term is equal)
REQUEST_REPORT = {
    "compute_frac_requested",
    "compute_cut_kw",
    "battery_kw_requested",
    "battery_limited_kw",
    "battery_override_kw",
}


@pytest.mark.parametrize("site", ["strict", "soft", "export"])
def test_closed_loop_setpoints_match_simulator(tmp_path: Path, configs: dict, site: str) -> None:
    """A day run by the controller: its expected flows are what the simulator does with its
    setpoints, and feeding them gives the same day as feeding the raw policy action (the env)."""
    config = configs[site]
    c = PolicyController.load(write_policy(tmp_path / "p.onnx", config, seed=11))
    ctrl_env, ref_env = MegapodSiteEnv(config), MegapodSiteEnv(config)
    ctrl_env.reset(seed=1_000_000)
    ref_obs, _ = ref_env.reset(seed=1_000_000)
    sim, ref_sim = ctrl_env.sim, ref_env.sim
    for _ in range(sim.n_steps):
        d = c.decide({k: float(v[0]) for k, v in sim.measurements().items()})
        out = sim.step(d["compute_frac"], d["battery_kw"], d["ev_cap_kw"])[0]
        for key in ("grid_import_kw", "grid_export_kw", "battery_kw", "compute_kw", "ev_kw"):
            assert out[L.OUT_INDEX[key]] == pytest.approx(d[key], abs=1e-6), key
        assert out[L.O_COMPUTE_FRAC] == pytest.approx(d["compute_frac"], abs=1e-9)
        ref_obs, *_ = ref_env.step(np.asarray(d["action"], dtype=np.float32))
        same = [i for i, name in enumerate(L.OUT_FIELDS) if name not in REQUEST_REPORT]
        np.testing.assert_allclose(out[same], ref_sim.out[0, same], rtol=1e-9, atol=1e-6)


# ------------------------------------------------------------------------------- bad inputs
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"pue": None}, "missing fields ['pue']"),
        ({"bogus_kw": 1.0}, "unknown fields ['bogus_kw']"),
        ({"pue": float("nan")}, "measurements.pue: must be finite"),
        ({"ev_requested_kw": float("inf")}, "measurements.ev_requested_kw: must be finite"),
        ({"price_usd_per_kwh": "cheap"}, "must be a number"),
        ({"battery_soc_frac": 1.5}, "battery_soc_frac: 1.5 is outside its valid range [0.0, 1.0]"),
        ({"ev_requested_kw": -5.0}, "ev_requested_kw: -5.0 is outside"),
        ({"pue": 0.9}, "pue: 0.9 is outside"),
    ],
)
def test_bad_measurements_are_clear_errors(
    policy: Path, sample_measurements: dict, change: dict, message: str
) -> None:
    c = PolicyController.load(policy)
    m = dict(sample_measurements)
    for k, v in change.items():
        if v is None:
            del m[k]
        else:
            m[k] = v
    with pytest.raises(MeasurementError) as err:
        c.decide(m)
    assert message in str(err.value)


def test_batch_errors_name_the_row(policy: Path, sample_measurements: dict) -> None:
    c = PolicyController.load(policy)
    bad = dict(sample_measurements, pue=float("nan"))
    with pytest.raises(MeasurementError, match=r"measurements\[2\]\.pue: must be finite"):
        c.decide([sample_measurements, sample_measurements, bad])
    with pytest.raises(MeasurementError, match=r"measurements\[1\]: each measurement set"):
        c.decide([sample_measurements, 3.0])
    with pytest.raises(MeasurementError, match="empty batch"):
        c.decide([])


@pytest.mark.parametrize("shape", [(26,), (2, 26), (0, 27), (2, 27, 1), (28,)])
def test_wrong_shapes_are_clear_errors(policy: Path, shape: tuple[int, ...]) -> None:
    c = PolicyController.load(policy)
    with pytest.raises(MeasurementError, match=r"shape \(27,\) or \(batch, 27\)"):
        c.decide(np.zeros(shape))


def test_array_input_matches_mapping(policy: Path, sample_measurements: dict) -> None:
    c = PolicyController.load(policy)
    raw = np.array([sample_measurements[n] for n in c.feature_names])
    assert c.decide(raw) == c.decide(sample_measurements)
    assert c.decide(np.stack([raw, raw])) == [c.decide(sample_measurements)] * 2
    with pytest.raises(MeasurementError, match="mapping of feature names"):
        c.decide("battery_soc_frac=0.5")


def test_infeasible_site_emits_nothing(policy: Path, sample_measurements: dict) -> None:
    c = PolicyController.load(policy)
    with pytest.raises(InfeasibleSetpointError, match="no feasible setpoint"):
        c.decide(dict(sample_measurements, pue=5.0, battery_soc_frac=0.05, ev_requested_kw=2000.0))


def test_nan_policy_output_is_an_error(tmp_path: Path, configs: dict, sample_measurements) -> None:
    c = PolicyController.load(write_policy(tmp_path / "p.onnx", configs["strict"], nan=True))
    with pytest.raises(InfeasibleSetpointError, match="invalid action.*NaN"):
        c.decide(sample_measurements)


# ------------------------------------------------------------------------------- bad files
def edit_sidecar(policy: Path, edit: Any, resign: bool = True) -> None:
    """Edit the sidecar; ``resign`` recomputes its integrity digest (a crafted file), so the
    checks behind the digest are tested too."""
    side = sidecar_path(policy)
    doc = json.loads(side.read_text())
    edit(doc)
    if resign and "integrity" in doc:
        doc["integrity"]["sha256"] = integrity_digest(doc, policy.read_bytes())
    side.write_text(json.dumps(doc))


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: d["site"].update(import_limit_kw=d["site"]["import_limit_kw"] * 2.35),
        lambda d: d["site"].update(battery_soc_min=0.0),
        lambda d: d["graph"].update(action_transform="anything"),
        lambda d: d.update(scenario="another-site"),
        lambda d: d.pop("integrity"),
    ],
    ids=["import_limit", "soc_min", "graph", "scenario", "no-digest"],
)
def test_edited_sidecar_fails_the_integrity_check(policy: Path, edit: Any) -> None:
    edit_sidecar(policy, edit, resign=False)
    with pytest.raises(PolicyFileError, match="integrity check failed"):
        PolicyController.load(policy)


def test_version_1_sidecar_loads_with_a_warning(policy: Path) -> None:
    edit_sidecar(policy, lambda d: (d.pop("integrity"), d.update(format_version=1)), False)
    with pytest.warns(UserWarning, match="format_version 1 has no integrity digest"):
        controller = PolicyController.load(policy)
    assert controller.scenario
    edit_sidecar(policy, lambda d: d.update(format_version="2"), False)
    with pytest.raises(PolicyFileError, match="format_version '2' is not supported"):
        PolicyController.load(policy)


def test_tampered_onnx_is_refused(policy: Path) -> None:
    data = bytearray(policy.read_bytes())
    data[-10] ^= 0xFF
    policy.write_bytes(bytes(data))
    with pytest.raises(PolicyFileError, match="SHA-256 .* does not match the sidecar"):
        PolicyController.load(policy)


def test_onnx_of_another_export_is_refused(tmp_path: Path, configs: dict) -> None:
    a = write_policy(tmp_path / "a.onnx", configs["strict"], seed=1)
    b = write_policy(tmp_path / "b.onnx", configs["strict"], seed=2)
    a.write_bytes(b.read_bytes())
    with pytest.raises(PolicyFileError, match="does not belong to a.json"):
        PolicyController.load(a)


@pytest.mark.parametrize(
    "key", ["site.import_limit_kw", "observation.features", "onnx.sha256", "action.names"]
)
def test_missing_sidecar_field_is_named(policy: Path, key: str) -> None:
    parent, leaf = key.rsplit(".", 1)
    edit_sidecar(policy, lambda d: d[parent].pop(leaf))
    with pytest.raises(PolicyFileError, match=rf"missing required key\(s\) \['{key}'\]"):
        PolicyController.load(policy)


def test_sidecar_version_and_format(policy: Path) -> None:
    edit_sidecar(policy, lambda d: d.update(format_version=99))
    with pytest.raises(PolicyFileError, match="format_version 99 is not supported.*upgrade"):
        PolicyController.load(policy)
    edit_sidecar(policy, lambda d: d.update(format_version=1, format="something-else"))
    with pytest.raises(PolicyFileError, match="format must be 'megapod-policy'"):
        PolicyController.load(policy)
    sidecar_path(policy).write_text("{not json")
    with pytest.raises(PolicyFileError, match="not a readable JSON sidecar"):
        PolicyController.load(policy)
    sidecar_path(policy).unlink()
    with pytest.raises(PolicyFileError, match="sidecar not found"):
        PolicyController.load(policy)
    with pytest.raises(PolicyFileError, match="no such ONNX file"):
        PolicyController.load(policy.with_name("absent.onnx"))


def test_carbon_priced_policy_takes_carbon_measurements(
    tmp_path: Path, sample_measurements: dict
) -> None:
    config = load_scenario(None, {"tariff.carbon_price_usd_per_tonne": 50.0})
    c = PolicyController.load(write_policy(tmp_path / "carbon.onnx", config))
    assert c.encoder.names == make_encoder(config).names
    assert c.encoder.names[-1] == "carbon_next_4h_mean_g_per_kwh"
    with pytest.raises(MeasurementError, match="carbon_g_per_kwh"):
        c.decide(sample_measurements)
    carbon = {
        "carbon_g_per_kwh": 420.0,
        "carbon_next_1h_mean_g_per_kwh": 400.0,
        "carbon_next_4h_mean_g_per_kwh": 250.0,
    }
    assert tuple(c.decide({**sample_measurements, **carbon})) == SETPOINT_KEYS


def test_sidecar_that_does_not_match_the_encoder(policy: Path) -> None:
    edit_sidecar(policy, lambda d: d["observation"]["features"][13].update(scale=1000.0))
    with pytest.raises(
        PolicyFileError, match=r"features\[13\] is 'ev_requested_kw'.*layout mismatch"
    ):
        PolicyController.load(policy)


def test_sidecar_that_does_not_match_the_actions(policy: Path) -> None:
    edit_sidecar(policy, lambda d: d["site"].update(ev_priority="soft"))
    with pytest.raises(PolicyFileError, match="action.names .* do not match"):
        PolicyController.load(policy)
    edit_sidecar(policy, lambda d: d["site"].update(ev_priority="strict", battery_charge_kw=10.0))
    with pytest.raises(PolicyFileError, match="action.low .* does not match the site figures"):
        PolicyController.load(policy)
    edit_sidecar(policy, lambda d: d["site"].update(import_limit_kw="lots"))
    with pytest.raises(PolicyFileError, match="site.import_limit_kw must be a finite number"):
        PolicyController.load(policy)


def test_graph_that_does_not_match_the_sidecar(tmp_path: Path, configs: dict) -> None:
    with pytest.raises(PolicyFileError, match=r"graph input has shape \['batch', 26\]"):
        PolicyController.load(write_policy(tmp_path / "a.onnx", configs["strict"], n_in=26))
    with pytest.raises(PolicyFileError, match="fixed batch size"):
        PolicyController.load(
            write_policy(tmp_path / "b.onnx", configs["strict"], fixed_batch=True)
        )


# ------------------------------------------------------------------- no torch, and the CLI loop
NO_TORCH = """
import json, sys
BLOCKED = {"torch", "stable_baselines3", "sb3_contrib", "gymnasium", "numba", "pydantic", "yaml"}

class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is not available on this controller")
        return None

sys.meta_path.insert(0, Block())
from megapod_gym.runtime import PolicyController

controller = PolicyController.load(sys.argv[1])
decision = controller.decide(json.loads(sys.argv[2]))
loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
print(json.dumps({"decision": decision, "loaded": loaded}))
"""


def run_without_torch(policy: Path, measurements: dict) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", NO_TORCH, str(policy), json.dumps(measurements)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_runtime_works_without_torch_gymnasium_sb3(policy: Path, sample_measurements) -> None:
    result = run_without_torch(policy, sample_measurements)
    assert result["loaded"] == []
    assert result["decision"] == json.loads(
        json.dumps(PolicyController.load(policy).decide(sample_measurements))
    )


def test_control_loop_subprocess(policy: Path, sample_measurements: dict) -> None:
    missing = dict(sample_measurements)
    del missing["battery_soc_frac"]
    lines = [
        json.dumps(sample_measurements),
        '{"pue": 1.1, ',  # bad JSON
        json.dumps(missing),
        "",  # blank lines are skipped
        json.dumps([sample_measurements, sample_measurements]),
    ]
    proc = subprocess.run(
        [sys.executable, "-m", "agents.export.cli", "control", "--policy", str(policy)],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    replies = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(replies) == 4
    expected = json.loads(json.dumps(PolicyController.load(policy).decide(sample_measurements)))
    assert replies[0] == expected
    assert replies[1]["line"] == 2 and "not valid JSON" in replies[1]["error"]
    assert replies[2] == {
        "error": "measurements: missing fields ['battery_soc_frac'], unknown fields []",
        "error_type": "MeasurementError",
        "line": 3,
    }
    assert replies[3] == [expected, expected]


def test_control_refuses_a_tampered_policy(policy: Path) -> None:
    policy.write_bytes(policy.read_bytes() + b"\x00")
    proc = subprocess.run(
        [sys.executable, "-m", "agents.export.cli", "control", "--policy", str(policy)],
        input="",
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "megapod control: error:" in proc.stderr and "SHA-256" in proc.stderr


def test_sidecar_schema_document_lists_every_required_key() -> None:
    from megapod_gym.runtime.sidecar import _REQUIRED, FORMAT_VERSION, SUPPORTED_VERSIONS

    doc = (REPO / "docs" / "policy-sidecar.md").read_text()
    assert f"## Version {FORMAT_VERSION} (current)" in doc
    assert all(f"## Version {v}" in doc for v in SUPPORTED_VERSIONS)
    for key in [*_REQUIRED, "integrity.sha256"]:
        leaf = key.rsplit(".", 1)[-1]
        assert f"`{key}`" in doc or f".{leaf}`" in doc, key


def test_control_loop_answers_every_malformed_record_class(
    policy: Path, sample_measurements: dict
) -> None:
    """Each class of bad line gets one error record naming the problem; the loop never dies and
    still answers the good line at the end."""
    good = json.dumps(sample_measurements)

    def with_value(value: str) -> bytes:
        return (
            json.dumps(sample_measurements)
            .replace(f'"pue": {json.dumps(sample_measurements["pue"])}', f'"pue": {value}')
            .encode()
        )

    cases: dict[str, tuple[bytes, str]] = {
        "not utf-8": (b'{"pue": \xff\xfe}', "not UTF-8"),
        "bad json": (b'{"pue": 1.1, ', "not valid JSON"),
        "string number": (with_value('"0.5"'), "measurements.pue: must be a number"),
        "boolean": (with_value("true"), "measurements.pue: must be a number"),
        "null": (with_value("null"), "measurements.pue: must be a number"),
        "huge integer": (with_value("1" + "0" * 400), "measurements.pue: must be finite"),
        "nan": (with_value("NaN"), "measurements.pue: must be finite"),
        "infinity": (with_value("-Infinity"), "measurements.pue: must be finite"),
        "out of range": (with_value("1e6"), "measurements.pue: 1000000.0 is outside"),
        "list value": (with_value("[1.1]"), "measurements.pue: must be a number"),
        "not an object": (b'"hello"', "measurements must be a mapping"),
        "empty batch": (b"[]", "empty batch"),
        "unknown field": (
            json.dumps({**sample_measurements, "extra": 1.0}).encode(),
            "unknown fields ['extra']",
        ),
    }
    payload = b"\n".join(line for line, _ in cases.values()) + b"\n" + good.encode() + b"\n"
    proc = subprocess.run(
        [sys.executable, "-m", "agents.export.cli", "control", "--policy", str(policy)],
        input=payload,
        capture_output=True,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    replies = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert len(replies) == len(cases) + 1
    for n, (name, (_, expected)) in enumerate(cases.items(), start=1):
        reply = replies[n - 1]
        assert reply["line"] == n, name
        assert expected in reply["error"], (name, reply)
        assert len(reply["error"]) < 300, (name, reply)
    assert replies[-1] == json.loads(
        json.dumps(PolicyController.load(policy).decide(sample_measurements))
    )


def test_readme_control_example_is_the_committed_file_and_its_errors_are_real(
    policy: Path,
) -> None:
    example = REPO / "configs" / "examples" / "measurements.jsonl"
    readme = (REPO / "README.md").read_text()
    assert "```text\n" + example.read_text() + "```" in readme  # shown verbatim, no placeholder
    proc = subprocess.run(
        [sys.executable, "-m", "agents.export.cli", "control", "--policy", str(policy)],
        input=example.read_bytes(),
        capture_output=True,
        cwd=REPO,
        timeout=120,
    )
    replies = proc.stdout.decode().splitlines()
    assert len(replies) == 3 and "grid_import_kw" in json.loads(replies[0])
    for line in replies[1:]:  # the README's error lines are what the loop answers
        assert line in readme
