"""``megapod train``: stable-baselines3 from a YAML config, with evaluation against the baselines.

Run folder layout (``--out runs/NAME``; an existing folder is never overwritten, ``--resume``
continues it)::

    config.yaml          resolved training config        scenario.yaml   resolved scenario
    meta.json            seed, package versions, git revision, command, timings
    tb/                  TensorBoard events (eval/*, baseline/*, optimum/*, train losses, HPARAMS)
    checkpoints/         model_<steps>_steps.zip + vecnormalize_<steps>_steps.pkl (+ replay buffer)
    best/                model.zip + vecnormalize.pkl + eval.json (best held-out normalized score)
    final/               model.zip + vecnormalize.pkl at the end of training
    eval/                final comparison on the held-out traces: benchmark.md, summary.csv,
                         episodes.csv, plots
    summary.txt          the one-screen summary printed at the end

:func:`train` is a pure function of its config and output folder; ``megapod train``, ``megapod
demo`` and sweeps all call it.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from agents.training.config import TrainConfig
from agents.training.run_folder import checkpoints, save_model
from agents.training.time_to_beat import time_to_beat
from megapod_gym.config import load_scenario
from megapod_gym.config.fleet import is_fleet, load_fleet


class RunFolderExists(FileExistsError):
    pass


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in (
        "megapod-gym",
        "numpy",
        "numba",
        "gymnasium",
        "stable-baselines3",
        "sb3-contrib",
        "torch",
    ):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def git_revision() -> str:
    try:
        root = Path(__file__).resolve().parent.parent
        rev = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain"],
            capture_output=True,
            text=True,
            timeout=5,
        )
        return (
            rev.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
            if rev.returncode == 0
            else "unknown"
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def make_train_env(cfg: TrainConfig) -> Any:
    """The vectorized training env (native batched core, or SubprocVecEnv / DummyVecEnv of single
    envs; for a fleet, DummyVecEnv / SubprocVecEnv of centralized fleet envs, with
    ``fleet_action: battery`` each wrapped so that the agent sets only the batteries), seeded below the
    held-out range, wrapped in VecNormalize when asked."""
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecNormalize

    from agents.training.vec_env import NativeSB3VecEnv
    from megapod_gym.envs.site_env import MegapodSiteEnv

    if is_fleet(cfg.scenario):  # a fleet is already a batch of sites: vectorize whole fleets
        from megapod_gym.envs.fleet_env import MegapodFleetEnv

        wrapper: Any = None
        if cfg.fleet_action == "battery":
            from agents.training.fleet_battery_env import GlobalGreedyBatteryEnv

            wrapper = GlobalGreedyBatteryEnv
        env = make_vec_env(
            MegapodFleetEnv,
            n_envs=cfg.n_envs,
            seed=cfg.seed,
            env_kwargs={"fleet": cfg.scenario, "fleet_overrides": cfg.config_overrides or None},
            vec_env_cls=SubprocVecEnv if cfg.vec_env == "subproc" else DummyVecEnv,
            wrapper_class=wrapper,
        )
    elif cfg.vec_env == "native":
        env = NativeSB3VecEnv(
            cfg.n_envs,
            cfg.scenario,
            cfg.config_overrides,
            terminate_at_end=cfg.day_end == "terminate",
            privileged=cfg.privileged_critic,
        )
        env.seed(cfg.seed)
    else:
        env = make_vec_env(
            MegapodSiteEnv,
            n_envs=cfg.n_envs,
            seed=cfg.seed,
            env_kwargs={"scenario": cfg.scenario, "config_overrides": cfg.config_overrides},
            vec_env_cls=SubprocVecEnv if cfg.vec_env == "subproc" else DummyVecEnv,
        )
    if cfg.normalize:
        kw = dict(cfg.normalize) if isinstance(cfg.normalize, dict) else {}
        kw.setdefault("gamma", cfg.hyperparams.get("gamma", 0.99))
        env = VecNormalize(env, **kw)
    return env


def train(
    cfg: TrainConfig,
    out_dir: str | Path,
    resume: bool = False,
    progress: bool = True,
    final_benchmark: bool = True,
    report: Any = None,
    benchmark_jobs: int | None = None,
    reset_normalization: bool = False,
) -> dict[str, Any]:
    """Train ``cfg`` into ``out_dir``; return the final metrics.

    ``report(metrics: dict)``, if given, is called after every evaluation (e.g. a Ray Tune
    reporter). ``benchmark_jobs`` worker processes run the final comparison (default: CPU count;
    a Ray trial passes the CPUs it was given). A run that fails (or is interrupted) before its
    first checkpoint removes the folder it created, so no half-empty run folder is left behind.
    """
    out = Path(out_dir)
    created = not out.exists()
    try:
        return _train(
            cfg, out, resume, progress, final_benchmark, report, benchmark_jobs, reset_normalization
        )
    except BaseException:
        if created and out.is_dir() and not any((out / "checkpoints").glob("*.zip")):
            shutil.rmtree(out, ignore_errors=True)
        raise


def _train(
    cfg: TrainConfig,
    out: Path,
    resume: bool,
    progress: bool,
    final_benchmark: bool,
    report: Any,
    benchmark_jobs: int | None,
    reset_normalization: bool,
) -> dict[str, Any]:
    import torch
    from stable_baselines3.common.callbacks import CallbackList

    from agents.training.callbacks import (
        CheckpointCallback,
        CriticWarmupCallback,
        FleetHeldOutEvalCallback,
        HeldOutEvalCallback,
        TqdmCallback,
    )

    torch.set_num_threads(cfg.torch_threads)
    ckpt_dir = out / "checkpoints"
    if out.exists() and any(out.iterdir()) and not resume:
        raise RunFolderExists(
            f"run folder {out} already exists; pass --resume to continue it or choose another --out"
        )
    if resume and not (out / "config.yaml").is_file():
        raise FileNotFoundError(f"cannot resume: {out}/config.yaml not found")
    out.mkdir(parents=True, exist_ok=True)
    fleet = is_fleet(cfg.scenario)
    scenario: Any = (
        load_fleet(cfg.scenario, cfg.config_overrides or None)
        if fleet
        else load_scenario(cfg.scenario, cfg.config_overrides)
    )
    t_start = time.time()

    env = make_train_env(cfg)
    Algo = cfg.model_class()
    start_steps = 0
    found = checkpoints(ckpt_dir) if resume else []
    if resume and not found:
        raise FileNotFoundError(f"cannot resume: no checkpoint in {ckpt_dir}")
    latest = None
    for steps, path in found:  # newest first; a corrupt one falls back to the one before
        try:
            model, env = load_checkpoint(
                Algo, ckpt_dir, steps, path, env, cfg.device, reset_normalization
            )
        except NormalizationMissing:
            raise
        except Exception as exc:  # a truncated zip, a bad pickle: SB3 raises various types
            warnings.warn(
                f"checkpoint {path.name} cannot be loaded ({type(exc).__name__}: {exc}); "
                "falling back to the previous one",
                stacklevel=2,
            )
            continue
        latest, start_steps = (steps, path), steps
        break
    if resume and latest is None:
        raise FileNotFoundError(f"cannot resume: no loadable checkpoint in {ckpt_dir}")
    if latest is None:
        (out / "config.yaml").write_text(
            yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
        )
        (out / ("fleet.yaml" if fleet else "scenario.yaml")).write_text(
            yaml.safe_dump(scenario.model_dump(mode="json"), sort_keys=False)
        )
        policy: Any = cfg.policy
        if cfg.privileged_critic:
            from agents.training.asymmetric import AsymmetricActorCriticPolicy

            policy = AsymmetricActorCriticPolicy
        kwargs = cfg.algo_kwargs(action_dim=int(np.prod(env.action_space.shape)))
        model = Algo(policy, env, seed=cfg.seed, device=cfg.device, verbose=0, **kwargs)
        if cfg.pretrain is not None:
            pretrain_model(model, cfg, scenario, out, progress)
    if cfg.pretrain is not None and cfg.pretrain.bc_alpha is not None:
        attach_demonstrations(model, cfg, scenario, out, progress)
    model.set_logger(tensorboard_logger(out / "tb", start_steps))

    meta_path = out / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    meta.setdefault("sessions", []).append(
        {"start": time.strftime("%Y-%m-%dT%H:%M:%S"), "from_step": start_steps, "command": sys.argv}
    )
    meta.update(
        seed=cfg.seed,
        algo=cfg.algo,
        scenario=scenario.name,
        versions=package_versions(),
        git_revision=git_revision(),
    )
    meta_path.write_text(json.dumps(meta, indent=2))

    evaluator = (FleetHeldOutEvalCallback if fleet else HeldOutEvalCallback)(
        cfg, out, report=report
    )
    callbacks = [evaluator, CheckpointCallback(cfg.checkpoint_freq, ckpt_dir)]
    if cfg.pretrain is not None and cfg.pretrain.critic_warmup_steps > 0:
        callbacks.insert(0, CriticWarmupCallback(cfg.pretrain.critic_warmup_steps))
    if progress:
        callbacks.append(TqdmCallback(cfg.n_timesteps, start_steps))
    remaining = max(cfg.n_timesteps - start_steps, 0)
    t0 = time.time()
    if remaining > 0:
        model.learn(
            remaining,
            callback=CallbackList(callbacks),
            reset_num_timesteps=latest is None,
            tb_log_name="",
        )
    train_seconds = time.time() - t0
    if evaluator.last_eval_step != model.num_timesteps:
        evaluator.evaluate_now()
    save_model(model, out / "final")
    CheckpointCallback.save(model, ckpt_dir)

    trained = int(model.num_timesteps) - start_steps  # whole rollouts: may exceed `remaining`
    metrics: dict[str, Any] = {
        "timesteps": int(model.num_timesteps),
        "requested_timesteps": cfg.n_timesteps,
        "train_seconds": train_seconds,
        "env_steps_per_second": trained / train_seconds if train_seconds > 0 else float("nan"),
        **evaluator.best_metrics,
    }
    if (out / "pretrain.json").is_file():
        metrics["pretrain"] = json.loads((out / "pretrain.json").read_text())
    if not fleet:
        model.logger.close()  # flush the TensorBoard events the time-to-beat reads
        steps, seconds = time_to_beat(out, metrics)
        metrics["steps_to_beat_best_rule"] = steps
        metrics["seconds_to_beat_best_rule"] = seconds
    if final_benchmark:
        metrics["benchmark_table"] = str(
            final_comparison(cfg, out, jobs=benchmark_jobs, progress=progress)
        )
    metrics["wall_seconds"] = time.time() - t_start
    summary = summary_text(cfg, out, metrics)
    (out / "summary.txt").write_text(summary + "\n")
    meta["sessions"][-1].update(
        end=time.strftime("%Y-%m-%dT%H:%M:%S"),
        to_step=int(model.num_timesteps),
        train_seconds=train_seconds,
    )
    meta_path.write_text(json.dumps(meta, indent=2))
    (out / "metrics.json").write_text(
        json.dumps(
            {k: v for k, v in metrics.items() if not isinstance(v, np.ndarray)},
            indent=2,
            default=float,
        )
    )
    env.close()
    return metrics


def tensorboard_logger(folder: Path, start_steps: int) -> Any:
    """SB3's TensorBoard logger; on a resume, TensorBoard's own ``purge_step`` drops whatever an
    interrupted session logged after the checkpoint it resumes from, so no step appears twice."""
    from stable_baselines3.common.logger import Logger, TensorBoardOutputFormat
    from torch.utils.tensorboard import SummaryWriter

    fmt = TensorBoardOutputFormat(str(folder))
    if start_steps > 0:
        fmt.writer.close()
        fmt.writer = SummaryWriter(log_dir=str(folder), purge_step=start_steps)
    return Logger(folder=str(folder), output_formats=[fmt])


class NormalizationMissing(FileNotFoundError):
    """A checkpoint of a run that normalizes observations or rewards lacks its statistics."""


def load_checkpoint(
    Algo: type,
    ckpt_dir: Path,
    steps: int,
    path: Path,
    env: Any,
    device: str,
    reset_normalization: bool = False,
) -> tuple[Any, Any]:
    """(model, env) from checkpoint ``steps``: its normalization statistics (an error when they
    are missing, unless ``reset_normalization``: fresh statistics would silently change what the
    policy sees), the model, and its replay buffer when it has one."""
    from stable_baselines3.common.vec_env import VecNormalize

    if isinstance(env, VecNormalize):
        norm = ckpt_dir / f"vecnormalize_{steps}_steps.pkl"
        if norm.is_file():
            env = VecNormalize.load(str(norm), env.venv)
        elif not reset_normalization:
            raise NormalizationMissing(
                f"cannot resume: {norm} is missing, and starting the normalization statistics "
                "afresh would change what the policy sees; pass --reset-normalization to accept that"
            )
    model = Algo.load(path, env=env, device=device)
    buffer = ckpt_dir / f"replay_buffer_{steps}_steps.pkl"
    if buffer.is_file() and hasattr(model, "load_replay_buffer"):
        model.load_replay_buffer(buffer)
    return model, env


def attach_demonstrations(
    model: Any, cfg: TrainConfig, scenario: Any, out: Path, progress: bool
) -> None:
    """Give a TD3+BC / SAC+BC model (``pretrain.bc_alpha``) the teacher's demonstrations it is
    kept near: the chosen teacher's days (``pretrain.json``), from the demonstration cache (collected
    again on a cache miss, e.g. when a run resumes on another machine)."""
    from agents.training.demonstrations import demonstrations

    p = cfg.pretrain
    assert p is not None and p.bc_alpha is not None
    info = out / "pretrain.json"
    if not info.is_file():
        raise FileNotFoundError(
            f"{info} is missing: it names the teacher whose demonstrations TD3+BC needs"
        )
    expert = json.loads(info.read_text())["expert"]
    demos = demonstrations(
        scenario,
        expert,
        p.n_days,
        p.noisy_frac,
        p.noise_std,
        jobs=os.cpu_count() or 1,
        progress=progress,
    )
    from agents.policies.trained import actor_obs

    model.set_demonstrations(actor_obs(model, demos.obs), demos.actions, p.bc_alpha)


def pretrain_model(model: Any, cfg: TrainConfig, scenario: Any, out: Path, progress: bool) -> dict:
    """Behaviour cloning (``cfg.pretrain``) into ``model``, then the policy search when configured;
    writes ``pretrain.json``, the cloned model to ``pretrained/`` and the searched one to
    ``searched/``."""
    from agents.training.pretrain import pretrain

    assert cfg.pretrain is not None
    if is_fleet(cfg.scenario):
        raise ValueError("pretrain is not supported for fleets yet")
    info = pretrain(model, cfg.pretrain, scenario, seed=cfg.seed, progress=progress)
    save_model(model, out / "pretrained")
    if cfg.pretrain.search is not None:
        from agents.training.policy_search import search_actor

        info["search"] = search_actor(model, cfg.pretrain.search, scenario, cfg.seed, progress)
        save_model(model, out / "searched")
    (out / "pretrain.json").write_text(json.dumps(info, indent=2))
    return info


def final_comparison(
    cfg: TrainConfig,
    out: Path,
    baselines: Sequence[str] | None = None,
    jobs: int | None = None,
    progress: bool = False,
) -> Path:
    """Benchmark the validation-selected (``best/``) and the final model against the baselines and
    the optimum on ``cfg.eval.test_episodes`` test days, which model selection never saw
    (``jobs`` worker processes; default: CPU count)."""
    from agents.evaluation.benchmark import PolicyRun, policy_run, run_benchmark, write_outputs
    from agents.policies.trained import load_trained_policy

    policy = load_trained_policy(out, name=f"{cfg.algo} (trained)")
    if is_fleet(cfg.scenario):
        from tqdm.auto import tqdm

        from agents.evaluation.fleet import (
            FLEET_BASELINES,
            run_fleet_benchmark,
            write_fleet_outputs,
        )

        total = len(FLEET_BASELINES) + 1 + int(cfg.eval.with_oracle)
        with tqdm(total=total, desc="final comparison", disable=not progress) as bar:
            bench = run_fleet_benchmark(
                load_fleet(out / "fleet.yaml"),
                n_episodes=cfg.eval.test_episodes,
                days=cfg.eval.days,
                with_optimum=cfg.eval.with_oracle,
                extra=[(policy.name, policy)],
                progress=lambda name: (bar.set_postfix_str(name), bar.update(1)),
            )
        return write_fleet_outputs([bench], out / "eval")["table"]

    def trained_run(folder: Path, name: str) -> Any:
        def run(config: Any, seeds: Sequence[int]) -> PolicyRun:
            return policy_run(load_trained_policy(folder, name=name), config, seeds, name)

        return run

    extra = [
        (
            f"{cfg.algo} (best on validation)",
            trained_run(out / "best", f"{cfg.algo} (best on validation)"),
        )
    ]
    if (out / "final" / "model.zip").is_file():
        extra.append((f"{cfg.algo} (final)", trained_run(out / "final", f"{cfg.algo} (final)")))
    names = (
        list(baselines)
        if baselines is not None
        else [
            "greedy",
            "tou-arbitrage",
            "price-threshold",
            "peak-shaving",
            "tuned-rule",
            "mpc",
            "oracle-replay",
        ]
    )
    scenario_ref = str(out / "scenario.yaml")
    result = run_benchmark(
        [scenario_ref],
        names,
        n_episodes=cfg.eval.test_episodes,
        days=cfg.eval.days,
        extra=extra,
        show_progress=progress,
        jobs=jobs,
    )
    paths = write_outputs(result, out / "eval", load_scenario(scenario_ref).episode.dt_h)
    return paths["table"]


def gap_to_mpc(episodes_csv: Path, policy: str) -> str | None:
    """One summary line: ``policy``'s normalized-score difference to MPC on the comparison's test
    days with its paired bootstrap CI, and on how many days it earned more (None when the
    comparison has no MPC or no optimum, e.g. a fleet)."""
    from agents.evaluation.benchmark import episode_profits
    from agents.evaluation.score import paired_gap

    if not episodes_csv.is_file():
        return None
    profit = episode_profits(episodes_csv)
    names = (policy, "mpc", "greedy", "hindsight-optimum")
    if not all(n in profit for n in names):
        return None
    days = sorted(profit["greedy"])
    agent, mpc, greedy, optimum = (np.array([profit[n][d] for d in days]) for n in names)
    gap, low, high = paired_gap(agent, mpc, greedy, optimum)
    return (
        f"vs MPC       {policy} - mpc: {gap:+.2f} points (paired 95 % CI {low:+.2f} to "
        f"{high:+.2f} over {len(days)} test days); more profit than MPC on "
        f"{int((agent > mpc).sum())} / {len(days)} days"
    )


def summary_text(cfg: TrainConfig, out: Path, metrics: dict[str, Any]) -> str:
    lines = [
        f"run          {out}",
        f"algorithm    {cfg.algo} on {cfg.scenario} ({cfg.n_envs} {cfg.vec_env} envs, seed {cfg.seed})",
        f"timesteps    {metrics['timesteps']:,} in {metrics['train_seconds']:.0f} s ({metrics['env_steps_per_second']:.0f} env-steps/s)",
    ]
    requested = metrics.get("requested_timesteps", metrics["timesteps"])
    if metrics["timesteps"] != requested:
        lines.append(
            f"             ({requested:,} requested; the algorithm trains in whole rollouts, "
            "so it ran to the next rollout boundary)"
        )
    if "normalized_score" in metrics:
        lines.append(
            f"best eval    normalized score {metrics['normalized_score']:.1f} (0 = greedy, 100 = optimum), "
            f"profit ${metrics['profit_usd']:,.0f}/episode at step {metrics.get('step', 0):,}"
        )
    if "steps_to_beat_best_rule" in metrics:
        steps, seconds = metrics["steps_to_beat_best_rule"], metrics["seconds_to_beat_best_rule"]
        lines.append(
            "beat rules   not within this run (validation score never above the best fixed rule's)"
            if steps != steps  # NaN
            else f"beat rules   validation score above the best fixed rule's from step "
            f"{steps:,.0f}, {seconds:.0f} s into the run (demonstrations + cloning + search + RL)"
        )
    if "benchmark_table" in metrics:
        table = Path(metrics["benchmark_table"])
        gap = gap_to_mpc(table.parent / "episodes.csv", f"{cfg.algo} (best on validation)")
        lines += ["", table.read_text().strip(), ""]
        lines += [gap] if gap else []
        lines.append(f"comparison   {table.parent}/")
    # the parent folder: TensorBoard then names the run "<run folder>/tb", not "."
    lines.append(f"tensorboard  tensorboard --logdir {out.resolve().parent}")
    return "\n".join(lines)
