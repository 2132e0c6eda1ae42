"""Accounts: give a person a role in a workspace (creating their user on first use), list a
workspace's people. Each use case opens its own transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine

from shopflow import workspaces
from shopflow.domain import accounts
from shopflow.store import db
from shopflow.store import users as store_users
from shopflow.users import passwords

Member = store_users.Member


@dataclass(frozen=True)
class Granted:
    user_id: int
    email: str
    workspace_id: str
    role: str
    new_user: bool
    new_member: bool


def grant(
    engine: Engine, *, workspace_id: str, email: str, role: str, password: str, now: datetime
) -> Granted:
    """Give `email` the `role` in the workspace. A new user is created with `password`; an existing
    user's password must be the one given (so a command cannot take over someone's account).

    ValueError naming the field for bad input, workspaces.NoWorkspace for an unknown workspace.
    """
    address = accounts.normalise_email(email)
    accounts.check_role(role)
    accounts.check_password(password)
    with db.transaction(engine) as conn:
        workspaces.require(conn, workspace_id)
        user = store_users.by_email(conn, address)
        if user is None:
            user_id = store_users.insert_user(
                conn, email=address, password_hash=passwords.hash_password(password), now=now
            )
        elif passwords.verify(user.password_hash, password):
            user_id = user.id
        else:
            raise ValueError(
                f"password: {address} already has an account with a different password; give theirs"
            )
        new_member = store_users.set_role(
            conn, workspace_id=workspace_id, user_id=user_id, role=role, now=now
        )
    return Granted(user_id, address, workspace_id, role, user is None, new_member)


def members(engine: Engine, *, workspace_id: str) -> list[Member]:
    """The people of a workspace with their roles, by email."""
    with db.reading(engine) as conn:
        workspaces.require(conn, workspace_id)
        return store_users.members(conn, workspace_id=workspace_id)
