"""The repository carries its own sources document, ``docs/sources.md``, and cites only that.

* No text file of the project (py, md, yaml, cff, toml) may point at a facts file outside the
  repository: a reader could not check the figure.
* Every ``sources §N`` cited in code, configs, tests or docs must name a section heading of
  ``docs/sources.md`` (``## §N. ...`` or ``## N. ...``; sub-sections such as ``§2b`` likewise).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCES = REPO / "docs" / "sources.md"
SUFFIXES = {".py", ".md", ".yaml", ".yml", ".cff", ".toml"}
EXCLUDED_PREFIXES = ("build/", "experiments/runs/")
# Built from pieces so that this file does not match itself.
FORBIDDEN = ("domain" + "_facts", "shared" + "/reference", ".." + "/shared/")

CITATION = re.compile(r"\bsources §(\d+[a-z]?)((?:/§\d+[a-z]?)*)")
HEADING = re.compile(r"^#{1,6}\s+§?(\d+[a-z]?)\.")


def _text_files() -> list[Path]:
    """Tracked (and new, not ignored) text files, outside build output and experiment runs."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO,
            capture_output=True,
            check=True,
        ).stdout.decode()
        names = sorted({n for n in out.split("\0") if n})
    except (OSError, subprocess.CalledProcessError):  # no git: walk the tree instead
        names = []
        for root, dirs, files in os.walk(REPO):
            dirs[:] = [d for d in dirs if not d.startswith(".") and not d.endswith(".egg-info")]
            for f in files:
                names.append(Path(root, f).relative_to(REPO).as_posix())
    paths = []
    for name in names:
        if name.startswith(EXCLUDED_PREFIXES) or Path(name).suffix not in SUFFIXES:
            continue
        path = REPO / name
        if path.is_file():
            paths.append(path)
    return paths


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace")


def test_no_citation_of_files_outside_the_repository() -> None:
    files = _text_files()
    assert any(p.name == "schema.py" for p in files), "file listing found no project sources"
    hits = []
    for path in files:
        for lineno, line in enumerate(_read(path).splitlines(), 1):
            for needle in FORBIDDEN:
                if needle in line:
                    hits.append(f"{path.relative_to(REPO)}:{lineno}: {line.strip()}")
    assert not hits, "cite docs/sources.md (as 'sources §N') instead of:\n" + "\n".join(hits)


def _sections() -> set[str]:
    return {
        m.group(1) for line in _read(SOURCES).splitlines() if (m := HEADING.match(line.strip()))
    }


def test_sources_document_has_the_numbered_sections() -> None:
    assert SOURCES.is_file(), "docs/sources.md is missing"
    sections = _sections()
    for n in ("1", "2", "2a", "2b", "2c", "2d", "2e", "2f", "3", "4", "5", "7"):
        assert n in sections, f"docs/sources.md has no heading for §{n}"


def test_every_cited_section_exists() -> None:
    sections = _sections()
    cited: dict[str, list[str]] = {}
    for path in _text_files():
        if path == SOURCES:
            continue
        for lineno, line in enumerate(_read(path).splitlines(), 1):
            for m in CITATION.finditer(line):
                ids = [m.group(1)] + re.findall(r"§(\d+[a-z]?)", m.group(2))
                for n in ids:
                    cited.setdefault(n, []).append(f"{path.relative_to(REPO)}:{lineno}")
    assert len(cited) >= 10, f"expected many 'sources §N' citations, found {sorted(cited)}"
    missing = {n: where for n, where in cited.items() if n not in sections}
    assert not missing, "cited sections missing from docs/sources.md: " + "; ".join(
        f"§{n} (cited at {', '.join(where[:3])})" for n, where in sorted(missing.items())
    )


# repository paths cited in prose: `configs/...`, (docs/...), experiments/... and friends
PATH_CITE = re.compile(
    r"(?<![\w/.-])((?:configs|docs|experiments|megapod_gym|agents|tests|\.ci)/[\w./-]*[\w])"
)
# paths that name what a run writes, not a file of the repository
GENERATED = ("experiments/runs/", "experiments/results_learning_<")


def test_every_path_cited_in_readme_docs_and_configs_exists() -> None:
    sources = [REPO / "README.md", REPO / "CHANGELOG.md", *sorted((REPO / "docs").glob("*.md"))]
    sources += sorted((REPO / "configs").rglob("*.yaml"))
    sources += sorted((REPO / "megapod_gym" / "presets").rglob("*.yaml"))
    missing = []
    for path in sources:
        for lineno, line in enumerate(_read(path).splitlines(), 1):
            for m in PATH_CITE.finditer(line):
                cited = m.group(1).rstrip(".")
                if cited.startswith(GENERATED) or any(c in cited for c in "*<>{}"):
                    continue
                if re.fullmatch(r"megapod_gym/Megapod\w+-v\d+", cited):  # a Gymnasium env id
                    continue
                target = REPO / cited
                # a result-file stem given to --out names <stem>.md and <stem>.csv
                if not (target.exists() or target.with_name(target.name + ".md").exists()):
                    missing.append(f"{path.relative_to(REPO)}:{lineno}: {cited}")
    assert not missing, "cited paths that do not exist:\n" + "\n".join(missing)
