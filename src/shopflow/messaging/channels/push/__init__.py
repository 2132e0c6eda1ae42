"""Web push (RFC 8030 / 8291 / 8292) through pywebpush."""
