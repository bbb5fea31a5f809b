"""MkDocs hook: pages carry ``<!-- gen:NAME -->`` markers that are replaced, at build time, by
Markdown generated from the code (the environment's docstring, its feature table, the scenario
figures) and from the committed experiment results, so the docs cannot drift from either."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
MARKER = re.compile(r"<!-- gen:([a-z0-9-]+) -->")


def site_env_docstring() -> str:
    from megapod_gym.envs.site_env import MegapodSiteEnv

    doc = inspect.cleandoc(MegapodSiteEnv.__doc__ or "")
    # the docstring's "## Section" headings become sub-headings of the page
    return re.sub(r"^## ", "### ", doc, flags=re.M).replace("``", "`")


def observation_features() -> str:
    from megapod_gym.envs.site_env import MegapodSiteEnv

    env = MegapodSiteEnv()
    rows = [
        "| index | feature | unit | center | scale | meaning |",
        "|---:|---|---|---:|---:|---|",
    ]
    for i, f in enumerate(env.encoder.describe()):
        rows.append(
            f"| {i} | `{f['name']}` | {f['unit']} | {f['center']:g} | {f['scale']:g} | "
            f"{f['description']} |"
        )
    return "\n".join(rows)


def scenarios() -> str:
    from megapod_gym.config import load_scenario
    from megapod_gym.config.loading import scenario_names
    from megapod_gym.sim.figures import site_figures

    rows = [
        "| scenario | stalls x kW | grid import limit kW | battery kWh / kW | IT kW | energy price |",
        "|---|---|---:|---:|---:|---|",
    ]
    notes = []
    for name in scenario_names():
        c = load_scenario(name)
        fig = site_figures(c)
        rows.append(
            f"| `{name}` | {c.chargers.n_stalls} x {c.chargers.stall_kw:g} | "
            f"{fig.import_limit_kw:,.0f} | {c.battery.energy_kwh:,.0f} / "
            f"{fig.battery_power_kw:,.0f} | {c.compute.it_kw:,.0f} | "
            f"{c.tariff.energy_price} |"
        )
        notes.append(f"**`{name}`**: {' '.join(c.description.split())}")
    return "\n".join(rows) + "\n\n" + "\n\n".join(notes)


def latest(pattern: str) -> Path:
    files = sorted((ROOT / "experiments").glob(pattern))
    if not files:
        raise FileNotFoundError(f"no experiments/{pattern}")
    return files[-1]


def results(pattern: str) -> Any:
    def render() -> str:
        path = latest(pattern)
        body = path.read_text()
        body = re.sub(r"^# (.*)$", r"### \1", body, count=1, flags=re.M)
        return f"{body}\n\n*(from `experiments/{path.name}`)*"

    return render


GENERATORS = {
    "site-env-docstring": site_env_docstring,
    "observation-features": observation_features,
    "scenarios": scenarios,
    "learning-table": results("results_learning_2*.md"),
    "learning-table-dagger": results("results_learning_dagger_*.md"),
    "learning-table-search-a": results("results_learning_search_a_*.md"),
    "learning-table-search-b": results("results_learning_search_b_*.md"),
    "learning-table-search-c": results("results_learning_search_c_*.md"),
    "learning-table-search-d": results("results_learning_search_d_*.md"),
    "learning-levers-search": results("results_learning_levers_search_*.md"),
    "paired-gap-search": results("results_paired_gap_ppo-search_*.md"),
    "ppo-drift": results("results_ppo_drift_*.md"),
    "demo": results("results_demo_search-long_*.md"),
    "learning-table-search-long-a": results("results_learning_search-long_a_*.md"),
    "learning-table-search-long-b": results("results_learning_search-long_b_*.md"),
    "paired-gap-search-long": results("results_paired_gap_ppo-search-long_2*.md"),
    "learning-table-search-long-c": results("results_learning_search-long_c_*.md"),
    "learning-table-search-long-d": results("results_learning_search-long_d_*.md"),
    "learning-table-search-long-e": results("results_learning_search-long_e_*.md"),
    "learning-table-search-long-highway": results("results_learning_search-long_highway_*.md"),
    "paired-gap-search-long-highway": results("results_paired_gap_ppo-search-long_highway_*.md"),
    "shipped-configs": results("results_shipped_configs_*.md"),
    "learning-table-ppo": results("results_learning_ppo_2*.md"),
    "learning-table-a2c": results("results_learning_a2c_2*.md"),
    "learning-table-td3": results("results_learning_td3_2*.md"),
    "learning-table-sac": results("results_learning_sac_2*.md"),
    "learning-table-recurrent-ppo": results("results_learning_recurrent_ppo_2*.md"),
    "ppo-scratch-levers": results("results_ppo_scratch_levers_*.md"),
    "learning-table-td3-plain": results("results_learning_td3-plain_*.md"),
    "learning-table-sac-plain": results("results_learning_sac-plain_*.md"),
    "learning-table-recurrent-demand-charge": results(
        "results_learning_recurrent_ppo_demand-charge_*.md"
    ),
    "paired-gap-search-long-more": results("results_paired_gap_ppo-search-long_more_*.md"),
    "learning-table-search-busy": results("results_learning_search-busy_2*.md"),
    "paired-gap-search-busy": results("results_paired_gap_ppo-search-busy_2*.md"),
    "learning-table-search-busy-3seeds": results("results_learning_search-busy_3seeds_*.md"),
    "paired-gap-search-busy-3seeds": results("results_paired_gap_ppo-search-busy_3seeds_*.md"),
    "learning-levers-search-long": results("results_learning_levers_search-long_*.md"),
    "search-variants-urban": results("results_search_variants_urban_*.md"),
    "search-variants-demand-charge": results("results_search_variants_demand-charge_*.md"),
    "search-variants-long-caiso": results("results_search_variants_long_caiso_*.md"),
    "search-variants-long-demand-charge": results(
        "results_search_variants_long_demand-charge_*.md"
    ),
    "headline": results("results_headline_*.md"),
    "learning-table-search-xl-caiso": results("results_learning_search-xl_caiso_3seeds_*.md"),
    "learning-table-search-xl-demand-charge": results(
        "results_learning_search-xl_demand-charge_3seeds_*.md"
    ),
    "paired-gap-search-xl-demand-charge-s1": results(
        "results_paired_gap_ppo-search-xl_demand-charge_s1_*.md"
    ),
    "learning-table-search-xl-lowvalue": results("results_learning_search-xl_lowvalue_3seeds_*.md"),
    "learning-table-search-800-demand-charge": results(
        "results_learning_search-800_demand-charge_s0_*.md"
    ),
    "paired-gap-search-800-demand-charge": results(
        "results_paired_gap_ppo-search-800_demand-charge_*.md"
    ),
    "paired-gap-search-xl-lowvalue-s1": results(
        "results_paired_gap_ppo-search-xl_lowvalue_s1_*.md"
    ),
    "paired-gap-search-xl-lowvalue-s2": results(
        "results_paired_gap_ppo-search-xl_lowvalue_s2_*.md"
    ),
    "learning-table-search-long-demand-charge": results(
        "results_learning_search-long_demand-charge_*.md"
    ),
    # the seed-0 file only (its name has the date right after the config; the other seeds'
    # files have the scenario and seed there)
    "paired-gap-search-xl": results("results_paired_gap_ppo-search-xl_20*.md"),
    "paired-gap-search-xl-caiso-s1": results("results_paired_gap_ppo-search-xl_caiso_s1_*.md"),
    "paired-gap-search-xl-caiso-s2": results("results_paired_gap_ppo-search-xl_caiso_s2_*.md"),
    "paired-gap-search-xl-demand-charge-s2": results(
        "results_paired_gap_ppo-search-xl_demand-charge_s2_*.md"
    ),
    "paired-gap-breakdown-demand-charge": results(
        "results_paired_gap_breakdown_demand-charge_*.md"
    ),
    "fleet-search-tri": results("results_fleet_search_tri-tz-3site_*.md"),
    "fleet-search-20": results("results_fleet_search_fleet-20site_*.md"),
    "learning-table-fleets-tri": results("results_learning_fleets_tri-tz-3site_*.md"),
    "learning-table-fleets-20": results("results_learning_fleets_fleet-20site_*.md"),
    "fleet-levers": results("results_fleet_levers_*.md"),
    "fleet-ppo-tri": results("results_fleet_ppo_tri-tz-3site_*.md"),
    "fleet-ppo-20": results("results_fleet_ppo_fleet-20site_2*.md"),
    "learning-levers": results("results_learning_levers_2*.md"),
    "learning-levers-dagger": results("results_learning_levers_dagger_*.md"),
    "cloning-levers": results("results_cloning_*.md"),
    "learning-table-congested": results("results_learning_bc_urban-busy_*.md"),
    "learning-levers-congested": results("results_learning_levers_bc_urban-busy_*.md"),
    "congestion": results("results_congestion_*.md"),
    "throughput": results("results_throughput_*.md"),
    "reset-profile": results("results_reset_profile_*.md"),
    "replay-belgium": results("results_replay_belgium_*.md"),
}


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in GENERATORS:
            raise KeyError(f"{page.file.src_path}: unknown generated block {name!r}")
        return GENERATORS[name]()

    return MARKER.sub(replace, markdown)
