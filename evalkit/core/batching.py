"""Token-budget batches: a batch holds as many texts as fit in a budget of padded tokens.

A fixed batch count wastes either memory (long texts) or throughput (short ones); a budget of padded tokens keeps
the work per forward pass roughly constant. Inputs are sorted longest first, so padding inside a batch is small and
an out-of-memory error, if any, comes with the first batch.
"""

from __future__ import annotations

import numpy as np


def token_budget_batches(lengths: np.ndarray, token_budget: int, max_batch_size: int) -> list[np.ndarray]:
    """Index groups, longest texts first, each with ``len(group) × longest ≤ token_budget`` (at least one text)."""
    order = np.argsort(-lengths, kind="stable")
    batches = []
    start = 0
    while start < len(order):
        longest = max(int(lengths[order[start]]), 1)
        size = max(1, min(max_batch_size, token_budget // longest))
        batches.append(order[start : start + size])
        start += size
    return batches


def fixed_size_batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Length-sorted batches of a fixed count, as sentence-transformers makes them."""
    order = np.argsort(-lengths, kind="stable")
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


def is_out_of_memory(err: BaseException) -> bool:
    """CUDA's OutOfMemoryError, a host MemoryError, or torch's CPU allocator giving up: the errors a smaller batch
    can cure, so the core halves its batches on them and on nothing else."""
    if isinstance(err, MemoryError):
        return True
    message = str(err).lower()
    return "out of memory" in message or "can't allocate memory" in message or "cannot allocate memory" in message


def release_device_memory() -> None:
    """Hand cached GPU blocks back before a retry with smaller batches (a no-op without CUDA)."""
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:  # pragma: no cover - torch is a dependency; adapters without it still work
        pass
