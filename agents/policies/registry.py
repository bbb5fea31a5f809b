"""Resolve a policy by name (baselines, oracle-replay, mpc) or by path (a trained run or model)."""

from __future__ import annotations

from pathlib import Path

from agents.policies.base import Policy
from agents.policies.rules import BASELINES

SEARCH_POLICIES = ("oracle-replay", "mpc", "hindsight-mpc", "tuned-rule")


def policy_names() -> list[str]:
    """Every policy available by name."""
    return [*BASELINES, *SEARCH_POLICIES]


def make_policy(name_or_path: str) -> Policy:
    """A fresh policy instance.

    Raises
    ------
    ValueError
        With the list of valid names when ``name_or_path`` is neither a known name nor an
        existing path.
    """
    if name_or_path in BASELINES:
        return BASELINES[name_or_path]()  # type: ignore[return-value]
    if name_or_path == "oracle-replay":
        from agents.optim.oracle import HindsightPolicy

        return HindsightPolicy()
    if name_or_path == "mpc":
        from agents.optim.mpc import MPCPolicy

        return MPCPolicy()
    if name_or_path == "hindsight-mpc":
        # privileged teacher for cloning: MPC on the realized day (not causal, never deployable)
        from agents.optim.mpc import MPCPolicy

        policy = MPCPolicy(perfect_forecast=True)
        policy.name = "hindsight-mpc"
        return policy
    if name_or_path == "tuned-rule":
        from agents.optim.rule_tuning import TunedRulePolicy

        return TunedRulePolicy()
    path = Path(name_or_path)
    if path.suffix == ".onnx" and path.is_file():
        from agents.export.onnx import OnnxPolicy

        return OnnxPolicy(path)
    if path.exists():
        from agents.policies.trained import load_trained_policy

        return load_trained_policy(path)
    raise ValueError(
        f"unknown policy {name_or_path!r}: not a policy name ({', '.join(policy_names())}) "
        "and no such run folder or model file"
    )
