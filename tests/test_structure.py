"""The package's import structure: no import cycles, and each layer folder imports only lower ones.

The import graph is built from the source (every ``import`` and ``from`` statement, inside
functions too, relative imports resolved), not by importing anything.
"""

from __future__ import annotations

import ast
from pathlib import Path

import medrepro

PACKAGE = "medrepro"
ROOT = Path(medrepro.__file__).resolve().parent

# The layers, bottom first: a module may import its own folder and the folders of lower layers,
# never a folder of its own layer or above. Every module lives in one of these folders.
LAYERS = (
    ("core",),                                # paths, files, seeds, device, profiles, manifest
    ("data",),                                # readers, registry, datasets, pipelines, phantoms
    ("models", "training", "analysis"),       # builders; fit; evaluation and explanations
    ("reporting",),                           # figures, tables, report page, comparison
    ("studies",),                             # what a notebook runs, and plans
    ("run",),                                 # running the notebooks: set-up, plan, runner
)
LAYER_OF = {folder: level for level, folders in enumerate(LAYERS) for folder in folders}


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
    """``{module: modules it imports}`` over the package, short names (``"data.phantoms.brain_mri"``)."""
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


def _folder(name: str) -> str:
    return name.split(".")[0]


def test_a_cycle_is_found_and_named():
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_the_graph_sees_function_level_imports():
    graph = import_graph()
    assert "data.registry" in graph["data.download"]  # module level
    assert "data.phantoms" in graph["data.datasets"]  # inside make_phantom
    # from medrepro.data.phantoms._common import ...
    assert "data.phantoms._common" in graph["data.phantoms.brain_mri"]
    # from medrepro.data.phantoms import _shapes
    assert "data.phantoms" not in graph["data.phantoms.brain_mri"]


def test_no_import_cycles():
    cycle = _find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_every_module_lives_in_a_layer_folder():
    loose = sorted(m for m in import_graph() if _folder(m) not in LAYER_OF)
    assert not loose, "modules outside the layer folders " + str(sorted(LAYER_OF)) + ": " + ", ".join(loose)


def layer_violations(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    """The imports that cross into a folder of the importer's own layer or a higher one."""
    return sorted((m, t) for m, targets in graph.items() for t in targets
                  if _folder(m) != _folder(t) and LAYER_OF[_folder(t)] >= LAYER_OF[_folder(m)])


def test_no_layer_imports_its_own_level_or_above():
    bad = layer_violations(import_graph())
    assert not bad, "imports across or up the layers: " + ", ".join(f"{m} -> {t}" for m, t in bad)


def test_a_layer_violation_is_found():
    graph = {"data.audit": {"core.paths", "data.registry"}, "core.profiles": {"data.registry"},
             "models.chest_ct": {"analysis.explain"}, "studies.d": {"run.plan", "models.chest_ct"}}
    assert layer_violations(graph) == [("core.profiles", "data.registry"),
                                       ("models.chest_ct", "analysis.explain"),
                                       ("studies.d", "run.plan")]
