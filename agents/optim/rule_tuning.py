"""The tuned rule: each rule's thresholds optimized on training days, the best one kept.

A fixed rule is a weak reference if its thresholds were simply guessed. :class:`TunedRulePolicy`
searches, for the scenario it is reset on, each rule's parameters over a grid (the rules have one
or two parameters, so an exhaustive grid is cheap and deterministic) by mean profit on
``n_days`` *training* days (trace seeds from :data:`TUNE_SEED_BASE`, below the training seed
limit, never a validation or test day), and then acts as the best (rule, parameters) found. The
search runs once per scenario and process (cached by the resolved scenario).

| rule | parameter grid |
|---|---|
| tou-arbitrage | ``spread`` 0 … 0.6 of the 24-h mean price |
| price-threshold | ``low`` 0.5 … 1.2 × ``high`` 1.0 … 3.0 of the 24-h mean price (low < high) |
| peak-shaving | ``target_kw`` 50 … 100 % of the import limit |
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from agents.evaluation.rollout import run_policy
from agents.policies.base import PolicyContext
from agents.policies.rules import PeakShaving, PriceThreshold, RulePolicy, TouArbitrage
from megapod_gym.config import ScenarioConfig

TUNE_SEED_BASE = 9_000
DEFAULT_TUNE_DAYS = 16


@dataclass(frozen=True)
class TunedRule:
    """The outcome of a search: the rule, its parameters and its mean profit on the tuning days."""

    rule: str
    params: dict[str, float]
    profit_usd: float

    def make(self) -> RulePolicy:
        return RULE_FACTORIES[self.rule](**self.params)


RULE_FACTORIES: dict[str, Callable[..., RulePolicy]] = {
    "tou-arbitrage": TouArbitrage,
    "price-threshold": PriceThreshold,
    "peak-shaving": PeakShaving,
}


def candidate_grid(config: ScenarioConfig) -> list[tuple[str, dict[str, float]]]:
    """Every (rule, parameters) the search tries."""
    limit = config.grid.import_limit_kw
    grid: list[tuple[str, dict[str, float]]] = []
    grid += [("tou-arbitrage", {"spread": float(s)}) for s in np.linspace(0.0, 0.6, 13)]
    grid += [
        ("price-threshold", {"low": float(lo), "high": float(hi)})
        for lo, hi in itertools.product(np.linspace(0.5, 1.2, 8), np.linspace(1.0, 3.0, 11))
        if lo < hi
    ]
    grid += [("peak-shaving", {"target_kw": float(f * limit)}) for f in np.linspace(0.5, 1.0, 11)]
    return grid


_CACHE: dict[str, TunedRule] = {}


def tune_rules(config: ScenarioConfig, n_days: int = DEFAULT_TUNE_DAYS) -> TunedRule:
    """The best (rule, parameters) of :func:`candidate_grid` by mean profit on ``n_days`` training
    days of ``config`` (cached per resolved scenario and ``n_days``)."""
    key = json.dumps([config.model_dump(mode="json"), n_days], sort_keys=True)
    if key in _CACHE:
        return _CACHE[key]
    seeds = [TUNE_SEED_BASE + i for i in range(n_days)]
    best: TunedRule | None = None
    for rule, params in candidate_grid(config):
        rows = run_policy(RULE_FACTORIES[rule](**params), config, seeds).rows
        profit = float(np.mean([r["profit_usd"] for r in rows]))
        if best is None or profit > best.profit_usd:
            best = TunedRule(rule, params, profit)
    assert best is not None
    _CACHE[key] = best
    return best


class TunedRulePolicy:
    """**tuned rule**: the best rule with its thresholds optimized on training days of the scenario
    it is reset on (see the module docstring); then exactly that rule."""

    name = "tuned-rule"

    def __init__(self, n_days: int = DEFAULT_TUNE_DAYS) -> None:
        self.n_days = n_days
        self.tuned: TunedRule | None = None
        self._rule: Any = None

    def reset(self, context: PolicyContext) -> None:
        self.tuned = tune_rules(context.config, self.n_days)
        self._rule = self.tuned.make()
        self._rule.reset(context)

    def act(self, obs: np.ndarray) -> np.ndarray:
        assert self._rule is not None, "call reset() first"
        return self._rule.act(obs)
