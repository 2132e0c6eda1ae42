"""House rules that import-linter cannot express, checked by `make lint`:

- no module over 600 lines (CONVENTIONS.md 1: a file past ~600 lines is asking to be split);
- argparse only in `shopflow.cli` (a route or a service never sees the command line).

Exempt: Alembic migrations (a revision is a frozen record of one schema change, not code to grow).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

MAX_LINES = 600
ROOT = Path(__file__).resolve().parent.parent
CHECKED = ("src", "tests", "bench", "tools")
EXEMPT = ("src/shopflow/store/migrations/versions/",)
CLI = "src/shopflow/cli/"


def imports_argparse(tree: ast.AST) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "argparse" for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "argparse":
            return True
    return False


def problems(root: Path = ROOT) -> list[str]:
    found = []
    for top in CHECKED:
        for path in sorted((root / top).rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            if rel.startswith(EXEMPT) or "/.venv/" in rel:
                continue
            text = path.read_text(encoding="utf-8")
            lines = text.count("\n") + (0 if text.endswith("\n") or not text else 1)
            if lines > MAX_LINES:
                found.append(f"{rel}: {lines} lines; the limit is {MAX_LINES} (split it along a seam)")
            if rel.startswith("src/") and not rel.startswith(CLI) and imports_argparse(ast.parse(text)):
                found.append(f"{rel}: imports argparse; command-line parsing belongs in {CLI}")
    return found


def main() -> int:
    found = problems()
    for line in found:
        print(line, file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
