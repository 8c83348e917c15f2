"""Results: MTEB-format task results, per-item scores and run records, written atomically."""
