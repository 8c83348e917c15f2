"""The run record beside each result: what produced it (versions, model, data, machine, timings).

Two results are comparable only when their records agree on the data checksums and task versions; the
regression diff reads these.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import sys
from dataclasses import asdict
from functools import cache
from importlib import metadata
from typing import Any

from evalkit import __version__
from evalkit.evaluators.outcome import TaskOutcome
from evalkit.records import TaskData
from evalkit.registry.tasks import TaskSpec

_PACKAGES = (
    "torch",
    "transformers",
    "tokenizers",
    "mteb",
    "numpy",
    "scipy",
    "scikit-learn",
    "pytrec-eval-terrier",
    "datasets",
)


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        with open("/proc/meminfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


@cache
def machine_info() -> dict[str, Any]:
    import torch

    gpus = (
        [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    )
    return {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "torch_threads": torch.get_num_threads(),
        "gpus": gpus,
    }


def spec_record(spec: TaskSpec) -> dict[str, Any]:
    record = asdict(spec)
    record["spec_file"] = str(spec.spec_file) if spec.spec_file else None
    record["data_dir"] = str(spec.data_dir) if spec.data_dir else None
    return record


def run_record(
    *,
    spec: TaskSpec,
    data: TaskData,
    outcome: TaskOutcome,
    model_fingerprint: dict[str, object],
    run_settings: dict[str, Any],
    started_at: dt.datetime,
    finished_at: dt.datetime,
    command: list[str] | None,
) -> dict[str, Any]:
    return {
        "evalkit_version": __version__,
        "command": command,
        "started_at": started_at.isoformat(),
        "finished_at": finished_at.isoformat(),
        "task": spec_record(spec),
        "model": model_fingerprint,
        "run_settings": run_settings,
        "data": {
            "origin": data.origin,
            "files": [asdict(f) for f in data.source_files],
        },
        "warnings": outcome.warnings,  # degenerate-but-valid data, e.g. every judgement grade 0
        "timings": {
            "evaluation_time_s": outcome.evaluation_time_s,
            "splits": {f"{s.split}/{s.hf_subset}": s.timings for s in outcome.splits},
        },
        "packages": package_versions(),
        "machine": machine_info(),
    }
