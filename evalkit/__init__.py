"""evalkit: an evaluation harness for text-embedding models.

The data flows one way: registry → loader → encoder core → search/scoring → results → reports. The public face is
a handful of calls (``docs/api.md``): :func:`evaluate`, :func:`load_results` and :class:`Results`,
:func:`leaderboard`, :func:`diff`, :func:`compare`. They are imported on first use, so ``import evalkit`` (and the
CLI's ``--help``) loads neither torch nor mteb.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "evaluate": "evalkit.api:evaluate",
    "Results": "evalkit.results.api:Results",
    "load_results": "evalkit.results.api:load_results",
    "leaderboard": "evalkit.reports.api:leaderboard",
    "diff": "evalkit.reports.api:diff",
    "compare": "evalkit.reports.api:compare",
    "build_subset": "evalkit.subsets.build:build_subset",
    "RunOptions": "evalkit.options:RunOptions",
    "EvalkitError": "evalkit.errors:EvalkitError",
    "DataError": "evalkit.errors:DataError",
    "SpecError": "evalkit.errors:SpecError",
    "UnknownTaskError": "evalkit.errors:UnknownTaskError",
    "UnknownModelError": "evalkit.errors:UnknownModelError",
}

if TYPE_CHECKING:
    from evalkit.api import evaluate
    from evalkit.errors import DataError, EvalkitError, SpecError, UnknownModelError, UnknownTaskError
    from evalkit.options import RunOptions
    from evalkit.reports.api import compare, diff, leaderboard
    from evalkit.results.api import Results, load_results
    from evalkit.subsets.build import build_subset


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'evalkit' has no attribute {name!r}")
    module, attr = target.split(":")
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = [
    "DataError",
    "EvalkitError",
    "Results",
    "RunOptions",
    "SpecError",
    "UnknownModelError",
    "UnknownTaskError",
    "__version__",
    "build_subset",
    "compare",
    "diff",
    "evaluate",
    "leaderboard",
    "load_results",
]
