"""The product's import graph, read from the source with ``ast``: no cycles, ``vis`` at the
bottom, nothing in the product importing the benchmarks.

Layers (each imports only those before it): ``vis`` (computation) -> ``streams`` (I/O) ->
``vis_train`` -> ``vis_pipeline`` (wiring, CLI) -> ``vis_eval`` and ``devtools`` (test and
benchmark helpers) -> ``tools`` (the repository's scripts).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

from tests.conftest import ROOT

PRODUCT = ("vis", "streams", "vis_pipeline", "vis_eval", "vis_train", "devtools", "tools")


def _modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the product packages."""
    found = {}
    for package in PRODUCT:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _is_type_checking(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
    )


def _import_nodes(tree: ast.Module, *, in_functions: bool) -> list[ast.Import | ast.ImportFrom]:
    """The import statements that run: at module level (classes included) and, with
    ``in_functions``, inside functions too; never those under ``if TYPE_CHECKING:``."""
    out, stack = [], list(tree.body)
    while stack:
        node = stack.pop()
        if _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            if in_functions:
                stack.extend(ast.iter_child_nodes(node))
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            out.append(node)
        stack.extend(ast.iter_child_nodes(node))
    return out


def _imported_names(module: str, path: Path, *, in_functions: bool) -> set[str]:
    """Absolute dotted names ``module`` imports (``from a import b`` gives ``a.b``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    names = set()
    for node in _import_nodes(tree, in_functions=in_functions):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
            continue
        base = node.module or ""
        if node.level:
            anchor = package[: len(package) - (node.level - 1)]
            base = ".".join(anchor + ([node.module] if node.module else []))
        names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def _resolve(name: str) -> str | None:
    """The product module a dotted name lands in (its longest known prefix), or None."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        candidate = ".".join(parts[:i])
        if candidate in MODULES:
            return candidate
    return None


def _graph(*, in_functions: bool) -> dict[str, set[str]]:
    graph = {}
    for module, path in MODULES.items():
        names = _imported_names(module, path, in_functions=in_functions)
        graph[module] = {r for r in map(_resolve, names) if r and r != module}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def _all_imports(package: str) -> dict[str, set[str]]:
    """Module of ``package`` -> every top-level package it imports, functions included."""
    out = {}
    for module, path in MODULES.items():
        if module.split(".")[0] == package:
            names = _imported_names(module, path, in_functions=True)
            out[module] = {name.split(".")[0] for name in names}
    return out


def test_the_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_sees_the_product():
    assert {"vis", "vis.types", "streams.kafka.cli", "vis_pipeline.cli", "tools.demo"} <= set(
        MODULES
    )
    graph = _graph(in_functions=True)
    assert "vis.types" in graph["vis.pipeline"]
    assert "vis_pipeline.worker.cli" in graph["vis_pipeline.cli"]  # a function-level import


def test_no_module_level_import_cycle():
    assert _cycles(_graph(in_functions=False)) == []


def test_no_import_cycle_even_through_imports_inside_functions():
    assert _cycles(_graph(in_functions=True)) == []


def test_the_packages_import_each_other_in_layers():
    """No package imports one that imports it back (so each has a place in the layers)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for module, deps in _graph(in_functions=True).items():
        for dep in deps:
            if dep.split(".")[0] != module.split(".")[0]:
                graph[module.split(".")[0]].add(dep.split(".")[0])
    for package in PRODUCT:
        graph.setdefault(package, set())
    assert _cycles(graph) == []


def test_vis_imports_no_other_package_of_the_repository():
    banned = {"streams", "vis_pipeline", "vis_eval", "vis_train", "bench", "devtools", "tools"}
    offenders = {m: sorted(d & banned) for m, d in _all_imports("vis").items() if d & banned}
    assert offenders == {}


def test_no_product_package_imports_the_benchmarks():
    offenders = {
        module: "bench"
        for package in PRODUCT
        for module, deps in _all_imports(package).items()
        if "bench" in deps
    }
    assert offenders == {}
