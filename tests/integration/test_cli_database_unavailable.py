"""Starting against a database that cannot be reached is a clear exit (status 3, one line naming
the cause), never an OperationalError traceback: for the server, the worker and the migrations."""

from __future__ import annotations

import pytest

from shopflow import testing
from shopflow.cli import main as cli


@pytest.fixture(params=["postgresql", "sqlite"])
def unreachable_url(request: pytest.FixtureRequest, tmp_path: object) -> str:
    if request.param == "postgresql":
        return f"postgresql://postgres@127.0.0.1:{testing.free_port()}/shopflow"  # nothing listens there
    return f"sqlite:///{tmp_path}/no/such/directory/shopflow.db"


@pytest.mark.parametrize(
    "command", [["db", "upgrade"], ["serve"], ["worker"], ["flows", "list", "--workspace", "w"]]
)
def test_unreachable_database_is_a_clear_exit(
    command: list[str],
    unreachable_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SHOPFLOW_DATABASE_URL", unreachable_url)
    assert cli.main(command) == 3
    captured = capsys.readouterr()
    assert captured.err.startswith("shopflow: database unavailable: ")
    assert "Traceback" not in captured.err + captured.out
    assert "OperationalError" not in captured.err
