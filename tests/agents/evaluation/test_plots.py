"""Every plot type renders to a non-empty PNG; colors per policy are stable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agents.evaluation.benchmark import run_benchmark, write_outputs
from agents.evaluation.plots import POLICY_COLORS, policy_color


def _png_has_content(path: Path) -> bool:
    import matplotlib.image as mpimg

    image = mpimg.imread(path)
    return path.stat().st_size > 5_000 and float(np.std(image[..., :3])) > 0.01


@pytest.mark.slow
def test_benchmark_writes_every_plot_type(tmp_path: Path) -> None:
    result = run_benchmark(
        ["urban-12stall-bev"], ["tou-arbitrage"], n_episodes=1, days=1.0, jobs=1,
        show_progress=False,
    )  # fmt: skip
    paths = write_outputs(result, tmp_path, dt_h=5 / 60)
    kinds = {"breakdown", "day_profiles", "dispatch"}
    for kind in kinds:
        found = [p for k, p in paths.items() if k.startswith(kind)]
        assert found, kind
        assert all(_png_has_content(p) for p in found), kind
    assert (tmp_path / "day_profiles_urban-12stall-bev.png").is_file()
    assert (tmp_path / "dispatch_urban-12stall-bev_greedy.png").is_file()


def test_env_render_is_an_image() -> None:
    from megapod_gym.envs.site_env import MegapodSiteEnv

    env = MegapodSiteEnv(config_overrides={"episode.days": 0.25}, render_mode="rgb_array")
    env.reset(seed=0)
    for _ in range(10):
        env.step(env.action_space.sample())
    frame = env.render()
    assert frame.ndim == 3 and frame.shape[2] == 3 and frame.std() > 1.0


def test_policy_colors_are_stable_and_distinct_for_named_policies() -> None:
    assert policy_color("mpc") == POLICY_COLORS["mpc"]
    assert policy_color("ppo (best on validation)") == policy_color("ppo (best on validation)")
    named = [policy_color(n) for n in ("greedy", "tou-arbitrage", "price-threshold", "mpc")]
    assert len(set(named)) == len(named)
