"""Segments, the pure part: the rule language (rules, validation), what a rule reads
(dependencies), the rollups it reads (dimensions), the in-memory evaluator (evaluate) over one
profile's snapshot (profile), the value semantics both evaluators keep (values), and the stable
random bucket (bucket). docs/segments.md is the reference."""
