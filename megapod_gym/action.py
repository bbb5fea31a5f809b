"""Action decoding: policy actions in [-1, 1] -> physical setpoint requests (NumPy only).

=====  ====================  =========================================================
index  name                  mapping
=====  ====================  =========================================================
0      compute_frac          IT power fraction ``(a + 1) / 2`` in [0, 1]; below the cap floor
                             the cluster pauses at standby power
1      battery_kw            ``a * discharge_kw`` for a >= 0 (discharge into the site),
                             ``a * charge_kw`` for a < 0 (charge)
2      ev_cap_kw (soft only) cap on the chargers' total AC power, ``(a + 1) / 2 * stall capacity``
=====  ====================  =========================================================
"""

from __future__ import annotations

import math

import numpy as np

ACTION_NAMES_STRICT: tuple[str, ...] = ("compute_frac", "battery_kw")
ACTION_NAMES_SOFT: tuple[str, ...] = ("compute_frac", "battery_kw", "ev_cap_kw")


class ActionDecoder:
    """Maps ``[B, n]`` actions in [-1, 1] to setpoints ``[B, 3]`` (IT frac, battery kW, EV cap kW).

    Out-of-range actions are clipped (and counted); NaN or infinite actions raise ``ValueError``.
    """

    def __init__(
        self,
        soft_ev_priority: bool,
        battery_charge_kw: float,
        battery_discharge_kw: float,
        ev_capacity_kw: float,
    ) -> None:
        self.soft = soft_ev_priority
        self.names = ACTION_NAMES_SOFT if soft_ev_priority else ACTION_NAMES_STRICT
        self.charge_kw = battery_charge_kw
        self.discharge_kw = battery_discharge_kw
        self.ev_capacity_kw = ev_capacity_kw
        self.units = ("-", "kW", "kW")[: len(self.names)]
        self.low = np.array([0.0, -battery_charge_kw, 0.0])[: len(self.names)]
        self.high = np.array([1.0, battery_discharge_kw, ev_capacity_kw])[: len(self.names)]

    @property
    def size(self) -> int:
        return len(self.names)

    def decode(self, action: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Fill ``out`` ``[B, 3]`` from ``action`` ``[B, n]``; return the number of clipped entries
        per row ``[B]``."""
        a = np.asarray(action, dtype=np.float64)
        if a.ndim == 1:
            a = a[None]
        if a.shape != (out.shape[0], self.size):
            raise ValueError(
                f"action must have shape {(out.shape[0], self.size)} or ({self.size},); got {np.shape(action)}"
            )
        if not np.isfinite(a).all():
            raise ValueError(nonfinite_rows_message("action", a, "env"))
        clipped = (np.abs(a) > 1.0).sum(axis=1)
        a = np.clip(a, -1.0, 1.0)
        out[:, 0] = (a[:, 0] + 1.0) * 0.5
        out[:, 1] = np.where(a[:, 1] >= 0.0, a[:, 1] * self.discharge_kw, a[:, 1] * self.charge_kw)
        out[:, 2] = (a[:, 2] + 1.0) * 0.5 * self.ev_capacity_kw if self.soft else np.inf
        return clipped

    def decode_one(self, action: np.ndarray, out: np.ndarray) -> int:
        """:meth:`decode` for a single action ``[n]`` into ``out`` ``[3]`` (scalar fast path)."""
        values = np.asarray(action).reshape(-1).tolist()
        if len(values) != self.size:
            raise ValueError(f"action must have shape ({self.size},); got {np.shape(action)}")
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f"action contains NaN or infinite values: {values}")
        clipped = sum(1 for v in values if abs(v) > 1.0)
        a = [min(max(v, -1.0), 1.0) for v in values]
        out[0] = (a[0] + 1.0) * 0.5
        out[1] = a[1] * (self.discharge_kw if a[1] >= 0.0 else self.charge_kw)
        out[2] = (a[2] + 1.0) * 0.5 * self.ev_capacity_kw if self.soft else math.inf
        return clipped

    def encode(self, setpoints: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`decode` for setpoints ``[B, 3]`` within range -> actions ``[B, n]``."""
        s = np.asarray(setpoints, dtype=np.float64).reshape(-1, 3)
        a = np.empty((s.shape[0], self.size))
        a[:, 0] = 2.0 * s[:, 0] - 1.0
        a[:, 1] = np.where(
            s[:, 1] >= 0.0,
            s[:, 1] / max(self.discharge_kw, 1e-9),
            s[:, 1] / max(self.charge_kw, 1e-9),
        )
        if self.soft:
            a[:, 2] = (
                2.0 * np.minimum(s[:, 2], self.ev_capacity_kw) / max(self.ev_capacity_kw, 1e-9)
                - 1.0
            )
        return np.clip(a, -1.0, 1.0)


def nonfinite_rows_message(what: str, values: np.ndarray, row: str, show: int = 5) -> str:
    """ "<what> contains NaN or infinite values in <row>(s) [i, ...] (<row> i: [...])": the
    offending row indices (at most ``show`` listed, then the count) and the first bad row, never
    the whole batch."""
    a = np.asarray(values, dtype=np.float64)
    a2 = a.reshape(a.shape[0], -1) if a.ndim > 1 else a.reshape(-1, 1)
    bad = np.flatnonzero(~np.isfinite(a2).all(axis=1))
    listed = ", ".join(str(int(i)) for i in bad[:show])
    more = f", ... ({bad.size} in all)" if bad.size > show else ""
    first = int(bad[0]) if bad.size else 0
    return (
        f"{what} contains NaN or infinite values in {row}(s) [{listed}{more}] "
        f"({row} {first}: {a2[first].tolist()})"
    )
