"""Plots of an episode: stacked power flows, grid import, price, battery SoC and the queue."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np


def plot_episode(
    history: Mapping[str, np.ndarray], price_usd_per_kwh: np.ndarray, dt_h: float, title: str = ""
):  # noqa: ANN201
    """A matplotlib figure of an episode's step outputs (``env.history`` or equivalent)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    n = len(history["grid_import_kw"])
    hours = np.arange(n) * dt_h
    fig, axes = plt.subplots(3, 1, figsize=(11, 7), sharex=True, height_ratios=[3, 1.2, 1.2])
    ax = axes[0]
    loads = [
        ("cars", history["ev_kw"], "#1f77b4"),
        ("compute", history["compute_kw"], "#ff7f0e"),
        ("battery charge", history["battery_charge_kw"], "#2ca02c"),
    ]
    # the site's loads stacked underneath; what the grid and the battery supply drawn on top of them
    ax.stackplot(
        hours,
        *[v for _, v, _ in loads],
        labels=[n_ for n_, _, _ in loads],
        colors=[c for _, _, c in loads],
        alpha=0.75,
        step="post",
        zorder=1,
    )
    ax.plot(
        hours,
        history["battery_discharge_kw"],
        color="#d62728",
        lw=1.2,
        label="battery discharge",
        drawstyle="steps-post",
        zorder=4,
    )
    ax.plot(
        hours,
        history["grid_import_kw"],
        color="k",
        lw=1.4,
        label="grid import",
        drawstyle="steps-post",
        zorder=5,
    )
    ax.set_ylabel("kW")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    ax.set_title(title)
    axes[1].plot(
        hours, price_usd_per_kwh[:n], color="#9467bd", drawstyle="steps-post", label="price"
    )
    axes[1].set_ylabel("$/kWh")
    axes[1].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    ax2 = axes[2]
    ax2.plot(hours, history["battery_soc_frac"], color="#2ca02c", label="battery SoC")
    ax2.set_ylabel("SoC")
    ax2.set_ylim(0, 1)
    ax3 = ax2.twinx()
    ax3.plot(
        hours,
        history["wait_min"] / max(dt_h * 60, 1e-9),
        color="#8c564b",
        lw=0.8,
        label="cars waiting",
        drawstyle="steps-post",
    )
    ax3.set_ylabel("cars waiting")
    handles = ax2.get_legend_handles_labels()[0] + ax3.get_legend_handles_labels()[0]
    ax2.legend(
        handles,
        [h.get_label() for h in handles],
        loc="upper left",
        bbox_to_anchor=(1.08, 1.0),
        fontsize=8,
        frameon=False,
    )
    ax2.set_xlabel("hours since episode start")
    fig.tight_layout()
    return fig


def render_episode(
    history: Mapping[str, np.ndarray], price_usd_per_kwh: np.ndarray, dt_h: float, title: str = ""
) -> np.ndarray:
    """The episode plot as an RGB array ``[H, W, 3]`` (uint8)."""
    import matplotlib.pyplot as plt

    fig = plot_episode(history, price_usd_per_kwh, dt_h, title)
    fig.canvas.draw()
    rgb = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return rgb


def save_episode_plot(
    history: Mapping[str, np.ndarray],
    price_usd_per_kwh: np.ndarray,
    dt_h: float,
    path: str | Path,
    title: str = "",
) -> Path:
    """Write the episode plot to ``path`` (PNG)."""
    import matplotlib.pyplot as plt

    fig = plot_episode(history, price_usd_per_kwh, dt_h, title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
