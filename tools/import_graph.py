"""The package-level import graph of the product, and a check that it is layered.

    python tools/import_graph.py                 # print the graph, exit 1 on an upward/sideways edge or a loop
    python tools/import_graph.py --graph-only    # print only (e.g. for an old commit with another layout)
    python tools/import_graph.py --root DIR --layers "stadtretter : ingest, retriever : api"

Every `import` and `from … import` counts, also those inside functions (a lazy import is still a dependency).
An edge "a -> b  n" means n import statements in package a name a module of package b. Layers are listed bottom
first, separated by ":"; packages in one layer are siblings and may not import each other. A package may only
import packages of lower layers. Standard library only, so it runs before anything is installed.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import Counter
from pathlib import Path

LAYERS = "core, prompts : ingest, retriever : services : api : stadtretter"


def parse_layers(spec: str) -> list[list[str]]:
    return [[name.strip() for name in layer.split(",") if name.strip()] for layer in spec.split(":")]


def imported_modules(path: Path, package: str) -> list[str]:
    """Absolute names of the modules a file imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: "from . import x" stays inside the file's own package
                names.append(package)
            elif node.module:
                names.append(node.module)
    return names


def import_graph(root: Path, packages: list[str]) -> Counter[tuple[str, str]]:
    """(importing package, imported package) -> number of import statements, first-party packages only."""
    edges: Counter[tuple[str, str]] = Counter()
    known = set(packages)
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            for module in imported_modules(path, package):
                target = module.split(".")[0]
                if target in known and target != package:
                    edges[(package, target)] += 1
    return edges


def loops(edges: Counter[tuple[str, str]]) -> list[list[str]]:
    """Strongly connected components with more than one package (Tarjan)."""
    graph: dict[str, list[str]] = {}
    for source, target in edges:
        graph.setdefault(source, []).append(target)
        graph.setdefault(target, [])
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def violations(edges: Counter[tuple[str, str]], layers: list[list[str]]) -> list[str]:
    rank = {package: level for level, layer in enumerate(layers) for package in layer}
    problems = []
    for (source, target), count in sorted(edges.items()):
        if rank[target] > rank[source]:
            problems.append(f"upward edge: {source} -> {target} ({count}×)")
        elif rank[target] == rank[source]:
            problems.append(f"sideways edge between siblings: {source} -> {target} ({count}×)")
    problems.extend(f"loop: {' <-> '.join(component)}" for component in loops(edges))
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--layers", default=LAYERS, help=f"bottom first (default: {LAYERS!r})")
    parser.add_argument("--graph-only", action="store_true", help="print the graph, check nothing")
    args = parser.parse_args(argv)

    layers = parse_layers(args.layers)
    packages = [p for layer in layers for p in layer if (args.root / p).is_dir()]
    edges = import_graph(args.root, packages)
    print("layers (bottom first): " + "  <  ".join(", ".join(layer) for layer in layers))
    print("edges (importer -> imported, import statements):")
    for (source, target), count in sorted(edges.items()):
        print(f"  {source:12} -> {target:12} {count:3}")
    if args.graph_only:
        return 0
    problems = violations(edges, layers)
    for problem in problems:
        print(problem)
    print("ok: no upward edge, no loop" if not problems else f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
