"""Evaluators: one module per task type, from loaded data and an encoder to scores with per-item values kept.

Which evaluator scores a type, and which record it takes, is the type's kind (:mod:`evalkit.kinds`); this package
holds the scoring itself and imports none of its modules up front.
"""

from __future__ import annotations

from evalkit.evaluators.outcome import SplitOutcome, TaskOutcome

__all__ = ["SplitOutcome", "TaskOutcome"]
