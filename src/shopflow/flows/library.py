"""Ready-to-install flows (flows/library/*.yaml); their email templates live in library/templates/."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from importlib import resources

from sqlalchemy.engine import Connection

from shopflow.domain import action_nodes
from shopflow.domain.flows import FlowDefinition, load_flow
from shopflow.store import flows as store_flows
from shopflow.store import steps as store_steps


@dataclass(frozen=True)
class LibraryFlow:
    name: str
    purpose: str


class NotInLibrary(LookupError):
    """No library flow of that name; `available` are the names there are, sorted."""

    def __init__(self, name: str, available: list[str]) -> None:
        super().__init__(f"flow {name!r}: not in the library; available: {', '.join(available)}")
        self.name = name
        self.available = available


def _files() -> dict[str, str]:
    folder = resources.files("shopflow.flows").joinpath("library")
    return {
        entry.name.removesuffix(".yaml"): entry.read_text(encoding="utf-8")
        for entry in sorted(folder.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".yaml")
    }


def definition(name: str) -> FlowDefinition:
    files = _files()
    if name not in files:
        raise NotInLibrary(name, sorted(files))
    return load_flow(files[name])


def available() -> list[LibraryFlow]:
    return [LibraryFlow(name, load_flow(text).description) for name, text in _files().items()]


def install(conn: Connection, *, workspace_id: str, name: str, now: datetime, live: bool) -> int:
    """Install a library flow (as a draft unless `live`); installing again returns the same flow.

    A reinstall never demotes a live flow to draft; `live=True` makes an installed draft live.
    Lists the flow's `list` nodes add to or remove from are created when missing (win-back moves
    lapsed customers to `low-frequency`), so a library flow installs in any workspace.
    """
    flow = definition(name)
    for key in sorted({node.list for node in flow.nodes if isinstance(node, action_nodes.ListNode)}):
        store_steps.create_list(
            conn, workspace_id=workspace_id, key=key, name=key.replace("-", " ").capitalize(), now=now
        )
    existing = store_flows.get_by_key(conn, workspace_id=workspace_id, key=flow.id)
    if existing is not None:
        if live and existing.status != "live":
            store_flows.set_status(
                conn, workspace_id=workspace_id, flow_id=existing.id, status="live", now=now
            )
        return existing.id
    flow_id, _ = store_flows.save_flow(
        conn, workspace_id=workspace_id, definition=flow, now=now, status="live" if live else "draft"
    )
    return flow_id
