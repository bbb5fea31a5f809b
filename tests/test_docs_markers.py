"""The docs pages' ``<!-- gen:NAME -->`` markers are all replaced at build time: a marker the
hook's pattern does not match would stay an invisible HTML comment and its block would be
silently missing from the site."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]


def _hook():
    spec = importlib.util.spec_from_file_location("docs_generate", ROOT / "docs/hooks/generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_marker_on_every_page_is_generated() -> None:
    hook = _hook()
    pages = sorted((ROOT / "docs").rglob("*.md"))
    markers = [m for p in pages for m in re.findall(r"<!-- gen:(\S+) -->", p.read_text())]
    assert markers, "no generated blocks found"
    for page in pages:
        text = page.read_text()
        if "<!-- gen:" not in text:
            continue
        fake = SimpleNamespace(file=SimpleNamespace(src_path=str(page.relative_to(ROOT))))
        out = hook.on_page_markdown(text, fake, None, None)
        left = re.findall(r"<!-- gen:(\S+) -->", out)
        assert not left, f"{page.name}: markers not replaced: {left}"


def test_a_marker_with_digits_is_replaced() -> None:
    hook = _hook()
    name = "paired-gap-search-xl-caiso-s1"
    fake = SimpleNamespace(file=SimpleNamespace(src_path="x.md"))
    out = hook.on_page_markdown(f"<!-- gen:{name} -->", fake, None, None)
    assert "caiso_s1" in out
