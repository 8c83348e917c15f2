"""Pooling and L2 normalisation, written once for every adapter (transformers, ONNX graphs, BGE-M3, objects).

Token states become one vector per text exactly as sentence-transformers' ``Pooling`` and ``Normalize`` modules
compute them (``sentence_transformers/sentence_transformer/modules/pooling.py``), for every mode: ``cls`` (the
first token the mask keeps), ``mean``, ``max``, ``mean_sqrt_len_tokens``, ``weightedmean`` (token ``i`` weighs
``i + 1``, counted from the first real token) and ``lasttoken`` (the last token the mask keeps), on right- or
left-padded batches; several modes joined by ``+`` are concatenated in that order, as sentence-transformers does.
``prompt_lengths`` leaves each text's first tokens out of the pooling (``include_prompt: false``).

Torch tensors and numpy arrays (an ONNX graph's outputs) each keep the arithmetic they always had, so vectors are
unchanged bit for bit: the same formula, in the array library the states come in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from evalkit.registry.st_folder import POOLING_MODES as ST_POOLING_MODES

if TYPE_CHECKING:
    import torch

POOLING_MODES = ST_POOLING_MODES
"""The pooling modes reproduced exactly (sentence-transformers' names); a model may join several with ``+``."""

NUMPY_POOLING_MODES = ("cls", "mean")


def pool(hidden: Any, attention_mask: Any, mode: str, *, normalize: bool, prompt_lengths: Any | None = None) -> Any:
    """One vector per text from ``hidden`` ``(batch, tokens, dim)`` float32 and its ``(batch, tokens)`` mask.

    Takes and returns torch tensors, or numpy arrays (``cls`` and ``mean`` only). ``normalize`` divides each
    vector by its L2 norm (at least 1e-12), as ``torch.nn.functional.normalize`` does. ``prompt_lengths`` (torch,
    one count per text) leaves that many tokens after any left padding out of the pooling, as
    sentence-transformers' ``Pooling(include_prompt=False)`` does; the model still saw them.
    """
    if isinstance(hidden, np.ndarray):
        if prompt_lengths is not None:
            raise ValueError("pooling numpy states without the prompt is not reproduced")
        return _pool_numpy(hidden, attention_mask, mode, normalize=normalize)
    return _pool_torch(hidden, attention_mask, mode, normalize=normalize, prompt_lengths=prompt_lengths)


def check_pooling(mode: str) -> tuple[str, ...]:
    """The modes of ``mode`` (``"cls+mean"`` is two), or an error naming the known ones."""
    modes = tuple(mode.split("+"))
    unknown = [m for m in modes if m not in POOLING_MODES]
    if unknown or not modes:
        raise ValueError(f"pooling '{mode}' is not reproduced (known: {', '.join(POOLING_MODES)}, joined by +)")
    return modes


def without_prompt(attention_mask: torch.Tensor, prompt_lengths: torch.Tensor) -> torch.Tensor:
    """The mask with each row's prompt tokens (the first ``prompt_lengths[row]`` after its left padding) off."""
    import torch

    pad_lengths = attention_mask.to(torch.int32).argmax(dim=1)
    positions = torch.arange(attention_mask.size(1), device=attention_mask.device).unsqueeze(0)
    limit = (pad_lengths + prompt_lengths.to(pad_lengths.device)).unsqueeze(1)
    return attention_mask.masked_fill(positions < limit, 0)


def _pool_torch(
    hidden: torch.Tensor,
    attention_mask: torch.Tensor,
    mode: str,
    *,
    normalize: bool,
    prompt_lengths: torch.Tensor | None,
) -> torch.Tensor:
    import torch

    modes = check_pooling(mode)
    mask = attention_mask if prompt_lengths is None else without_prompt(attention_mask, prompt_lengths)
    parts = [_one_mode(hidden, mask, attention_mask, m) for m in modes]
    pooled = parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)
    if normalize:
        pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
    return pooled


def _one_mode(hidden: torch.Tensor, mask: torch.Tensor, original_mask: torch.Tensor, mode: str) -> torch.Tensor:
    """One mode over the pooling ``mask``; ``original_mask`` (prompt included) places left padding."""
    import torch

    if mode == "cls":
        if bool(mask[:, 0].all()):
            return hidden[:, 0]
        first = mask.to(torch.int).argmax(dim=1)
        return torch.gather(hidden, 1, first.view(-1, 1, 1).expand(-1, 1, hidden.shape[-1])).squeeze(1)
    if mode == "max":
        expanded = mask.unsqueeze(-1).expand_as(hidden).to(hidden.dtype)
        return hidden.masked_fill(expanded == 0, float("-inf")).max(dim=1).values
    if mode in ("mean", "mean_sqrt_len_tokens"):
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        total = (hidden * weights).sum(dim=1)
        count = weights.sum(dim=1).clamp(min=1e-9)
        return total / count if mode == "mean" else total / torch.sqrt(count)
    if mode == "weightedmean":
        positions = torch.arange(1, hidden.shape[1] + 1, device=hidden.device, dtype=hidden.dtype).view(1, -1, 1)
        positions = positions - original_mask.to(torch.int32).argmax(dim=1).view(-1, 1, 1)
        weights = mask.unsqueeze(-1).to(hidden.dtype) * positions
        return (hidden * weights).sum(dim=1) / torch.clamp(weights.sum(dim=1), min=1e-9)
    # lasttoken: the last position the mask keeps (the last one of all when it keeps none, then zeroed)
    seq_len = hidden.shape[1]
    values, from_end = mask.flip(1).max(1)
    from_end = torch.where(values == 0, seq_len - 1, from_end)
    index = (seq_len - from_end - 1).view(-1, 1, 1).expand(-1, 1, hidden.shape[-1])
    kept = hidden * mask.unsqueeze(-1).expand_as(hidden).to(hidden.dtype)
    return torch.gather(kept, 1, index).squeeze(1)


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


__all__ = ["NUMPY_POOLING_MODES", "POOLING_MODES", "check_pooling", "normalized_rows", "pool", "without_prompt"]
