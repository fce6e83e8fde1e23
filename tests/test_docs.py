# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""Every Python block of README.md and docs/*.md runs as written: the blocks of one file run in order, in one
namespace (as a reader pastes them), in a temporary directory. They use the shipped models: ``slow``."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def _blocks(page):
    return BLOCK.findall(page.read_text(encoding="utf-8"))


def test_the_pages_have_python_blocks():
    assert sum(len(_blocks(p)) for p in PAGES) >= 5  # the extraction itself works


@pytest.mark.slow
@pytest.mark.parametrize("page", [p for p in PAGES if _blocks(p)], ids=lambda p: p.name)
def test_python_blocks_run_as_written(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__docs__"}
    for i, code in enumerate(_blocks(page)):
        try:
            exec(compile(code, f"{page.name} block {i + 1}", "exec"), namespace)  # noqa: S102 - our own docs
        except Exception as err:  # pragma: no cover - the message says which block failed
            raise AssertionError(f"{page.name}, Python block {i + 1} does not run: {err!r}") from err
