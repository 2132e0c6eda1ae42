"""Rewrite the initial migration from store/tables/ (allowed only until the first release).

Run: .venv/bin/python -m shopflow.store.regen
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from shopflow.store import db, schema_tools


def main() -> None:
    versions = db.migrations_dir() / "versions"
    target = versions / "0001_initial_schema.py"
    target.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        engine = db.create_engine(f"sqlite:///{Path(tmp) / 'gen.db'}")
        schema_tools.new_revision(engine, "initial schema")
        engine.dispose()
    (generated,) = [p for p in versions.glob("*_initial_schema.py") if p.name != target.name]
    text = generated.read_text()
    rev = re.search(r"^revision = '(\w+)'", text, re.M)
    assert rev is not None
    text = text.replace(f"revision = '{rev.group(1)}'", "revision = '0001'")
    text = text.replace(f"Revision ID: {rev.group(1)}", "Revision ID: 0001")
    text = text.replace("astext_type=Text()", "astext_type=sa.Text()")
    target.write_text(text)
    generated.unlink()
    import subprocess
    import sys

    ruff = Path(sys.executable).with_name("ruff")
    subprocess.run([str(ruff), "check", "--fix", "--quiet", str(target)], check=False)
    subprocess.run([str(ruff), "format", "--quiet", str(target)], check=False)
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
