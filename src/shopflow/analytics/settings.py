"""A workspace's attribution settings (domain.attribution_settings), read; attribution.update_settings
changes them."""

from __future__ import annotations

from sqlalchemy.engine import Connection, Engine

from shopflow.domain import attribution_settings as config
from shopflow.domain import experiment_settings
from shopflow.domain.attribution_settings import AttributionSettings
from shopflow.store import db, workspaces

SETTING = "attribution"
# Settings that change who gets credit; the others (rates, holdout window) only change reports.
CREDITING = ("conversion_metric", "windows", "exclude_machine_opens", "decay_half_life")


class NoWorkspace(LookupError):
    pass


def load(conn: Connection, *, workspace_id: str) -> AttributionSettings:
    """The workspace's settings (defaults for any not set); a stored value that no longer parses
    falls back to the defaults rather than stopping attribution."""
    ws = workspaces.get(conn, workspace_id)
    raw = (ws.settings if ws else {}).get(SETTING)
    try:
        return config.parse(raw)
    except config.SettingsError:
        return AttributionSettings()


def currency(conn: Connection, *, workspace_id: str) -> str:
    ws = workspaces.get(conn, workspace_id)
    return str((ws.settings if ws else {}).get("currency") or "USD")


def current(engine: Engine, *, workspace_id: str) -> AttributionSettings:
    with db.reading(engine) as conn:
        return load(conn, workspace_id=workspace_id)


def experiments(conn: Connection, *, workspace_id: str) -> experiment_settings.ExperimentSettings:
    """The workspace's A/B test settings (the "experiments" setting; defaults when unset or unreadable)."""
    ws = workspaces.get(conn, workspace_id)
    try:
        return experiment_settings.parse((ws.settings if ws else {}).get(experiment_settings.SETTING))
    except experiment_settings.SettingsError:
        return experiment_settings.ExperimentSettings()
