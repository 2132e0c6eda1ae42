"""Ingest: sources turn payloads into canonical events; the pipeline stores them with identities."""
