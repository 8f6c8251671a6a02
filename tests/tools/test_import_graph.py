"""The package layers hold: tools/import_graph.py finds no upward or sideways edge and no loop."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

from tools.import_graph import import_graph, loops, parse_layers, violations

REPO = Path(__file__).resolve().parents[2]


def test_the_product_packages_are_layered() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "tools" / "import_graph.py")], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok: no upward edge, no loop" in result.stdout
    assert "services     -> retriever" in result.stdout  # the graph is printed, with counts


def test_upward_and_sideways_edges_and_loops_are_reported(tmp_path: Path) -> None:
    files = {
        "low/__init__.py": "",
        "low/a.py": "from high.x import y\nimport os\n",  # upward
        "left/__init__.py": "import low\n",
        "left/b.py": "def f():\n    from right import z  # a lazy import counts too\n",  # sideways
        "right/__init__.py": "from . import c\nfrom low.a import q\n",
        "high/__init__.py": "import low.a\nimport left\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    layers = parse_layers("low : left, right : high")
    edges = import_graph(tmp_path, ["low", "left", "right", "high"])
    assert edges == Counter({("low", "high"): 1, ("left", "low"): 1, ("left", "right"): 1, ("right", "low"): 1,
                             ("high", "low"): 1, ("high", "left"): 1})
    problems = violations(edges, layers)
    assert "upward edge: low -> high (1×)" in problems
    assert "sideways edge between siblings: left -> right (1×)" in problems
    assert loops(edges) == [["high", "left", "low", "right"]]
