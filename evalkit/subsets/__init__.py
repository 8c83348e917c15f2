"""Quick subsets: smaller variants of tasks, built by rule, content-addressed, and applied to the loaded task.

``build_subset`` makes one and writes its manifest; ``read_manifest`` reads one back, checked; ``apply_subset``
filters a task's loaded data to it (``evalkit run --subset NAME`` does this before anything is encoded). The calls
are imported on first use, so the CLI's ``--help`` loads no numpy-heavy module and ``pipeline.plan`` can import
:mod:`evalkit.subsets.apply` without pulling the builder (which runs evalkit itself for its BM25 pool).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from evalkit._lazy import lazy_exports as _lazy_exports

_LAZY = {
    "build_subset": "evalkit.subsets.build:build_subset",
    "BuiltSubset": "evalkit.subsets.build:BuiltSubset",
    "apply_subset": "evalkit.subsets.apply:apply_subset",
    "load_subsets": "evalkit.subsets.apply:load_subsets",
    "read_manifest": "evalkit.subsets.manifest:read_manifest",
    "subset_record": "evalkit.subsets.manifest:subset_record",
    "default_subsets_dir": "evalkit.subsets.manifest:default_subsets_dir",
    "SubsetError": "evalkit.subsets.manifest:SubsetError",
    "subset_fidelity": "evalkit.subsets.fidelity:subset_fidelity",
    "FidelityReport": "evalkit.subsets.fidelity:FidelityReport",
}

if TYPE_CHECKING:
    from evalkit.subsets.apply import apply_subset, load_subsets
    from evalkit.subsets.build import BuiltSubset, build_subset
    from evalkit.subsets.fidelity import FidelityReport, subset_fidelity
    from evalkit.subsets.manifest import SubsetError, default_subsets_dir, read_manifest, subset_record


__getattr__ = _lazy_exports(__name__, _LAZY)


__all__ = [
    "BuiltSubset",
    "FidelityReport",
    "SubsetError",
    "apply_subset",
    "build_subset",
    "default_subsets_dir",
    "load_subsets",
    "read_manifest",
    "subset_fidelity",
    "subset_record",
]
