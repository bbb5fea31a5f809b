"""What one sweep trial runs on its Ray worker, and how trials get their seeds and names.

Seeds: unless ``seeds`` lists them or ``space`` sets ``seed``, trial ``k`` (Tune's trial counter,
kept across resumes) gets :func:`derive_seed` ``(sweep_seed, k)``: distinct for every trial, below
:data:`~agents.evaluation.TRAIN_SEED_LIMIT`, and spaced so that the env workers' seeds
``[seed, seed + n_envs)`` of different trials do not overlap (for the first 625 trials with up to
16 envs). A seed in ``base`` is overridden.

Each trial trains into a temporary run folder (the ``megapod train`` layout) and reports every
held-out evaluation to Tune; a run folder snapshot (with the latest SB3 checkpoint only) goes to
Tune's storage whenever a new SB3 checkpoint or a new best model appeared, and at the end. An
interrupted or failed trial resumes from it; finished trials are never rerun.

Ray is optional: nothing here imports it at module level.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from agents.evaluation.rollout import TRAIN_SEED_LIMIT
from megapod_gym.config.loading import deep_merge

# Seeds: trial k's env workers use [seed, seed + n_envs); blocks of SEED_STRIDE keep them apart.
SEED_STRIDE = 16
SEED_BLOCKS = TRAIN_SEED_LIMIT // SEED_STRIDE  # 625


def derive_seed(sweep_seed: int, trial_index: int) -> int:
    """Seed of trial ``trial_index``: distinct for every index below ``TRAIN_SEED_LIMIT``.

    A ``SeedSequence(sweep_seed)`` picks an affine permutation of the 625 seed blocks of width
    16; trial ``k`` takes block ``perm(k mod 625)`` at offset ``k // 625``. So the env workers of
    the first 625 trials (seeds ``[seed, seed + n_envs)``, n_envs <= 16) never share a seed. The
    mapping depends only on SeedSequence's hashing, which NumPy keeps stable.
    """
    a, b = (int(x) for x in np.random.SeedSequence(sweep_seed).generate_state(2, np.uint64))
    a = a % SEED_BLOCKS
    while math.gcd(a, SEED_BLOCKS) != 1:
        a += 1
    k = trial_index % TRAIN_SEED_LIMIT
    block = (a * (k % SEED_BLOCKS) + b) % SEED_BLOCKS
    return block * SEED_STRIDE + k // SEED_BLOCKS


def trial_index(trial_id: str) -> int:
    """Tune's trial counter from a trial id like ``"a1b2c_00007"`` (kept across resumes)."""
    tail = trial_id.rsplit("_", 1)[-1]
    if tail.isdigit():
        return int(tail)
    return int(np.random.SeedSequence([ord(c) for c in trial_id]).generate_state(1)[0]) % 10**6


@dataclasses.dataclass(frozen=True)
class TrialSetup:
    """What every trial needs besides its sampled config (shipped to the workers by Tune)."""

    bases: dict[str, dict[str, Any]]
    sweep_seed: int
    final_benchmark: bool
    name: str = "sweep"
    cpus_per_trial: int = 1


RESERVED = ("algo", "scenario", "replicate", "seed")


def sampled_hyperparams(config: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k not in RESERVED}


def trial_seed(config: Mapping[str, Any], sweep_seed: int, index: int) -> int:
    return int(config["seed"]) if "seed" in config else derive_seed(sweep_seed, index)


def trial_mapping(setup: TrialSetup, config: Mapping[str, Any], index: int) -> dict[str, Any]:
    """The flat training mapping of one trial (base of its algorithm + sampled values + seed)."""
    algo = config["algo"]
    data = deep_merge(setup.bases[algo], sampled_hyperparams(config))
    data.update(
        algo=algo, scenario=config["scenario"], seed=trial_seed(config, setup.sweep_seed, index)
    )
    return data


def trial_name(config: Mapping[str, Any], sweep_seed: int, index: int) -> str:
    scenario = Path(str(config["scenario"])).stem
    return f"{index:04d}_{config['algo']}_{scenario}_seed{trial_seed(config, sweep_seed, index)}"


class TrialNamer:
    """Tune's trial_name_creator / trial_dirname_creator (picklable)."""

    def __init__(self, sweep_seed: int) -> None:
        self.sweep_seed = sweep_seed

    def __call__(self, trial: Any) -> str:
        return trial_name(trial.config, self.sweep_seed, trial_index(trial.trial_id))


def _latest_step(run_dir: Path) -> int | None:
    from agents.training.run_folder import latest_checkpoint

    latest = latest_checkpoint(run_dir / "checkpoints")
    return latest[0] if latest else None


def snapshot(run_dir: Path, dest: Path) -> None:
    """``run_dir`` into ``dest`` with only the latest SB3 checkpoint (hard links where possible)."""
    step = _latest_step(run_dir)
    keep = f"_{step}_steps." if step is not None else None

    def ignore(folder: str, names: list[str]) -> list[str]:
        if Path(folder) != run_dir / "checkpoints":
            return []
        return [n for n in names if keep is None or keep not in n]

    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(run_dir, dest, ignore=ignore, copy_function=link, dirs_exist_ok=True)


class TuneReporter:
    """``train(report=...)``: forwards each held-out evaluation to ``ray.tune.report``, with the
    baselines' and the optimum's values on the same traces (read once from the run's TensorBoard
    events) and a run folder checkpoint whenever a new SB3 checkpoint or best model appeared."""

    def __init__(self, run_dir: Path, info: dict[str, Any]) -> None:
        self.run_dir = run_dir
        self.info = info
        self.refs: dict[str, float] = {}
        self.last: dict[str, Any] = {}
        self.saved_state: tuple[Any, ...] | None = None
        best = run_dir / "best" / "eval.json"
        self.best: dict[str, Any] = json.loads(best.read_text()) if best.is_file() else {}

    def _state(self) -> tuple[Any, ...]:
        best = self.run_dir / "best" / "eval.json"
        return (_latest_step(self.run_dir), best.read_text() if best.is_file() else None)

    def _read_refs(self) -> None:
        from agents.evaluation.compare import read_scalars

        try:
            scalars = read_scalars(self.run_dir)
        except Exception:  # noqa: BLE001 - references are a nicety; the metric is reported anyway
            return
        self.refs = {
            tag: float(values[-1])
            for tag, (_, values) in scalars.items()
            if tag.startswith(("baseline/", "optimum/")) and "/kpi/" not in tag
        }

    def metrics(self, m: Mapping[str, Any]) -> dict[str, Any]:
        key = "normalized_score" if "normalized_score" in m else "profit_usd"
        if not self.best or m.get(key, -math.inf) > self.best.get(key, -math.inf):
            self.best = dict(m)
        out: dict[str, Any] = {**self.info, "step": int(m["step"])}
        for k, v in m.items():
            if k != "step":
                out[
                    f"eval/{k}"
                    if k in ("profit_usd", "normalized_score", "pct_of_optimum")
                    else f"eval/kpi/{k}"
                ] = v
        for k in ("normalized_score", "profit_usd", "pct_of_optimum", "step"):
            if k in self.best:
                out[f"best/{k}"] = self.best[k]
        if not self.refs:
            self._read_refs()
        out.update(self.refs)
        return out

    def __call__(self, m: Mapping[str, Any]) -> None:
        self.last = self.metrics(m)
        state = self._state()
        self.report(self.last, checkpoint=state != self.saved_state)
        self.saved_state = state

    def report(self, metrics: dict[str, Any], checkpoint: bool) -> None:
        from ray import tune

        if not checkpoint:
            tune.report(metrics)
            return
        with tempfile.TemporaryDirectory(prefix="megapod-ckpt-") as tmp:
            snapshot(self.run_dir, Path(tmp))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(tmp))


def sweep_trainable(config: dict[str, Any], setup: TrialSetup) -> None:
    """Ray Tune function trainable: one ``train()`` run, resumed from Tune's checkpoint if any."""
    from ray import tune

    import megapod_gym  # noqa: F401 - registers the env ids in this worker
    from agents.training.config import parse_train_config
    from agents.training.train import train

    trial_id = tune.get_context().get_trial_id()
    index = trial_index(trial_id)
    mapping = trial_mapping(setup, config, index)
    work = Path(tempfile.mkdtemp(prefix=f"megapod-{trial_id}-"))
    run_dir = work / "run"
    argv = sys.argv  # what meta.json records as the command (not Ray's worker command line)
    sys.argv = ["megapod", "sweep", setup.name, trial_name(config, setup.sweep_seed, index)]
    try:
        resume = False
        checkpoint = tune.get_checkpoint()
        if checkpoint is not None:
            checkpoint.to_directory(str(run_dir))
            if _latest_step(run_dir) is not None and (run_dir / "config.yaml").is_file():
                started = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
                mapping["seed"] = started.get("seed", mapping["seed"])  # the seed it started with
                resume = True
            else:  # a snapshot taken before the first SB3 checkpoint: start over
                shutil.rmtree(run_dir)
        cfg = parse_train_config(mapping, f"trial {trial_id}")
        info = {"algo": cfg.algo, "scenario": cfg.scenario, "seed": cfg.seed, "trial_index": index}
        reporter = TuneReporter(run_dir, info)
        done = run_dir / "metrics.json"
        if resume and done.is_file():  # finished, but stopped before Tune heard the last report
            final = json.loads(done.read_text())
        else:
            final = train(
                cfg,
                run_dir,
                resume=resume,
                progress=False,
                final_benchmark=setup.final_benchmark,
                report=reporter,
                benchmark_jobs=setup.cpus_per_trial,
            )
        if not reporter.last and reporter.best:
            reporter.last = reporter.metrics(reporter.best)
        metrics = dict(reporter.last)
        metrics.update(
            {
                k: final[k]
                for k in ("timesteps", "train_seconds", "env_steps_per_second", "wall_seconds")
                if k in final
            }
        )
        for k in ("normalized_score", "profit_usd", "pct_of_optimum", "step"):
            if k in final:
                metrics[f"best/{k}"] = final[k]
        if not reporter.refs:
            reporter._read_refs()
        metrics.update(reporter.refs, final=1)
        reporter.report(metrics, checkpoint=True)
    finally:
        sys.argv = argv
        shutil.rmtree(work, ignore_errors=True)
