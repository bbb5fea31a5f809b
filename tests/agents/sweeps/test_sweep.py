"""``megapod sweep``: sweep files, seeds, and (with Ray installed) real sweeps on a local Ray."""

from __future__ import annotations

import csv
import json
import os
import signal
import sys
import warnings
from pathlib import Path

import pytest
import yaml

from agents.evaluation.rollout import TRAIN_SEED_LIMIT
from agents.sweeps.cli import main
from agents.sweeps.sweep import SweepError, derive_seed, parse_sweep, trial_index

ROOT = Path(__file__).resolve().parents[3]
SMOKE = ROOT / "configs" / "sweeps" / "ppo-smoke.yaml"


def smoke_data(**changes: object) -> dict:
    data = yaml.safe_load(SMOKE.read_text())
    data.update(changes)
    return data


# ------------------------------------------------------------------------------ sweep files
def test_shipped_sweep_files_validate() -> None:
    from agents.sweeps.sweep import load_sweep
    from megapod_gym.config import scenario_names

    smoke = load_sweep(SMOKE)
    assert smoke.n_trials == 2 and smoke.final_benchmark is False
    paper = load_sweep(ROOT / "configs" / "sweeps" / "paper.yaml")
    assert set(paper.bases) == {"ppo", "sac", "td3", "recurrent_ppo"}
    assert paper.scenarios == scenario_names() and paper.replicates == 3
    assert paper.n_trials == 4 * len(scenario_names()) * 3
    for algo in paper.bases:  # real budgets and recipes from configs/train
        shipped = yaml.safe_load((ROOT / "configs" / "train" / f"{algo}.yaml").read_text())
        assert paper.bases[algo]["n_timesteps"] == float(shipped["n_timesteps"])
        assert paper.bases[algo].get("pretrain") == shipped.get("pretrain")
    # the resolved form is itself a valid sweep file (what --resume reads back)
    again = parse_sweep(yaml.safe_load(paper.to_yaml()), "resolved")
    assert again.to_dict() == paper.to_dict()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"grdi": 1}, "grdi: unknown key"),
        ({"space": {"learning_rate": {"loguniform": [0, 1e-3]}}}, "space.learning_rate.loguniform"),
        ({"space": {"learning_rate": {"gird": [1e-4]}}}, "unknown search-space type 'gird'"),
        ({"space": {"buffer_size": {"grid": [1000]}}}, "buffer_size"),
        ({"space": {"scenario": {"grid": ["a"]}}}, "space.scenario: use the top-level 'scenarios'"),
        ({"scenarios": ["no-such-scenario"]}, "scenarios"),
        ({"seeds": [1, 1]}, "seeds.list: listed twice"),
        (
            {"seeds": [TRAIN_SEED_LIMIT]},
            f"seeds.list.0: Input should be less than {TRAIN_SEED_LIMIT}",
        ),
        ({"metric": "eval/normalized_score"}, "metric: eval/normalized_score needs the hindsight"),
        ({"metric": "reward"}, "metric: Input should be 'eval/normalized_score'"),
        (
            {"scheduler": {"type": "asha", "max_t": 100, "grace_period": 200}},
            "scheduler.grace_period",
        ),
        ({"scheduler": {"type": "pbt"}}, "scheduler.type"),
        ({"resources_per_trial": {"cpu": 0}}, "resources_per_trial.cpu"),
        ({"base": {"n_envs": 2}, "algos": {"dqn": None}}, "algos.dqn.[key]: Input should be 'ppo'"),
        ({"algos": {"sac": None}}, "base.config: with algos"),
        ({"num_samples": 0}, "num_samples"),
    ],
)
def test_bad_sweep_files_name_the_key(changes: dict, message: str) -> None:
    with pytest.raises(SweepError) as err:
        parse_sweep(smoke_data(**changes), "bad.yaml")
    assert message in str(err.value) and "bad.yaml" in str(err.value)


def test_search_space_and_algorithm_grid() -> None:
    spec = parse_sweep(
        {
            "base": {"eval": {"with_oracle": False}, "n_timesteps": "1e4"},
            "algos": {
                "ppo": None,
                "sac": {"config": "configs/train/sac.yaml", "buffer_size": 5000},
            },
            "scenarios": ["urban-12stall-bev", "ercot-rt-summer"],
            "seeds": 2,
            "space": {
                "learning_rate": {"loguniform": ["1e-5", "1e-3"]},  # PyYAML reads 1e-5 as a string
                "policy_kwargs": {"net_arch": {"choice": [[64, 64], [128, 128]]}},
                "gamma": {"grid": [0.99, 0.995]},
            },
            "num_samples": 3,
            "metric": "eval/profit_usd",
        },
        "grid.yaml",
    )
    assert spec.n_trials == 2 * 2 * 2 * 3 * 2
    assert spec.bases["sac"]["buffer_size"] == 5000 and spec.bases["sac"]["n_timesteps"] == 1e4
    assert spec.bases["ppo"]["policy_kwargs"]["activation_fn"] == "tanh"  # merged, not replaced
    assert spec.space["learning_rate"].args == (1e-5, 1e-3)


def test_derived_seeds_are_distinct_and_deterministic() -> None:
    seeds = [derive_seed(7, k) for k in range(TRAIN_SEED_LIMIT)]
    assert len(set(seeds)) == TRAIN_SEED_LIMIT and max(seeds) < TRAIN_SEED_LIMIT
    first = sorted(
        seeds[:625]
    )  # env workers [seed, seed + 16) of the first 625 trials are disjoint
    assert all(b - a >= 16 for a, b in zip(first, first[1:]))
    assert seeds[:5] == [derive_seed(7, k) for k in range(5)]
    assert seeds[:5] != [derive_seed(8, k) for k in range(5)]
    assert trial_index("3f2a1_00012") == 12


def test_without_ray_one_line_says_what_to_install(monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    assert main(["sweep", "--config", str(SMOKE)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert 'pip install "megapod-gym[ray]"' in err


# ------------------------------------------------------------------------ sweeps on Ray
@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.tune")
    os.environ.pop("RAY_ADDRESS", None)
    os.environ.setdefault("RAY_enable_metrics_collection", "0")  # as megapod sweep starts Ray
    if not ray.is_initialized():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            ray.init(num_cpus=2, include_dashboard=False)
    yield ray
    ray.shutdown()


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as fh:
        return list(csv.DictReader(fh))


@pytest.mark.slow
def test_smoke_sweep_writes_runs_and_table(local_ray, tmp_path, capsys) -> None:
    out = tmp_path / "ppo-smoke"
    assert main(["sweep", "--config", str(SMOKE), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "### urban-12stall-bev" in printed

    trials = read_csv(out / "trials.csv")
    assert len(trials) == 2 and {t["status"] for t in trials} == {"finished"}
    assert len({t["seed"] for t in trials}) == 2  # derived from sweep_seed, one per trial
    summary = read_csv(out / "results.csv")
    trained = [r for r in summary if r["kind"] == "trained"]
    assert len(trained) == 2 and all(r["trials"] == "1" for r in trained)
    assert {r["policy"] for r in summary if r["kind"] == "baseline"} >= {"greedy", "tou-arbitrage"}
    table = (out / "results.md").read_text()
    assert "greedy (baseline)" in table and "ppo (learning_rate=0.001)" in table

    lrs = set()
    for t in trials:
        run = Path(t["run_dir"])
        assert (run / "config.yaml").is_file() and (run / "meta.json").is_file()
        assert list((run / "tb").glob("events.out.tfevents.*"))
        assert (run / "best" / "model.zip").is_file() and (run / "best" / "eval.json").is_file()
        assert (run / "final" / "model.zip").is_file()
        cfg = yaml.safe_load((run / "config.yaml").read_text())
        assert cfg["seed"] == int(t["seed"]) and cfg["n_timesteps"] == 256
        lrs.add(cfg["hyperparams"]["learning_rate"])
        assert float(t["best_profit_usd"]) == pytest.approx(
            json.loads((run / "best" / "eval.json").read_text())["profit_usd"]
        )
    assert lrs == {3e-4, 1e-3}

    from agents.evaluation.compare import compare_runs

    md = compare_runs([Path(t["run_dir"]) for t in trials], tmp_path / "compare")
    assert trials[0]["trial"] in md  # megapod compare reads sweep runs unchanged


def _interrupt_after_first_trial(marker: Path):
    from ray import tune

    class InterruptAfterFirstTrial(tune.Callback):
        """Ctrl-C the sweep as soon as its first trial finishes (once)."""

        def on_trial_complete(self, iteration, trials, trial, **info):
            if not marker.exists():
                marker.write_text(trial.trial_id)
                os.kill(os.getpid(), signal.SIGINT)

    return InterruptAfterFirstTrial()


@pytest.mark.slow
def test_interrupted_sweep_resumes_without_rerunning_finished_trials(local_ray, tmp_path) -> None:
    from agents.sweeps.sweep import load_sweep, run_sweep

    # one trial at a time (Tune then creates the second trial only when the first is done): the
    # sweep is interrupted (Ctrl-C) as soon as the first trial finishes
    data = smoke_data(name="resume-smoke", max_concurrent_trials=1)
    sweep_file = tmp_path / "resume-smoke.yaml"
    sweep_file.write_text(yaml.safe_dump(data))
    out = tmp_path / "out"
    spec = load_sweep(sweep_file)
    first = run_sweep(spec, out, callbacks=[_interrupt_after_first_trial(tmp_path / "fired")])
    assert first.unfinished == 1 and first.exit_code == 130
    done = [t for t in first.trials if t["status"] == "finished"]
    assert len(done) == 1 and "(1 finished, 1 not started)" in (out / "results.md").read_text()
    tune_dir = Path(done[0]["tune_dir"])
    results_before = (tune_dir / "result.json").read_text()
    checkpoints_before = sorted(p.name for p in tune_dir.glob("checkpoint_*"))

    assert main(["sweep", "--out", str(out), "--resume"]) == 0

    trials = read_csv(out / "trials.csv")
    assert len(trials) == 2 and {t["status"] for t in trials} == {"finished"}
    # the finished trial was not rerun: Tune heard nothing new from it, its run has one session
    assert (tune_dir / "result.json").read_text() == results_before
    assert sorted(p.name for p in tune_dir.glob("checkpoint_*")) == checkpoints_before
    for t in trials:
        meta = json.loads((Path(t["run_dir"]) / "meta.json").read_text())
        assert len(meta["sessions"]) == 1
    assert len(read_csv(out / "results.csv")) >= 2
