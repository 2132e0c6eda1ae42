"""`shopflow users create/list`: the first owner of a workspace, passwords never from argv."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from shopflow import testing
from shopflow.cli import main as cli
from shopflow.users import manage, passwords

PASSWORD = "correct horse battery staple"


def _stdin(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(text))


def test_users_create_from_stdin_and_file_and_list(
    engine: Engine,
    database_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SHOPFLOW_DATABASE_URL", database_url)
    ws = testing.make_workspace(engine).workspace
    _stdin(monkeypatch, PASSWORD + "\n")
    args = ["users", "create", "--workspace", ws.id, "--email", " Owner@Example.COM ", "--role", "owner"]
    assert cli.main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out == {
        "user_id": out["user_id"],
        "email": "owner@example.com",
        "workspace_id": ws.id,
        "role": "owner",
        "new_user": True,
    }
    secret = tmp_path / "viewer.txt"
    secret.write_text("viewer password 123\r\nsecond line is ignored\n")
    assert (
        cli.main(
            [
                *("users", "create", "--workspace", ws.id, "--email", "v@example.com", "--role", "viewer"),
                *("--password-file", str(secret)),
            ]
        )
        == 0
    )
    assert capsys.readouterr().out == f"v@example.com (created) is viewer of {ws.id}\n"
    assert cli.main(["users", "list", "--workspace", ws.id, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [
        {"email": "owner@example.com", "role": "owner"},
        {"email": "v@example.com", "role": "viewer"},
    ]
    # The stored hash is Argon2id and checks the password as it was read (no CR, first line only).
    (viewer,) = [m for m in manage.members(engine, workspace_id=ws.id) if m.role == "viewer"]
    from shopflow.store import db
    from shopflow.store import users as store_users

    with db.reading(engine) as conn:
        user = store_users.by_email(conn, "v@example.com")
    assert user is not None and user.id == viewer.user_id
    assert user.password_hash.startswith("$argon2id$")
    assert passwords.verify(user.password_hash, "viewer password 123")
    # The same person again, same password: a role change, not a second user.
    _stdin(monkeypatch, "viewer password 123\n")
    args = ["users", "create", "--workspace", ws.id, "--email", "v@example.com", "--role", "marketer"]
    assert cli.main(args) == 0
    assert "existing user" in capsys.readouterr().out
    assert [(m.email, m.role) for m in manage.members(engine, workspace_id=ws.id)] == [
        ("owner@example.com", "owner"),
        ("v@example.com", "marketer"),
    ]


@pytest.mark.parametrize(
    "case",
    [
        ("a@example.com", "owner", "short\n", "password: expected at least 10 characters, got 5"),
        ("a@example.com", "owner", "x" * 600, "password: expected at most 512 characters, got 514"),
        ("a@example.com", "owner", "ten chars \x00 nul\n", "password: must not contain NUL"),
        ("not-an-email", "owner", PASSWORD, "email: expected an address like name@example.com"),
        ("a@localhost", "owner", PASSWORD, "email: expected an address like name@example.com"),
        ("a\u202e@example.com", "owner", PASSWORD, "email: expected an address like name@example.com"),
        ("a@" + "x" * 300 + ".com", "owner", PASSWORD, "email: expected an address of 3 to 254"),
    ],
)
def test_users_create_refuses_bad_input_and_stores_nothing(
    engine: Engine,
    database_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    case: tuple[str, str, str, str],
) -> None:
    email, role, password, error = case
    monkeypatch.setenv("SHOPFLOW_DATABASE_URL", database_url)
    ws = testing.make_workspace(engine).workspace
    _stdin(monkeypatch, password)
    assert cli.main(["users", "create", "--workspace", ws.id, "--email", email, "--role", role]) == 2
    assert error in capsys.readouterr().err
    assert manage.members(engine, workspace_id=ws.id) == []


def test_users_create_refuses_unknown_workspace_other_password_and_argv_passwords(
    engine: Engine,
    database_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SHOPFLOW_DATABASE_URL", database_url)
    ws = testing.make_workspace(engine).workspace
    other = testing.make_workspace(engine, name="Other").workspace
    base = ["users", "create", "--email", "a@example.com", "--role", "owner"]
    _stdin(monkeypatch, PASSWORD)
    assert cli.main([*base, "--workspace", "ws_nope"]) == 2
    assert "--workspace: no workspace 'ws_nope'" in capsys.readouterr().err
    _stdin(monkeypatch, PASSWORD)
    assert cli.main([*base, "--workspace", ws.id]) == 0
    capsys.readouterr()
    # Someone else's account cannot be joined to another store without its password.
    _stdin(monkeypatch, "a different password")
    assert cli.main([*base, "--workspace", other.id]) == 2
    assert "a@example.com already has an account with a different password" in capsys.readouterr().err
    assert manage.members(engine, workspace_id=other.id) == []
    assert cli.main([*base, "--workspace", ws.id, "--password-file", str(tmp_path / "missing")]) == 2
    assert "--password-file: cannot read" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        cli.main([*base, "--workspace", ws.id, "--password", PASSWORD])
    assert exc.value.code == 2
    with pytest.raises(SystemExit):
        cli.main([*base[:-1], "admin", "--workspace", ws.id])
    assert "invalid choice: 'admin'" in capsys.readouterr().err
