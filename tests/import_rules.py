"""The package's import rule (README, "Architecture"), as a checker over module sources.

Every import is read from the syntax tree, at module level and inside functions alike
(``TYPE_CHECKING`` blocks are annotations only, and exempt from everything but the direction
rule). A module may import from its own component or from lower layers, never from a sibling in
the same layer or from above; extra rules keep HTTP in the client, Cirq out of the wire format,
the server away from the client and sampling side, and private names private.
"""

from __future__ import annotations

import ast
import pathlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

PACKAGE = "cirq_iqm_ext"

#: Components from the bottom up; components in one row are siblings and must not import each
#: other. ``catalogue`` sits below ``calibration`` because the calibration sets load through it;
#: ``ui`` below ``cli`` because the command line prints with ui's views; ``json_resolver`` names
#: classes of ``device`` and ``sampling``, so it sits above both.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "_version", "_compat", "_optional"),
    ("wire",),
    ("catalogue",),
    ("calibration",),
    ("client", "device"),
    ("compiler", "serialization", "simulation"),
    ("sampling", "server"),
    ("json_resolver",),
    ("ui",),
    ("cli",),
    # The flat public namespace and ``python -m cirq_iqm_ext``.
    ("__init__", "__main__"),
)
LEVEL: dict[str, int] = {c: i for i, row in enumerate(LAYERS) for c in row}

#: Methods of devices, jobs and results that may import ``ui`` (the one allowed upward edge).
DISPLAY_METHODS = frozenset({"_repr_html_", "_repr_pretty_", "plot"})
#: Third-party imports allowed only in the named components.
RESTRICTED_IMPORTS: dict[str, frozenset[str]] = {"httpx": frozenset({"client"})}
#: Components that import neither Cirq nor httpx.
PLAIN_COMPONENTS = frozenset(
    {"errors", "_version", "_optional", "wire", "catalogue", "calibration"}
)
#: Components the server must never import, even though some sit below it.
SERVER_FORBIDDEN = frozenset({"client", "sampling", "compiler", "ui", "cli"})


@dataclass(frozen=True)
class Edge:
    """One import: ``source`` imports ``target`` (a module path) at ``line``."""

    source: str
    target: str
    line: int
    function: str | None
    type_checking: bool
    names: tuple[str, ...]


def component(module: str) -> str:
    """``cirq_iqm_ext.client.retry`` -> ``client``; the package itself -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def read_package(root: pathlib.Path) -> dict[str, str]:
    """Module name -> source of every ``.py`` file under ``root`` (the package folder)."""
    sources: dict[str, str] = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        sources[name] = path.read_text(encoding="utf-8")
    return sources


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(
    node: ast.AST, function: str | None, type_checking: bool
) -> Iterator[tuple[ast.AST, str | None, bool]]:
    for child in ast.iter_child_nodes(node):
        inner_function = function
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
            inner_function = child.name
        inner_tc = type_checking or (isinstance(child, ast.If) and _is_type_checking(child))
        yield child, inner_function, type_checking
        yield from _walk(child, inner_function, inner_tc)


def imports(module: str, source: str, is_package: bool) -> list[Edge]:
    """Every import of ``module``, absolute names resolved from relative ones."""
    edges = []
    tree = ast.parse(source)
    for node, function, tc in _walk(tree, None, False):
        if isinstance(node, ast.Import):
            for alias in node.names:
                edges.append(Edge(module, alias.name, node.lineno, function, tc, ()))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                if not is_package:
                    base = base[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            names = tuple(alias.name for alias in node.names)
            edges.append(Edge(module, target, node.lineno, function, tc, names))
    return edges


def _private_defined(tree: ast.AST) -> set[str]:
    """Private names a module defines itself (functions, classes, attributes of its objects)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {n for n in names if n.startswith("_")}


def _is_private(name: str) -> bool:
    # ``_x_`` names are Cirq protocol methods (``_unitary_``, ``_json_dict_``): public by contract.
    return name.startswith("_") and not name.endswith("_")


def private_access(module: str, source: str, modules: set[str]) -> list[str]:
    """``obj._x`` where ``_x`` is no name of this module's own, and ``from m import _x``.

    Private *modules* (``_version``, ``_compat``) are the package's own and may be imported.
    """
    tree = ast.parse(source)
    own = _private_defined(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _is_private(node.attr):
            owner = node.value
            if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
                continue
            if node.attr not in own:
                found.append(f"{module}:{node.lineno} reads another module's private .{node.attr}")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(PACKAGE):
            for alias in node.names:
                if _is_private(alias.name) and f"{node.module}.{alias.name}" not in modules:
                    found.append(f"{module}:{node.lineno} imports private {alias.name}")
    return found


def _cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            members = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                members.append(member)
                if member == node:
                    break
            if len(members) > 1:
                found.append(sorted(members))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _owner_module(target: str, modules: set[str]) -> str | None:
    """The module of ours an import names: ``a.b.c`` may be module ``a.b`` importing name ``c``."""
    while target and target not in modules:
        target = target.rpartition(".")[0]
    return target or None


def violations(sources: Mapping[str, str], packages: set[str] | None = None) -> list[str]:
    """Every breach of the import rule in a package given as module name -> source.

    Args:
        sources: The package's modules (``cirq_iqm_ext``, ``cirq_iqm_ext.wire.models``, ...).
        packages: Which of them are packages (``__init__.py``); by default any name that is a
            prefix of another.

    Returns:
        One readable line per breach; empty when the package keeps the rule.
    """
    modules = set(sources)
    if packages is None:
        packages = {m for m in modules if any(o.startswith(m + ".") for o in modules)}
    found: list[str] = []
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, source in sorted(sources.items()):
        mine = component(module)
        if mine not in LEVEL:
            found.append(f"{module}: component {mine!r} is in no layer")
            continue
        for edge in imports(module, source, module in packages):
            found.extend(_check_edge(edge, mine, modules, graph))
        found.extend(private_access(module, source, modules))
    for cycle in _cycles(graph):
        found.append(f"import circle: {' -> '.join(cycle)}")
    return found


def _check_edge(edge: Edge, mine: str, modules: set[str], graph: dict[str, set[str]]) -> list[str]:
    where = f"{edge.source}:{edge.line}"
    top = edge.target.split(".")[0]
    if top != PACKAGE:
        allowed = RESTRICTED_IMPORTS.get(top)
        if allowed is not None and mine not in allowed and not edge.type_checking:
            return [f"{where} imports {top} outside {', '.join(sorted(allowed))}"]
        if mine in PLAIN_COMPONENTS and top in ("cirq", "httpx"):
            return [f"{where} imports {top}, but {mine} stays free of Cirq and httpx"]
        return []
    if edge.names:
        # ``from a.b import x``: the submodule ``a.b.x`` when x is one, else ``a.b`` itself.
        targets = [
            f"{edge.target}.{n}" if f"{edge.target}.{n}" in modules else edge.target
            for n in edge.names
        ]
    else:
        targets = [edge.target]
    out = []
    for target in targets:
        owner = _owner_module(target, modules)
        if owner is None:
            out.append(f"{where} imports {target}, which is no module of the package")
            continue
        if owner == edge.source:
            continue
        theirs = component(owner)
        if not edge.type_checking:
            graph[edge.source].add(owner)
        problem = _direction(mine, theirs, edge)
        if problem:
            out.append(f"{where} imports {owner}: {problem}")
    return out


def _direction(mine: str, theirs: str, edge: Edge) -> str | None:
    if mine == "server" and theirs in SERVER_FORBIDDEN:
        return f"the server never imports {theirs}"
    if theirs == mine:
        return None
    if LEVEL[theirs] < LEVEL[mine]:
        return None
    if theirs == "ui" and edge.function in DISPLAY_METHODS:
        return None
    if LEVEL[theirs] == LEVEL[mine]:
        return f"{mine} and {theirs} are siblings in one layer"
    return f"{theirs} is above {mine}"
