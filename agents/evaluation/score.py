"""The scores every result reports, defined once: the normalized score (0 = the cars-first
greedy rule or a fleet's zero policy, 100 = the hindsight optimum), its bootstrap CI, the % of the
optimum's profit, and the mean ± 95 % CI used for everything averaged over episodes or seeds."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def pct_of_optimum(policy_profit: ArrayLike, optimum_profit: ArrayLike) -> float:
    """Σ policy profit / Σ optimum profit × 100 (NaN when the optimum's profit is not positive)."""
    total = float(np.sum(optimum_profit))
    return 100.0 * float(np.sum(policy_profit)) / total if total > 0 else float("nan")


def normalized_score(
    policy_profit: ArrayLike, greedy_profit: ArrayLike, optimum_profit: ArrayLike
) -> float:
    """Aggregate normalized score: sum(policy - greedy) / sum(optimum - greedy) x 100.

    0 = the cars-first greedy rule, 100 = the hindsight optimum. Summing before dividing keeps a
    quiet day on which greedy is already optimal from dividing by almost zero.
    """
    policy, greedy = np.asarray(policy_profit, float), np.asarray(greedy_profit, float)
    gap = float(np.sum(np.asarray(optimum_profit, float) - greedy))
    if gap <= 1e-9:
        return float("nan")
    return 100.0 * float(np.sum(policy - greedy)) / gap


def bootstrap_ci(
    policy_profit: np.ndarray,
    greedy_profit: np.ndarray,
    optimum_profit: np.ndarray,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap CI of :func:`normalized_score` over episodes."""
    n = len(policy_profit)
    if n < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, (n_boot, n))
    num = (policy_profit[idx] - greedy_profit[idx]).sum(axis=1)
    den = (optimum_profit[idx] - greedy_profit[idx]).sum(axis=1)
    ok = den > 1e-9
    scores = 100.0 * num[ok] / den[ok]
    if scores.size == 0:
        return float("nan"), float("nan")
    lo, hi = np.percentile(scores, [50 * (1 - level), 100 - 50 * (1 - level)])
    return float(lo), float(hi)


def paired_gap(
    policy_profit: ArrayLike,
    reference_profit: ArrayLike,
    greedy_profit: ArrayLike,
    optimum_profit: ArrayLike,
    n_boot: int = 2000,
    level: float = 0.95,
    rng: np.random.Generator | None = None,
) -> tuple[float, float, float]:
    """``(gap, low, high)``: the normalized-score difference policy - reference on the same
    episodes and its percentile bootstrap CI, paired (each resample draws the same episodes for
    both policies, greedy and the optimum, so the day-to-day noise they share cancels)."""
    policy, reference = np.asarray(policy_profit, float), np.asarray(reference_profit, float)
    greedy, optimum = np.asarray(greedy_profit, float), np.asarray(optimum_profit, float)
    gap = normalized_score(policy, greedy, optimum) - normalized_score(reference, greedy, optimum)
    n = policy.shape[0]
    if n < 2:
        return gap, float("nan"), float("nan")
    idx = (rng or np.random.default_rng(0)).integers(0, n, (n_boot, n))
    den = (optimum[idx] - greedy[idx]).sum(axis=1)
    ok = den > 1e-9
    gaps = 100.0 * (policy[idx] - reference[idx]).sum(axis=1)[ok] / den[ok]
    if gaps.size == 0:
        return gap, float("nan"), float("nan")
    low, high = np.percentile(gaps, [50 * (1 - level), 100 - 50 * (1 - level)])
    return gap, float(low), float(high)


def mean_ci(values: np.ndarray) -> tuple[float, float]:
    """Mean and half-width of its 95 % confidence interval (Student t for small samples)."""
    values = np.asarray(values, dtype=np.float64)
    n = values.size
    if n < 2:
        return float(values.mean()) if n else float("nan"), float("nan")
    # two-sided 95 % t quantiles for small samples; normal beyond 30
    t_table = {
        2: 12.706,
        3: 4.303,
        4: 3.182,
        5: 2.776,
        6: 2.571,
        7: 2.447,
        8: 2.365,
        9: 2.306,
        10: 2.262,
    }
    q = t_table.get(n, 2.0 if n <= 30 else 1.96)
    return float(values.mean()), q * float(values.std(ddof=1)) / np.sqrt(n)


def format_with_ci(value: float, low: float, high: float, spec: str = ".1f") -> str:
    """``"12.3 (10.1 – 14.2)"``; ``"12.3 (n = 1)"`` when the interval is undefined because there
    is one sample; ``"–"`` for an undefined value."""
    if not np.isfinite(value):
        return "–"
    if not (np.isfinite(low) and np.isfinite(high)):
        return f"{value:{spec}} (n = 1)"
    return f"{value:{spec}} ({low:{spec}} – {high:{spec}})"


def format_pm(value: float, half_width: float, spec: str = ".1f") -> str:
    """``"12.3 ± 1.2"``; ``"12.3 (n = 1)"`` when one sample leaves the half-width undefined."""
    if not np.isfinite(value):
        return "–"
    if not np.isfinite(half_width):
        return f"{value:{spec}} (n = 1)"
    return f"{value:{spec}} ± {half_width:{spec}}"
