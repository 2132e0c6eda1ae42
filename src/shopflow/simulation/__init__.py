"""A seeded, simulated store for the demo: customers who browse, buy, abandon and react to email.

Pure Python: no database, no clock reads. Every probability is documented in docs/demo.md.
"""
