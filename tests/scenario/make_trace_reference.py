"""Writes ``trace_reference_v1.json``: SHA-256 digests of every trace field for fixed seeds of every
shipped scenario and the replay example, computed by the trace stream v1 (the per-seed sampler
of 2026-11/12). ``test_trace.py`` asserts that today's sampler reproduces them bit for bit.
Changes on purpose: 2026-12-04, sessions with a departure and a power cap added two car fields
(``car_departure_step``, ``car_max_kw``; every earlier digest unchanged), and the replay example's
``arrival_rate_per_h`` became the recorded sessions' hourly profile on training days (only that
field of ``replay-example`` changed); the preset ``ercot-busy-summer`` was added (new digests).

    python tests/scenario/make_trace_reference.py   # only when the stream changes on purpose
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import fields
from pathlib import Path

import numpy as np

from megapod_gym.config import load_scenario, scenario_names
from megapod_gym.scenario.trace import ExogenousTrace, TraceSampler

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SEEDS = [0, 1, 7, 123_456, 1_000_000, 1_000_017, 2**40 + 3]
REPLAY_EXAMPLE = REPO / "configs/examples/replay-example.yaml"
FORCED_DATES = [dt.date(2025, 1, 6), dt.date(2025, 7, 19), dt.date(2024, 2, 29)]


def digests(trace: ExogenousTrace) -> dict[str, str]:
    out = {}
    for f in fields(trace):
        value = getattr(trace, f.name)
        if isinstance(value, np.ndarray):
            h = hashlib.sha256(str((value.dtype.str, value.shape)).encode())
            h.update(np.ascontiguousarray(value).tobytes())
            out[f.name] = h.hexdigest()[:16]
        else:
            out[f.name] = repr(value)
    return out


def reference() -> dict[str, dict[str, str]]:
    ref = {}
    for name in scenario_names():
        ref[name] = digests(TraceSampler(load_scenario(name)).sample(SEEDS))
    ref["replay-example"] = digests(TraceSampler(load_scenario(REPLAY_EXAMPLE)).sample(SEEDS))
    ref["urban-12stall-bev@forced-dates"] = digests(
        TraceSampler(load_scenario("urban-12stall-bev")).sample(SEEDS[:3], FORCED_DATES)
    )
    return ref


if __name__ == "__main__":
    (HERE / "data/trace_reference_v1.json").write_text(json.dumps(reference(), indent=1) + "\n")
