"""How long a training run took until its validation score first beat the best rule's."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from agents.evaluation.compare import read_scalars

BEST_RULE_TAG = "reference/best_rule/normalized_score"


def time_to_beat(
    run: Path, metrics: Mapping[str, Any], reference_tag: str = BEST_RULE_TAG
) -> tuple[float, float]:
    """``(env steps, seconds)`` until the run's validation score (``eval/normalized_score``) first
    exceeded the reference curve ``reference_tag`` (default: the best fixed rule on the same
    validation days); NaN when it never did. Seconds = demonstrations + cloning + policy search +
    the share of the RL time up to that step (``metrics`` as ``megapod train`` writes them)."""
    scalars = read_scalars(run)
    evals = scalars.get("eval/normalized_score")
    ref = scalars.get(reference_tag)
    if evals is None or ref is None:
        return float("nan"), float("nan")
    ref_score = float(ref[1][0])
    for step, score in zip(*evals):
        if score > ref_score:
            pre = metrics.get("pretrain", {})
            seconds = pre.get("demo_seconds", 0.0) + pre.get("bc_seconds", 0.0)
            seconds += (pre.get("search") or {}).get("search_seconds", 0.0)
            seconds += metrics["train_seconds"] * float(step) / max(metrics["timesteps"], 1)
            return float(step), seconds
    return float("nan"), float("nan")
