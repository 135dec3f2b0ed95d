"""The matching core depends on the domain and the contract alone: no database, no files, no reports, no Airflow."""

from __future__ import annotations

import ast
from pathlib import Path

MATCHING = Path(__file__).resolve().parent.parent / "rematch_pipeline" / "matching"
# `contract` and `glossary` are constants; `progress` only names steps for whoever listens (the CLI), formatting
# with the charts' number functions.
ALLOWED = ("rematch_pipeline.domain", "rematch_pipeline.contract", "rematch_pipeline.glossary",
           "rematch_pipeline.matching", "rematch_pipeline.progress")


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found |= {node.module} if node.module != "rematch_pipeline" else {
                f"rematch_pipeline.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return {m for m in found if m.split(".")[0] == "rematch_pipeline"}


def test_the_matching_package_imports_only_the_domain_and_itself() -> None:
    wrong = {f"{p.relative_to(MATCHING)}: {m}" for p in sorted(MATCHING.rglob("*.py")) for m in _imports(p)
             if not any(m == a or m.startswith(a + ".") for a in ALLOWED)}
    assert not wrong, sorted(wrong)


def test_progress_needs_only_the_number_formatting() -> None:
    assert _imports(MATCHING.parent / "progress.py") == {"rematch_pipeline.reports.charts"}


def test_the_glossary_imports_nothing_of_the_project() -> None:
    assert _imports(MATCHING.parent / "glossary.py") == set()  # so the matching core may read its words
