"""Policy-search variants from one clone: how far does each variant move the same DAgger clone?

For each training seed it builds the clone once (demonstrations, cloning and DAgger exactly as
``--config`` says), then runs every ``--variants`` entry from that same clone and scores the
result on 30 validation and 30 test days (normalized score, and the mean profit per day against
MPC on the same days). A variant is one or more search stages joined by ``+``, each a
comma-separated list of ``pretrain.search`` fields overriding the config's, e.g.
``layers=head,iterations=60+layers=actor,iterations=60`` (the head first, then the whole actor).

Appends one JSON line per (seed, variant) to ``<out>.jsonl`` as it goes and rewrites
``<out>.md`` from all lines after each.

    python experiments/search_variants.py --scenario urban-12stall-bev --seeds 0 1 \\
        --variants "layers=head,iterations=60" "layers=head,iterations=150"
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from agents.evaluation.rollout import eval_seeds, run_policy, validation_seeds
from agents.evaluation.score import normalized_score
from agents.optim.mpc import MPCPolicy
from agents.optim.oracle import solve_hindsight
from agents.policies.rules import BASELINES
from agents.policies.trained import TrainedPolicy
from agents.training.asymmetric import AsymmetricActorCriticPolicy
from agents.training.config import SearchSettings, algo_class, load_train_config
from agents.training.policy_search import search_actor
from agents.training.pretrain import pretrain
from agents.training.train import make_train_env
from megapod_gym.config import load_scenario
from megapod_gym.scenario.trace import TraceSampler

HERE = Path(__file__).resolve().parent
N_DAYS = 30


def stages(variant: str, base: SearchSettings) -> list[SearchSettings]:
    """``layers=head,iterations=60+layers=actor`` -> one SearchSettings per stage."""
    out = []
    for stage in variant.split("+"):
        fields: dict[str, Any] = base.model_dump()
        for item in stage.split(","):
            key, value = item.split("=")
            fields[key] = value if key == "layers" else float(value) if "." in value else int(value)
        out.append(SearchSettings(**fields))
    return out


def references(scenario: Any) -> dict[str, dict[str, list[float]]]:
    """Greedy, MPC and the optimum's profit per day on the validation and the test days."""
    out = {}
    for split, seeds in (("val", validation_seeds(N_DAYS)), ("test", eval_seeds(N_DAYS))):
        trace = TraceSampler(scenario).sample(seeds)
        out[split] = {
            "seeds": seeds,
            "optimum": [
                solve_hindsight(scenario, trace.site(i)).objective_usd for i in range(N_DAYS)
            ],
            "greedy": [
                r["profit_usd"] for r in run_policy(BASELINES["greedy"](), scenario, seeds).rows
            ],
            "mpc": [r["profit_usd"] for r in run_policy(MPCPolicy(), scenario, seeds).rows],
        }
    return out


def scores(model: Any, scenario: Any, refs: dict[str, dict[str, list[float]]]) -> dict[str, float]:
    out = {}
    for split, ref in refs.items():
        rows = run_policy(TrainedPolicy(model, None), scenario, ref["seeds"]).rows
        profit = np.array([r["profit_usd"] for r in rows])
        out[split] = normalized_score(profit, ref["greedy"], ref["optimum"])
        out[f"{split}_vs_mpc_usd_per_day"] = float(np.mean(profit - np.array(ref["mpc"])))
    return out


def report(lines: list[dict[str, Any]], refs: dict, stem: Path, command: str) -> None:
    def mpc(split: str) -> float:
        ref = refs[split]
        return normalized_score(ref["mpc"], ref["greedy"], ref["optimum"])

    md = [
        f"# Policy-search variants from one clone ({time.strftime('%Y-%m-%d')})",
        "",
        f"Command: `{command}`.  ",
        f"Normalized score on {N_DAYS} validation and {N_DAYS} test days; *vs MPC* = mean profit "
        f"per day minus MPC's on the same days. MPC scores {mpc('val'):.1f} (validation) and "
        f"{mpc('test'):.1f} (test). Every variant of a seed starts from the same clone.",
        "",
        "| seed | variant | validation | test | test vs MPC $/day | selected iterations | search s |",
        "|---:|---|---:|---:|---:|---|---:|",
    ]
    for r in lines:
        md.append(
            f"| {r['seed']} | {r['variant']} | {r['val']:.1f} | {r['test']:.1f} | "
            f"{r['test_vs_mpc_usd_per_day']:+.1f} | {r.get('selected', '')} | {r['seconds']:.0f} |"
        )
    stem.with_suffix(".md").write_text("\n".join(md) + "\n")


def main() -> None:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", type=Path, default=HERE.parent / "configs/train/ppo-search.yaml")
    ap.add_argument("--scenario", default="urban-12stall-bev")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--variants", nargs="+", required=True)
    ap.add_argument("--out", type=Path, required=True, help="result file stem")
    args = ap.parse_args()
    command = (
        f"python experiments/search_variants.py --config {args.config} --scenario {args.scenario} "
        f"--seeds {' '.join(map(str, args.seeds))} --variants "
        + " ".join(f'"{v}"' for v in args.variants)
        + f" --out {args.out}"
    )
    torch.set_num_threads(1)
    cfg = load_train_config(args.config, {"scenario": args.scenario})
    assert cfg.pretrain is not None and cfg.pretrain.search is not None
    scenario = load_scenario(args.scenario)
    refs = references(scenario)
    done: list[dict[str, Any]] = []

    def record(result: dict[str, Any]) -> None:
        with args.out.with_suffix(".jsonl").open("a") as fh:
            fh.write(json.dumps(result) + "\n")
        done.append(result)
        report(done, refs, args.out, command)

    for seed in args.seeds:
        cfg_s = cfg.model_copy(update={"seed": seed})
        model = algo_class(cfg.algo)(
            AsymmetricActorCriticPolicy if cfg.privileged_critic else cfg.policy,
            make_train_env(cfg_s),
            seed=seed,
            device="cpu",
            verbose=0,
            **cfg.algo_kwargs(),
        )
        t0 = time.time()
        pretrain(model, cfg.pretrain, scenario, seed=seed, progress=False)
        clone = copy.deepcopy(model.policy.state_dict())
        record(
            {
                "seed": seed,
                "variant": "clone",
                "seconds": time.time() - t0,
                **scores(model, scenario, refs),
            }
        )
        for variant in args.variants:
            model.policy.load_state_dict(clone)
            t0 = time.time()
            infos = [
                search_actor(model, s, scenario, seed, progress=False)
                for s in stages(variant, cfg.pretrain.search)
            ]
            record(
                {
                    "seed": seed,
                    "variant": variant,
                    "seconds": time.time() - t0,
                    **scores(model, scenario, refs),
                    "selected": [i["selected_iteration"] for i in infos],
                    "curves": [[c["selection_profit_usd"] for c in i["curve"]] for i in infos],
                }
            )


if __name__ == "__main__":
    main()
