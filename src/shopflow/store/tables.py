"""Every table. Each row carries workspace_id; no query crosses workspaces.

After changing a table, add an Alembic migration (`shopflow db revision -m "..."`); the test
tests/integration/test_migrations.py holds migrations and this module to the same schema.
"""

from __future__ import annotations

import sqlalchemy as sa

from shopflow.store.types import BigId, Json, Money, UTCDateTime

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def _ws() -> sa.Column[str]:
    return sa.Column("workspace_id", sa.String(32), sa.ForeignKey("workspaces.id"), nullable=False)


# --- instance and tenants -------------------------------------------------------------------

instance_settings = sa.Table(
    "instance_settings",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

# A provider's send-rate token bucket, shared by every worker process of the install. Instance-wide
# like instance_settings (no workspace_id): workspaces that share an SMTP relay share its limit.
rate_limits = sa.Table(
    "rate_limits",
    metadata,
    sa.Column("key", sa.String(200), primary_key=True),  # "smtp:host:port", "sms:twilio:AC...:+1..."
    sa.Column("tokens", sa.Float, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

workspaces = sa.Table(
    "workspaces",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    # SHA-256 of the keys: they are long random strings, so a fast hash is enough to store them.
    sa.Column("write_key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("private_key_hash", sa.String(64), nullable=False, unique=True),
    # HMAC secrets must be kept in the clear: verifying a signature needs the key itself.
    sa.Column("webhook_secret", sa.String(200), nullable=False),
    sa.Column("settings", Json, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

# --- profiles and identity ------------------------------------------------------------------

profiles = sa.Table(
    "profiles",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    _ws(),
    sa.Column("email", sa.String(320)),
    # Address hygiene of `email`, set by ingest whenever the address changes (ingest/hygiene.py):
    # valid | invalid_syntax | reserved_domain | fake; NULL while there is no address. Columns, not
    # properties: traits and update_profile nodes write properties, and must not clear a flag.
    sa.Column("email_status", sa.String(16)),
    sa.Column("email_role", sa.Boolean),  # a shared mailbox (info@, sales@)
    sa.Column("phone", sa.String(32)),
    sa.Column("external_id", sa.String(200)),
    sa.Column("first_name", sa.String(200)),
    sa.Column("last_name", sa.String(200)),
    sa.Column("timezone", sa.String(64)),
    sa.Column("properties", Json, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("last_active_at", UTCDateTime),
    # Aggregates maintained on ingest. Average order value is total_spent / order_count.
    sa.Column("order_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("total_spent", Money, nullable=False, server_default="0"),
    sa.Column("first_order_at", UTCDateTime),
    sa.Column("last_order_at", UTCDateTime),
    # Set when this profile was merged into another; its events and identifiers moved there.
    sa.Column("merged_into", sa.BigInteger),
    sa.Index("ix_profiles_workspace_email", "workspace_id", "email"),
    # Time-based triggers re-examine only the profiles changed since their last sweep.
    sa.Index("ix_profiles_workspace_updated", "workspace_id", "updated_at"),
)

profile_identifiers = sa.Table(
    "profile_identifiers",
    metadata,
    _ws(),
    sa.Column("kind", sa.String(16), nullable=False),  # email | phone | external_id | anonymous_id
    sa.Column("value", sa.String(320), nullable=False),
    sa.Column("profile_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.PrimaryKeyConstraint("workspace_id", "kind", "value"),
)

profile_merges = sa.Table(
    "profile_merges",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    _ws(),
    sa.Column("from_profile_id", sa.BigInteger, nullable=False),
    sa.Column("into_profile_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("reason", sa.String(200), nullable=False),
    sa.Column("merged_at", UTCDateTime, nullable=False),
)

consents = sa.Table(
    "consents",
    metadata,
    _ws(),
    sa.Column("profile_id", sa.BigInteger, nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),  # email | sms | push
    sa.Column("status", sa.String(24), nullable=False),  # subscribed | unsubscribed | never_subscribed
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.PrimaryKeyConstraint("workspace_id", "profile_id", "channel"),
)

consent_evidence = sa.Table(
    "consent_evidence",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    _ws(),
    sa.Column("profile_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("status", sa.String(24), nullable=False),
    sa.Column("source", sa.String(64), nullable=False),  # shopify, api, unsubscribe_link, ...
    sa.Column("occurred_at", UTCDateTime, nullable=False),
    sa.Column("details", Json, nullable=False),  # opt_in_level, ip, form, text shown, ...
)

suppressions = sa.Table(
    "suppressions",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    _ws(),
    sa.Column("profile_id", sa.BigInteger, nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("reason", sa.String(32), nullable=False),  # hard_bounce | complaint | manual | ...
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("details", Json, nullable=False),
    sa.Index("ix_suppressions_profile", "workspace_id", "profile_id", "channel"),
)

# Domains a workspace sends from, each with its DKIM key (RFC 6376). The private key is kept in the
# clear: signing needs it, as verifying a webhook needs its secret.
sender_domains = sa.Table(
    "sender_domains",
    metadata,
    _ws(),
    sa.Column("domain", sa.String(253), nullable=False),
    sa.Column("selector", sa.String(63), nullable=False),
    sa.Column("algorithm", sa.String(16), nullable=False),  # rsa-sha256 | ed25519-sha256
    sa.Column("private_key_pem", sa.Text, nullable=False),
    sa.Column("verified", sa.Boolean, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.PrimaryKeyConstraint("workspace_id", "domain"),
)

# --- events ---------------------------------------------------------------------------------

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    _ws(),
    sa.Column("profile_id", sa.BigInteger, nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("time", UTCDateTime, nullable=False),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Column("properties", Json, nullable=False),
    sa.Column("value", Money),
    sa.Column("currency", sa.String(3)),
    sa.Column("source", sa.String(32), nullable=False),
    # The source's own unique id (Segment messageId, a Shopify-derived id): the dedupe key.
    sa.Column("message_id", sa.String(200), nullable=False),
    sa.UniqueConstraint("workspace_id", "message_id"),
    sa.Index("ix_events_profile_name_time", "workspace_id", "profile_id", "name", "time"),
    # Who viewed or carted a product lately (price drop, low inventory): a range by name and time.
    sa.Index("ix_events_name_time", "workspace_id", "name", "time"),
)

# Committed events not yet seen by triggers, attribution and segments; a worker claims and deletes
# them. A queue table rather than an id cursor, because on PostgreSQL ids commit out of order.
pending_events = sa.Table(
    "pending_events",
    metadata,
    sa.Column("event_id", sa.BigInteger, primary_key=True, autoincrement=False),
    _ws(),
)

webhook_receipts = sa.Table(
    "webhook_receipts",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    _ws(),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("webhook_id", sa.String(200), nullable=False),
    sa.Column("topic", sa.String(100), nullable=False),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Column("handled", sa.Boolean, nullable=False),  # False: unknown topic, kept for later
    sa.Column("payload", Json),  # kept only when the topic is not handled
    sa.UniqueConstraint("workspace_id", "source", "webhook_id"),
)

# --- catalog --------------------------------------------------------------------------------

products = sa.Table(
    "products",
    metadata,
    _ws(),
    sa.Column("product_id", sa.String(64), nullable=False),
    sa.Column("title", sa.String(500), nullable=False),
    sa.Column("url", sa.String(1000)),
    sa.Column("image_url", sa.String(1000)),
    sa.Column("category", sa.String(200)),
    sa.Column("price", Money),
    # The price before the last change, and when it changed: what a price drop is measured from.
    sa.Column("previous_price", Money),
    sa.Column("price_changed_at", UTCDateTime),
    sa.Column("status", sa.String(32)),
    sa.Column("properties", Json, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.PrimaryKeyConstraint("workspace_id", "product_id"),
)

product_variants = sa.Table(
    "product_variants",
    metadata,
    _ws(),
    sa.Column("variant_id", sa.String(64), nullable=False),
    sa.Column("product_id", sa.String(64), nullable=False),
    sa.Column("sku", sa.String(200)),
    sa.Column("title", sa.String(500)),
    sa.Column("price", Money),
    sa.Column("inventory_item_id", sa.String(64)),
    sa.Column("inventory_quantity", sa.Integer),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.PrimaryKeyConstraint("workspace_id", "variant_id"),
    sa.Index("ix_product_variants_inventory_item", "workspace_id", "inventory_item_id"),
)

# --- flows ----------------------------------------------------------------------------------

flows = sa.Table(
    "flows",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    _ws(),
    sa.Column("key", sa.String(100), nullable=False),  # the definition's id, e.g. cart-abandonment
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # draft | manual | live | paused
    sa.Column("current_version", sa.Integer, nullable=False),
    sa.Column("trigger_event", sa.String(200)),  # denormalised for the trigger lookup
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("workspace_id", "key"),
)

flow_versions = sa.Table(
    "flow_versions",
    metadata,
    sa.Column("flow_id", sa.BigInteger, sa.ForeignKey("flows.id"), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    _ws(),
    sa.Column("definition", Json, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.PrimaryKeyConstraint("flow_id", "version"),
)

flow_runs = sa.Table(
    "flow_runs",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    _ws(),
    sa.Column("flow_id", sa.BigInteger, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("profile_id", sa.BigInteger, nullable=False),
    # One run per (flow, profile, trigger key): the idempotency key of run creation.
    sa.Column("trigger_key", sa.String(200), nullable=False),
    sa.Column("trigger_event_id", sa.BigInteger),
    sa.Column("status", sa.String(16), nullable=False),  # waiting | exited
    sa.Column("node_id", sa.String(100)),  # the node to execute when the run wakes
    sa.Column("state", Json, nullable=False),
    sa.Column("wake_at", UTCDateTime),
    # When the delay the run waits in ends. wake_at is earlier when an event its flow filter
    # mentions wakes it to re-check the filter; then the run goes back to sleep until resume_at.
    sa.Column("resume_at", UTCDateTime),
    sa.Column("holdout", sa.Boolean, nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("exited_at", UTCDateTime),
    sa.Column("exit_reason", sa.String(64)),
    sa.UniqueConstraint("workspace_id", "flow_id", "profile_id", "trigger_key"),
    sa.Index(
        "ix_flow_runs_due",
        "wake_at",
        postgresql_where=sa.text("status = 'waiting'"),
        sqlite_where=sa.text("status = 'waiting'"),
    ),
    sa.Index("ix_flow_runs_profile", "workspace_id", "profile_id"),
    sa.Index("ix_flow_runs_flow_status", "flow_id", "status"),
)

# Every step and skip a run takes: the profile's timeline and the flow's per-node counts.
run_log = sa.Table(
    "run_log",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    _ws(),
    sa.Column("run_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("flow_id", sa.BigInteger, nullable=False),
    sa.Column("profile_id", sa.BigInteger, nullable=False),
    sa.Column("node_id", sa.String(100)),
    sa.Column("kind", sa.String(16), nullable=False),  # entered | node | skip | exit
    sa.Column("reason", sa.String(200)),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Index("ix_run_log_profile", "workspace_id", "profile_id", "at"),
    sa.Index("ix_run_log_flow_node", "flow_id", "node_id", "kind"),
)

# Time-based triggers (date property, time since): per flow, how far the sweep has looked.
flow_sweeps = sa.Table(
    "flow_sweeps",
    metadata,
    sa.Column("flow_id", sa.BigInteger, primary_key=True, autoincrement=False),
    _ws(),
    # Profiles updated before this were scheduled already (the sweep reads updated_at from here on).
    sa.Column("profiles_until", UTCDateTime),
    # Set while a refresh is part-way (a first look at a large store): it goes on after this id.
    sa.Column("profiles_after_id", sa.BigInteger),
    sa.Column("refreshed_at", UTCDateTime),
)

# The next time a time-based trigger fires for one profile in one flow (a timer as a row).
trigger_schedule = sa.Table(
    "trigger_schedule",
    metadata,
    sa.Column("flow_id", sa.BigInteger, nullable=False),
    sa.Column("profile_id", sa.BigInteger, nullable=False),
    _ws(),
    sa.Column("fire_at", UTCDateTime, nullable=False),
    sa.Column("trigger_key", sa.String(200), nullable=False),  # date:YYYY-MM-DD | since:<anchor>
    sa.Column("details", Json, nullable=False),  # the occurrence, for the run's trigger state
    sa.PrimaryKeyConstraint("flow_id", "profile_id"),
    sa.Index("ix_trigger_schedule_due", "flow_id", "fire_at"),
)

# Back-in-stock requests: a profile asked to be told when a product (or one variant) is available.
stock_subscriptions = sa.Table(
    "stock_subscriptions",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    _ws(),
    sa.Column("profile_id", sa.BigInteger, nullable=False),
    sa.Column("product_id", sa.String(64), nullable=False),
    sa.Column("variant_id", sa.String(64), nullable=False),  # "" = any variant of the product
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("notified_at", UTCDateTime),  # set when a restock started its flow runs
    sa.UniqueConstraint("workspace_id", "profile_id", "product_id", "variant_id"),
    sa.Index("ix_stock_subscriptions_product", "workspace_id", "product_id"),
)

# --- what flow steps write: lists, ad audiences, outbound webhooks, staff alerts ------------

# Named lists a store keeps (newsletter, low-frequency); a flow names them by key.
lists = sa.Table(
    "lists",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    _ws(),
    sa.Column("key", sa.String(100), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("workspace_id", "key"),
)

list_members = sa.Table(
    "list_members",
    metadata,
    _ws(),
    sa.Column("list_id", sa.BigInteger, nullable=False),
    sa.Column("profile_id", sa.BigInteger, nullable=False),
    sa.Column("source", sa.String(64), nullable=False),  # flow:<id>:<node> | api | import
    sa.Column("joined_at", UTCDateTime, nullable=False),
    sa.PrimaryKeyConstraint("workspace_id", "list_id", "profile_id"),
    sa.Index("ix_list_members_profile", "workspace_id", "profile_id"),
)

# Ad audiences (Meta custom audiences, Google customer match): exported with consent respected.
audience_members = sa.Table(
    "audience_members",
    metadata,
    _ws(),
    sa.Column("audience", sa.String(100), nullable=False),
    sa.Column("profile_id", sa.BigInteger, nullable=False),
    sa.Column("added_at", UTCDateTime, nullable=False),
    sa.PrimaryKeyConstraint("workspace_id", "audience", "profile_id"),
)

# The outbox of flow webhooks: one row per (run, node), delivered with retries after commit.
webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    _ws(),
    sa.Column("run_id", sa.BigInteger, nullable=False),
    sa.Column("flow_id", sa.BigInteger, nullable=False),
    sa.Column("node_id", sa.String(100), nullable=False),
    sa.Column("url", sa.String(2000), nullable=False),
    sa.Column("method", sa.String(8), nullable=False),
    sa.Column("body", sa.Text, nullable=False),  # the exact bytes signed and sent (JSON)
    sa.Column("status", sa.String(16), nullable=False),  # pending | sending | done | failed
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("claimed_at", UTCDateTime),
    sa.Column("response_status", sa.Integer),
    sa.Column("response", Json),  # the JSON answer (later steps read it), when there was one
    sa.Column("error", sa.String(500)),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("completed_at", UTCDateTime),
    sa.UniqueConstraint("run_id", "node_id"),
    sa.Index(
        "ix_webhook_deliveries_due",
        "next_attempt_at",
        postgresql_where=sa.text("status IN ('pending', 'sending')"),
        sqlite_where=sa.text("status IN ('pending', 'sending')"),
    ),
)

# Alerts a flow raises for the store's staff (an `alert` node): one per (run, node).
staff_alerts = sa.Table(
    "staff_alerts",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    _ws(),
    sa.Column("flow_id", sa.BigInteger, nullable=False),
    sa.Column("run_id", sa.BigInteger, nullable=False),
    sa.Column("node_id", sa.String(100), nullable=False),
    sa.Column("profile_id", sa.BigInteger, nullable=False),
    sa.Column("message", sa.String(500), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("seen_at", UTCDateTime),
    # Email to the workspace's staff_email (flows/alerts.py): pending | sent | failed. While pending,
    # notify_next_at is when it may be tried (null: now); a claim pushes it out as a lease.
    sa.Column("notify_status", sa.String(16), nullable=False, server_default="pending"),
    sa.Column("notify_attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("notify_next_at", UTCDateTime),
    sa.Column("notified_at", UTCDateTime),
    sa.Column("notify_error", sa.String(500)),
    sa.UniqueConstraint("run_id", "node_id"),
    sa.Index("ix_staff_alerts_workspace", "workspace_id", "created_at"),
    sa.Index("ix_staff_alerts_notify", "notify_status", "notify_next_at"),
)

# --- messages -------------------------------------------------------------------------------

messages = sa.Table(
    "messages",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    _ws(),
    sa.Column("profile_id", sa.BigInteger, nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("template", sa.String(200), nullable=False),
    sa.Column("transactional", sa.Boolean, nullable=False),
    # Origin: a (run, node) or a (campaign, profile); each creates a message once.
    sa.Column("flow_id", sa.BigInteger),
    sa.Column("run_id", sa.BigInteger),
    sa.Column("node_id", sa.String(100)),
    sa.Column("dedupe_key", sa.String(200), nullable=False),
    # queued | sending | sent | skipped | failed; pending_approval (a manual flow's, until approved)
    # and held (a paused flow's, until it runs again) are never claimed by delivery.
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("skip_reason", sa.String(64)),
    sa.Column("error", sa.Text),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("to_address", sa.String(320)),
    sa.Column("subject", sa.String(500)),
    sa.Column("context", Json, nullable=False),  # what the template renders with (trigger event)
    sa.Column("provider_message_id", sa.String(300)),
    # SMS only: parts the carrier bills (GSM-7 / UCS-2 segments) and the estimated price of the send.
    sa.Column("segments", sa.Integer),
    sa.Column("cost", Money),
    sa.Column("send_after", UTCDateTime, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("sent_at", UTCDateTime),
    # When a delivery worker claimed it ('sending'); a stale claim is a crashed worker's, reclaimed.
    sa.Column("claimed_at", UTCDateTime),
    sa.UniqueConstraint("workspace_id", "dedupe_key"),
    # Each channel's worker claims its own due rows: (channel, send_after) keeps an email backlog
    # from slowing the SMS and push claims.
    sa.Index(
        "ix_messages_due",
        "channel",
        "send_after",
        postgresql_where=sa.text("status = 'queued'"),
        sqlite_where=sa.text("status = 'queued'"),
    ),
    # Transactional messages are claimed first (a receipt never waits behind a bulk send): this
    # index holds only them, so finding them costs nothing however long the marketing queue is.
    sa.Index(
        "ix_messages_due_transactional",
        "channel",
        "send_after",
        postgresql_where=sa.text("status = 'queued' AND transactional = true"),
        sqlite_where=sa.text("status = 'queued' AND transactional = 1"),
    ),
    sa.Index(
        "ix_messages_claimed",
        "claimed_at",
        postgresql_where=sa.text("status = 'sending'"),
        sqlite_where=sa.text("status = 'sending'"),
    ),
    sa.Index("ix_messages_profile", "workspace_id", "profile_id", "created_at"),
    # The guards count a workspace's sends of the day (per-workspace daily limits).
    sa.Index("ix_messages_workspace_sent", "workspace_id", "sent_at"),
    sa.Index("ix_messages_flow", "flow_id", "status"),
    # Provider status callbacks (Twilio's MessageSid) find their message by this.
    sa.Index("ix_messages_provider_id", "workspace_id", "provider_message_id"),
)

# Tracked links of SMS and push messages: `{public_url}/s/{code}` redirects to `url`. One row per
# (message, target), so a retried send re-renders the same code; the code is random (not a counter)
# so links cannot be enumerated.
short_links = sa.Table(
    "short_links",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    _ws(),
    sa.Column("code", sa.String(22), nullable=False),
    sa.Column("message_id", sa.BigInteger, nullable=False),
    sa.Column("profile_id", sa.BigInteger, nullable=False),
    sa.Column("flow_id", sa.BigInteger),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("url", sa.Text, nullable=False),  # the target, UTM parameters included
    sa.Column("url_hash", sa.String(64), nullable=False),  # sha256 of url: long URLs can't be indexed
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("code"),
    sa.UniqueConstraint("message_id", "url_hash"),
)

# Web push: one row per browser subscription (RFC 8030 endpoint plus the RFC 8291 keys).
push_subscriptions = sa.Table(
    "push_subscriptions",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    _ws(),
    sa.Column("profile_id", sa.BigInteger, nullable=False),
    sa.Column("endpoint", sa.String(2000), nullable=False),
    sa.Column("p256dh", sa.String(200), nullable=False),  # the browser's ECDH public key, base64url
    sa.Column("auth", sa.String(64), nullable=False),  # the 16-byte auth secret, base64url
    sa.Column("user_agent", sa.String(500)),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("workspace_id", "endpoint"),
    sa.Index("ix_push_subscriptions_profile", "workspace_id", "profile_id"),
)

# --- analytics ------------------------------------------------------------------------------

attributions = sa.Table(
    "attributions",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    _ws(),
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
    sa.Index("ix_attributions_flow", "flow_id"),
    sa.Index("ix_attributions_order", "workspace_id", "order_id"),
)

# --- preferences, privacy, deliverability alerts (messaging guards) -------------------------

# What a person chose in the preference center; absent row = defaults (every topic, any frequency).
preferences = sa.Table(
    "preferences",
    metadata,
    _ws(),
    sa.Column("profile_id", sa.BigInteger, nullable=False),
    sa.Column("topics_off", Json, nullable=False),  # topics opted out of: ["promotional", ...]
    sa.Column("frequency", sa.String(16)),  # daily | weekly | monthly | NULL (no preference)
    sa.Column("paused_until", UTCDateTime),
    sa.Column("unsubscribe_reason", sa.String(500)),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.PrimaryKeyConstraint("workspace_id", "profile_id"),
)

# Every export and erasure (GDPR art. 30 records): the subject only as a keyed hash, never in clear.
privacy_audit = sa.Table(
    "privacy_audit",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    _ws(),
    sa.Column("action", sa.String(16), nullable=False),  # export | erase
    sa.Column("subject_hash", sa.String(64), nullable=False),
    sa.Column("actor", sa.String(64), nullable=False),  # cli | api
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("details", Json, nullable=False),  # rows removed per table, tombstone id
)

# Deliverability alerts (bounce / complaint rate over the last day).
alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    _ws(),
    sa.Column("kind", sa.String(32), nullable=False),  # bounce_rate | complaint_rate
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("threshold", sa.Float, nullable=False),
    sa.Column("window_start", UTCDateTime, nullable=False),
    sa.Column("window_end", UTCDateTime, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("details", Json, nullable=False),
    sa.UniqueConstraint("workspace_id", "kind", "window_end"),
)

# Unique coupon codes: a pool per offer, each code handed to at most one message (recipient).
coupon_pools = sa.Table(
    "coupon_pools",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    _ws(),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("workspace_id", "name"),
)

coupon_codes = sa.Table(
    "coupon_codes",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    _ws(),
    sa.Column("pool_id", sa.BigInteger, sa.ForeignKey("coupon_pools.id"), nullable=False),
    sa.Column("code", sa.String(100), nullable=False),
    sa.Column("message_id", sa.BigInteger),  # NULL while free
    sa.Column("profile_id", sa.BigInteger),
    sa.Column("assigned_at", UTCDateTime),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("pool_id", "code"),
    # One code per message and pool: a re-render finds the code it was given.
    sa.UniqueConstraint("pool_id", "message_id"),
    sa.Index("ix_coupon_codes_free", "pool_id", "message_id", "id"),
)

# Segmentation's tables live in their own module on this metadata; imported here so that
# `tables.metadata` is complete wherever tables is (migrations, truncate_all, schema checks).
from shopflow.store import segment_tables  # noqa: E402, F401
