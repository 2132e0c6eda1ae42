"""Messaging: templates, delivery guards, delivery and the channels messages go out through."""
