"""Pooling and L2 normalisation, written once for every adapter (transformers, ONNX graphs, BGE-M3, objects).

Token states become one vector per text exactly as sentence-transformers' ``Pooling`` and ``Normalize`` modules
compute them, for the modes reproduced to the bit: ``cls`` (the first token; the core pads on the right), ``mean``
(over the attention mask), ``max`` and ``mean_sqrt_len_tokens``. Other sentence-transformers modes (``lasttoken``,
``weightedmean``) are not reproduced here; a model using them is run through its own ``encode`` instead
(:mod:`evalkit.encoders.objects`).

Torch tensors and numpy arrays (an ONNX graph's outputs) each keep the arithmetic they always had, so vectors are
unchanged bit for bit: the same formula, in the array library the states come in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

POOLING_MODES = ("cls", "mean", "max", "mean_sqrt_len_tokens")
"""The pooling modes reproduced exactly (sentence-transformers' names)."""

NUMPY_POOLING_MODES = ("cls", "mean")


def pool(hidden: Any, attention_mask: Any, mode: str, *, normalize: bool) -> Any:
    """One vector per text from ``hidden`` ``(batch, tokens, dim)`` float32 and its ``(batch, tokens)`` mask.

    Takes and returns torch tensors, or numpy arrays (``cls`` and ``mean`` only). ``normalize`` divides each
    vector by its L2 norm (at least 1e-12), as ``torch.nn.functional.normalize`` does.
    """
    if isinstance(hidden, np.ndarray):
        return _pool_numpy(hidden, attention_mask, mode, normalize=normalize)
    return _pool_torch(hidden, attention_mask, mode, normalize=normalize)


def _pool_torch(hidden: torch.Tensor, attention_mask: torch.Tensor, mode: str, *, normalize: bool) -> torch.Tensor:
    import torch

    if mode == "cls":
        pooled = hidden[:, 0]
    elif mode == "max":
        mask = attention_mask.unsqueeze(-1).expand_as(hidden).to(hidden.dtype)
        pooled = hidden.masked_fill(mask == 0, float("-inf")).max(dim=1).values
    elif mode in ("mean", "mean_sqrt_len_tokens"):
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        total = (hidden * mask).sum(dim=1)
        count = mask.sum(dim=1).clamp(min=1e-9)
        pooled = total / count if mode == "mean" else total / torch.sqrt(count)
    else:
        raise ValueError(f"pooling '{mode}' is not reproduced (known: {', '.join(POOLING_MODES)})")
    if normalize:
        pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
    return pooled


def _pool_numpy(hidden: np.ndarray, attention_mask: np.ndarray, mode: str, *, normalize: bool) -> np.ndarray:
    if mode == "cls":
        pooled = hidden[:, 0]
    elif mode == "mean":
        mask = attention_mask[:, :, None].astype(np.float32)
        pooled = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
    else:
        known = ", ".join(NUMPY_POOLING_MODES)
        raise ValueError(f"pooling '{mode}' of numpy states is not reproduced (known: {known})")
    if normalize:
        pooled = normalized_rows(pooled)
    return pooled


def normalized_rows(vectors: np.ndarray) -> np.ndarray:
    """Each row divided by its L2 norm (at least 1e-12): a graph that pools inside still gets normalised here."""
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


__all__ = ["NUMPY_POOLING_MODES", "POOLING_MODES", "normalized_rows", "pool"]
