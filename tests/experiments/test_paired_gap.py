"""The ledger breakdown of a trained agent against MPC: signs, and the terms add up to profit."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import paired_gap as pg  # experiments/ is on sys.path (conftest.py)
import pytest


def _row(policy: str, seed: int, rng: np.random.Generator) -> dict:
    terms = {t: 0.0 for t in pg.TERMS}
    terms["ev_revenue_usd"] = float(rng.uniform(1000, 2000))
    terms["compute_value_usd"] = float(rng.uniform(40000, 50000))
    terms["energy_cost_usd"] = float(rng.uniform(5000, 7000))
    terms["demand_charge_usd"] = float(rng.uniform(500, 1500))
    profit = sum(v if t in pg.REVENUES else -v for t, v in terms.items())
    return {"scenario": "s", "policy": policy, "seed": seed, "profit_usd": profit, **terms}


def test_breakdown_signs_and_sum(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rows = [_row(p, d, rng) for p in ("mpc", "seed 0 best") for d in range(5)]
    rows += [
        {"scenario": "s", "policy": "hindsight-optimum", "seed": d, "profit_usd": 1e5}
        for d in range(5)
    ]
    path = tmp_path / "episodes.csv"
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
    terms = pg.ledger_terms(path)
    assert "hindsight-optimum" not in terms
    lines = pg.breakdown_lines(terms, "s", [0])
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    # only the terms that are non-zero somewhere, then the profit
    assert header[2:] == ["ev_revenue", "compute_value", "energy_cost", "demand_charge", "profit"]
    means = [float(c.split("±")[0]) for c in lines[2].strip("|").split("|")[2:]]
    assert sum(means[:-1]) == pytest.approx(means[-1], abs=0.5)  # cells rounded to 0.1
    a = [terms["seed 0 best"][d] for d in range(5)]
    m = [terms["mpc"][d] for d in range(5)]
    # a cost the agent paid less of is a positive advantage
    saved = np.mean([mm["energy_cost_usd"] - aa["energy_cost_usd"] for aa, mm in zip(a, m)])
    assert means[2] == pytest.approx(saved, abs=0.05)
