"""The layering of docs/architecture.md, read from the code: no import cycles between modules
(lazy imports inside functions count too), the simulation imports neither gymnasium nor torch,
``megapod_gym`` never imports ``agents``, and torch is imported only where training or export
happens."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("megapod_gym", "agents")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports() -> dict[str, set[str]]:
    """module -> every module name it imports (absolute, anywhere in the file)."""
    graph: dict[str, set[str]] = {}
    for pkg in PACKAGES:
        for path in (REPO / pkg).rglob("*.py"):
            name = _module_name(path)
            found: set[str] = set()
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    found.update(a.name for a in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    found.add(node.module)
                    found.update(f"{node.module}.{a.name}" for a in node.names)
            graph[name] = found
    return graph


def _project_edges(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    modules = set(graph)
    # a package's __init__ re-exporting its submodules is not a design cycle: skip package nodes
    packages = {m for m in modules if (REPO / m.replace(".", "/") / "__init__.py").is_file()}
    return {
        m: {t for t in targets if t in modules and t != m and t not in packages}
        for m, targets in graph.items()
        if m not in packages
    }


def test_no_import_cycles() -> None:
    edges = _project_edges(_imports())
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for t in sorted(edges.get(m, ())):
            if state.get(t) == 1:
                cycles.append(stack[stack.index(t) :] + [t])
            elif t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_layering() -> None:
    graph = _imports()
    for module, targets in graph.items():
        roots = {t.split(".")[0] for t in targets}
        if module.startswith("megapod_gym"):
            assert "agents" not in roots, f"{module} imports agents"
        if module.startswith(("megapod_gym.sim", "megapod_gym.scenario", "megapod_gym.fleet")):
            assert not roots & {"gymnasium", "torch", "stable_baselines3"}, module
        if module.startswith("megapod_gym.runtime"):
            assert not roots & {"torch", "gymnasium", "pydantic", "numba"}, module
        if "torch" in roots or "stable_baselines3" in roots:
            assert module.startswith(
                ("agents.training", "agents.export", "agents.sweeps", "agents.policies.trained")
            ), f"{module} imports torch/SB3 outside training and export"
