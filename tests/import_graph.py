"""The import graph of our packages, read from the source with :mod:`ast` (nothing is imported).

Every ``import`` statement counts: at module level, under ``if TYPE_CHECKING:`` and inside
functions. ``from x import y`` points at the submodule ``x.y`` when there is one, else at ``x``;
relative imports are resolved against the importing module's package.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

PACKAGES = ("experiments", "app", "analysis", "nudgelab")


@dataclass(frozen=True)
class Import:
    """One import of a module of ours by a module of ours."""

    source: str
    target: str
    path: Path
    line: int
    in_function: bool


def find_modules(root: Path, packages: Iterable[str] = PACKAGES) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file under the packages in ``root``."""
    found = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _package_of(module: str, path: Path) -> str:
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def _resolve(name: str, modules: Mapping[str, Path]) -> str | None:
    """The longest prefix of ``name`` that is one of our modules."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return None


def _targets(
    node: ast.Import | ast.ImportFrom, module: str, path: Path, modules: Mapping[str, Path]
) -> Iterator[str]:
    if isinstance(node, ast.Import):
        for alias in node.names:
            if (target := _resolve(alias.name, modules)) is not None:
                yield target
        return
    base = node.module or ""
    if node.level:
        package = _package_of(module, path).split(".")
        anchor = package[: len(package) - (node.level - 1)]
        base = ".".join([*anchor, base] if base else anchor)
    for alias in node.names:
        submodule = f"{base}.{alias.name}"
        target = submodule if submodule in modules else _resolve(base, modules)
        if target is not None:
            yield target


class _Collector(ast.NodeVisitor):
    def __init__(self, module: str, path: Path, modules: Mapping[str, Path]) -> None:
        self.module, self.path, self.modules = module, path, modules
        self.depth = 0
        self.found: list[Import] = []

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = _function

    def _import(self, node: ast.Import | ast.ImportFrom) -> None:
        for target in dict.fromkeys(_targets(node, self.module, self.path, self.modules)):
            self.found.append(Import(self.module, target, self.path, node.lineno, self.depth > 0))

    visit_Import = visit_ImportFrom = _import


def find_imports(root: Path, packages: Iterable[str] = PACKAGES) -> list[Import]:
    """Every import between modules of ``packages`` under ``root``."""
    modules = find_modules(root, packages)
    found = []
    for module, path in modules.items():
        collector = _Collector(module, path, modules)
        collector.visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
        found += collector.found
    return found


def graph(imports: Iterable[Import]) -> dict[str, set[str]]:
    """Module -> the modules it imports (a module importing itself is left out)."""
    edges: dict[str, set[str]] = {}
    for item in imports:
        edges.setdefault(item.target, set())
        targets = edges.setdefault(item.source, set())
        if item.target != item.source:
            targets.add(item.target)
    return edges


def circles(edges: Mapping[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(edges.get(node, ())):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
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

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return sorted(found)
