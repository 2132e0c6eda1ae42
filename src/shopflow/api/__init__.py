"""The HTTP API: thin routes that parse, call and answer."""
