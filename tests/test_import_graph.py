"""The package has no import cycle: every `import` of one `adapttoken_plugin` module by another, at
module level or inside a function, read from the source with `ast`, forms a graph without cycles.

Imports inside functions count: they only postpone a cycle to the first call (cli -> launch -> cli
worked that way), and a module pair that needs each other cannot be split or tested alone.
"""

from __future__ import annotations

import ast
from pathlib import Path

import adapttoken_plugin

PACKAGE = "adapttoken_plugin"
ROOT = Path(adapttoken_plugin.__file__).resolve().parent


def module_files(root: Path = ROOT, package: str = PACKAGE) -> dict[str, Path]:
    """Dotted module name -> source file, for every module of the package (a package is its `__init__`)."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join((package, *parts))] = path
    return modules


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and (
        (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING")
        or (isinstance(node.test, ast.Attribute) and node.test.attr == "TYPE_CHECKING"))


def _import_nodes(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement, in functions and classes too, except under `if TYPE_CHECKING:` (never run)."""
    found, stack = [], [tree]
    while stack:
        node = stack.pop()
        if _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        stack.extend(ast.iter_child_nodes(node))
    return found


def _target(name: str, modules: dict[str, Path]) -> str | None:
    """The package module `name` (or the longest package module it starts with) denotes; None outside the package."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package modules `module` imports.

    An import of `a.b.c` also runs `a/__init__` and `a.b/__init__`, but those are in `sys.modules`
    (being initialised, at worst) before `a.b.c` starts, so reaching them that way never fails: the
    edge goes to the module named, not to its parents. `from X import name` imports the submodule
    `X.name` when there is one, otherwise reads `name` from `X` itself.
    """
    is_package = path.name == "__init__.py"
    here = module if is_package else module.rpartition(".")[0]
    edges = set()
    for node in _import_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            if node.level:
                base_parts = here.split(".")
                base = ".".join(base_parts[:len(base_parts) - node.level + 1])
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            names = [f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules else source
                     for alias in node.names]
        edges.update(t for t in (_target(n, modules) for n in names) if t is not None and t != module)
    return edges


def import_graph(root: Path = ROOT, package: str = PACKAGE) -> dict[str, set[str]]:
    """Module -> the package modules it imports (see `imports_of`).

    A package `__init__` importing its own submodules to re-export their names is the normal layout
    and is not a cycle here: those edges are kept, but the implicit ones back (importing `pkg.a` first
    runs `pkg/__init__`) are not edges (see `imports_of`), since the import system has put `pkg` in
    `sys.modules` by then. Adding them would turn every re-export into a cycle; leaving out the
    `__init__`'s own edges instead would hide a real one: a submodule that reads a name from its
    package's `__init__` (`from . import name`) while that `__init__` is still importing it.
    """
    modules = module_files(root, package)
    return {module: imports_of(module, path, modules) for module, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` as [m0, m1, ..., m0], or None (depth-first search, white/grey/black)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def tangles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import each other, directly or round about: the strongly connected
    components of more than one module, each sorted (a group can hold several cycles)."""
    found = []
    seen: set[str] = set()
    for start in sorted(graph):
        if start in seen:
            continue
        reach = _reachable(graph, start)
        component = {m for m in reach if start in _reachable(graph, m)}
        seen |= component | {start}
        if len(component) > 1:
            found.append(sorted(component))
    return found


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    reach, todo = {start}, [start]
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt not in reach:
                reach.add(nxt)
                todo.append(nxt)
    return reach


def test_the_package_has_no_import_cycle():
    graph = import_graph()
    groups = tangles(graph)
    report = [f"{', '.join(group)} (e.g. {' -> '.join(find_cycle({m: graph[m] & set(group) for m in group}))})"
              for group in groups]
    assert not groups, "modules that import each other:\n" + "\n".join(report)


def test_the_graph_sees_function_level_relative_and_absolute_imports(tmp_path):
    """The checker itself: a cycle made of a function-level relative import and an absolute one is found;
    an `__init__` re-exporting its submodule is no cycle, nor is an import under `TYPE_CHECKING`; a
    submodule reading a name back from the `__init__` that imports it is one."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from .a import f\n")
    (pkg / "a.py").write_text("def f():\n    from .sub.b import g\n    return g\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "b.py").write_text("import pkg.a\nfrom typing import TYPE_CHECKING\n"
                                      "if TYPE_CHECKING:\n    from pkg.sub import c\n")
    (pkg / "sub" / "c.py").write_text("from ..sub import b\nfrom . import b as again\n")
    graph = import_graph(pkg, "pkg")
    assert graph == {"pkg": {"pkg.a"}, "pkg.a": {"pkg.sub.b"}, "pkg.sub": set(), "pkg.sub.b": {"pkg.a"},
                     "pkg.sub.c": {"pkg.sub.b"}}
    assert find_cycle(graph) == ["pkg.a", "pkg.sub.b", "pkg.a"]
    assert tangles(graph) == [["pkg.a", "pkg.sub.b"]]
    (pkg / "sub" / "b.py").write_text("import os\n")
    assert find_cycle(import_graph(pkg, "pkg")) is None
    (pkg / "a.py").write_text("from . import f\n")  # pkg/__init__ -> pkg.a -> back to the half-run __init__
    assert find_cycle(import_graph(pkg, "pkg")) == ["pkg", "pkg.a", "pkg"]
