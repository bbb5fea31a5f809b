"""The error every step of ``megapod export`` raises when a run cannot be exported."""

from __future__ import annotations


class ExportError(ValueError):
    """The run cannot be exported (unsupported algorithm or policy, mismatched files, a graph
    that fails its checks)."""
