"""How close does behaviour cloning get to its teacher? Network size, epochs and DAgger rounds.

For each scenario and variant, a PPO model is built from a training config (default
``configs/train/ppo-bc.yaml``) with the variant's network and pretraining settings, the teacher
(``--expert``, default MPC) is cloned, and the clone (no RL) is scored on ``--days`` *validation*
days (the days training uses for model selection; never the test days of the experiments table)
next to the teacher itself. Writes ``experiments/results_cloning_<date>.{md,csv}`` after every
variant.

    python experiments/cloning_levers.py --scenarios urban-12stall-bev demand-charge-heavy
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path
from typing import Any

import numpy as np

from agents.evaluation.rollout import run_policy, validation_seeds
from agents.evaluation.score import normalized_score
from agents.policies.registry import make_policy
from agents.policies.trained import TrainedPolicy
from agents.training.config import algo_class, load_train_config
from agents.training.pretrain import pretrain
from agents.training.train import make_train_env
from megapod_gym.config import load_scenario

HERE = Path(__file__).resolve().parent

# name -> (net_arch, pretrain overrides)
VARIANTS: dict[str, tuple[list[int], dict[str, Any]]] = {
    "64x64, 30 epochs": ([64, 64], {"epochs": 30}),
    "256x256, 100 epochs": ([256, 256], {"epochs": 100}),
    "256x256, 100 epochs, DAgger 2x64 days": (
        [256, 256],
        {"epochs": 100, "dagger_rounds": 2, "dagger_days": 64},
    ),
}


def profits(policy: Any, config: Any, seeds: list[int]) -> np.ndarray:
    return np.array([r["profit_usd"] for r in run_policy(policy, config, seeds).rows])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenarios", nargs="+", default=["urban-12stall-bev"])
    ap.add_argument("--config", type=Path, default=Path("configs/train/ppo-bc.yaml"))
    ap.add_argument("--expert", default="mpc")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS))
    ap.add_argument("--days", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    date = time.strftime("%Y-%m-%d")
    out_md = HERE / f"results_cloning_{date}.md"
    rows: list[dict[str, Any]] = []
    if out_md.with_suffix(".csv").is_file():  # earlier runs of the day: kept unless re-measured
        with out_md.with_suffix(".csv").open() as fh:
            rows = list(csv.DictReader(fh))
    seeds = validation_seeds(args.days)
    for scenario in args.scenarios:
        config = load_scenario(scenario)
        from agents.optim.oracle import solve_hindsight
        from megapod_gym.scenario.trace import TraceSampler

        trace = TraceSampler(config).sample(seeds)
        optimum = np.array(
            [solve_hindsight(config, trace.site(i)).objective_usd for i in range(len(seeds))]
        )
        greedy = profits(make_policy("greedy"), config, seeds)
        teacher = normalized_score(
            profits(make_policy(args.expert), config, seeds), greedy, optimum
        )
        for variant in args.variants:
            net, pre = VARIANTS[variant]
            base = load_train_config(args.config, {"scenario": scenario, "seed": args.seed})
            raw = base.model_dump(mode="json")
            raw["policy_kwargs"] = {**(raw.get("policy_kwargs") or {}), "net_arch": net}
            raw["pretrain"] = {**raw["pretrain"], "expert": args.expert, **pre}
            cfg = type(base).model_validate(raw)
            env = make_train_env(cfg)
            policy: Any = cfg.policy
            if cfg.privileged_critic:
                from agents.training.asymmetric import AsymmetricActorCriticPolicy

                policy = AsymmetricActorCriticPolicy
            model = algo_class(cfg.algo)(policy, env, seed=cfg.seed, verbose=0, **cfg.algo_kwargs())
            t0 = time.time()
            info = pretrain(model, cfg.pretrain, config, seed=cfg.seed, progress=False)
            seconds = time.time() - t0
            clone = normalized_score(
                profits(TrainedPolicy(model, None), config, seeds), greedy, optimum
            )
            env.close()
            key = (scenario, variant, args.expert)
            rows = [r for r in rows if (r["scenario"], r["variant"], r["teacher"]) != key]
            rows.append(
                {
                    "scenario": scenario,
                    "variant": variant,
                    "teacher": args.expert,
                    "teacher_score": round(teacher, 1),
                    "clone_score": round(clone, 1),
                    "gap": round(clone - teacher, 1),
                    "bc_mse_first_demos": round(info["bc_mse"], 5),
                    "demo_s": round(info["demo_seconds"]),
                    "bc_s": round(info["bc_seconds"]),
                    "total_s": round(seconds),
                }
            )
            print(rows[-1], flush=True)
            write(rows, out_md, args, date)


def write(rows: list[dict[str, Any]], out_md: Path, args: Any, date: str) -> None:
    cols = list(rows[-1])
    with out_md.with_suffix(".csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, cols, restval="")
        w.writeheader()
        w.writerows(rows)
    lines = [
        f"# Behaviour cloning vs its teacher ({date})",
        "",
        "Command: `python experiments/cloning_levers.py --scenarios SCENARIO... --expert TEACHER"
        f" --days {args.days}` (rows of several runs of the day; the teacher column says which)  ",
        f"Normalized score of the clone (no RL) and of the teacher on {args.days} validation days;"
        " times in seconds on this 2-core machine (demonstrations are cached across variants,"
        " so only the first variant of a scenario pays for them; DAgger rounds are never cached).",
        "",
        "| " + " | ".join(cols) + " |",
        "|" + "---|" * len(cols),
        *("| " + " | ".join(str(r.get(c, "")) for c in cols) + " |" for r in rows),
    ]
    out_md.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
