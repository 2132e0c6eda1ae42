"""Sources: one module per kind of incoming payload, each producing CanonicalEvents."""
