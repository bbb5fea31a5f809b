"""README's headline table: the fleets' rows come from fleet_search.py CSVs."""

from __future__ import annotations

import csv
from pathlib import Path

import headline_table as ht  # experiments/ is on sys.path (conftest.py)


def test_fleet_rows_show_the_gap_to_global_greedy(tmp_path: Path) -> None:
    path = tmp_path / "fleet.csv"
    row = {
        "fleet": "tri-tz-3site",
        "test_days": 30,
        "independent_greedy": 0.0,
        "global_greedy": 7.4,
        "trained_mean": 13.9,
        "trained_ci": 0.2,
        "trained_minus_global_greedy": 6.5,
        "seeds": 3,
        "train_minutes_mean": 12.0,
    }
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(row))
        w.writeheader()
        w.writerow(row)
    lines = ht.fleet_lines([path])
    assert len(lines) == 3
    cells = [c.strip() for c in lines[2].strip("|").split("|")]
    assert cells[0] == "tri-tz-3site"
    assert cells[2] == "7.4"
    assert cells[3] == "fleet-search"  # CSVs written before the policy column
    assert cells[4].startswith("13.9")
    assert cells[5] == "+6.5"
    assert cells[6] == "3"
