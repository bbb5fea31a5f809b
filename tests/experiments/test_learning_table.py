"""The experiments table joins seeds trained in separate processes only when their days agree."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import learning_table as lt  # experiments/ is on sys.path (conftest.py)
import pytest


def _row(seed: int, trained: float, mpc: float = 80.0, scenario: str = "s1") -> dict:
    return {
        "scenario": scenario,
        "seed": seed,
        "config": "ppo-x",
        "test_days": 30,
        "expert": "mpc",
        **{f"score_{n}": 10.0 + i for i, n in enumerate(lt.RULES)},
        "score_mpc": mpc,
        "score_trained_best": trained,
        "score_trained_final": trained - 1.0,
        "best_rule_on_validation": "tuned-rule",
        "run_wall_seconds": 100.0,
        "train_seconds": 50.0,
        "pretrain_seconds": 10.0,
        "search_seconds": 5.0,
        "steps_to_beat_best_rule": 0.0,
        "seconds_to_beat_best_rule": float("nan"),
    }


def _csv(path: Path, rows: list[dict]) -> Path:
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def test_merge_adds_other_seeds_once_and_in_order(tmp_path: Path) -> None:
    earlier = _csv(tmp_path / "a.csv", [_row(0, 85.0), _row(2, 87.0)])
    merged = lt.merge_rows([_row(1, 86.0)], [earlier, earlier])
    assert [r["seed"] for r in merged] == [0, 1, 2]
    assert [r["score_trained_best"] for r in merged] == [85.0, 86.0, 87.0]
    assert math.isnan(merged[0]["seconds_to_beat_best_rule"])
    lt.write(merged, tmp_path / "table", "cmd")
    md = (tmp_path / "table.md").read_text()
    assert "| 86.0 ± 2.5 |" in md and "| 3 |" in md  # mean ± t-CI over the three seeds


def test_merge_refuses_rows_from_other_days(tmp_path: Path) -> None:
    other = _csv(tmp_path / "b.csv", [_row(0, 85.0, mpc=81.0)])
    with pytest.raises(ValueError, match="score_mpc .* differs"):
        lt.merge_rows([_row(1, 86.0)], [other])
    wrong_config = _csv(tmp_path / "c.csv", [{**_row(0, 85.0), "config": "ppo-y"}])
    with pytest.raises(ValueError, match="config is 'ppo-y'"):
        lt.merge_rows([_row(1, 86.0)], [wrong_config])


def test_merge_leaves_pending_scenarios_for_later(tmp_path: Path) -> None:
    both = _csv(tmp_path / "d.csv", [_row(0, 85.0), _row(0, 50.0, scenario="s2")])
    assert len(lt.merge_rows([_row(1, 86.0)], [both], pending=("s2",))) == 2
    with pytest.raises(ValueError, match="scenario not in this run"):
        lt.merge_rows([_row(1, 86.0)], [both])


def _fleet_row(fleet: str, trained: float) -> tuple[dict, list[str], str]:
    summary = {
        "fleet": fleet,
        "policy": "fleet-search",
        "test_days": 2,
        "independent_greedy": 0.0,
        "global_greedy": 7.4,
        "trained_mean": trained,
        "trained_ci": float("nan"),
        "trained_minus_global_greedy": trained - 7.4,
        "seeds": 1,
        "train_minutes_mean": 1.0,
    }
    return summary, [f"| {fleet} | 0 | {trained:.1f} | ... |"], f"bench table of {fleet}"


def test_fleets_are_trained_by_the_fleet_trainer_and_feed_the_headline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import headline_table as ht

    calls = []

    def fake_run_fleet(fleet, seeds, test_days, runs, config, settings, rng):
        calls.append((fleet, seeds, test_days, config, settings.iterations))
        return _fleet_row(fleet, 13.9)

    monkeypatch.setattr(lt.fleet_search, "run_fleet", fake_run_fleet)
    monkeypatch.setattr(lt, "run_scenario", lambda *a: pytest.fail("no site scenario asked for"))
    stem = tmp_path / "table"
    argv = ["learning_table.py", "--scenarios", "tri-tz-3site", "--seeds", "0", "--test-days", "2"]
    monkeypatch.setattr("sys.argv", [*argv, "--fleet-iterations", "3", "--out", str(stem)])
    lt.main()
    assert calls == [("tri-tz-3site", [0], 2, None, 3)]
    md = (tmp_path / "table.md").read_text()
    assert "--fleet-iterations 3" in md and "bench table of tri-tz-3site" in md
    assert "| tri-tz-3site | 0.0 | 7.4 | 13.9 (n = 1) | +6.5 | 1.0 |" in md
    assert not (tmp_path / "table.csv").exists()  # no site rows
    assert "Gaps:" not in md and "--config" not in md  # nor the site table's text
    lines = ht.fleet_lines([tmp_path / "table_fleets.csv"])
    assert [c.strip() for c in lines[2].strip("|").split("|")][3:6] == [
        "fleet-search",
        "13.9 (n = 1)",
        "+6.5",
    ]


def test_unknown_scenarios_and_trainers_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for extra, message in (
        (["--scenarios", "tri-tz-4site"], "unknown scenario 'tri-tz-4site'"),
        (["--fleet-trainer", str(tmp_path / "none.yaml")], "neither 'fleet-search' nor"),
    ):
        monkeypatch.setattr("sys.argv", ["learning_table.py", *extra, "--out", str(tmp_path / "t")])
        with pytest.raises(SystemExit):
            lt.main()
        assert message in capsys.readouterr().err
