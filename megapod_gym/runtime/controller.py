"""The exported-policy controller: measurements -> observation -> ONNX policy -> dispatch -> setpoints.

Everything a decision needs is shared with the environment the policy was trained in, never copied:

* :class:`~megapod_gym.observation.ObservationEncoder` turns the raw measurements (27 named
  features in physical units) into the observation vector the environment emits;
* the ONNX graph (``megapod export``) maps that vector to the final action in [-1, 1]: the training
  run's VecNormalize statistics and the policy network are inside it;
* :class:`~megapod_gym.action.ActionDecoder` maps the action to requested setpoints;
* :func:`megapod_gym.sim.dispatch.dispatch` and :func:`~megapod_gym.sim.dispatch.curtail_export`
  — the plain-Python source the simulator's kernel compiles — turn the request into feasible
  setpoints: grid import within the limit, battery within its power and SoC limits, cars first.

The sidecar ``<name>.json`` next to ``<name>.onnx`` carries the feature table, the action
semantics, the site figures the safety layer needs and the SHA-256 of the ONNX file; loading
checks all of it (the format and its checks: :mod:`megapod_gym.runtime.sidecar`). Only NumPy and
onnxruntime are imported.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from megapod_gym.action import ActionDecoder
from megapod_gym.observation import ObservationEncoder
from megapod_gym.runtime.sidecar import (
    _REQUIRED,
    FORMAT,
    FORMAT_VERSION,
    INPUT_NAME,
    SUPPORTED_VERSIONS,
    PolicyFileError,
    _check_actions,
    _check_features,
    _check_graph,
    _lookup,
    _Site,
    integrity_digest,
    sidecar_path,
)
from megapod_gym.short_repr import short_repr
from megapod_gym.sim.dispatch import compute_request, curtail_export, dispatch

# Physically valid ranges of measurements (inclusive); features not listed may take any finite
# value (prices can be negative, the demand headroom too, the battery power has either sign).
MEASUREMENT_RANGES: dict[str, tuple[float, float]] = {
    "time_of_day_sin": (-1.0, 1.0),
    "time_of_day_cos": (-1.0, 1.0),
    "is_weekend": (0.0, 1.0),
    "demand_rate_usd_per_kw_month": (0.0, 1_000.0),
    "battery_soc_frac": (0.0, 1.0),
    "stalls_occupied_frac": (0.0, 1.0),
    "ev_requested_kw": (0.0, math.inf),
    "compute_headroom_kw": (0.0, math.inf),
    "queue_length": (0.0, 10_000.0),
    "longest_wait_min": (0.0, 7 * 24 * 60.0),
    "expected_arrivals_next_h": (0.0, 10_000.0),
    "training_backlog_h": (0.0, math.inf),
    "inference_demand_frac": (0.0, 10.0),
    "pue": (1.0, 5.0),
    "prev_compute_frac": (0.0, 1.0),
    "prev_ev_cap_kw": (0.0, math.inf),
    "compute_paused": (0.0, 1.0),
    "hours_left_h": (0.0, 366 * 24.0),
}
_RANGE_TOL = 1e-9

# Keys of every decision, in order (see PolicyController.decide).
SETPOINT_KEYS: tuple[str, ...] = (
    "compute_frac",
    "compute_paused",
    "it_kw",
    "compute_kw",
    "battery_kw",
    "ev_cap_kw",
    "ev_kw",
    "grid_import_kw",
    "grid_export_kw",
    "compute_frac_requested",
    "battery_kw_requested",
    "ev_cap_kw_requested",
    "action",
    "action_clipped",
    "compute_cut_kw",
    "ev_cut_kw",
    "battery_limited_kw",
    "battery_override_kw",
    "battery_curtailed_kw",
)
_FEASIBILITY_TOL_KW = 1e-6


class MeasurementError(ValueError):
    """Measurements are missing, unknown, non-finite, out of range or of the wrong shape."""


class InfeasibleSetpointError(RuntimeError):
    """No setpoint satisfies the site's limits for these measurements (e.g. the irreducible load
    — compute standby x PUE + battery aux — exceeds the import limit); nothing is emitted."""


class PolicyController:
    """An exported policy wrapped in the observation encoder, action decoder and safety layer.

    Build it with :meth:`load`; call :meth:`decide` every control step with the site's raw
    measurements. Decisions are stateless (the previous setpoints are measurements too).

    Attributes
    ----------
    sidecar : dict
        The parsed sidecar (algorithm, scenario, training run, versions, ...).
    encoder : ObservationEncoder
        The environment's observation encoder, rebuilt from the sidecar's site parameters.
    decoder : ActionDecoder
        The environment's action decoder for this site.
    feature_names, action_names : tuple of str
        Measurement names expected by :meth:`decide`, and the policy's action names.
    """

    def __init__(
        self,
        session: Any,
        sidecar: Mapping[str, Any],
        encoder: ObservationEncoder,
        decoder: ActionDecoder,
        site: _Site,
        path: Path,
    ) -> None:
        self._session = session
        self.sidecar = dict(sidecar)
        self.encoder = encoder
        self.decoder = decoder
        self._site = site
        self.path = path
        self.feature_names: tuple[str, ...] = encoder.names
        self.action_names: tuple[str, ...] = decoder.names
        self._low = np.full(encoder.size, -np.inf)
        self._high = np.full(encoder.size, np.inf)
        for name, (lo, hi) in MEASUREMENT_RANGES.items():
            self._low[encoder.index[name]] = lo - _RANGE_TOL
            self._high[encoder.index[name]] = hi + _RANGE_TOL
        self._i_soc = encoder.index["battery_soc_frac"]
        self._i_ev = encoder.index["ev_requested_kw"]
        self._i_pue = encoder.index["pue"]

    # ------------------------------------------------------------------------------ loading
    @classmethod
    def load(cls, path: str | os.PathLike[str], threads: int = 1) -> PolicyController:
        """Load ``policy.onnx`` and its sidecar ``policy.json``, checking both.

        Parameters
        ----------
        path
            The ONNX file written by ``megapod export`` (its sidecar sits beside it).
        threads
            onnxruntime intra-op threads; 1 is fastest for these small networks.

        Raises
        ------
        PolicyFileError
            Missing or unreadable files, unknown format version, missing sidecar keys, an ONNX
            file whose SHA-256 differs from the sidecar's (tampered or swapped), or a sidecar
            whose features, actions or graph shapes do not match this package or the graph.
        """
        import onnxruntime as ort

        onnx_path = Path(path)
        side_path = sidecar_path(onnx_path)
        if not onnx_path.is_file():
            raise PolicyFileError(f"{onnx_path}: no such ONNX file")
        if not side_path.is_file():
            raise PolicyFileError(
                f"{side_path}: sidecar not found (megapod export writes it next to {onnx_path.name})"
            )
        try:
            sidecar = json.loads(side_path.read_text())
        except (OSError, ValueError) as exc:
            raise PolicyFileError(f"{side_path}: not a readable JSON sidecar ({exc})") from None
        where = str(side_path)
        if not isinstance(sidecar, dict):
            raise PolicyFileError(f"{where}: top level must be a JSON object")
        if sidecar.get("format") != FORMAT:
            raise PolicyFileError(
                f"{where}: format must be {FORMAT!r} (got {sidecar.get('format')!r})"
            )
        version = sidecar.get("format_version")
        if type(version) is not int or version not in SUPPORTED_VERSIONS:
            newer = type(version) is int and version > FORMAT_VERSION
            raise PolicyFileError(
                f"{where}: sidecar format_version {version!r} is not supported (this runtime reads "
                f"versions {list(SUPPORTED_VERSIONS)}"
                + ("; upgrade megapod-gym)" if newer else "; re-export the policy)")
            )
        missing = []
        for key in _REQUIRED:
            try:
                _lookup(sidecar, key)
            except KeyError:
                missing.append(key)
        if missing:
            raise PolicyFileError(f"{where}: missing required key(s) {missing}")

        data = onnx_path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest != sidecar["onnx"]["sha256"]:
            raise PolicyFileError(
                f"{onnx_path}: SHA-256 {digest} does not match the sidecar's "
                f"{sidecar['onnx']['sha256']}: the ONNX file was modified or does not belong to "
                f"{side_path.name}; re-export the policy"
            )
        if version >= 2:
            stored = sidecar.get("integrity", {})
            expected = integrity_digest(sidecar, data)
            if not isinstance(stored, dict) or stored.get("sha256") != expected:
                raise PolicyFileError(
                    f"{where}: integrity check failed: the sidecar's fields or the ONNX file were "
                    "edited after export (integrity.sha256 covers both); re-export the policy"
                )
        else:
            warnings.warn(
                f"{where}: format_version 1 has no integrity digest, so edits to its site figures "
                "cannot be detected; re-export the policy with this version",
                stacklevel=2,
            )

        site = _Site.from_sidecar(sidecar["site"], where)
        enc_site = sidecar["observation"]["encoder_site"]
        try:
            carbon_priced = enc_site.get("carbon_priced", False)  # absent before carbon features
            if not isinstance(carbon_priced, bool):
                raise ValueError(
                    f"carbon_priced must be true or false (got {short_repr(carbon_priced, 40)})"
                )
            encoder = ObservationEncoder(
                float(enc_site["import_limit_kw"]),
                int(enc_site["n_stalls"]),
                float(enc_site["battery_power_kw"]),
                carbon_priced=carbon_priced,
            )
        except (AttributeError, TypeError, ValueError) as exc:
            raise PolicyFileError(f"{where}: bad observation.encoder_site ({exc})") from None
        _check_features(sidecar["observation"]["features"], encoder, where)
        decoder = ActionDecoder(
            soft_ev_priority=not site.strict,
            battery_charge_kw=site.battery_charge_kw,
            battery_discharge_kw=site.battery_discharge_kw,
            ev_capacity_kw=site.ev_capacity_kw,
        )
        _check_actions(sidecar["action"], decoder, where)

        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise PolicyFileError(f"{onnx_path}: onnxruntime cannot load it ({exc})") from None
        _check_graph(session, sidecar, encoder.size, decoder.size, where)
        return cls(session, sidecar, encoder, decoder, site, onnx_path)

    # ----------------------------------------------------------------------------- deciding
    def decide(
        self, measurements: Mapping[str, Any] | Sequence[Mapping[str, Any]] | np.ndarray
    ) -> dict[str, Any] | list[dict[str, Any]]:
        """Feasible setpoints for one site (a mapping) or a batch (a list of mappings).

        Parameters
        ----------
        measurements
            The 27 observation features by name in physical units (see :attr:`feature_names`
            and the sidecar's ``observation.features``), e.g. ``{"battery_soc_frac": 0.62,
            "ev_requested_kw": 480.0, "pue": 1.14, ...}``; or a list of such mappings; or an
            array ``[F]`` / ``[B, F]`` of raw values in feature order.

        Returns
        -------
        dict or list of dict
            One decision per site with the keys of :data:`SETPOINT_KEYS`:

            * setpoints: ``compute_frac`` (IT power fraction applied; the standby fraction when
              ``compute_paused``), ``it_kw``, ``compute_kw`` (IT + cooling), ``battery_kw``
              (+ = discharge into the site, - = charge), ``ev_cap_kw`` (cap on the chargers'
              total AC power: the cars' request unless the grid limit or, in ``soft`` mode, the
              policy cut them);
            * expected flows: ``ev_kw`` (cars' AC power), ``grid_import_kw``,
              ``grid_export_kw``;
            * what was requested, clipped or cut: ``compute_frac_requested``,
              ``battery_kw_requested``, ``ev_cap_kw_requested`` (``None`` in ``strict`` mode),
              ``action`` (policy output in [-1, 1]), ``action_clipped`` (entries outside
              [-1, 1]), ``compute_cut_kw``, ``ev_cut_kw``, ``battery_limited_kw`` (SoC/power
              clipping), ``battery_override_kw`` (extra discharge to keep cars whole,
              ``strict``), ``battery_curtailed_kw`` (discharge curtailed at the export limit).

        Raises
        ------
        MeasurementError
            Missing, unknown, non-numeric, non-finite or out-of-range measurements, or a wrong
            shape; the message names the field (and the row in a batch).
        InfeasibleSetpointError
            The site's limits cannot be met for these measurements.
        """
        if isinstance(measurements, Mapping):
            return self._decide(self._rows([measurements], batch=False))[0]
        if isinstance(measurements, np.ndarray):
            raw = np.asarray(measurements, dtype=np.float64)
            if raw.ndim == 1 and raw.shape[0] == self.encoder.size:
                return self._decide(self._checked(raw[None], batch=False))[0]
            if raw.ndim == 2 and raw.shape[1] == self.encoder.size and raw.shape[0] > 0:
                return self._decide(self._checked(raw.copy(), batch=True))
            raise MeasurementError(
                f"measurements array must have shape ({self.encoder.size},) or "
                f"(batch, {self.encoder.size}); got {raw.shape}"
            )
        if isinstance(measurements, Sequence) and not isinstance(measurements, (str, bytes)):
            if len(measurements) == 0:
                raise MeasurementError("measurements: empty batch")
            return self._decide(self._rows(measurements, batch=True))
        raise MeasurementError(
            "measurements must be a mapping of feature names to numbers, a list of such "
            f"mappings or an array; got {type(measurements).__name__}"
        )

    def _rows(self, rows: Sequence[Any], batch: bool) -> np.ndarray:
        raw = np.empty((len(rows), self.encoder.size))
        for b, row in enumerate(rows):
            prefix = f"measurements[{b}]: " if batch else ""
            if not isinstance(row, Mapping):
                raise MeasurementError(
                    f"{prefix}each measurement set must be a mapping of feature names to "
                    f"numbers (got {type(row).__name__})"
                )
            try:
                raw[b] = self._from_mapping(row)
            except ValueError as exc:
                msg = str(exc)  # the encoder's messages start with "measurements"
                if batch and msg.startswith("measurements"):
                    msg = f"measurements[{b}]{msg[len('measurements') :]}"
                raise MeasurementError(msg) from None
        return self._checked(raw, batch)

    def _from_mapping(self, row: Mapping[str, Any]) -> list[float] | np.ndarray:
        """The encoder's :meth:`~ObservationEncoder.from_mapping`, with a fast path for the
        valid case; anything unusual is handed to the encoder, whose checks and messages apply."""
        if len(row) == self.encoder.size:
            try:
                values = [row[name] for name in self.feature_names]
            except KeyError:
                pass
            else:  # plain finite floats/ints only (not bool, str); else the encoder explains
                if all(type(v) in (float, int) for v in values):
                    try:
                        floats = [float(v) for v in values]
                    except OverflowError:
                        floats = [math.nan]
                    if all(map(math.isfinite, floats)):
                        return floats
        return self.encoder.from_mapping(row)

    def _checked(self, raw: np.ndarray, batch: bool) -> np.ndarray:
        """Raise :class:`MeasurementError` naming the first non-finite or out-of-range value."""
        bad = ~((raw >= self._low) & (raw <= self._high))  # NaN fails both comparisons
        if bad.any():
            b, i = (int(v) for v in np.argwhere(bad)[0])
            name, value = self.feature_names[i], float(raw[b, i])
            where = f"measurements[{b}].{name}" if batch else f"measurements.{name}"
            if not math.isfinite(value):
                raise MeasurementError(f"{where}: must be finite (got {value})")
            lo, hi = MEASUREMENT_RANGES[name]
            raise MeasurementError(f"{where}: {value!r} is outside its valid range [{lo}, {hi}]")
        return raw

    def _decide(self, raw: np.ndarray) -> list[dict[str, Any]]:
        obs = self.encoder.encode(raw)
        action = self._session.run(None, {INPUT_NAME: obs})[0]
        B = raw.shape[0]
        if action.shape != (B, self.decoder.size):
            raise PolicyFileError(
                f"{self.path}: the graph returned shape {action.shape} for a batch of {B}; "
                f"expected {(B, self.decoder.size)}"
            )
        sp = np.empty((B, 3))
        try:
            if B == 1:  # the decoder's scalar fast path
                clipped = np.array([self.decoder.decode_one(action[0], sp[0])])
            else:
                clipped = self.decoder.decode(action, sp)
        except ValueError as exc:
            raise InfeasibleSetpointError(f"the policy produced an invalid action: {exc}") from None
        s = self._site
        soft = not s.strict
        has_batt = s.battery_energy_kwh > 0.0
        import_max = s.import_limit_kw + _FEASIBILITY_TOL_KW
        export_max = s.export_limit_kw + _FEASIBILITY_TOL_KW
        out = []
        raw_rows = raw.tolist()
        act_rows = action.astype(np.float64).tolist()
        sp_rows = sp.tolist()
        clip_rows = clipped.tolist()
        for b in range(B):
            m = raw_rows[b]
            frac_req, batt_req, cap_req = sp_rows[b]
            ev_req = m[self._i_ev]
            pue = m[self._i_pue]
            soc = m[self._i_soc]
            ev, comp, it_frac, running, batt, override, limited, aux = dispatch(
                ev_req, cap_req, s.strict, frac_req, s.it_kw, s.cap_floor_frac, s.standby_frac,
                pue, batt_req, soc, s.battery_energy_kwh, s.battery_soc_min, s.battery_soc_max,
                s.battery_charge_kw, s.battery_discharge_kw, s.battery_charge_efficiency,
                s.battery_discharge_efficiency, s.battery_aux_kw, s.import_limit_kw, s.dt_h,
            )  # fmt: skip
            batt_final, net = curtail_export(ev + comp + aux, batt, s.export_limit_kw)
            imp = max(net, 0.0)
            exp_kw = max(-net, 0.0)
            # defence in depth: never emit a non-finite or infeasible setpoint
            lo, hi = self._battery_range_kw(soc) if has_batt else (0.0, 0.0)
            finite = math.isfinite(it_frac + comp + ev + batt_final + net)
            if not (
                finite and imp <= import_max and exp_kw <= export_max and lo <= batt_final <= hi
            ):
                self._refuse(b, B > 1, finite, imp, exp_kw, comp, ev, batt_final, aux, lo, hi)
            comp_req = compute_request(frac_req, s.it_kw, s.cap_floor_frac, s.standby_frac, pue)[0]
            out.append(
                {
                    "compute_frac": it_frac,
                    "compute_paused": running < 0.5,
                    "it_kw": comp / pue,
                    "compute_kw": comp,
                    "battery_kw": batt_final,
                    "ev_cap_kw": ev,
                    "ev_kw": ev,
                    "grid_import_kw": imp,
                    "grid_export_kw": exp_kw,
                    "compute_frac_requested": frac_req,
                    "battery_kw_requested": batt_req,
                    "ev_cap_kw_requested": cap_req if soft else None,
                    "action": act_rows[b],
                    "action_clipped": int(clip_rows[b]),
                    "compute_cut_kw": max(comp_req - comp, 0.0),
                    "ev_cut_kw": max(ev_req - ev, 0.0),
                    "battery_limited_kw": limited,
                    "battery_override_kw": override,
                    "battery_curtailed_kw": batt - batt_final,
                }
            )
        return out

    def _battery_range_kw(self, soc: float) -> tuple[float, float]:
        """Feasible battery power [-charge, +discharge] kW (with tolerance) at this SoC."""
        s = self._site
        dis_max = min(
            s.battery_discharge_kw,
            max(soc - s.battery_soc_min, 0.0)
            * s.battery_energy_kwh
            * s.battery_discharge_efficiency
            / s.dt_h,
        )
        ch_max = min(
            s.battery_charge_kw,
            max(s.battery_soc_max - soc, 0.0)
            * s.battery_energy_kwh
            / (s.battery_charge_efficiency * s.dt_h),
        )
        return -ch_max - _FEASIBILITY_TOL_KW, dis_max + _FEASIBILITY_TOL_KW

    def _refuse(
        self,
        b: int,
        batch: bool,
        finite: bool,
        imp: float,
        exp_kw: float,
        comp: float,
        ev: float,
        batt: float,
        aux: float,
        lo: float,
        hi: float,
    ) -> None:
        """Raise :class:`InfeasibleSetpointError` explaining why a decision cannot be emitted."""
        s = self._site
        where = f"measurements[{b}]: " if batch else ""
        if not finite:
            raise InfeasibleSetpointError(f"{where}a setpoint is not finite; nothing emitted")
        if imp > s.import_limit_kw + _FEASIBILITY_TOL_KW:
            raise InfeasibleSetpointError(
                f"{where}no feasible setpoint: with compute at {comp:.1f} kW, cars at {ev:.1f} kW "
                f"and the battery at {batt:.1f} kW the site would import {imp:.1f} kW > the "
                f"{s.import_limit_kw:.1f} kW limit (irreducible load {comp + aux:.1f} kW; check "
                "pue and battery_soc_frac)"
            )
        if exp_kw > s.export_limit_kw + _FEASIBILITY_TOL_KW:
            raise InfeasibleSetpointError(
                f"{where}export {exp_kw:.1f} kW exceeds the limit {s.export_limit_kw} kW"
            )
        raise InfeasibleSetpointError(
            f"{where}battery_kw {batt:.3f} outside its feasible range [{lo:.3f}, {hi:.3f}] kW; "
            "nothing emitted"
        )

    def act(self, obs: np.ndarray) -> np.ndarray:
        """The graph alone: observations ``[B, F]`` (as the environment emits them) -> actions
        ``[B, n]`` in [-1, 1], float32. No measurement checks and no dispatch: for evaluating the
        exported network in the environment (``agents.export.OnnxPolicy``)."""
        x = np.asarray(obs, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.encoder.size:
            raise MeasurementError(
                f"observations must have shape (batch, {self.encoder.size}); got {x.shape}"
            )
        return self._session.run(None, {INPUT_NAME: x})[0]

    # --------------------------------------------------------------------------- metadata
    @property
    def algorithm(self) -> str:
        """The training algorithm of the exported policy (``ppo``, ``sac``, ...)."""
        return str(self.sidecar["algorithm"])

    @property
    def scenario(self) -> str:
        """The scenario the policy was trained on."""
        return str(self.sidecar["scenario"])

    def __repr__(self) -> str:
        return (
            f"PolicyController({str(self.path)!r}, algorithm={self.algorithm!r}, "
            f"scenario={self.scenario!r}, actions={list(self.action_names)})"
        )
