"""The package's import structure: no import cycles, and the data layer never imports upwards.

The import graph is built from the source (every ``import`` and ``from`` statement, inside
functions too, relative imports resolved), not by importing anything.
"""

from __future__ import annotations

import ast
from pathlib import Path

import medrepro

PACKAGE = "medrepro"
ROOT = Path(medrepro.__file__).resolve().parent

# Modules that read, write and shape data; they must not depend on training, evaluation,
# explanation, plotting, the studies or the notebook helpers.
DATA_LAYER = ("dicom", "volumes", "mri", "rsna", "datasets", "download", "audit", "registry",
              "phantoms", "phantoms.*", "pipeline", "compact", "_rgb_lanes")
UPPER_LAYER = ("train", "callbacks", "evaluate", "explain", "models", "models.*", "studies",
               "studies.*", "plots", "notebook")


def _module_name(path: Path) -> str:
    parts = [PACKAGE, *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package modules that module ``name`` imports (anywhere in its source)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            submodules = {f"{target}.{a.name}" for a in node.names} & modules.keys()
            found.update(submodules)
            if len(submodules) < len(node.names):  # names from the module itself
                found.add(target)
    out = set()
    for target in found:
        while target and target not in modules:  # medrepro.x.y -> medrepro.x
            target = target.rpartition(".")[0]
        if target and target != name and target != PACKAGE:
            out.add(target)
    return out


def import_graph() -> dict[str, set[str]]:
    """``{module: modules it imports}`` over the package, short names (``"phantoms.mri"``)."""
    modules = _modules()
    short = {m: m.removeprefix(PACKAGE + ".") for m in modules}
    return {short[m]: {short[t] for t in _imports(m, p, modules)} for m, p in modules.items()
            if m != PACKAGE}


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    return any(name == p or (p.endswith(".*") and name.startswith(p[:-1])) for p in patterns)


def test_a_cycle_is_found_and_named():
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_the_graph_sees_function_level_imports():
    graph = import_graph()
    assert "registry" in graph["download"]  # module level
    assert "phantoms" in graph["datasets"]  # inside make_phantom
    assert "phantoms._common" in graph["phantoms.mri"]  # from medrepro.phantoms._common import
    assert "phantoms" not in graph["phantoms.mri"]  # from medrepro.phantoms import _shapes


def test_no_import_cycles():
    cycle = _find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_data_layer_imports_nothing_above_it():
    graph = import_graph()
    upward = sorted((m, t) for m, targets in graph.items() if _matches(m, DATA_LAYER)
                    for t in targets if _matches(t, UPPER_LAYER))
    assert not upward, "data-layer modules importing upwards: " + ", ".join(
        f"{m} -> {t}" for m, t in upward)
