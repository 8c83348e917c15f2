"""``evalkit run`` in stages, each a module: plan (what to evaluate, its data loaded and checked) → models (every
model the run builds, checked together) → tasks (one task through its evaluator) → write (results, side files).
:func:`evalkit.runner.run` strings them together; nothing here prints.
"""
