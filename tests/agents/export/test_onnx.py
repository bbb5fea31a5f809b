"""Policy export (agents.export.onnx, agents.export.cli): ONNX parity with SB3's predict, closed-loop
parity of the exported controller, the sidecar, TorchScript, refusals and the CLI.

One module-scoped fixture trains tiny PPO, SAC and TD3 runs (a few hundred steps each; TD3 on
the ``soft`` EV-priority site so the 3-action path is covered) and exports them once.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")
import yaml  # noqa: E402

from agents.evaluation.rollout import run_policy  # noqa: E402
from agents.export.cli import add_commands, main  # noqa: E402
from agents.export.onnx import ExportError, OnnxPolicy, export_policy, site_figures  # noqa: E402
from agents.policies.trained import load_trained_policy  # noqa: E402
from agents.training.config import parse_train_config  # noqa: E402
from agents.training.train import train  # noqa: E402
from megapod_gym.config import load_scenario  # noqa: E402
from megapod_gym.envs.site_env import MegapodSiteEnv, make_decoder, make_encoder  # noqa: E402
from megapod_gym.runtime import (  # noqa: E402
    FORMAT_VERSION,
    PolicyController,
    integrity_digest,
    sidecar_path,
    torchscript_path,
)
from megapod_gym.sim import layout as L  # noqa: E402

REPO = Path(__file__).resolve().parents[3]
HELD_OUT_SEED = 1_000_000
PARITY_TOL = 1e-5
RUNS = {
    "ppo": {"n_steps": 64, "batch_size": 64, "n_epochs": 2},
    "sac": {"buffer_size": 2000, "learning_starts": 100, "batch_size": 64},
    "td3": {
        "buffer_size": 2000,
        "learning_starts": 100,
        "batch_size": 64,
        "config_overrides": {"ev_priority": "soft"},
    },
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """algo -> (run folder, exported policy.onnx)."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("export-runs")
    out = {}
    for algo, extra in RUNS.items():
        cfg = parse_train_config(
            {
                "algo": algo,
                "n_envs": 2,
                "n_timesteps": 384,
                "seed": 3,
                "normalize": {"norm_obs": True, "norm_reward": False},
                "policy_kwargs": {"net_arch": [32, 32]},
                "eval": {"freq": 10**9, "n_episodes": 1, "with_oracle": False},
                **extra,
            }
        )
        run_dir = root / f"{algo}-run"
        train(cfg, run_dir, progress=False, final_benchmark=False)
        out[algo] = (run_dir, export_policy(run_dir, root / f"{algo}.onnx"))
    return out


def random_observations(n: int, size: int, seed: int = 0) -> np.ndarray:
    """Typical values, large values and the box edges (exercises the normalization clip)."""
    rng = np.random.default_rng(seed)
    obs = rng.normal(0.0, 1.0, (n, size))
    obs[: n // 4] = rng.uniform(-10.0, 10.0, (n // 4, size))
    obs[n // 4 : n // 4 + 10] = rng.choice([-10.0, 10.0], (10, size))
    return obs.astype(np.float32)


def closed_loop_profit(controller: PolicyController, scenario: Path, seed: int) -> float:
    """One episode run by the controller: measurements in, setpoints to the simulator."""
    env = MegapodSiteEnv(load_scenario(scenario))
    env.reset(seed=seed)
    sim = env.unwrapped.sim
    profit = 0.0
    for _ in range(sim.n_steps):
        d = controller.decide({k: float(v[0]) for k, v in sim.measurements().items()})
        out = sim.step(d["compute_frac"], d["battery_kw"], d["ev_cap_kw"])
        assert out[0, L.O_GRID_IMPORT_KW] <= env.config.grid.import_limit_kw + 1e-6
        profit += float(out[0, L.O_TOTAL_USD])
    return profit


# ----------------------------------------------------------------------------------- parity
@pytest.mark.parametrize("algo", list(RUNS))
def test_onnx_matches_model_predict(runs: dict, algo: str) -> None:
    run_dir, onnx_path = runs[algo]
    policy = load_trained_policy(run_dir)  # normalize(obs) -> model.predict(deterministic=True)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    obs = random_observations(1000, session.get_inputs()[0].shape[1], seed=len(algo))
    ref = np.concatenate([policy.act(obs[i : i + 64]) for i in range(0, len(obs), 64)])
    assert ref.shape == (len(obs), policy.model.action_space.shape[0])
    for batch in (64, 1):
        got = np.concatenate(
            [session.run(None, {"obs": obs[i : i + batch]})[0] for i in range(0, len(obs), batch)]
        )
        worst = float(np.abs(got - ref).max())
        assert worst <= PARITY_TOL, (algo, batch, worst)


@pytest.mark.parametrize("algo", list(RUNS))
def test_closed_loop_profit_matches_sb3(runs: dict, algo: str) -> None:
    run_dir, onnx_path = runs[algo]
    scenario = run_dir / "scenario.yaml"
    reference = run_policy(load_trained_policy(run_dir), load_scenario(scenario), [HELD_OUT_SEED])
    expected = reference.rows[0]["profit_usd"]
    got = closed_loop_profit(PolicyController.load(onnx_path), scenario, HELD_OUT_SEED)
    assert got == pytest.approx(expected, rel=1e-3), (algo, got, expected)
    # the exported network through the shared evaluation code (env decodes and dispatches)
    onnx_run = run_policy(OnnxPolicy(onnx_path), load_scenario(scenario), [HELD_OUT_SEED])
    assert onnx_run.rows[0]["profit_usd"] == pytest.approx(expected, rel=1e-3)


def test_onnx_policy_refuses_another_site(runs: dict) -> None:
    _, onnx_path = runs["td3"]  # exported for the soft-priority site (3 actions)
    with pytest.raises(ValueError, match="exported for another site layout"):
        run_policy(OnnxPolicy(onnx_path), load_scenario(), [HELD_OUT_SEED])


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
def test_torchscript_twin_matches(runs: dict, tmp_path: Path) -> None:
    run_dir, onnx_path = runs["sac"]
    out = export_policy(run_dir, tmp_path / "sac.onnx", torchscript=True)
    ts = torch.jit.load(str(torchscript_path(out)))
    obs = random_observations(64, 27)
    with torch.no_grad():
        got = ts(torch.as_tensor(obs)).numpy()
    ref = load_trained_policy(run_dir).act(obs)
    assert np.abs(got - ref).max() <= PARITY_TOL
    side = json.loads(sidecar_path(out).read_text())
    assert side["torchscript"]["file"] == "sac.pt"
    # the same network exported twice gives the same graph
    assert (
        side["onnx"]["sha256"] == json.loads(sidecar_path(onnx_path).read_text())["onnx"]["sha256"]
    )


@pytest.mark.slow  # the dynamo exporter builds its op registry on every call (~10-40 s)
def test_dynamo_exporter(runs: dict, tmp_path: Path) -> None:
    pytest.importorskip("onnxscript")
    import onnx

    run_dir, _ = runs["sac"]
    out = export_policy(run_dir, tmp_path / "sac-dynamo.onnx", exporter="dynamo")
    model = onnx.load(str(out))
    onnx.checker.check_model(model, full_check=True)
    side = json.loads(sidecar_path(out).read_text())
    assert "dynamo" in side["onnx"]["exporter"]
    assert model.opset_import[0].version == side["onnx"]["opset"] >= 18
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    obs = random_observations(200, 27, seed=5)
    policy = load_trained_policy(run_dir)
    for batch in (1, 64):
        x = obs[:batch]
        assert np.abs(session.run(None, {"obs": x})[0] - policy.act(x)).max() <= PARITY_TOL


# ---------------------------------------------------------------------------------- sidecar
def test_sidecar_describes_policy_site_and_run(runs: dict) -> None:
    import hashlib

    import onnx

    for algo, (run_dir, onnx_path) in runs.items():
        side = json.loads(sidecar_path(onnx_path).read_text())
        config = load_scenario(run_dir / "scenario.yaml")
        enc, dec = make_encoder(config), make_decoder(config)
        meta = json.loads((run_dir / "meta.json").read_text())
        assert side["format_version"] == FORMAT_VERSION
        assert side["algorithm"] == algo and side["scenario"] == config.name
        assert side["onnx"]["sha256"] == hashlib.sha256(onnx_path.read_bytes()).hexdigest()
        assert side["integrity"]["sha256"] == integrity_digest(side, onnx_path.read_bytes())
        model = onnx.load(str(onnx_path))
        onnx.checker.check_model(model, full_check=True)
        assert model.opset_import[0].version == side["onnx"]["opset"]
        dims = model.graph.input[0].type.tensor_type.shape.dim
        assert dims[0].dim_param and dims[1].dim_value == enc.size  # dynamic batch axis
        assert side["observation"]["features"] == enc.describe()
        assert side["observation"]["encoder_site"] == enc.site
        assert side["action"]["names"] == list(dec.names)
        assert side["action"]["low"] == dec.low.tolist()
        assert side["action"]["high"] == dec.high.tolist()
        assert "discharge" in side["action"]["sign_convention"]
        assert side["site"] == json.loads(json.dumps(site_figures(config)))
        assert side["site"]["ev_priority"] == ("soft" if algo == "td3" else "strict")
        assert side["training_run"]["run_id"] == run_dir.name
        assert side["training_run"]["git_revision"] == meta["git_revision"]
        assert side["training_run"]["model"] == "best/model.zip"
        for pkg in ("torch", "stable-baselines3", "onnx", "onnxruntime", "numpy"):
            assert side["versions"][pkg] != "not installed"
        stats = side["graph"]["normalization_statistics"]
        assert len(stats["mean"]) == len(stats["var"]) == enc.size
        assert side["export_check"]["max_abs_error_vs_model_predict"] <= PARITY_TOL


# --------------------------------------------------------------------------------- refusals
def test_refuses_to_overwrite_unless_forced(runs: dict) -> None:
    run_dir, onnx_path = runs["ppo"]
    before = onnx_path.read_bytes()
    with pytest.raises(FileExistsError, match="pass --force to replace"):
        export_policy(run_dir, onnx_path)
    assert onnx_path.read_bytes() == before
    assert export_policy(run_dir, onnx_path, force=True) == onnx_path
    PolicyController.load(onnx_path)  # sidecar and file still agree


def test_refuses_recurrent_ppo(runs: dict, tmp_path: Path) -> None:
    run_dir = tmp_path / "recurrent"
    shutil.copytree(runs["ppo"][0], run_dir)
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    cfg["algo"] = "recurrent_ppo"
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(ExportError, match="RecurrentPPO cannot be exported: .* LSTM hidden state"):
        export_policy(run_dir, tmp_path / "policy.onnx")
    assert not (tmp_path / "policy.onnx").exists()


def test_rejects_bad_output_name_and_missing_run(runs: dict, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="must name a .onnx file"):
        export_policy(runs["ppo"][0], tmp_path / "policy.bin")
    with pytest.raises(FileNotFoundError, match="no such run folder"):
        export_policy(tmp_path / "absent", tmp_path / "policy.onnx")


# ------------------------------------------------------------------------------------- CLI
def test_export_command(runs: dict, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="megapod")
    add_commands(parser.add_subparsers(dest="command", required=True))
    out = tmp_path / "cli" / "policy.onnx"
    args = parser.parse_args(["export", str(runs["td3"][0]), "--out", str(out)])
    assert args.func(args) == 0
    text = capsys.readouterr().out
    assert f"policy      {out}" in text and "compute_frac, battery_kw, ev_cap_kw" in text
    assert main(["export", str(runs["td3"][0]), "--out", str(out)]) == 2
    assert "already exist" in capsys.readouterr().err
    args = parser.parse_args(["control", "--policy", str(out)])
    assert args.threads == 1 and args.func.__name__ == "_cmd_control"


def test_exported_policy_runs_without_torch(runs: dict) -> None:
    """The real exported policy decides in a process where torch, SB3 and gymnasium fail to
    import, and decides exactly as in this process."""
    _, onnx_path = runs["td3"]
    env = MegapodSiteEnv(load_scenario(runs["td3"][0] / "scenario.yaml"))
    env.reset(seed=HELD_OUT_SEED)
    for _ in range(150):
        env.step(env.action_space.sample())
    m = {k: float(v[0]) for k, v in env.sim.measurements().items()}
    script = (
        "import json, sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in {'torch', 'stable_baselines3', 'gymnasium'}:\n"
        "            raise ImportError(name + ' is not available here')\n"
        "sys.meta_path.insert(0, Block())\n"
        "from megapod_gym.runtime import PolicyController\n"
        "print(json.dumps(PolicyController.load(sys.argv[1]).decide(json.loads(sys.argv[2]))))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(onnx_path), json.dumps(m)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    here = json.loads(json.dumps(PolicyController.load(onnx_path).decide(m)))
    assert json.loads(proc.stdout) == here
    assert here["ev_cap_kw_requested"] is not None  # soft mode: the policy caps the cars
