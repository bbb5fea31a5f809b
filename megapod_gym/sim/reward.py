"""The reward: the ledger's named terms, each with its sign and a config weight, composed once.

reward = ``reward.scale`` × Σ_k sign_k × weight_k × term_k over :data:`LEDGER_SIGNS`, with every
weight 1 by default (``reward.weights`` in the scenario config changes single terms, HighwayEnv
style). With the default weights the reward is exactly the ledger total ``total_usd`` × scale —
the same number the score and the profit report — so shaping by weights never changes what is
evaluated.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from megapod_gym.sim import layout as L

# +1: earned, -1: paid. Their signed sum is the ledger's total_usd (the kernel's definition).
LEDGER_SIGNS: dict[str, float] = {
    "ev_revenue_usd": 1.0,
    "compute_value_usd": 1.0,
    "energy_cost_usd": -1.0,
    "export_revenue_usd": 1.0,
    "demand_charge_usd": -1.0,
    "battery_degradation_usd": -1.0,
    "sla_penalty_usd": -1.0,
    "wait_penalty_usd": -1.0,
    "balk_penalty_usd": -1.0,
    "pause_resume_cost_usd": -1.0,
    "carbon_cost_usd": -1.0,
}
assert tuple(LEDGER_SIGNS) == L.LEDGER_FIELDS[:-1], "ledger terms and layout must agree"
_COLUMNS = np.array([L.OUT_INDEX[k] for k in LEDGER_SIGNS])


class RewardComposer:
    """Maps step outputs ``[B, N_OUT]`` (or ``[N_OUT]``) to rewards for one scenario's weights."""

    def __init__(self, scale: float, weights: Mapping[str, float] | None = None) -> None:
        unknown = sorted(set(weights or {}) - set(LEDGER_SIGNS))
        if unknown:
            raise ValueError(
                f"reward.weights: unknown terms {unknown}; terms: {list(LEDGER_SIGNS)}"
            )
        self.scale = float(scale)
        w = np.array([float((weights or {}).get(k, 1.0)) for k in LEDGER_SIGNS])
        self.default = bool(np.all(w == 1.0))
        self.coef = w * np.array(list(LEDGER_SIGNS.values())) * self.scale

    def __call__(self, out: np.ndarray) -> np.ndarray:
        if self.default:  # exactly the ledger total: the reward is the profit, scaled
            return out[..., L.O_TOTAL_USD] * self.scale
        return out[..., _COLUMNS] @ self.coef
