"""The shape of the house: no import cycle between packages, no reaching into another's privates.

Read from the source with ``ast`` (nothing is imported). A *unit* is a top-level package
or module of ``tokenomy`` (``gateway``, ``ledger``, ``sql``, ...). Imports under
``if TYPE_CHECKING:`` are left out: they never run, so they cannot make an import cycle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).parent.parent / "src" / "tokenomy"


def _modules() -> Iterator[tuple[str, str, Path, ast.Module]]:
    """(unit, dotted module name, path, tree) of every module under src/tokenomy."""
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC.parent).with_suffix("")
        module = ".".join(rel.parts).removesuffix(".__init__")
        parts = module.split(".")
        yield (
            (parts[1] if len(parts) > 1 else "tokenomy"),
            module,
            path,
            ast.parse(path.read_text()),
        )


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node, except those inside ``if TYPE_CHECKING:`` blocks."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                stack.extend(child.orelse)
                continue
            stack.append(child)


def _imported(module: str, is_package: bool, tree: ast.AST) -> Iterator[str]:
    """Dotted names of the tokenomy modules (or module members) a module imports."""
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            yield source
            yield from (f"{source}.{a.name}" for a in node.names)


def _unit(name: str) -> str | None:
    parts = name.split(".")
    if parts[0] != "tokenomy" or len(parts) < 2:
        return None
    return parts[1]


def _graph() -> dict[str, set[str]]:
    units = {unit for unit, *_ in _modules()}
    edges: dict[str, set[str]] = {}
    for unit, module, path, tree in _modules():
        for name in _imported(module, path.name == "__init__.py", tree):
            other = _unit(name)
            if other is not None and other != unit and other in units:
                edges.setdefault(unit, set()).add(other)
    return edges


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph, or None."""
    state: dict[str, int] = {}  # 1 = on the path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_no_import_cycle_between_packages() -> None:
    edges = _graph()
    assert _cycle(edges) is None, " -> ".join(_cycle(edges) or [])
    # The ones that were cycles before: the admin API is mounted by the gateway, and
    # the ledger knows nothing of budgets or admin keys.
    assert "gateway" not in edges["admin"]
    assert not {"budgets", "admin", "gateway"} & edges["ledger"]


def test_the_cycle_finder_finds_cycles() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}}) is None


def _private_members() -> dict[str, set[str]]:
    """unit → the ``_private`` attribute and method names its classes define."""
    out: dict[str, set[str]] = {}
    for unit, _, _, tree in _modules():
        names = out.setdefault(unit, set())
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                        names.add(item.name)
            elif (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "self"
                and isinstance(node.ctx, ast.Store)
            ):
                names.add(node.attr)
        out[unit] = {n for n in names if n.startswith("_") and not n.endswith("__")}
    return out


def test_no_package_uses_another_packages_private_members() -> None:
    private = _private_members()
    found = []
    for unit, module, _path, tree in _modules():
        theirs = set().union(*(names for u, names in private.items() if u != unit))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                other = _unit(node.module)
                if other is not None and other != unit:
                    hidden = [p for p in node.module.split(".")[2:] if p.startswith("_")]
                    hidden += [a.name for a in node.names if a.name.startswith("_")]
                    if hidden:
                        found.append(f"{module}: from {node.module} import {hidden}")
            if (
                isinstance(node, ast.Attribute)
                and node.attr in theirs
                and node.attr not in private[unit]
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
            ):
                found.append(f"{module}:{node.lineno}: {ast.unparse(node)}")
    assert found == []


def test_the_private_access_check_sees_a_store_private() -> None:
    # What budgets/storage.py and admin/keys.py did before they had ``Store.sql``.
    assert "_conn" in _private_members()["ledger"]
    assert {"sql", "transaction"}.isdisjoint(_private_members()["ledger"])
