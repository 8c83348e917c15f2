"""evalkit: an evaluation harness for text-embedding models.

The data flows one way: registry → loader → encoder core → search/scoring → results → reports. The public face is
a handful of calls (``docs/api.md``): :func:`evaluate`, :func:`load_results` and :class:`Results`,
:func:`leaderboard`, :func:`diff`, :func:`compare`. They are imported on first use, so ``import evalkit`` (and the
CLI's ``--help``) loads neither torch nor mteb.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from evalkit._lazy import lazy_dir as _lazy_dir
from evalkit._lazy import lazy_exports as _lazy_exports

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


__getattr__ = _lazy_exports(__name__, _LAZY)
__dir__ = _lazy_dir(__name__, _LAZY)


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
