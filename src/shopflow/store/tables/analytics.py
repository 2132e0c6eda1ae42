"""Analytics: revenue attributed to the messages that earned it (last touch, and assisted credit)."""

from __future__ import annotations

import sqlalchemy as sa

from shopflow.store.tables import base
from shopflow.store.types import BigId, Money, UTCDateTime

attributions = sa.Table(
    "attributions",
    base.metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    base.workspace_id(),
    sa.Column("conversion_event_id", sa.BigInteger, nullable=False, unique=True),
    sa.Column("order_id", sa.String(200)),
    sa.Column("profile_id", sa.BigInteger, nullable=False),
    sa.Column("message_id", sa.BigInteger, nullable=False),
    sa.Column("flow_id", sa.BigInteger),
    sa.Column("touch", sa.String(16), nullable=False),  # opened | clicked
    sa.Column("touched_at", UTCDateTime, nullable=False),
    sa.Column("revenue", Money, nullable=False),
    sa.Column("currency", sa.String(3)),
    sa.Column("converted_at", UTCDateTime, nullable=False),
    sa.Column("reversed_at", UTCDateTime),  # set by a refund or cancellation of the order
    sa.Column("reversed_amount", Money, nullable=False, server_default="0"),
    # The credited message's channel and flow node (NULL for a campaign message or an old row).
    sa.Column("channel", sa.String(16)),
    sa.Column("node_id", sa.String(100)),
    sa.Index("ix_attributions_flow", "flow_id"),
    sa.Index("ix_attributions_order", "workspace_id", "order_id"),
)

# Assisted (multi-touch) credit: every message touched in the window before a credited conversion,
# with its share under the linear and the time-decay model. Shares of one conversion sum to 1; the
# money is the share of the conversion's net revenue (attributions.revenue - reversed_amount).
attribution_assists = sa.Table(
    "attribution_assists",
    base.metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    base.workspace_id(),
    sa.Column("conversion_event_id", sa.BigInteger, nullable=False),
    sa.Column("message_id", sa.BigInteger, nullable=False),
    sa.Column("flow_id", sa.BigInteger),
    sa.Column("node_id", sa.String(100)),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("touched_at", UTCDateTime, nullable=False),  # the message's last touch before the order
    sa.Column("linear_share", sa.Numeric(12, 10), nullable=False),
    sa.Column("decay_share", sa.Numeric(12, 10), nullable=False),
    sa.UniqueConstraint("conversion_event_id", "message_id"),
    sa.Index("ix_attribution_assists_flow", "workspace_id", "flow_id"),
)
