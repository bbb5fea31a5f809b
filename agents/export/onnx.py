"""``megapod export``: a trained run -> ONNX policy + JSON sidecar (+ optional TorchScript).

The graph maps the **raw observation** the environment emits (``obs``, float32 ``[batch, 27]``)
to the **final action** (``action``, float32 ``[batch, n]`` in [-1, 1]) exactly as the training
stack acts, i.e. ``model.predict(normalize(obs), deterministic=True)``; how it is built, written
and checked (ONNX checker, dynamic batch axis, parity with ``model.predict``) is in
:mod:`agents.export.graph`.

RecurrentPPO is refused: its action depends on an LSTM state carried between steps, while the
exported controller is a stateless map from measurements to setpoints.

The sidecar ``policy.json`` (see :func:`agents.export.sidecar.build_sidecar`) describes the
features, the actions, the site figures the dispatch safety layer needs, versions, the training
run and the ONNX file's SHA-256; :class:`megapod_gym.runtime.PolicyController` checks it on load.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from agents.export.errors import ExportError
from agents.export.graph import (
    PARITY_TOL,
    _check_onnx,
    _check_parity,
    _export_onnx,
    _quiet,
    build_export_module,
)

# site_figures: re-exported, callers and tests import it from here
from agents.export.sidecar import build_sidecar, site_figures  # noqa: F401
from agents.policies.trained import (
    ObsNormalizer,
    algo_of_model,
    load_vecnormalize,
    resolve_model_path,
)
from megapod_gym.config import load_scenario
from megapod_gym.envs.site_env import make_decoder, make_encoder
from megapod_gym.runtime.controller import PolicyController
from megapod_gym.runtime.sidecar import seal_sidecar, sidecar_path, torchscript_path

if TYPE_CHECKING:
    from agents.policies.base import PolicyContext

Exporter = Literal["auto", "torchscript", "dynamo"]
EXPORTABLE_ALGOS = ("ppo", "a2c", "sac", "td3")


def _run_root(model_path: Path) -> Path:
    for folder in (model_path.parent, model_path.parent.parent):
        if (folder / "config.yaml").is_file():
            return folder
    return model_path.parent


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------------------- the export
def export_policy(
    run_dir: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    force: bool = False,
    torchscript: bool = False,
    exporter: Exporter = "auto",
) -> Path:
    """Export a trained run's policy to ONNX (+ sidecar JSON, + TorchScript if asked).

    Parameters
    ----------
    run_dir
        A run folder written by ``megapod train`` (its ``best/`` model is preferred, then
        ``final/``), a ``best``/``final`` folder, or a ``model.zip`` inside a run folder.
    out_path
        The ONNX file to write, ending in ``.onnx``; the sidecar is written beside it with the
        suffix ``.json`` (and the TorchScript file with ``.pt``).
    force
        Replace existing output files (and remove a ``.pt`` left by an earlier export when
        ``torchscript`` is false); otherwise an existing file is an error.
    torchscript
        Also write a TorchScript module (``.pt``) of the same graph, for PyTorch consumers.
    exporter
        ``"auto"`` (default) uses torch's TorchScript-based ONNX exporter when this torch still
        has it (fast, no extra dependency) and the dynamo exporter otherwise; ``"dynamo"``
        forces ``torch.export`` (needs ``onnxscript``); ``"torchscript"`` forces the former.

    Returns
    -------
    Path
        The ONNX file.

    Raises
    ------
    ExportError
        RecurrentPPO or another unsupported policy, a model whose spaces do not match the run's
        scenario, or a graph that fails the checker or the parity check.
    FileExistsError
        An output file exists and ``force`` is false.
    """
    import torch

    out = Path(out_path)
    if out.suffix != ".onnx":
        raise ExportError(f"--out must name a .onnx file (got {str(out)!r})")
    if exporter not in ("auto", "torchscript", "dynamo"):
        raise ExportError(f"exporter must be 'auto', 'torchscript' or 'dynamo' (got {exporter!r})")
    targets = [out, sidecar_path(out)] + ([torchscript_path(out)] if torchscript else [])
    existing = [str(p) for p in targets if p.exists()]
    if existing and not force:
        raise FileExistsError(f"{', '.join(existing)} already exist(s); pass --force to replace")

    model_path, norm_path = resolve_model_path(run_dir)
    algo = algo_of_model(model_path)
    if algo == "recurrent_ppo":
        raise ExportError(
            "RecurrentPPO cannot be exported: its action depends on an LSTM hidden state carried "
            "from step to step, and the exported controller is a stateless map from measurements "
            f"to setpoints. Export a feed-forward policy ({', '.join(EXPORTABLE_ALGOS)})."
        )
    if algo not in EXPORTABLE_ALGOS:
        raise ExportError(f"cannot export algorithm {algo!r}; supported: {EXPORTABLE_ALGOS}")
    root = _run_root(model_path)
    scenario_file = root / "scenario.yaml"
    if not scenario_file.is_file():
        raise ExportError(f"{root}: no scenario.yaml (the run's resolved scenario) to export with")
    config = load_scenario(scenario_file)
    encoder, decoder = make_encoder(config), make_decoder(config)

    from agents.training.config import algo_class

    model = algo_class(algo).load(model_path, device="cpu")
    # a model trained with privileged critic features has a larger observation space, but its
    # actor reads only the env's features: the export takes exactly those
    n_actor = int(
        getattr(getattr(model.policy, "mlp_extractor", None), "n_actor_features", 0)
        or model.observation_space.shape[0]
    )
    if n_actor != encoder.size or tuple(model.action_space.shape) != (decoder.size,):
        raise ExportError(
            f"{model_path}: model spaces {model.observation_space.shape} -> "
            f"{model.action_space.shape} do not match the run's scenario ({encoder.size} features "
            f"-> {decoder.size} actions)"
        )
    normalizer = ObsNormalizer.from_vecnormalize(load_vecnormalize(norm_path))
    module = build_export_module(model, algo, normalizer)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        kind = exporter
        if exporter == "auto":
            kind = "torchscript"
            try:
                used, opset = _export_onnx(module, encoder.size, tmp, "torchscript")
            except Exception as first:  # e.g. a torch without the TorchScript-based exporter
                kind = "dynamo"
                try:
                    used, opset = _export_onnx(module, encoder.size, tmp, "dynamo")
                except Exception as second:
                    raise ExportError(
                        f"ONNX export failed with the TorchScript-based exporter ({first}) and "
                        f"with the dynamo exporter ({second})"
                    ) from second
        else:
            used, opset = _export_onnx(module, encoder.size, tmp, exporter)
        _check_onnx(tmp, encoder.size, decoder.size)
        parity = _check_parity(tmp, model, normalizer, encoder.size)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)

    ts_info = None
    stale = torchscript_path(out)
    if not torchscript and force and stale.exists():  # a .pt of the replaced export
        stale.unlink()
    if torchscript:
        ts_path = torchscript_path(out)
        ts_tmp = ts_path.with_name(f".{ts_path.name}.{os.getpid()}.tmp")
        try:
            with _quiet(), torch.no_grad():
                traced = torch.jit.trace(module, torch.zeros(2, encoder.size), check_trace=False)
                traced.save(str(ts_tmp))
            os.replace(ts_tmp, ts_path)
        finally:
            ts_tmp.unlink(missing_ok=True)
        ts_info = {"file": ts_path.name, "sha256": _sha256(ts_path), "input": "same as onnx"}

    meta_file = root / "meta.json"
    meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
    training_run = {
        "run_id": root.name,
        "git_revision": meta.get("git_revision", "unknown"),
        "model": str(model_path.relative_to(root))
        if model_path.is_relative_to(root)
        else str(model_path),
        "timesteps": int(model.num_timesteps),
        "seed": meta.get("seed"),
        "training_versions": meta.get("versions", {}),
    }
    sidecar = build_sidecar(
        config,
        algo,
        _sha256(out),
        out.name,
        decoder.size,
        exporter=used,
        exporter_kind=kind,
        opset=opset,
        normalizer=normalizer,
        action_transform="unscale" if module.squash else "clip",
        actor_description=module.description,
        training_run=training_run,
        torchscript=ts_info,
    )
    sidecar["export_check"] = {"max_abs_error_vs_model_predict": parity, "tolerance": PARITY_TOL}
    seal_sidecar(sidecar, out.read_bytes())
    side = sidecar_path(out)
    side_tmp = side.with_name(f".{side.name}.{os.getpid()}.tmp")
    side_tmp.write_text(json.dumps(sidecar, indent=2, allow_nan=False) + "\n")
    os.replace(side_tmp, side)
    return out


class OnnxPolicy:
    """An exported ``policy.onnx`` behind the :class:`~agents.policy.Policy` interface, so the
    exported network runs through the same evaluation code as everything else (``run_policy``,
    benchmarks): observations in, actions in [-1, 1] out; the environment decodes and dispatches.

    ``reset`` refuses a site whose observation or action layout differs from the export's.
    """

    def __init__(self, path: str | os.PathLike[str], name: str | None = None) -> None:
        self.controller = PolicyController.load(path)
        self.name = name or f"{Path(path).stem} (onnx)"

    def reset(self, context: PolicyContext) -> None:
        enc, dec = context.encoder, context.decoder
        c = self.controller
        if enc.describe() != c.encoder.describe() or dec.names != c.action_names:
            raise ValueError(
                f"{c.path} was exported for another site layout (features {c.encoder.site}, "
                f"actions {list(c.action_names)}) than this scenario's ({enc.site}, "
                f"{list(dec.names)})"
            )

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self.controller.act(obs)
