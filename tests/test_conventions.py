# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""ART's house rules, checked on every file of the package: a licence header, and type hints on every public
signature (every argument and the return value of public functions and methods)."""

import ast
from pathlib import Path

import art_purify

ROOT = Path(art_purify.__file__).parent
FILES = sorted(ROOT.rglob("*.py"))
HEADER = ("# SPDX-License-Identifier: MIT", "# Copyright (c) 2026 art_purify developers")


def test_every_file_has_the_licence_header():
    missing = [str(p.relative_to(ROOT)) for p in FILES if tuple(p.read_text().splitlines()[:2]) != HEADER]
    assert not missing, f"files without the two-line licence header {HEADER}: {missing}"


def _public_functions(tree):
    """Public functions and methods of public classes (names without a leading underscore; dunders count)."""
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("_"):
            yield node.name, node
        elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            for item in node.body:
                public = not item.name.startswith("_") or item.name == "__init__" if hasattr(item, "name") else False
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and public:
                    yield f"{node.name}.{item.name}", item


def _untyped(node):
    args = node.args
    params = args.posonlyargs + args.args + args.kwonlyargs
    if params and params[0].arg in ("self", "cls"):
        params = params[1:]
    missing = [a.arg for a in params if a.annotation is None]
    missing += [f"*{a.arg}" for a in (args.vararg, args.kwarg) if a is not None and a.annotation is None]
    if node.returns is None and node.name != "__init__":
        missing.append("return")
    return missing


def test_public_signatures_have_type_hints():
    problems = []
    for path in FILES:
        for name, node in _public_functions(ast.parse(path.read_text())):
            missing = _untyped(node)
            if missing:
                problems.append(f"{path.relative_to(ROOT)}:{node.lineno} {name}: {', '.join(missing)}")
    assert not problems, "untyped public signatures:\n" + "\n".join(problems)
