"""``megapod compare``: learning curves and final metrics of training runs, from their TensorBoard
event files, as a Markdown table and a PNG (for papers and machines without a browser)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

CURVES = ("eval/normalized_score", "eval/profit_usd")
TABLE_TAGS = (
    ("eval/normalized_score", "normalized score", ".1f"),
    ("eval/profit_usd", "profit $", ",.0f"),
    ("eval/pct_of_optimum", "% of optimum", ".2f"),
    ("eval/kpi/cars_served", "cars served", ".1f"),
    ("eval/kpi/balked", "balked", ".1f"),
    ("eval/kpi/peak_import_kw", "peak kW", ",.0f"),
    ("eval/kpi/battery_cycles", "battery cycles", ".2f"),
)


def read_scalars(run_dir: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every scalar of a run's ``tb/`` events: tag -> (steps, values), sorted by step (the last
    value wins when a resumed run logged a step twice)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tb = run_dir / "tb"
    if not tb.is_dir():
        raise FileNotFoundError(f"{run_dir}: no tb/ folder (is it a megapod train run folder?)")
    acc = EventAccumulator(str(tb), size_guidance={"scalars": 0})
    acc.Reload()
    out = {}
    for tag in acc.Tags()["scalars"]:
        events = {e.step: e.value for e in acc.Scalars(tag)}
        steps = np.array(sorted(events))
        out[tag] = (steps, np.array([events[s] for s in steps]))
    return out


def compare_runs(runs: Sequence[Path], out_dir: Path) -> str:
    """Write ``comparison.md`` and ``learning_curves.png`` into ``out_dir``; return the Markdown."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    data = {run: read_scalars(run) for run in runs}
    fig, axes = plt.subplots(1, len(CURVES), figsize=(6 * len(CURVES), 4))
    for ax, tag in zip(axes, CURVES):
        baselines_drawn: set[str] = set()
        for run, scalars in data.items():
            if tag in scalars:
                ax.plot(*scalars[tag], marker="o", ms=3, label=run.name)
            suffix = tag.split("/", 1)[1]
            for key, (_steps, values) in scalars.items():
                if (
                    key.startswith("baseline/")
                    and key.endswith("/" + suffix)
                    and key.count("/") == 2
                ):
                    name = key.split("/")[1]
                    if name not in baselines_drawn:
                        ax.axhline(values[-1], ls="--", lw=0.8, color="grey")
                        ax.annotate(
                            name,
                            (ax.get_xlim()[0], values[-1]),
                            fontsize=7,
                            color="grey",
                            va="bottom",
                        )
                        baselines_drawn.add(name)
        if tag == "eval/normalized_score":
            ax.axhline(100, ls=":", color="k", lw=0.8)
        ax.set_title(tag)
        ax.set_xlabel("env steps")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    png = out_dir / "learning_curves.png"
    fig.savefig(png, dpi=110)
    plt.close(fig)

    header = "| run | best step | " + " | ".join(name for _, name, _ in TABLE_TAGS) + " |"
    lines = [header, "|" + "---|" * (len(TABLE_TAGS) + 2)]
    for run, scalars in data.items():
        key = "eval/normalized_score" if "eval/normalized_score" in scalars else "eval/profit_usd"
        if key not in scalars:
            lines.append(f"| {run.name} | – |" + " – |" * len(TABLE_TAGS))
            continue
        steps, values = scalars[key]
        best = int(steps[int(np.argmax(values))])
        cells = []
        for tag, _, fmt in TABLE_TAGS:
            if tag in scalars and best in set(scalars[tag][0].tolist()):
                s, v = scalars[tag]
                cells.append(format(float(v[list(s).index(best)]), fmt))
            else:
                cells.append("–")
        lines.append(f"| {run.name} | {best:,} | " + " | ".join(cells) + " |")
    table = (
        "\n".join(lines)
        + f"\n\nValues at each run's best evaluation (held-out traces). Curves: {png}\n"
    )
    (out_dir / "comparison.md").write_text(table)
    return table
