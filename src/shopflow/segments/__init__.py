"""Segments, the use-case layer: rules compiled to SQL (compile), profile snapshots for the
in-memory evaluator (snapshot). The real-time membership stage, the sweeper and the backfill come
next, on top of these."""
