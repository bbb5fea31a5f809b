"""Experiment sweeps on Ray Tune: every trial is one ``train()`` run, on one machine or a cluster.

This module is the driver: it starts or joins Ray, runs (or resumes) the sweep and writes the
tables. The sweep file is :mod:`agents.sweeps.config` (its keys) and :mod:`agents.sweeps.spec`
(its resolution to a :class:`SweepSpec`); what each trial runs on its worker, and how trials get
their seeds and names, is :mod:`agents.sweeps.trials`.

When the sweep ends each trial's final folder is copied to ``OUT/runs/TRIAL`` and the aggregated
tables are written.

Ray is optional: nothing here imports it at module level.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import shutil
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agents.evaluation.score import mean_ci, pct_of_optimum
from agents.sweeps.config import Dim, SweepError
from agents.sweeps.spec import SweepSpec, load_sweep, parse_sweep
from agents.sweeps.trials import (
    TrialNamer,
    TrialSetup,
    derive_seed,
    sampled_hyperparams,
    sweep_trainable,
    trial_index,
    trial_name,
    trial_seed,
)

INSTALL_HINT = 'pip install "megapod-gym[ray]"'


def require_ray() -> None:
    """Fail with one line naming the install command when Ray Tune is missing."""
    try:
        import ray  # noqa: F401
        from ray import tune  # noqa: F401
    except ImportError as exc:
        raise SweepError(
            f"Ray Tune is not installed ({exc}); install it with: {INSTALL_HINT}"
        ) from None


# ----------------------------------------------------------------------------------- running
def _tune_space(node: Any) -> Any:
    from ray import tune

    if isinstance(node, Dim):
        a = node.args
        return {
            "grid": lambda: tune.grid_search(list(a)),
            "choice": lambda: tune.choice(list(a)),
            "uniform": lambda: tune.uniform(a[0], a[1]),
            "quniform": lambda: tune.quniform(a[0], a[1], a[2]),
            "loguniform": lambda: tune.loguniform(a[0], a[1]),
            "randint": lambda: tune.randint(a[0], a[1]),
            "lograndint": lambda: tune.lograndint(a[0], a[1]),
        }[node.op]()
    if isinstance(node, dict):
        return {k: _tune_space(v) for k, v in node.items()}
    return node


def param_space(spec: SweepSpec) -> dict[str, Any]:
    """Tune's param_space: algorithm x scenario x seeds x hyperparameters."""
    from ray import tune

    def grid(values: Sequence[Any]) -> Any:
        return tune.grid_search(list(values)) if len(values) > 1 else values[0]

    space: dict[str, Any] = {"algo": grid(list(spec.bases)), "scenario": grid(spec.scenarios)}
    if spec.seeds is not None:
        space["seed"] = grid(spec.seeds)
    if spec.replicates > 1:
        space["replicate"] = tune.grid_search(list(range(spec.replicates)))
    space.update(_tune_space(spec.space))
    return space


def _is_uri(path: str) -> bool:
    return "://" in path


def _check_shared_storage(storage: str) -> None:
    """On a multi-node cluster, a storage path must be visible from every node."""
    import uuid

    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    nodes = [n for n in ray.nodes() if n.get("Alive")]
    if len(nodes) <= 1 or _is_uri(storage):
        return
    marker = str(Path(storage) / f".megapod-storage-check-{uuid.uuid4().hex}")

    def on(node: dict[str, Any]) -> Any:
        return NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)

    @ray.remote(num_cpus=0)
    def write(path: str) -> str:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text("megapod")
        import socket

        return socket.gethostname()

    @ray.remote(num_cpus=0)
    def seen(path: str) -> bool:
        return os.path.exists(path)

    try:
        ray.get(write.options(scheduling_strategy=on(nodes[0])).remote(marker), timeout=120)
        found = ray.get(
            [seen.options(scheduling_strategy=on(n)).remote(marker) for n in nodes], timeout=120
        )
    except Exception as exc:  # noqa: BLE001
        raise SweepError(
            f"the cluster has {len(nodes)} nodes and storage {storage} is a local path that could "
            f"not be checked from every node ({exc}); pass --storage a path shared by every node "
            "(NFS, ...) or a URI such as s3://bucket/sweeps"
        ) from None
    missing = [n.get("NodeManagerAddress", n["NodeID"]) for n, ok in zip(nodes, found) if not ok]

    @ray.remote(num_cpus=0)
    def remove(path: str) -> None:
        Path(path).unlink(missing_ok=True)

    try:
        ray.get(remove.options(scheduling_strategy=on(nodes[0])).remote(marker), timeout=60)
    except Exception:  # noqa: BLE001 - a leftover marker file is harmless
        pass
    if missing:
        raise SweepError(
            f"the cluster has {len(nodes)} nodes but storage {storage} is a local path: nodes "
            f"{', '.join(missing)} cannot see it; pass --storage a path shared by every node "
            "(NFS, ...) mounted at the same place, or a URI such as s3://bucket/sweeps"
        )


def connect(address: str | None) -> bool:
    """Join the cluster at ``address`` (or $RAY_ADDRESS), else start a local Ray. Returns True
    when this call started Ray (and so should shut it down)."""
    import ray

    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS") or None
    warnings.filterwarnings("ignore", "Tip: In future versions of Ray", FutureWarning)
    try:
        if address:
            ray.init(address=address)
        else:
            # The minimal ray[tune] install has no metrics agent: don't log failing to reach it.
            os.environ.setdefault("RAY_enable_metrics_collection", "0")
            ray.init(num_cpus=os.cpu_count(), include_dashboard=False)
    except Exception as exc:  # noqa: BLE001 - Ray raises bare Exceptions on startup failures
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        hint = (
            "is the head node up (ray start --head --port=6379)?"
            if address
            else "on a slow or busy machine, start Ray first with 'ray start --head' and pass --address auto"
        )
        raise SweepError(f"could not start or join {where}: {exc}; {hint}") from None
    return True


@dataclasses.dataclass
class SweepOutcome:
    trials: list[dict[str, Any]]
    summary: list[dict[str, Any]]
    markdown: str
    paths: dict[str, Path]
    unfinished: int
    errors: int
    experiment_path: str

    @property
    def exit_code(self) -> int:
        return 130 if self.unfinished else (1 if self.errors else 0)


STATE_FILE = "sweep_state.json"
SPEC_FILE = "sweep.yaml"


def experiment_location(out: Path, storage: str | None, name: str) -> tuple[str, str]:
    """(storage_path, experiment path) — default storage is ``OUT/tune``."""
    storage = storage or str(out / "tune")
    if not _is_uri(storage):
        storage = str(Path(storage).expanduser().resolve())
    return storage, storage.rstrip("/") + "/" + name


def run_sweep(
    spec: SweepSpec,
    out: str | Path,
    storage: str | None = None,
    address: str | None = None,
    resume: bool = False,
    callbacks: Sequence[Any] | None = None,
    verbose: int = 1,
) -> SweepOutcome:
    """Run (or resume) ``spec`` on Ray Tune, then write ``OUT/runs/*`` and the aggregated tables.

    ``callbacks`` are extra ``ray.tune.Callback`` objects (they are saved with the experiment).
    """
    require_ray()
    # Each run folder snapshot forces an experiment state save; that is intended, not a warning.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search import BasicVariantGenerator

    out = Path(out)
    state_path = out / STATE_FILE
    if resume:
        if not state_path.is_file():
            raise SweepError(
                f"cannot resume: {state_path} not found (was the sweep started with --out {out}?)"
            )
        state = json.loads(state_path.read_text())
        storage = storage or state["storage"]
    elif out.exists() and any(out.iterdir()):
        raise SweepError(
            f"sweep folder {out} already exists; pass --resume to continue it or choose another --out"
        )
    storage_path, exp_path = experiment_location(out, storage, spec.name)
    started = connect(address)
    try:
        if address or os.environ.get("RAY_ADDRESS"):
            _check_shared_storage(storage_path)
        setup = TrialSetup(
            spec.bases,
            spec.sweep_seed,
            spec.final_benchmark,
            spec.name,
            max(1, int(spec.resources.get("cpu", 1))),
        )
        trainable = tune.with_resources(
            tune.with_parameters(sweep_trainable, setup=setup), dict(spec.resources)
        )
        if resume:
            if not tune.Tuner.can_restore(exp_path):
                raise SweepError(f"cannot resume: no Ray Tune experiment at {exp_path}")
            tuner = tune.Tuner.restore(
                exp_path, trainable, resume_unfinished=True, resume_errored=True
            )
        else:
            out.mkdir(parents=True, exist_ok=True)
            (out / SPEC_FILE).write_text(spec.to_yaml())
            state_path.write_text(
                json.dumps(
                    {"storage": storage_path, "experiment_path": exp_path, "name": spec.name},
                    indent=2,
                )
            )
            scheduler = None
            if spec.scheduler:
                scheduler = ASHAScheduler(
                    time_attr="step",
                    max_t=spec.scheduler["max_t"],
                    grace_period=spec.scheduler["grace_period"],
                    reduction_factor=spec.scheduler["reduction_factor"],
                )
            namer = TrialNamer(spec.sweep_seed)
            tuner = tune.Tuner(
                trainable,
                param_space=param_space(spec),
                tune_config=tune.TuneConfig(
                    metric=spec.metric,
                    mode=spec.mode,
                    num_samples=spec.num_samples,
                    scheduler=scheduler,
                    search_alg=BasicVariantGenerator(
                        random_state=spec.sweep_seed, max_concurrent=spec.max_concurrent_trials or 0
                    ),
                    reuse_actors=True,
                    trial_name_creator=namer,
                    trial_dirname_creator=namer,
                ),
                run_config=tune.RunConfig(
                    name=spec.name,
                    storage_path=storage_path,
                    callbacks=list(callbacks or []),
                    checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
                    failure_config=tune.FailureConfig(max_failures=spec.max_failures),
                    verbose=verbose,
                ),
            )
        t0 = time.time()
        grid = tuner.fit()
        wall = time.time() - t0
        return finish(spec, out, grid, exp_path, wall)
    finally:
        if started:
            import ray

            ray.shutdown()


def _saved_statuses(exp_path: str) -> dict[str, str]:
    """Trial folder name -> status in the experiment state Tune saved last (what ``--resume``
    will see; in memory, Tune marks interrupted trials TERMINATED while cleaning up)."""
    from ray import tune

    try:
        return {
            Path(str(t.path)).name: str(t.status) for t in tune.ExperimentAnalysis(exp_path).trials
        }
    except Exception:  # noqa: BLE001 - no saved state yet
        return {}


def _index_of(result: Any, metrics: Mapping[str, Any]) -> int:
    if "trial_index" in metrics:
        return int(metrics["trial_index"])
    head = Path(str(result.path)).name.split("_", 1)[0]  # our trial folders start with the index
    return int(head) if head.isdigit() else trial_index(str(metrics.get("trial_id", head)))


def finish(
    spec: SweepSpec, out: Path, grid: Any, exp_path: str, wall: float = float("nan")
) -> SweepOutcome:
    """Copy every trial's run folder to ``OUT/runs`` and write the aggregated tables.

    Trial status: ``finished`` (trained to the end), ``error``, ``stopped`` (ended early by the
    scheduler) or ``unfinished`` (interrupted or never started; ``--resume`` runs it)."""
    saved = _saved_statuses(exp_path)
    runs = out / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    trials = []
    for result in grid:
        m = dict(result.metrics or {})
        config = dict(result.config or {})
        index = _index_of(result, m)
        name = trial_name(config, spec.sweep_seed, index) if config else Path(result.path).name
        tune_status = saved.get(Path(str(result.path)).name, "")
        if result.error is not None or tune_status == "ERROR":
            status = "error"
        elif tune_status in ("PENDING", "RUNNING", "PAUSED"):
            status = "unfinished"
        elif m.get("final"):
            status = "finished"
        elif tune_status == "TERMINATED":
            status = "stopped"
        else:
            status = "unfinished"
        row: dict[str, Any] = {
            "trial": name,
            "trial_id": m.get("trial_id", ""),
            "status": status,
            "algo": config.get("algo", m.get("algo")),
            "scenario": config.get("scenario", m.get("scenario")),
            "seed": m.get("seed", trial_seed(config, spec.sweep_seed, index) if config else None),
            "hyperparams": json.dumps(sampled_hyperparams(config), sort_keys=True, default=str),
            "best_normalized_score": m.get("best/normalized_score", float("nan")),
            "best_profit_usd": m.get("best/profit_usd", float("nan")),
            "best_pct_of_optimum": m.get("best/pct_of_optimum", float("nan")),
            "best_step": m.get("best/step"),
            "timesteps": m.get("timesteps", m.get("step")),
            "error": str(result.error).strip().splitlines()[-1] if result.error is not None else "",
            "tune_dir": str(result.path),
            "run_dir": "",
        }
        row.update({k: v for k, v in m.items() if k.startswith(("baseline/", "optimum/"))})
        if result.checkpoint is not None:
            dest = runs / name
            try:
                if dest.exists():
                    shutil.rmtree(dest)
                result.checkpoint.to_directory(str(dest))
                row["run_dir"] = str(dest)
            except Exception as exc:  # noqa: BLE001 - e.g. a driver that cannot read the storage
                row["error"] = row["error"] or f"run folder not copied: {exc}"
        trials.append(row)
    trials.sort(key=lambda r: r["trial"])
    # with a concurrency limit Tune creates trials lazily: count the ones not created yet too
    unfinished = sum(r["status"] == "unfinished" for r in trials)
    unfinished += max(spec.n_trials - len(trials), 0)
    errors = sum(r["status"] == "error" for r in trials)
    summary = aggregate(trials)
    md = sweep_markdown(spec, summary, trials, wall)
    from agents.evaluation.benchmark import write_csv

    paths = {
        "table": out / "results.md",
        "summary": out / "results.csv",
        "trials": out / "trials.csv",
    }
    paths["table"].write_text(md + "\n")
    write_csv(summary or [{"scenario": "", "policy": ""}], paths["summary"])
    write_csv(trials or [{"trial": ""}], paths["trials"])
    return SweepOutcome(trials, summary, md, paths, unfinished, errors, exp_path)


def _has_result(row: Mapping[str, Any]) -> bool:
    return isinstance(row.get("best_profit_usd"), (int, float)) and math.isfinite(
        row["best_profit_usd"]
    )


# ------------------------------------------------------------------------------- aggregation
BASELINE_RE = re.compile(r"^baseline/([^/]+)/(profit_usd|normalized_score)$")


def _label(row: Mapping[str, Any]) -> str:
    hp = json.loads(row["hyperparams"]) if row.get("hyperparams") else {}
    return row["algo"] + (
        f" ({', '.join(f'{k}={v}' for k, v in sorted(hp.items()))})" if hp else ""
    )


def _mean(values: Sequence[float]) -> float:
    finite = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def aggregate(trials: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per scenario: each trained configuration (mean ± 95 % CI over its seeds of the best held-out
    normalized score and profit), then the baselines and the hindsight optimum on the same traces."""
    rows: list[dict[str, Any]] = []
    usable = [t for t in trials if t["status"] != "error" and _has_result(t)]
    for scenario in dict.fromkeys(t["scenario"] for t in usable):
        here = [t for t in usable if t["scenario"] == scenario]
        for label in dict.fromkeys(_label(t) for t in here):
            group = [t for t in here if _label(t) == label]
            score = np.array([t["best_normalized_score"] for t in group], dtype=float)
            profit = np.array([t["best_profit_usd"] for t in group], dtype=float)
            pct = np.array([t["best_pct_of_optimum"] for t in group], dtype=float)
            s_mean, s_ci = (
                mean_ci(score) if np.isfinite(score).all() else (float("nan"), float("nan"))
            )
            p_mean, p_ci = mean_ci(profit)
            rows.append(
                {
                    "scenario": scenario,
                    "policy": label,
                    "kind": "trained",
                    "algo": group[0]["algo"],
                    "hyperparams": group[0]["hyperparams"],
                    "trials": len(group),
                    "seeds": " ".join(str(t["seed"]) for t in group),
                    "normalized_score": s_mean,
                    "normalized_score_ci": s_ci,
                    "profit_usd": p_mean,
                    "profit_usd_ci": p_ci,
                    "pct_of_optimum": _mean(list(pct)),
                    "best_step": _mean(
                        [t["best_step"] for t in group if t["best_step"] is not None]
                    ),
                }
            )
        names = dict.fromkeys(m.group(1) for t in here for k in t if (m := BASELINE_RE.match(k)))
        optimum = _mean([t.get("optimum/profit_usd", float("nan")) for t in here])
        for name in names:
            profit_b = _mean([t.get(f"baseline/{name}/profit_usd", float("nan")) for t in here])
            rows.append(
                {
                    "scenario": scenario,
                    "policy": name,
                    "kind": "baseline",
                    "normalized_score": _mean(
                        [t.get(f"baseline/{name}/normalized_score", float("nan")) for t in here]
                    ),
                    "profit_usd": profit_b,
                    "pct_of_optimum": pct_of_optimum(profit_b, optimum),
                }
            )
        if math.isfinite(optimum):
            rows.append(
                {
                    "scenario": scenario,
                    "policy": "hindsight-optimum",
                    "kind": "optimum",
                    "normalized_score": 100.0,
                    "profit_usd": optimum,
                    "pct_of_optimum": 100.0,
                }
            )
    return rows


def sweep_markdown(
    spec: SweepSpec,
    summary: Sequence[Mapping[str, Any]],
    trials: Sequence[Mapping[str, Any]],
    wall: float = float("nan"),
) -> str:
    from agents.evaluation.benchmark import _fmt

    def pm(row: Mapping[str, Any], key: str, spec_: str) -> str:
        value = _fmt(row.get(key, float("nan")), spec_)
        ci = row.get(f"{key}_ci")
        if ci is None:
            return value
        return f"{value} ± {_fmt(ci, spec_)}" if math.isfinite(ci) else value

    counts: dict[str, int] = {}
    for t in trials:
        counts[t["status"]] = counts.get(t["status"], 0) + 1
    if spec.n_trials > len(trials):
        counts["not started"] = spec.n_trials - len(trials)
    lines = [
        f"## Sweep {spec.name}",
        "",
        f"{max(spec.n_trials, len(trials))} trials "
        f"({', '.join(f'{n} {s}' for s, n in sorted(counts.items()))})"
        + (f" in {wall / 60:.1f} min" if math.isfinite(wall) else "")
        + f"; metric {spec.metric} ({spec.mode}).",
        "",
    ]
    for scenario in dict.fromkeys(r["scenario"] for r in summary):
        lines += [
            f"### {Path(scenario).stem}",
            "",
            "| policy | trials | normalized score (mean ± 95 % CI) | profit $/episode (mean ± 95 % CI) | % of optimum |",
            "|---|---|---|---|---|",
        ]
        for r in (r for r in summary if r["scenario"] == scenario):
            name = r["policy"] if r["kind"] == "trained" else f"{r['policy']} ({r['kind']})"
            lines.append(
                f"| {name} | {r.get('trials', '')} | {pm(r, 'normalized_score', '.1f')} | "
                f"{pm(r, 'profit_usd', ',.0f')} | {_fmt(r.get('pct_of_optimum', float('nan')), '.2f')} |"
            )
        lines.append("")
    lines.append(
        "Trained rows: each trial's best held-out evaluation during training (best/eval.json), "
        "mean ± 95 % Student-t CI over seeds. Baselines and the hindsight optimum ran on the same "
        "held-out traces. Normalized score: 0 = cars-first greedy, 100 = hindsight optimum."
    )
    return "\n".join(lines)


__all__ = [
    "INSTALL_HINT",
    "SweepError",
    "SweepSpec",
    "derive_seed",
    "load_sweep",
    "parse_sweep",
    "require_ray",
    "run_sweep",
    "sweep_trainable",
]
