# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""The package's layers: every import (module-level or inside a function) goes down a layer, never up or across,
and no module imports itself back through others (no import circle)."""

import ast
from pathlib import Path

import art_purify

ROOT = Path(art_purify.__file__).parent

#: Lower numbers sit lower; a module may import only from strictly lower layers (or its own package).
LAYERS = {
    "art_purify": 0,  # the package root: __version__
    "utils": 0,
    "engine": 1,
    "datasets": 2,
    "models": 2,
    "optim": 2,
    "diffusion": 3,
    "defences": 4,
    "zoo": 4,
    "training": 5,
    "evaluation": 6,
    "cli": 7,
    "__main__": 8,
}


def _module_name(path: Path) -> str:
    parts = ("art_purify",) + path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path):
    """Every ``art_purify`` module named by an import statement of ``path``, anywhere in the file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names if alias.name.startswith("art_purify"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                name = f"{base}.{node.module}" if node.module else base
            else:
                name = node.module or ""
            if name.startswith("art_purify"):
                yield name


def _layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS[parts[1] if len(parts) > 1 else parts[0]]


def _graph():
    modules = {_module_name(p): p for p in ROOT.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        targets = set()
        for imported in _imports(path):
            while imported not in modules and "." in imported:  # "from pkg.mod import Class"
                imported = imported.rsplit(".", 1)[0]
            if imported != name:
                targets.add(imported)
        graph[name] = targets
    return graph


def test_every_module_has_a_layer():
    unknown = sorted(m for m in _graph() if (m.split(".")[1] if "." in m else m) not in LAYERS)
    assert not unknown, f"add these to LAYERS: {unknown}"


def test_no_upward_or_sideways_import():
    bad = []
    for module, targets in _graph().items():
        for target in targets:
            same_package = module.split(".")[:2] == target.split(".")[:2]
            if not same_package and _layer(target) >= _layer(module):
                bad.append(f"{module} (layer {_layer(module)}) imports {target} (layer {_layer(target)})")
    assert not bad, "\n".join(sorted(bad))


def test_no_import_circle():
    graph = _graph()
    state, stack, cycles = {}, [], []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                cycles.append(" -> ".join(stack[stack.index(target) :] + [target]))
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not cycles, "\n".join(cycles)


def test_the_checks_see_real_imports():
    graph = _graph()  # guards against a parser that finds nothing and passes vacuously
    assert "art_purify.evaluation.attacks" in graph["art_purify.evaluation.runner"]
    assert "art_purify.engine.loop" in graph["art_purify.defences.trainer.sharpness_aware_trainer_pytorch"]
