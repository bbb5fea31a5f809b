"""Benchmark plots: profit breakdown per policy and a dispatch day per policy."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from megapod_gym.render import save_episode_plot
from megapod_gym.sim import layout as L

_TERMS_SIGN = [
    (t, -1.0 if t.endswith(("cost_usd", "charge_usd", "penalty_usd", "degradation_usd")) else 1.0)
    for t in L.LEDGER_FIELDS
    if t != "total_usd"
]


def plot_profit_breakdown(runs: Sequence[Any], path: Path, title: str) -> Path:
    """Stacked bars of the mean ledger terms per policy (revenues up, costs down), profit marked."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    runs = [r for r in runs if all(t in r.rows[0] for t, _ in _TERMS_SIGN)]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(runs) + 2), 4.5))
    x = np.arange(len(runs))
    pos = np.zeros(len(runs))
    neg = np.zeros(len(runs))
    cmap = plt.get_cmap("tab20")
    for k, (term, sign) in enumerate(_TERMS_SIGN):
        vals = sign * np.array([np.mean([row[term] for row in r.rows]) for r in runs])
        if not np.any(np.abs(vals) > 1e-9):
            continue
        base = np.where(vals >= 0, pos, neg)
        ax.bar(x, vals, bottom=base, color=cmap(k), label=term.removesuffix("_usd"))
        pos += np.maximum(vals, 0)
        neg += np.minimum(vals, 0)
    profit = [np.mean([row["profit_usd"] for row in r.rows]) for r in runs]
    ax.scatter(x, profit, color="k", marker="D", zorder=3, label="profit")
    ax.set_xticks(x, [r.policy for r in runs], rotation=30, ha="right")
    ax.set_ylabel("USD per episode (mean)")
    ax.set_title(f"{title}: profit breakdown")
    ax.axhline(0, color="k", lw=0.5)
    ax.legend(fontsize=7, ncol=2, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_dispatch_day(
    history: Mapping[str, np.ndarray],
    price_usd_per_kwh: np.ndarray,
    dt_h: float,
    path: Path,
    title: str,
) -> Path:
    """The first day of an episode's dispatch (stacked flows, price, SoC, queue)."""
    steps = int(round(24 / dt_h))
    day = {k: v[:steps] for k, v in history.items()}
    return save_episode_plot(day, price_usd_per_kwh, dt_h, path, title)
