"""SMS providers: one file each, registered in messaging/channels/registry.py."""
