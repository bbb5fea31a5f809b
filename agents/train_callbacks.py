"""Training callbacks: held-out evaluation with baseline reference curves, checkpoints, progress."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import HParam
from tqdm.auto import tqdm

from agents.baselines import BASELINES
from agents.evaluation import eval_seeds, normalized_score, run_policy
from agents.train_config import TrainConfig
from megapod_gym.config import load_scenario
from megapod_gym.sim import layout as L

KPI_TAGS = {
    "cars_served": "cars_served",
    "cars_balked": "balked",
    "mean_wait_min": "mean_wait_min",
    "peak_import_kw": "peak_import_kw",
    "compute_kwh": "compute_kwh",
    "battery_cycles": "battery_cycles",
}
REFERENCE_BASELINES = ("greedy", "tou-arbitrage", "price-threshold", "peak-shaving")


def _means(rows: list[dict[str, Any]]) -> dict[str, float]:
    return {
        k: float(np.mean([r[k] for r in rows]))
        for k in rows[0]
        if isinstance(rows[0][k], (int, float))
    }


class HeldOutEvalCallback(BaseCallback):
    """Every ``cfg.eval.freq`` env steps: run the current policy deterministically on the held-out
    evaluation traces and log ``eval/normalized_score``, ``eval/profit_usd``,
    ``eval/pct_of_optimum``, every ledger term (``eval/ledger/...``) and KPIs (``eval/kpi/...``),
    plus the baselines' and the optimum's values on the same traces as flat reference curves
    (``baseline/<name>/...``, ``optimum/profit_usd``). Saves the best model by normalized score
    (by profit when the optimum is not solved)."""

    def __init__(
        self,
        cfg: TrainConfig,
        run_dir: Path,
        report: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.run_dir = run_dir
        self.report = report
        self.config = load_scenario(
            cfg.scenario, {**cfg.config_overrides, "episode.days": cfg.eval.days}
        )
        self.seeds = eval_seeds(cfg.eval.n_episodes)
        self.reference: dict[str, dict[str, float]] = {}
        self.greedy = np.zeros(0)
        self.optimum: np.ndarray | None = None
        self.last_eval_step = -1
        best = run_dir / "best" / "eval.json"
        self.best_metrics: dict[str, Any] = json.loads(best.read_text()) if best.is_file() else {}

    def _key(self, metrics: dict[str, Any]) -> float:
        return float(metrics.get("normalized_score", metrics.get("profit_usd", -np.inf)))

    def _on_training_start(self) -> None:
        for name in REFERENCE_BASELINES:
            rows = run_policy(BASELINES[name](), self.config, self.seeds).rows
            self.reference[name] = {
                "profit": np.array([r["profit_usd"] for r in rows]),
                **{f"mean_{k}": v for k, v in _means(rows).items()},
            }
        self.greedy = self.reference["greedy"]["profit"]
        if self.cfg.eval.with_oracle:
            from agents.oracle import solve_hindsight
            from megapod_gym.scenario.trace import TraceSampler

            trace = TraceSampler(self.config).sample(self.seeds)
            self.optimum = np.array(
                [
                    solve_hindsight(self.config, trace.site(i)).objective_usd
                    for i in range(len(self.seeds))
                ]
            )
        hparams = {
            "algo": self.cfg.algo,
            "scenario": self.cfg.scenario,
            "n_envs": self.cfg.n_envs,
            "seed": self.cfg.seed,
            "n_timesteps": self.cfg.n_timesteps,
            **{
                k: v if isinstance(v, (int, float, str, bool)) else str(v)
                for k, v in self.cfg.hyperparams.items()
            },
        }
        metric_dict = {
            "eval/normalized_score": 0.0,
            "eval/profit_usd": 0.0,
            "eval/pct_of_optimum": 0.0,
        }
        self.logger.record(
            "hparams", HParam(hparams, metric_dict), exclude=("stdout", "log", "json", "csv")
        )

    def _on_step(self) -> bool:
        if (
            self.num_timesteps - max(self.last_eval_step, 0) >= self.cfg.eval.freq
            or self.last_eval_step < 0
            and self.num_timesteps >= self.cfg.eval.freq
        ):
            self.evaluate_now()
        return True

    def evaluate_now(self) -> dict[str, Any]:
        from agents.train import current_policy, save_model

        t0 = time.perf_counter()
        rows = run_policy(current_policy(self.model), self.config, self.seeds).rows
        profit = np.array([r["profit_usd"] for r in rows])
        means = _means(rows)
        metrics: dict[str, Any] = {
            "step": int(self.num_timesteps),
            "profit_usd": float(profit.mean()),
        }
        log = self.logger.record
        log("eval/profit_usd", metrics["profit_usd"])
        if self.optimum is not None:
            metrics["normalized_score"] = normalized_score(profit, self.greedy, self.optimum)
            metrics["pct_of_optimum"] = 100.0 * float(profit.sum() / self.optimum.sum())
            log("eval/normalized_score", metrics["normalized_score"])
            log("eval/pct_of_optimum", metrics["pct_of_optimum"])
            log("optimum/profit_usd", float(self.optimum.mean()))
        for term in L.LEDGER_FIELDS:
            if term != "total_usd":
                log(f"eval/ledger/{term}", means[term])
        for key, tag in KPI_TAGS.items():
            log(f"eval/kpi/{tag}", means[key])
            metrics[key] = means[key]
        for name, ref in self.reference.items():
            log(f"baseline/{name}/profit_usd", float(ref["profit"].mean()))
            if self.optimum is not None:
                log(
                    f"baseline/{name}/normalized_score",
                    normalized_score(ref["profit"], self.greedy, self.optimum),
                )
            for key, tag in KPI_TAGS.items():
                log(f"baseline/{name}/kpi/{tag}", ref[f"mean_{key}"])
        log("eval/seconds", time.perf_counter() - t0)
        self.logger.dump(self.num_timesteps)
        self.last_eval_step = self.num_timesteps
        if not self.best_metrics or self._key(metrics) > self._key(self.best_metrics):
            self.best_metrics = metrics
            save_model(self.model, self.run_dir / "best")
            (self.run_dir / "best" / "eval.json").write_text(json.dumps(metrics, indent=2))
        if self.report is not None:
            self.report(dict(metrics))
        return metrics


class FleetHeldOutEvalCallback(HeldOutEvalCallback):
    """:class:`HeldOutEvalCallback` for a fleet (``cfg.scenario`` names a fleet): the current
    policy, the fleet baselines and the fleet hindsight LP on the held-out fleet days; logs
    ``eval/normalized_score`` (0 = independent-greedy, 100 = the LP), ``eval/profit_usd``,
    ``eval/pct_of_optimum`` and the fleet KPIs (``eval/kpi/...``, ``baseline/<name>/...``)."""

    def __init__(
        self,
        cfg: TrainConfig,
        run_dir: Path,
        report: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        from agents.fleet_evaluation import fleet_for_eval
        from megapod_gym.config.fleet import load_fleet

        BaseCallback.__init__(self)
        self.cfg = cfg
        self.run_dir = run_dir
        self.report = report
        self.config = fleet_for_eval(  # type: ignore[assignment]
            load_fleet(cfg.scenario, cfg.config_overrides or None), cfg.eval.days
        )
        self.seeds = eval_seeds(cfg.eval.n_episodes)
        self.reference = {}
        self.greedy = np.zeros(0)
        self.optimum = None
        self.last_eval_step = -1
        best = run_dir / "best" / "eval.json"
        self.best_metrics = json.loads(best.read_text()) if best.is_file() else {}

    def _on_training_start(self) -> None:
        from agents.fleet_evaluation import FLEET_ZERO, fleet_optimum, run_fleet_policy
        from agents.fleet_policies import FLEET_BASELINES

        for name, cls in FLEET_BASELINES.items():
            rows = run_fleet_policy(cls(), self.config, self.seeds)  # type: ignore[arg-type]
            self.reference[name] = {
                "profit": np.array([r["profit_usd"] for r in rows]),
                **{f"mean_{k}": v for k, v in _means(rows).items()},
            }
        self.greedy = self.reference[FLEET_ZERO]["profit"]
        if self.cfg.eval.with_oracle:
            self.optimum = fleet_optimum(self.config, self.seeds)  # type: ignore[arg-type]
        self.logger.record(
            "hparams",
            HParam(
                {"algo": self.cfg.algo, "fleet": self.cfg.scenario, "seed": self.cfg.seed},
                {"eval/normalized_score": 0.0, "eval/profit_usd": 0.0},
            ),
            exclude=("stdout", "log", "json", "csv"),
        )

    def evaluate_now(self) -> dict[str, Any]:
        from agents.fleet_evaluation import FLEET_KPIS, run_fleet_policy
        from agents.train import current_policy, save_model

        t0 = time.perf_counter()
        rows = run_fleet_policy(current_policy(self.model), self.config, self.seeds)  # type: ignore[arg-type]
        profit = np.array([r["profit_usd"] for r in rows])
        means = _means(rows)
        metrics: dict[str, Any] = {
            "step": int(self.num_timesteps),
            "profit_usd": float(profit.mean()),
        }
        log = self.logger.record
        log("eval/profit_usd", metrics["profit_usd"])
        if self.optimum is not None:
            metrics["normalized_score"] = normalized_score(profit, self.greedy, self.optimum)
            metrics["pct_of_optimum"] = 100.0 * float(profit.sum() / self.optimum.sum())
            log("eval/normalized_score", metrics["normalized_score"])
            log("eval/pct_of_optimum", metrics["pct_of_optimum"])
            log("optimum/profit_usd", float(self.optimum.mean()))
        for k in FLEET_KPIS:
            log(f"eval/kpi/{k}", means[k])
            metrics[k] = means[k]
        for name, ref in self.reference.items():
            log(f"baseline/{name}/profit_usd", float(ref["profit"].mean()))
            if self.optimum is not None:
                log(
                    f"baseline/{name}/normalized_score",
                    normalized_score(ref["profit"], self.greedy, self.optimum),
                )
            for k in FLEET_KPIS:
                log(f"baseline/{name}/kpi/{k}", ref[f"mean_{k}"])
        log("eval/seconds", time.perf_counter() - t0)
        self.logger.dump(self.num_timesteps)
        self.last_eval_step = self.num_timesteps
        if not self.best_metrics or self._key(metrics) > self._key(self.best_metrics):
            self.best_metrics = metrics
            save_model(self.model, self.run_dir / "best")
            (self.run_dir / "best" / "eval.json").write_text(json.dumps(metrics, indent=2))
        if self.report is not None:
            self.report(dict(metrics))
        return metrics


class CheckpointCallback(BaseCallback):
    """Saves model, VecNormalize statistics and (off-policy) replay buffer every ``freq`` env steps."""

    def __init__(self, freq: int, folder: Path) -> None:
        super().__init__()
        self.freq = freq
        self.folder = folder
        self.last = 0

    def _on_training_start(self) -> None:
        self.last = self.num_timesteps

    def _on_step(self) -> bool:
        if self.num_timesteps - self.last >= self.freq:
            self.save(self.model, self.folder)
            self.last = self.num_timesteps
        return True

    @staticmethod
    def save(model: Any, folder: Path) -> None:
        from stable_baselines3.common.vec_env import VecNormalize

        folder.mkdir(parents=True, exist_ok=True)
        n = model.num_timesteps
        model.save(folder / f"model_{n}_steps.zip")
        env = model.get_env()
        if isinstance(env, VecNormalize):
            env.save(str(folder / f"vecnormalize_{n}_steps.pkl"))
        if (
            hasattr(model, "save_replay_buffer")
            and getattr(model, "replay_buffer", None) is not None
        ):
            model.save_replay_buffer(folder / f"replay_buffer_{n}_steps.pkl")


class TqdmCallback(BaseCallback):
    """A progress bar over env steps (continues from the resumed step)."""

    def __init__(self, total: int, start: int = 0) -> None:
        super().__init__()
        self.total = total
        self.start = start
        self.bar: Any = None

    def _on_training_start(self) -> None:
        self.bar = tqdm(
            total=self.total,
            initial=self.start,
            desc="train",
            unit="step",
            dynamic_ncols=True,
            mininterval=2.0,
        )

    def _on_step(self) -> bool:
        self.bar.update(self.num_timesteps - self.bar.n)
        return True

    def _on_training_end(self) -> None:
        self.bar.close()
