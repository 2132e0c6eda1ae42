"""Channels: one interface (base.Channel), one file per provider under channels/<kind>/."""
