"""Back-in-stock requests: a shopper asks to be told when a product (or one variant) is available.

The request goes through the pipeline (the profile is found or created, and the request is on its
timeline), then becomes a stock subscription that a restock answers (flows/catalog_triggers.py).
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy.engine import Engine

from shopflow.domain.events import CanonicalEvent, Identity
from shopflow.ingest import pipeline
from shopflow.store import db
from shopflow.store import triggers as store_triggers

REQUESTED = "Back in Stock Requested"


def request_back_in_stock(
    engine: Engine, *, workspace_id: str, who: Identity, product_id: str, variant_id: str, now: datetime
) -> int:
    """Record (or re-arm) the request of `who` for a product ("" variant: any); returns its id."""
    digest = hashlib.sha256(f"{who}|{product_id}|{variant_id}|{now.isoformat()}".encode()).hexdigest()
    event = CanonicalEvent(
        message_id=f"back-in-stock:{digest[:40]}",
        source="api",
        identity=who,
        time=now,
        name=REQUESTED,
        properties={"product_id": product_id, "variant_id": variant_id or None},
    )
    with db.transaction(engine) as conn:
        result = pipeline.accept(conn, workspace_id=workspace_id, events=[event], now=now)
        return store_triggers.subscribe_to_stock(
            conn,
            workspace_id=workspace_id,
            profile_id=result.profile_ids[0],
            product_id=product_id,
            variant_id=variant_id,
            now=now,
        )
