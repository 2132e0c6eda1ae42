"""One workspace's recipients in a batch and what the guards need about them, for any channel."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Connection

from shopflow.domain import guards
from shopflow.messaging.delivery import gate as gates
from shopflow.store import consent, messages, workspaces


@dataclass(frozen=True)
class Audience:
    """Read in a few queries per workspace and batch: recipients (following merges), consent and
    suppressions on the batch's channel, and the gate with its send history."""

    channel: str
    workspace: workspaces.Workspace | None
    people: dict[int, messages.Recipient]  # keyed by the message's profile id
    consents: dict[int, str]
    suppressions: dict[int, str]
    gate: guards.Gate

    def person(self, msg: messages.ClaimedMessage) -> messages.Recipient | None:
        return self.people.get(msg.profile_id)

    def facts(self, msg: messages.ClaimedMessage, address: str | None) -> guards.Facts:
        person = self.people.get(msg.profile_id)
        return guards.Facts(
            channel=self.channel,
            transactional=msg.transactional,
            profile_exists=person is not None and self.workspace is not None,
            address=address,
            consent=self.consents.get(person.profile_id, guards.NEVER_SUBSCRIBED) if person else "",
            suppression=self.suppressions.get(person.profile_id) if person else None,
            email_status=person.email_status if person else None,
            email_role=person.email_role if person else False,
        )

    def decide(self, msg: messages.ClaimedMessage, address: str | None) -> guards.Decision:
        """The guards' decision; an allowed message is counted (`record_send`) once it is ready."""
        person = self.people.get(msg.profile_id)
        return self.gate.decide(
            msg, self.facts(msg, address), profile_id=person.profile_id if person else None, reserve=False
        )

    def record_send(self, msg: messages.ClaimedMessage) -> None:
        person = self.people.get(msg.profile_id)
        self.gate.record_send(msg, profile_id=person.profile_id if person else None)


def load(
    conn: Connection,
    *,
    workspace_id: str,
    batch: Iterable[messages.ClaimedMessage],
    channel: str,
    now: datetime,
) -> Audience:
    ws = workspaces.get(conn, workspace_id)
    people = messages.recipients(conn, workspace_id=workspace_id, profile_ids=[m.profile_id for m in batch])
    survivors = sorted({r.profile_id for r in people.values()})
    return Audience(
        channel=channel,
        workspace=ws,
        people=people,
        consents=consent.current(conn, workspace_id=workspace_id, profile_ids=survivors, channel=channel),
        suppressions=messages.suppressed(
            conn, workspace_id=workspace_id, profile_ids=survivors, channel=channel
        ),
        gate=gates.load(conn, workspace=ws, recipients=people.values(), now=now),
    )


def group_by_workspace(
    claimed: Iterable[messages.ClaimedMessage],
) -> dict[str, list[messages.ClaimedMessage]]:
    by_ws: dict[str, list[messages.ClaimedMessage]] = defaultdict(list)
    for msg in claimed:
        by_ws[msg.workspace_id].append(msg)
    return by_ws
