"""Notebook code cells only call, save and display: the logic lives in lib/medrepro.

A code cell is a few lines of calls into the library (``studies.*``, ``report.save_*``, ``plots.*``)
and displays; functions, classes, loops and lambdas belong in a module where they are tested.
The generated set-up cell (``medrepro.run.hosted``) and the parameters cell are exempt.
"""

from __future__ import annotations

import ast
import json

import pytest
from medrepro.run import hosted, runner

MAX_LINES = 15
FORBIDDEN = {ast.FunctionDef: "def", ast.AsyncFunctionDef: "def", ast.ClassDef: "class",
             ast.For: "for loop", ast.AsyncFor: "for loop", ast.While: "while loop",
             ast.Lambda: "lambda"}


def cell_problems(source: str) -> list[str]:
    """What makes a code cell more than calls and saves (empty: fine)."""
    lines = [ln for ln in source.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    problems = [f"{len(lines)} lines (max {MAX_LINES})"] if len(lines) > MAX_LINES else []
    # IPython magics / shell escapes are not Python; a notebook here has none, so parse as is.
    for node in ast.walk(ast.parse(source)):
        kind = FORBIDDEN.get(type(node))
        if kind:
            problems.append(f"{kind} at line {node.lineno}")
    return problems


def _checked_cells(nb):
    for i, cell in enumerate(json.loads(nb.read_text())["cells"]):
        src = "".join(cell["source"])
        if cell["cell_type"] != "code" or src.startswith(hosted.SETUP_MARKER):
            continue
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            continue
        yield i, src


@pytest.mark.parametrize("nb", runner.find_notebooks(), ids=lambda p: p.stem)
def test_code_cells_are_short_calls(nb):
    bad = {i: p for i, src in _checked_cells(nb) if (p := cell_problems(src))}
    assert not bad, f"{nb.name}: cells with logic that belongs in lib/medrepro: {bad}"


def test_the_check_catches_logic():
    assert cell_problems("x = f(1)\nreport.save_table(x, 'A.t', source='phantom')") == []
    loop = "rows = []\nfor k in ks:\n    rows.append(k)\n"
    assert cell_problems(loop) == ["for loop at line 2"]
    assert cell_problems("def f():\n    return 1\n") == ["def at line 1"]
    assert cell_problems("g = lambda d: d\n") == ["lambda at line 1"]
    assert cell_problems("\n".join(f"x{i} = {i}" for i in range(16))) == ["16 lines (max 15)"]
    assert cell_problems("# a comment\n" * 20 + "x = 1\n") == []
