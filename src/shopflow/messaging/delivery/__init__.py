"""Delivery: one pipeline (claim, audience, gate, render, send, record) and a renderer/sender pair
per channel (registry.CHANNELS)."""
