"""Benchmark plots: profit breakdown per policy, a dispatch day per policy, and the day profiles of
all policies side by side. A policy has the same color in every plot (:func:`policy_color`)."""

from __future__ import annotations

import hashlib
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


# fixed colors for the named policies (colorblind-safe Okabe-Ito first); others get a stable one
POLICY_COLORS: dict[str, str] = {
    "greedy": "#000000",
    "tou-arbitrage": "#E69F00",
    "price-threshold": "#56B4E9",
    "peak-shaving": "#009E73",
    "tuned-rule": "#F0E442",
    "mpc": "#0072B2",
    "hindsight-mpc": "#004466",
    "oracle-replay": "#D55E00",
    "hindsight-optimum": "#D55E00",
    "always-max-compute": "#999999",
    "random": "#BBBBBB",
}
_EXTRA_COLORS = ("#CC79A7", "#882255", "#44AA99", "#117733", "#AA4499", "#332288", "#DDCC77")


def policy_color(name: str) -> str:
    """The policy's color: fixed for named policies, else one of a palette chosen by a stable hash
    of the name (trained models keep their color across plots and runs)."""
    if name in POLICY_COLORS:
        return POLICY_COLORS[name]
    digest = int(hashlib.sha256(name.encode()).hexdigest(), 16)
    return _EXTRA_COLORS[digest % len(_EXTRA_COLORS)]


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
    for tick in ax.get_xticklabels():
        tick.set_color(policy_color(tick.get_text()))
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
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


def plot_day_profiles(runs: Sequence[Any], dt_h: float, path: Path, title: str) -> Path | None:
    """One column per policy (its first test day): price, cars' power, compute power and battery
    SoC over the day, on shared axes so policies compare at a glance. None when no run recorded
    a history."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    runs = [r for r in runs if r.history is not None and r.price_usd_per_kwh is not None]
    if not runs:
        return None
    steps = int(round(24 / dt_h))
    rows = [
        ("price $/kWh", None),
        ("cars kW", L.OUT_INDEX["ev_kw"]),
        ("compute kW", L.OUT_INDEX["compute_kw"]),
        ("battery SoC", L.OUT_INDEX["battery_soc_frac"]),
    ]
    fig, axes = plt.subplots(
        len(rows), len(runs), figsize=(2.6 * len(runs) + 1, 7), sharex=True, sharey="row",
        squeeze=False,
    )  # fmt: skip
    for j, r in enumerate(runs):
        n = min(steps, r.history.shape[0])
        hours = np.arange(n) * dt_h
        color = policy_color(r.policy)
        for i, (label, col) in enumerate(rows):
            ax = axes[i, j]
            values = r.price_usd_per_kwh[:n] if col is None else r.history[:n, col]
            ax.plot(hours, values, color=color if col is not None else "#9467bd", lw=1.1,
                    drawstyle="steps-post")  # fmt: skip
            if j == 0:
                ax.set_ylabel(label)
            if i == 0:
                ax.set_title(r.policy, color=color, fontsize=9)
        axes[-1, j].set_xlabel("hour")
        axes[-1, j].set_xticks([0, 6, 12, 18, 24])
    axes[-1, 0].set_ylim(0, 1)
    fig.suptitle(f"{title}: the first test day of each policy")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
