"""Training pipeline on short budgets: every algorithm, save/load, resume, normalization, TensorBoard."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from agents.evaluation.compare import compare_runs, read_scalars
from agents.policies.trained import load_trained_policy, load_vecnormalize
from agents.training.config import TrainConfigError, load_train_config, parse_train_config
from agents.training.train import RunFolderExists, train

pytestmark = pytest.mark.slow

TINY = {
    "ppo": {"n_steps": 32, "batch_size": 64, "n_epochs": 1},
    "a2c": {"n_steps": 8},
    "sac": {"buffer_size": 2000, "learning_starts": 64, "batch_size": 32},
    "td3": {"buffer_size": 2000, "learning_starts": 64, "batch_size": 32},
    "recurrent_ppo": {
        "policy": "MlpLstmPolicy",
        "n_steps": 32,
        "batch_size": 64,
        "n_epochs": 1,
        "policy_kwargs": {"lstm_hidden_size": 8, "net_arch": [16]},
    },
}


def tiny_cfg(algo: str, **extra: object):
    data = {
        "algo": algo,
        "n_envs": 2,
        "n_timesteps": 256,
        "config_overrides": {"episode.days": 0.25},
        "policy_kwargs": {"net_arch": [16, 16]},
        "eval": {"freq": 128, "n_episodes": 2, "days": 0.25, "with_oracle": False},
        "checkpoint_freq": 128,
        **TINY[algo],
        **extra,
    }
    return parse_train_config(data, "test")


@pytest.mark.parametrize("algo", sorted(TINY))
def test_every_algorithm_trains_saves_and_loads(algo: str, tmp_path: Path) -> None:
    metrics = train(tiny_cfg(algo), tmp_path / algo, progress=False, final_benchmark=False)
    assert metrics["timesteps"] >= 256
    for sub in ("best", "final"):
        assert (tmp_path / algo / sub / "model.zip").is_file()
        assert (tmp_path / algo / sub / "vecnormalize.pkl").is_file()
    policy = load_trained_policy(tmp_path / algo)
    from agents.evaluation.rollout import run_policy
    from megapod_gym.config import load_scenario

    rows = run_policy(policy, load_scenario(None, {"episode.days": 0.25}), [1_000_000]).rows
    assert np.isfinite(rows[0]["profit_usd"])


def test_resume_continues_the_step_counter_and_curves(tmp_path: Path) -> None:
    out = tmp_path / "run"
    train(tiny_cfg("ppo"), out, progress=False, final_benchmark=False)
    with pytest.raises(RunFolderExists):
        train(tiny_cfg("ppo"), out, progress=False, final_benchmark=False)
    more = tiny_cfg("ppo", n_timesteps=512)
    metrics = train(more, out, resume=True, progress=False, final_benchmark=False)
    assert metrics["timesteps"] >= 512
    steps, _ = read_scalars(out)["eval/profit_usd"]
    assert steps.min() <= 256 < steps.max()  # one curve across both sessions
    assert len(list((out / "checkpoints").glob("model_*_steps.zip"))) >= 2


@pytest.mark.parametrize("algo", ["td3", "recurrent_ppo"])
def test_cloned_td3_bc_and_recurrent_runs_train_and_resume(
    algo: str, tmp_path: Path, monkeypatch
) -> None:
    """Cloning then TD3+BC (its demonstrations reattached on resume) and cloning into an LSTM."""
    monkeypatch.setenv("MEGAPOD_CACHE", str(tmp_path / "cache"))
    pretrain = {"expert": "tou-arbitrage", "n_days": 2, "epochs": 2, "critic_warmup_steps": 128}
    if algo == "td3":
        pretrain["bc_alpha"] = 2.5
    extra = {"normalize": {"norm_obs": False}, "pretrain": pretrain}
    out = tmp_path / algo
    train(tiny_cfg(algo, **extra), out, progress=False, final_benchmark=False)
    assert json.loads((out / "pretrain.json").read_text())["expert"] == "tou-arbitrage"
    more = tiny_cfg(algo, n_timesteps=512, **extra)
    metrics = train(more, out, resume=True, progress=False, final_benchmark=False)
    assert metrics["timesteps"] >= 512
    assert np.isfinite(read_scalars(out)["eval/profit_usd"][1]).all()


def test_saved_run_config_reloads_for_cli_resume(tmp_path: Path) -> None:
    cfg = tiny_cfg("ppo")
    out = tmp_path / "run"
    out.mkdir()
    import yaml

    (out / "config.yaml").write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
    again = load_train_config(out / "config.yaml", {"n_timesteps": 512})
    assert again.hyperparams == cfg.hyperparams and again.n_timesteps == 512


def test_normalization_statistics_round_trip(tmp_path: Path) -> None:
    out = tmp_path / "run"
    train(tiny_cfg("ppo"), out, progress=False, final_benchmark=False)
    vn = load_vecnormalize(out / "final" / "vecnormalize.pkl")
    policy = load_trained_policy(out / "final")
    assert policy.normalizer is not None
    np.testing.assert_array_equal(policy.normalizer.mean, vn.obs_rms.mean)
    np.testing.assert_array_equal(policy.normalizer.var, vn.obs_rms.var)
    obs = np.random.default_rng(0).normal(size=(5, 27)).astype(np.float32)
    expected = np.clip(
        (obs - vn.obs_rms.mean) / np.sqrt(vn.obs_rms.var + vn.epsilon), -vn.clip_obs, vn.clip_obs
    )
    np.testing.assert_allclose(policy.normalizer(obs), expected, rtol=1e-6, atol=1e-6)
    assert not vn.norm_reward or vn.ret_rms.count > 1  # reward statistics were updated in training


def test_tensorboard_has_eval_ledger_kpi_baseline_and_optimum_scalars(tmp_path: Path) -> None:
    cfg = tiny_cfg("ppo", eval={"freq": 128, "n_episodes": 2, "days": 0.25, "with_oracle": True})
    train(cfg, tmp_path / "run", progress=False, final_benchmark=False)
    tags = set(read_scalars(tmp_path / "run"))
    for tag in (
        "eval/normalized_score",
        "eval/profit_usd",
        "eval/pct_of_optimum",
        "eval/ledger/energy_cost_usd",
        "eval/ledger/compute_value_usd",
        "eval/kpi/cars_served",
        "eval/kpi/balked",
        "eval/kpi/mean_wait_min",
        "eval/kpi/peak_import_kw",
        "eval/kpi/compute_kwh",
        "eval/kpi/battery_cycles",
        "baseline/greedy/profit_usd",
        "baseline/greedy/normalized_score",
        "baseline/tou-arbitrage/profit_usd",
        "optimum/profit_usd",
        "train/value_loss",
    ):
        assert tag in tags, tag
    table = compare_runs([tmp_path / "run"], tmp_path / "cmp")
    assert "normalized score" in table and (tmp_path / "cmp" / "learning_curves.png").is_file()
    # time to beat the best fixed rule: the first eval step above the reference curve, or NaN
    import json

    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    steps = metrics["steps_to_beat_best_rule"]
    s = read_scalars(tmp_path / "run")
    ref = float(s["reference/best_rule/normalized_score"][1][0])
    above = [int(st) for st, v in zip(*s["eval/normalized_score"]) if v > ref]
    assert (steps == above[0]) if above else np.isnan(steps)
    assert "beat rules" in (tmp_path / "run" / "summary.txt").read_text()


def test_bad_config_keys_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(TrainConfigError, match="bogus"):
        parse_train_config({"algo": "ppo", "bogus": 1})
    with pytest.raises(TrainConfigError, match="n_envs"):
        parse_train_config({"algo": "ppo", "n_envs": 0})
    with pytest.raises(TrainConfigError, match="algo"):
        parse_train_config({"algo": "dqn"})
    with pytest.raises(TrainConfigError, match="learning_rate"):
        parse_train_config({"algo": "ppo", "learning_rate": "cosine_1e-3"})
    with pytest.raises(TrainConfigError, match="buffer_size"):
        parse_train_config({"algo": "ppo", "buffer_size": 10})  # an off-policy key on PPO
    with pytest.raises(TrainConfigError, match="seed"):
        parse_train_config({"algo": "ppo", "seed": 1_000_000})  # eval seeds are held out
    for path in sorted(Path("configs/train").glob("*.yaml")):
        load_train_config(path)  # shipped configs are valid


def test_native_vector_env_adapter_trains_ppo_and_reports_episodes() -> None:
    from stable_baselines3 import PPO

    from agents.training.vec_env import NativeSB3VecEnv

    env = NativeSB3VecEnv(4, config_overrides={"episode.days": 1 / 24})
    env.seed(7)
    model = PPO("MlpPolicy", env, n_steps=24, batch_size=48, n_epochs=1, device="cpu", verbose=0)
    model.learn(240)
    assert model.num_timesteps >= 240
    assert len(model.ep_info_buffer) >= 4 and model.ep_info_buffer[0]["l"] == 12
    obs = env.reset()
    _, _, dones, infos = env.step(np.zeros((4, 2), dtype=np.float32))
    assert obs.shape == (4, 27) and not dones.any()


def test_rl_zoo_trains_the_registered_env(tmp_path: Path) -> None:
    pytest.importorskip("rl_zoo3")
    proc = subprocess.run(
        [sys.executable, "-m", "rl_zoo3.train", "--algo", "ppo", "--env", "megapod_gym/MegapodSite-v0", "--gym-packages", "megapod_gym", "-n", "2048", "-f", str(tmp_path), "--eval-freq", "-1"],
        capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"}, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert list(tmp_path.rglob("megapod_gym-MegapodSite-v0.zip")), proc.stdout[-2000:]


def test_linear_schedule_never_goes_negative() -> None:
    from agents.training.config import linear_schedule

    lin = linear_schedule("lin_3e-4", "learning_rate")
    assert lin(1.0) == pytest.approx(3e-4) and lin(0.5) == pytest.approx(1.5e-4)
    # SB3 finishes the last rollout past the requested steps: progress_remaining < 0
    assert lin(-0.2) == 0.0
    for bad in ("lin_-1e-3", "lin_nan", "lin_inf"):
        with pytest.raises(TrainConfigError, match="learning_rate"):
            linear_schedule(bad, "learning_rate")


def test_failed_run_leaves_no_folder(tmp_path: Path, monkeypatch) -> None:
    import agents.training.train as train_module

    def boom(*args, **kwargs):
        raise RuntimeError("simulated failure before the first checkpoint")

    monkeypatch.setattr(train_module, "make_train_env", boom)
    out = tmp_path / "run"
    with pytest.raises(RuntimeError, match="simulated failure"):
        train(tiny_cfg("ppo"), out, progress=False, final_benchmark=False)
    assert not out.exists()
    out.mkdir()  # a folder the user made is never removed
    with pytest.raises(RuntimeError, match="simulated failure"):
        train(tiny_cfg("ppo"), out, progress=False, final_benchmark=False)
    assert out.is_dir()


def test_resume_with_conflicting_arguments_is_an_error(tmp_path: Path, capsys) -> None:
    import yaml

    from agents.cli import main

    cfg = tiny_cfg("ppo")
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.yaml").write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
    repo = Path(__file__).resolve().parents[3]
    for extra, named in [
        (["--seed", "7"], "--seed 7 (the run's seed is 0)"),
        (["--scenario", "ercot-rt-summer"], "--scenario ercot-rt-summer"),
        (["--config", str(repo / "configs/train/sac.yaml")], "differs from the run's config"),
    ]:
        assert main(["train", "--out", str(out), "--resume", *extra]) == 2
        assert named in capsys.readouterr().err


def _tiny_run_with_checkpoints(out: Path) -> list[Path]:
    train(tiny_cfg("ppo", n_timesteps=384), out, progress=False, final_benchmark=False)
    ckpts = sorted((out / "checkpoints").glob("model_*_steps.zip"), key=lambda p: p.stat().st_mtime)
    assert len(ckpts) >= 2
    assert not list((out / "checkpoints").glob(".tmp-*"))  # written atomically, nothing left over
    return ckpts


def test_corrupt_latest_checkpoint_falls_back_to_the_previous(tmp_path: Path) -> None:
    from agents.training.run_folder import checkpoints

    out = tmp_path / "run"
    _tiny_run_with_checkpoints(out)
    found = checkpoints(out / "checkpoints")
    newest_steps, newest = found[0]
    previous_steps = found[1][0]
    newest.write_bytes(newest.read_bytes()[:100])  # truncated, as by a crash mid-write
    with pytest.warns(UserWarning, match=f"model_{newest_steps}_steps.zip cannot be loaded"):
        metrics = train(
            tiny_cfg("ppo", n_timesteps=512),
            out,
            resume=True,
            progress=False,
            final_benchmark=False,
        )
    meta = __import__("json").loads((out / "meta.json").read_text())
    assert meta["sessions"][-1]["from_step"] == previous_steps
    assert metrics["timesteps"] >= 512


def test_missing_normalization_statistics_stop_a_resume(tmp_path: Path) -> None:
    from agents.training.train import NormalizationMissing

    out = tmp_path / "run"
    _tiny_run_with_checkpoints(out)
    for f in (out / "checkpoints").glob("vecnormalize_*_steps.pkl"):
        f.unlink()
    more = tiny_cfg("ppo", n_timesteps=512)
    with pytest.raises(NormalizationMissing, match="--reset-normalization"):
        train(more, out, resume=True, progress=False, final_benchmark=False)
    assert out.is_dir()  # the run folder survives a refused resume
    metrics = train(
        more, out, resume=True, progress=False, final_benchmark=False, reset_normalization=True
    )
    assert metrics["timesteps"] >= 512


def test_resume_logs_no_step_twice_and_hparams_once(tmp_path: Path) -> None:
    out = tmp_path / "run"
    _tiny_run_with_checkpoints(out)
    # an interrupted session: the run logged past its last checkpoint (here: 384 > 256)
    ckpt = out / "checkpoints"
    for f in ckpt.glob("*_384_steps.*"):
        f.unlink()
    train(tiny_cfg("ppo", n_timesteps=640), out, resume=True, progress=False, final_benchmark=False)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(out / "tb"))
    acc.Reload()
    steps = [e.step for e in acc.Scalars("eval/profit_usd")]
    assert len(steps) == len(set(steps)), steps
    hparams = [f for f in (out / "tb").rglob("events.out.tfevents.*")]
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    n_hparams = sum(
        1
        for f in hparams
        for ev in EventFileLoader(str(f)).Load()
        if ev.HasField("summary") and any(v.tag == "_hparams_/experiment" for v in ev.summary.value)
    )
    assert n_hparams == 1


@pytest.mark.slow
def test_sigkill_mid_training_then_resume(tmp_path: Path) -> None:
    """SIGKILL a training process after its first checkpoint: the resume loses at most one
    checkpoint interval and ends exactly where a resume from the same checkpoint copied before
    the kill ends."""
    import shutil
    import signal
    import time

    import yaml

    cfg = tiny_cfg("ppo", n_timesteps=200_000, checkpoint_freq=256)
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "agents.cli", "train", "--config", str(config), "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    from agents.training.run_folder import checkpoints

    while time.time() < deadline and len(checkpoints(out / "checkpoints")) < 3:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    found = checkpoints(out / "checkpoints")
    assert len(found) >= 3, "no checkpoints before the deadline"
    twin = tmp_path / "twin"
    shutil.copytree(out, twin)
    target = found[0][0] + 512
    results = []
    for folder in (out, twin):
        more = load_train_config(folder / "config.yaml", {"n_timesteps": target})
        metrics = train(more, folder, resume=True, progress=False, final_benchmark=False)
        meta = __import__("json").loads((folder / "meta.json").read_text())
        assert meta["sessions"][-1]["from_step"] == found[0][0]
        results.append((metrics["timesteps"], load_trained_policy(folder / "final")))
    (steps_a, a), (steps_b, b) = results
    assert steps_a == steps_b >= target
    for pa, pb in zip(a.model.policy.parameters(), b.model.policy.parameters()):
        np.testing.assert_array_equal(pa.detach().numpy(), pb.detach().numpy())


def test_default_run_folder_names_config_scenario_seed_and_time() -> None:
    import re

    from agents.cli import default_run_folder

    folder = default_run_folder("configs/train/ppo-bc.yaml", tiny_cfg("ppo"))
    assert re.fullmatch(r"ppo-bc-urban-12stall-bev-s0-\d{8}-\d{6}", folder.name), folder
    assert folder.parent == Path("runs")


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"learning_rate": float("nan")}, "learning_rate: must be finite"),
        ({"learning_rate": -1e-3}, r"learning_rate: -0.001 is outside \(0, 1\]"),
        ({"gamma": 2.0}, r"gamma: 2.0 is outside \[0, 1\]"),
        ({"ent_coef": float("inf")}, "ent_coef: must be finite"),
        ({"batch_size": 0}, "batch_size: 0 is outside"),
        ({"n_steps": 2.5}, "n_steps: must be an integer"),
        ({"n_envs": True}, "n_envs: must be an integer, not a boolean"),
        ({"seed": True}, "seed: must be an integer, not a boolean"),
        ({"n_timesteps": 10**20}, "n_timesteps"),
        ({"eval": {"freq": float("inf")}}, "eval.freq"),
    ],
)
def test_bad_hyperparameters_are_refused(bad: dict, message: str) -> None:
    with pytest.raises(TrainConfigError, match=message):
        parse_train_config({"algo": "ppo", **bad}, "test")


def test_scientific_notation_timesteps_are_read() -> None:
    assert parse_train_config({"algo": "ppo", "n_timesteps": "1e6"}, "t").n_timesteps == 1_000_000
