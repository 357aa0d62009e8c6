"""The house rules import-linter cannot say (issue 22): no SQL outside `store/`, and no module
over 500 lines without a one-line reason at its top."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "warroom"
DATABASE_MODULES = {"sqlite3", "psycopg", "psycopg_pool"}
LIMIT = 500


def modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if "__pycache__" not in p.parts)


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_no_module_outside_the_store_speaks_sql():
    speaking = {str(p.relative_to(SRC)): sorted(imported(p) & DATABASE_MODULES)
                for p in modules() if p.relative_to(SRC).parts[0] != "store" and imported(p) & DATABASE_MODULES}
    assert not speaking, f"SQL belongs in store/: {speaking}"


def test_a_long_module_says_why_at_its_top():
    unexplained = []
    for path in modules():
        lines = path.read_text().splitlines()
        if len(lines) > LIMIT and not lines[0].startswith("# Over 500 lines: "):
            unexplained.append(f"{path.relative_to(SRC)} ({len(lines)} lines)")
    assert not unexplained, "over 500 lines without `# Over 500 lines: why` as its first line: " + ", ".join(unexplained)
