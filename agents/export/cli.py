"""``megapod export`` and ``megapod control``: policy export and the stdin/stdout controller loop.

``add_commands(subparsers)`` adds both to the ``megapod`` command line; ``python -m
agents.export.cli {export,control} ...`` runs them standalone.

``megapod control --policy policy.onnx`` reads one JSON object of measurements per line on stdin
(or a JSON array of them, for a batch of sites) and writes one JSON object of setpoints per line
on stdout (an array for a batch), flushing after each line. A bad line yields
``{"error": "...", "error_type": "...", "line": N}`` on that line and the loop goes on; blank
lines are skipped. Only NumPy and onnxruntime are needed at run time.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from collections.abc import Sequence
from typing import Any, BinaryIO, TextIO


def _cmd_export(args: argparse.Namespace) -> int:
    from agents.export.onnx import export_policy
    from megapod_gym.runtime import sidecar_path, torchscript_path

    out = export_policy(
        args.run_dir,
        args.out,
        force=args.force,
        torchscript=args.torchscript,
        exporter=args.exporter,
    )
    side = json.loads(sidecar_path(out).read_text())
    lines = [
        f"policy      {out}  ({side['algorithm']}, {side['scenario']}, opset {side['onnx']['opset']})",
        f"sidecar     {sidecar_path(out)}",
    ]
    if args.torchscript:
        lines.append(f"torchscript {torchscript_path(out)}")
    lines += [
        f"input       obs float32 [batch, {len(side['observation']['features'])}] "
        "(the environment's observation)",
        f"output      action float32 [batch, {len(side['action']['names'])}] in [-1, 1]: "
        f"{', '.join(side['action']['names'])}",
        f"check       max |onnx - model.predict| = "
        f"{side['export_check']['max_abs_error_vs_model_predict']:.2g}",
        f"run it      megapod control --policy {out}",
    ]
    print("\n".join(lines))
    return 0


def control_loop(controller: Any, stdin: TextIO | BinaryIO, stdout: TextIO) -> int:
    """Answer every line of ``stdin`` (text, or bytes decoded as strict UTF-8 line by line) on
    ``stdout``; a bad line gets an error record and the loop goes on. Returns the number of error
    lines."""
    errors = 0
    for n, line in enumerate(iter(stdin.readline, line_end(stdin)), start=1):  # no read-ahead
        if not line.strip():
            continue
        try:
            try:
                text = (line.decode("utf-8") if isinstance(line, bytes) else line).strip()
            except UnicodeDecodeError as exc:
                raise ValueError(
                    f"line {n} is not UTF-8 ({exc.reason} at byte {exc.start})"
                ) from None
            try:
                measurements = json.loads(text)
            except ValueError as exc:
                raise ValueError(f"line {n} is not valid JSON ({exc})") from None
            result: Any = controller.decide(measurements)
            reply = json.dumps(result, allow_nan=False)
        except Exception as exc:  # one bad line must not stop the controller
            errors += 1
            reply = json.dumps({"error": str(exc), "error_type": type(exc).__name__, "line": n})
        stdout.write(reply + "\n")
        stdout.flush()
    return errors


def line_end(stream: TextIO | BinaryIO) -> str | bytes:
    """What ``readline`` returns at the end of ``stream``."""
    return b"" if isinstance(stream, (io.RawIOBase, io.BufferedIOBase)) else ""


def _cmd_control(args: argparse.Namespace) -> int:
    from megapod_gym.runtime import PolicyController

    controller = PolicyController.load(args.policy, threads=args.threads)
    # bytes in: a line that is not UTF-8 gets an error record instead of ending the loop
    control_loop(controller, sys.stdin.buffer, sys.stdout)
    return 0


def add_commands(subparsers: Any) -> None:
    """Add ``export`` and ``control`` to the ``megapod`` sub-command parser."""
    p = subparsers.add_parser(
        "export",
        help="export a trained run's policy to ONNX (+ JSON sidecar) for a torch-free controller",
        description="Write RUN_DIR's policy (best/ model preferred) as an ONNX graph from the "
        "environment's observation to the final action, with the observation normalization "
        "inside, and a JSON sidecar (features, actions, site figures, versions, SHA-256).",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="training run folder (or best/, final/)")
    p.add_argument("--out", required=True, help="ONNX file to write, e.g. policy.onnx")
    p.add_argument("--force", action="store_true", help="replace existing output files")
    p.add_argument(
        "--torchscript", action="store_true", help="also write a TorchScript module (.pt)"
    )
    p.add_argument(
        "--exporter",
        choices=("auto", "torchscript", "dynamo"),
        default="auto",
        help="torch ONNX exporter (auto: TorchScript-based if available, else dynamo)",
    )
    p.set_defaults(func=_cmd_export)

    p = subparsers.add_parser(
        "control",
        help="run an exported policy: JSON measurements on stdin -> JSON setpoints on stdout",
        description="Read one JSON object of site measurements per line on stdin (the 27 "
        "observation features by name, physical units; an array of objects for a batch) and "
        "write one JSON object of feasible setpoints per line on stdout. Bad lines give a JSON "
        "error object and the loop continues.",
    )
    p.add_argument("--policy", required=True, help="ONNX file written by 'megapod export'")
    p.add_argument("--threads", type=int, default=1, help="onnxruntime threads (default 1)")
    p.set_defaults(func=_cmd_control)


def main(argv: Sequence[str] | None = None) -> int:
    """Standalone entry point: ``python -m agents.export.cli {export,control} ...``."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # small networks: one thread is fastest
    parser = argparse.ArgumentParser(prog="megapod", description="policy export and control")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (ValueError, FileNotFoundError, FileExistsError) as exc:
        print(f"megapod {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
