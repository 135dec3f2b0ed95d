"""What a Python file names, through its imports' aliases: for tests that keep a rule in one module."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path


def names_used(path: Path) -> Iterator[tuple[ast.AST, str]]:
    """(node, dotted name) for every name, attribute and call target in `path`, imports resolved.

    `import datetime as dtm; dtm.date.today()` yields "datetime.date.today"; a call yields its target's name with the
    Call node, so a check can look at its arguments.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"))
    alias: dict[str, str] = {}  # local name -> what it names
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            alias.update({a.asname or a.name.split(".")[0]: a.name if a.asname else a.name.split(".")[0]
                          for a in node.names})
        elif isinstance(node, ast.ImportFrom) and node.module:
            alias.update({a.asname or a.name: f"{node.module}.{a.name}" for a in node.names})

    def dotted(node: ast.expr) -> str | None:
        if isinstance(node, ast.Name):
            return alias.get(node.id, node.id)
        if isinstance(node, ast.Attribute):
            owner = dotted(node.value)
            return f"{owner}.{node.attr}" if owner else None
        return None

    for node in ast.walk(tree):
        if isinstance(node, (ast.Name, ast.Attribute)):
            name = dotted(node)
        elif isinstance(node, ast.Call):
            name = dotted(node.func)
        else:
            continue
        if name:
            yield node, name
