"""GDPR / CCPA for one person: export everything stored about them, or erase them (art. 15, 17).

The use cases behind `shopflow privacy export|erase` and the private API's
`GET /api/v1/profiles/{id}/export` and `DELETE /api/v1/profiles/{id}`. Each opens its own
transaction and leaves an audit record; LookupError names the email or profile that is not there.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine

from shopflow.store import db, privacy, rollups, segment_jobs


def export_person(
    engine: Engine,
    *,
    workspace_id: str,
    email: str | None = None,
    profile_id: int | None = None,
    actor: str,
    now: datetime,
) -> dict[str, Any]:
    """Everything stored about the person named by an email or a profile id (merges followed)."""
    with db.transaction(engine) as conn:
        subject = privacy.find(conn, workspace_id=workspace_id, email=email, profile_id=profile_id)
        data = privacy.export(conn, subject=subject)
        privacy.record_audit(conn, subject=subject, action=privacy.EXPORT, actor=actor, now=now, details={})
    return data


def erase_person(
    engine: Engine,
    *,
    workspace_id: str,
    email: str | None = None,
    profile_id: int | None = None,
    actor: str,
    now: datetime,
) -> dict[str, Any]:
    """Delete the person from every table (aggregates kept on an anonymous tombstone).

    Returns the erased profile ids and the audit details (rows removed per table, the tombstone).
    """
    with db.transaction(engine) as conn:
        subject = privacy.find(conn, workspace_id=workspace_id, email=email, profile_id=profile_id)
        # Segment sizes drop by the person's memberships (no exit events: nobody is left to get
        # them); rollups and memberships go with the profile.
        ids = list(subject.profile_ids)
        segment_jobs.drop_memberships(conn, workspace_id=workspace_id, profile_ids=ids, now=now, delete=True)
        for pid in ids:
            rollups.erase_profile(conn, workspace_id=workspace_id, profile_id=pid)
        details = privacy.erase(conn, subject=subject, now=now, actor=actor)
    return {"erased_profiles": list(subject.profile_ids), **details}
