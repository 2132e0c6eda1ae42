"""Every table, by area (one module each); `tables.messages` and `tables.metadata` are here for
every caller. Each row carries workspace_id; no query crosses workspaces.

After changing a table, add an Alembic migration (`shopflow db revision -m "..."`); the test
tests/integration/test_migrations.py holds migrations and these tables to the same schema.
"""

from __future__ import annotations

from shopflow.store.tables.accounts import user_sessions, users, workspace_members
from shopflow.store.tables.analytics import attribution_assists, attributions
from shopflow.store.tables.automation import (
    flow_runs,
    flow_sweeps,
    flow_versions,
    flows,
    run_log,
    trigger_schedule,
)
from shopflow.store.tables.base import metadata
from shopflow.store.tables.campaigns import campaigns
from shopflow.store.tables.catalog import catalog_changes, product_variants, products, stock_subscriptions
from shopflow.store.tables.consent import consent_evidence, consents, preferences, privacy_audit, suppressions
from shopflow.store.tables.deliverability import alerts, sender_domains
from shopflow.store.tables.effects import (
    audience_members,
    list_members,
    lists,
    staff_alerts,
    webhook_deliveries,
)
from shopflow.store.tables.identity import profile_identifiers, profile_merges, profiles
from shopflow.store.tables.ingest import events, pending_events, webhook_receipts
from shopflow.store.tables.messaging import (
    coupon_codes,
    coupon_pools,
    messages,
    push_subscriptions,
    short_links,
)
from shopflow.store.tables.tenancy import instance_settings, rate_limits, worker_heartbeats, workspaces

__all__ = [
    "alerts",
    "attribution_assists",
    "attributions",
    "audience_members",
    "campaigns",
    "catalog_changes",
    "consent_evidence",
    "consents",
    "coupon_codes",
    "coupon_pools",
    "events",
    "flow_runs",
    "flow_sweeps",
    "flow_versions",
    "flows",
    "instance_settings",
    "list_members",
    "lists",
    "messages",
    "metadata",
    "pending_events",
    "preferences",
    "privacy_audit",
    "product_variants",
    "products",
    "profile_identifiers",
    "profile_merges",
    "profiles",
    "push_subscriptions",
    "rate_limits",
    "run_log",
    "sender_domains",
    "short_links",
    "staff_alerts",
    "stock_subscriptions",
    "suppressions",
    "trigger_schedule",
    "user_sessions",
    "users",
    "webhook_deliveries",
    "webhook_receipts",
    "worker_heartbeats",
    "workspace_members",
    "workspaces",
]

# Segmentation's tables live in store/segment_tables.py on this metadata; imported here so that
# `tables.metadata` is complete wherever tables is (migrations, truncate_all, schema checks).
from shopflow.store import segment_tables  # noqa: F401
