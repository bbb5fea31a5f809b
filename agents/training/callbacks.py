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

from agents.evaluation.fleet import FLEET_KPIS
from agents.evaluation.rollout import run_policy, validation_seeds
from agents.evaluation.score import normalized_score, pct_of_optimum
from agents.policies.rules import BASELINES
from agents.training.behaviour_cloning import set_actor_trainable
from agents.training.config import TrainConfig
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
RULE_REFERENCES = ("tou-arbitrage", "price-threshold", "peak-shaving")  # fixed rules


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
    plus the baselines' (rules, tuned rule, MPC) and the optimum's values on the same traces as
    flat reference curves (``baseline/<name>/...``, ``reference/best_rule/...``,
    ``reference/optimum/normalized_score`` = 100, ``optimum/profit_usd``). Saves the best model by normalized score
    (by profit when the optimum is not solved).

    Subclasses (the fleet) override :meth:`load_config`, :meth:`references`, :meth:`rows_of`,
    ``kpi_tags`` and ``ledger_terms``."""

    kpi_tags: dict[str, str] = KPI_TAGS
    ledger_terms: tuple[str, ...] = tuple(t for t in L.LEDGER_FIELDS if t != "total_usd")

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
        self.config = self.load_config()
        self.seeds = validation_seeds(cfg.eval.n_episodes)
        self.reference: dict[str, dict[str, float]] = {}
        self.greedy = np.zeros(0)
        self.optimum: np.ndarray | None = None
        self.last_eval_step = -1
        best = run_dir / "best" / "eval.json"
        self.best_metrics: dict[str, Any] = json.loads(best.read_text()) if best.is_file() else {}

    def _key(self, metrics: dict[str, Any]) -> float:
        return float(metrics.get("normalized_score", metrics.get("profit_usd", -np.inf)))

    def load_config(self) -> Any:
        """The evaluation scenario (the training scenario with the evaluation episode length)."""
        cfg = self.cfg
        return load_scenario(cfg.scenario, {**cfg.config_overrides, "episode.days": cfg.eval.days})

    def rows_of(self, policy: Any) -> list[dict[str, Any]]:
        """Episode summary rows of ``policy`` on the evaluation traces."""
        return run_policy(policy, self.config, self.seeds).rows

    def current_policy(self) -> Any:
        """The model being trained as a policy of the evaluation env."""
        from agents.training.run_folder import current_policy

        return current_policy(self.model)

    def references(self) -> tuple[dict[str, Any], str, np.ndarray | None]:
        """(baseline policies by name, the name of the score's 0, the optimum's profit per
        trace or None)."""
        optimum = None
        if self.cfg.eval.with_oracle:
            from agents.optim.oracle import solve_hindsight
            from megapod_gym.scenario.trace import TraceSampler

            trace = TraceSampler(self.config).sample(self.seeds)
            optimum = np.array(
                [
                    solve_hindsight(self.config, trace.site(i)).objective_usd
                    for i in range(len(self.seeds))
                ]
            )
        from agents.optim.mpc import MPCPolicy
        from agents.optim.rule_tuning import TunedRulePolicy

        refs: dict[str, Any] = {n: BASELINES[n]() for n in REFERENCE_BASELINES}
        refs["tuned-rule"] = TunedRulePolicy()
        refs["mpc"] = MPCPolicy()
        return refs, "greedy", optimum

    def _on_training_start(self) -> None:
        baselines, zero, self.optimum = self.references()
        for name, policy in baselines.items():
            rows = self.rows_of(policy)
            self.reference[name] = {
                "profit": np.array([r["profit_usd"] for r in rows]),
                **{f"mean_{k}": v for k, v in _means(rows).items()},
            }
        self.greedy = self.reference[zero]["profit"]
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
        if self.num_timesteps > 0:  # resumed: HPARAMS were written by the first session, and
            self.last_eval_step = self.num_timesteps  # evaluations keep their cadence
        else:
            self.logger.record(
                "hparams", HParam(hparams, metric_dict), exclude=("stdout", "log", "json", "csv")
            )
        if self.num_timesteps == 0 and (
            self.cfg.pretrain is not None or self.cfg.fleet_action == "battery"
        ):  # the cloned policy (or global-greedy's idle battery) is a candidate for best/ too
            self.evaluate_now()

    def _on_step(self) -> bool:
        if (
            self.num_timesteps - max(self.last_eval_step, 0) >= self.cfg.eval.freq
            or self.last_eval_step < 0
            and self.num_timesteps >= self.cfg.eval.freq
        ):
            self.evaluate_now()
        return True

    def evaluate_now(self) -> dict[str, Any]:
        from agents.training.run_folder import save_model

        t0 = time.perf_counter()
        rows = self.rows_of(self.current_policy())
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
            metrics["pct_of_optimum"] = pct_of_optimum(profit, self.optimum)
            log("eval/normalized_score", metrics["normalized_score"])
            log("eval/pct_of_optimum", metrics["pct_of_optimum"])
            log("optimum/profit_usd", float(self.optimum.mean()))
        for term in self.ledger_terms:
            log(f"eval/ledger/{term}", means[term])
        for key, tag in self.kpi_tags.items():
            log(f"eval/kpi/{tag}", means[key])
            metrics[key] = means[key]
        for name, ref in self.reference.items():
            log(f"baseline/{name}/profit_usd", float(ref["profit"].mean()))
            if self.optimum is not None:
                log(
                    f"baseline/{name}/normalized_score",
                    normalized_score(ref["profit"], self.greedy, self.optimum),
                )
            for key, tag in self.kpi_tags.items():
                log(f"baseline/{name}/kpi/{tag}", ref[f"mean_{key}"])
        rules = [n for n in self.reference if n in RULE_REFERENCES]
        if rules:  # the best fixed rule on these days, as one reference line
            best = max(rules, key=lambda n: float(self.reference[n]["profit"].sum()))
            log("reference/best_rule/profit_usd", float(self.reference[best]["profit"].mean()))
            if self.optimum is not None:
                log(
                    "reference/best_rule/normalized_score",
                    normalized_score(self.reference[best]["profit"], self.greedy, self.optimum),
                )
        if self.optimum is not None:
            log("reference/optimum/normalized_score", 100.0)
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
    policy, the fleet baselines and the fleet hindsight LP on the held-out fleet days;
    ``eval/normalized_score`` has 0 = independent-greedy, 100 = the fleet LP, and the KPIs are the
    fleet's (jobs on time, migrations, energy per useful work, ...)."""

    kpi_tags = {k: k for k in FLEET_KPIS}
    ledger_terms = ()

    def load_config(self) -> Any:
        from agents.evaluation.fleet import fleet_for_eval
        from megapod_gym.config.fleet import load_fleet

        cfg = self.cfg
        return fleet_for_eval(load_fleet(cfg.scenario, cfg.config_overrides or None), cfg.eval.days)

    def rows_of(self, policy: Any) -> list[dict[str, Any]]:
        from agents.evaluation.fleet import run_fleet_policy

        return run_fleet_policy(policy, self.config, self.seeds)

    def current_policy(self) -> Any:
        policy = super().current_policy()
        if self.cfg.fleet_action == "battery":
            from agents.policies.fleet_battery import ModelBatteryGlobalGreedy

            return ModelBatteryGlobalGreedy(policy)
        return policy

    def references(self) -> tuple[dict[str, Any], str, np.ndarray | None]:
        from agents.evaluation.fleet import FLEET_ZERO, fleet_optimum
        from agents.policies.fleet_rules import FLEET_BASELINES

        optimum = fleet_optimum(self.config, self.seeds) if self.cfg.eval.with_oracle else None
        return {n: cls() for n, cls in FLEET_BASELINES.items()}, FLEET_ZERO, optimum


class CriticWarmupCallback(BaseCallback):
    """Keeps the actor frozen until ``until_step`` env steps: the updates in between train only
    the critic (the value of the cloned policy), then both train."""

    def __init__(self, until_step: int) -> None:
        super().__init__()
        self.until_step = until_step
        self.frozen = False

    def _on_training_start(self) -> None:
        if self.num_timesteps < self.until_step:
            set_actor_trainable(self.model, False)
            self.frozen = True

    def _on_rollout_end(self) -> None:
        # called after a rollout is collected and before the update that uses it
        if self.frozen and self.num_timesteps > self.until_step:
            set_actor_trainable(self.model, True)
            self.frozen = False

    def _on_step(self) -> bool:
        return True

    def _on_training_end(self) -> None:
        if self.frozen:
            set_actor_trainable(self.model, True)
            self.frozen = False


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

        from agents.training.run_folder import save_atomically

        folder.mkdir(parents=True, exist_ok=True)
        n = model.num_timesteps
        env = model.get_env()
        # statistics and buffer first, the model last: a model file marks a complete checkpoint
        if isinstance(env, VecNormalize):
            save_atomically(lambda p: env.save(str(p)), folder / f"vecnormalize_{n}_steps.pkl")
        if (
            hasattr(model, "save_replay_buffer")
            and getattr(model, "replay_buffer", None) is not None
        ):
            save_atomically(model.save_replay_buffer, folder / f"replay_buffer_{n}_steps.pkl")
        save_atomically(model.save, folder / f"model_{n}_steps.zip")


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
