"""torch's thread count and visible GPUs for the run record, without importing torch when nothing else did.

A warm run (every vector cached) never needs torch, but its run record names the machine as a cold run's does
(``torch_threads``, ``gpus``). Asked of torch when torch is loaded (and remembered), else read from the memo
(:mod:`evalkit.cache.memo`) keyed by everything torch derives them from: torch's version, the usable cores, the
thread and device environment variables and the NVIDIA devices the driver lists. No memo: torch is asked.
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path
from typing import Any

from evalkit.cache.memo import memo_key, memo_root, read_memo, write_memo
from evalkit.host import library_version, usable_cores

KIND = "torch-facts"
_ENVIRONMENT = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "CUDA_VISIBLE_DEVICES",
    "CUDA_DEVICE_ORDER",
    "HIP_VISIBLE_DEVICES",
    "ROCR_VISIBLE_DEVICES",
)
_NVIDIA = Path("/proc/driver/nvidia/gpus")


def _devices() -> list[str]:
    """What the NVIDIA driver lists (bus id and its information), so a device added or removed names a new key."""
    try:
        return sorted(f"{p.name}:{(p / 'information').read_text(errors='replace')}" for p in _NVIDIA.iterdir())
    except OSError:
        return []


def _key() -> str:
    cores = usable_cores()
    parts: dict[str, Any] = {
        "torch": library_version("torch"),
        "host": platform.node(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "usable_cores": cores,
        "environment": {name: os.environ.get(name) for name in _ENVIRONMENT},
        "devices": _devices(),
    }
    return memo_key(KIND, parts)


def _ask_torch() -> tuple[int, list[str]]:
    import torch

    gpus = (
        [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    )
    return torch.get_num_threads(), gpus


def torch_facts(cache_root: Path | None = None) -> tuple[int, list[str]]:
    """``(torch.get_num_threads(), [GPU names])``: from torch when it is loaded or nothing is remembered."""
    root = memo_root(cache_root)
    key = _key()
    if "torch" not in sys.modules:
        found, value = read_memo(root, KIND, key)
        if found and isinstance(value, list) and len(value) == 2 and isinstance(value[0], int):
            return value[0], list(value[1])
    threads, gpus = _ask_torch()
    write_memo(root, KIND, key, [threads, gpus])
    return threads, gpus
