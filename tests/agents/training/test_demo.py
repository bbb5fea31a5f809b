"""The demo runs the shipped recipe: its embedded config is configs/train/ppo-search-long.yaml."""

from __future__ import annotations

from pathlib import Path

import yaml

from agents.training.config import parse_train_config
from agents.training.demo import DEMO_CONFIG, DEMO_TIMESTEPS

REPO = Path(__file__).resolve().parents[3]


def test_demo_config_is_the_shipped_recipe() -> None:
    shipped = yaml.safe_load((REPO / "configs/train/ppo-search-long.yaml").read_text())
    assert {**DEMO_CONFIG, "n_timesteps": DEMO_TIMESTEPS} == shipped
    cfg = parse_train_config(shipped, "ppo-search-long.yaml")
    assert cfg.pretrain is not None and cfg.privileged_critic and cfg.day_end == "terminate"
