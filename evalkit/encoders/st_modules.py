"""What a sentence-transformers model computes after its transformer, and the prompt its pooling leaves out.

:class:`SentenceHead` turns a batch's token states into the model's vectors as sentence-transformers' modules do,
in their order: ``Pooling`` (every mode, see :mod:`evalkit.encoders.pooling`), each ``Dense`` (a linear layer
read from the module's safetensors weights, then its activation), ``Normalize``, then ``truncate_dim``.

A Pooling with ``include_prompt: false`` leaves the prompt's tokens out. sentence-transformers counts them as the
prompt tokenized alone, less a trailing special token (``Transformer._get_prompt_length``). The count has to reach
the forward pass with the text, through every path the core has (threads, replicas, Ray shards that keep token
ids only), so it travels in the two places those paths carry: the prepared text marks where its prompt ends
(:data:`PROMPT_END`, taken out before tokenizing), and the token ids start with one negative pseudo-token,
``-(count + 1)``, taken off before padding (:func:`split_prompt_lengths`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from evalkit.encoders.pooling import check_pooling, pool
from evalkit.errors import EvalkitError, UnknownModelError
from evalkit.registry.models import ModelSpec
from evalkit.registry.st_folder import dense_config

PROMPT_END = "\x1e"
"""Ends the prompt in a prepared text of a model that pools without its prompt (ASCII record separator)."""


def mark_prompt(texts: list[str], prompt: str) -> list[str]:
    """``prompt`` + :data:`PROMPT_END` + text for each text: the prompt's end kept for :func:`marked_token_ids`.

    Texts are marked even without a prompt, so a text that holds the mark itself is never read as a prompt."""
    if PROMPT_END in prompt:
        raise EvalkitError("a prompt may not contain the ASCII record separator (U+001E)", field="prompt")
    return [prompt + PROMPT_END + text for text in texts]


def prompt_token_count(tokenizer: Any, prompt: str, max_length: int) -> int:
    """The prompt's tokens as sentence-transformers counts them: tokenized alone, less a trailing special token."""
    ids = tokenizer([prompt], truncation=True, max_length=max_length, padding=False)["input_ids"][0]
    special = set(getattr(tokenizer, "all_special_ids", ()) or ())
    return len(ids) - 1 if ids and ids[-1] in special else len(ids)


def marked_token_ids(
    texts: list[str], tokenize: Callable[[list[str]], list[list[int]]], count: Callable[[str], int]
) -> list[list[int]]:
    """Token ids of texts prepared by :func:`mark_prompt`: the prompt and text tokenized together (the mark taken
    out), led by the pseudo-token ``-(prompt tokens + 1)``; a text without a mark gets no pseudo-token."""
    split = [text.split(PROMPT_END, 1) if PROMPT_END in text else None for text in texts]
    token_ids = tokenize([text.replace(PROMPT_END, "", 1) for text in texts])
    counts: dict[str, int] = {}
    for row, parts in enumerate(split):
        if parts is not None:
            prompt = parts[0]
            if prompt not in counts:  # no prompt, nothing left out (sentence-transformers counts only a prompt)
                counts[prompt] = count(prompt) if prompt else 0
            token_ids[row] = [-(counts[prompt] + 1), *token_ids[row]]
    return token_ids


def split_prompt_lengths(token_ids: list[list[int]]) -> tuple[list[list[int]], torch.Tensor | None]:
    """The real token ids, and each row's prompt token count (``None`` when no row carries one)."""
    if not any(ids and ids[0] < 0 for ids in token_ids):
        return token_ids, None
    lengths = torch.tensor([-ids[0] - 1 if ids and ids[0] < 0 else 0 for ids in token_ids], dtype=torch.long)
    return [ids[1:] if ids and ids[0] < 0 else ids for ids in token_ids], lengths


class _Dense(torch.nn.Module):
    """sentence-transformers' ``Dense``: ``activation(linear(x))`` (+ ``x``, or a projection of it, when residual)."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(config["in_features"], config["out_features"], bias=config["bias"])
        self.activation = getattr(torch.nn, config["activation"])()
        self.use_residual = config["use_residual"]
        if self.use_residual and config["in_features"] != config["out_features"]:
            self.residual = torch.nn.Linear(config["in_features"], config["out_features"], bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.activation(self.linear(x))
        if self.use_residual:
            out = out + (self.residual(x) if hasattr(self, "residual") else x)
        return out


def load_dense(folder: Path) -> torch.nn.Module:
    """A Dense module from its folder: ``config.json`` checked field by field, weights from ``model.safetensors``
    only (a pickled ``pytorch_model.bin`` can run code when read, and is refused), every tensor present and of
    the size the config says."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    module = _Dense(dense_config(folder / "config.json"))
    weights = folder / "model.safetensors"
    if not weights.is_file():
        pickled = folder / "pytorch_model.bin"
        reason = "pickled weights are not loaded; convert to safetensors" if pickled.is_file() else "no weights"
        raise UnknownModelError(f"Dense module: {reason}", file=pickled if pickled.is_file() else weights)
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError) as err:
        raise UnknownModelError(f"cannot read the Dense weights: {str(err)[:160]}", file=weights) from None
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as err:
        reason = " ".join(str(err).split())[:200]
        raise UnknownModelError(f"the Dense weights do not fit its config.json: {reason}", file=weights) from None
    return module.eval()


class SentenceHead:
    """Pooling, Dense modules, Normalize and truncation of one model, computed in fp32 on its device."""

    def __init__(self, spec: ModelSpec, device: torch.device) -> None:
        try:
            check_pooling(spec.pooling)
        except ValueError as err:
            raise EvalkitError(f"model '{spec.name}': {err}", field="pooling") from None
        self.spec = spec
        folder = spec.local_path
        if spec.dense_modules and folder is None:
            raise UnknownModelError(f"model '{spec.name}' names Dense modules but has no folder", field="dense_modules")
        self.dense = [load_dense(folder / name).to(device) for name in spec.dense_modules] if folder else []

    @torch.inference_mode()
    def __call__(
        self, hidden: torch.Tensor, attention_mask: torch.Tensor, prompt_lengths: torch.Tensor | None = None
    ) -> torch.Tensor:
        spec = self.spec
        if prompt_lengths is not None and spec.include_prompt:
            prompt_lengths = None  # only a Pooling with include_prompt false leaves the prompt out
        normalize_in_pool = spec.normalize and not self.dense
        vectors = pool(hidden, attention_mask, spec.pooling, normalize=normalize_in_pool, prompt_lengths=prompt_lengths)
        for dense in self.dense:
            vectors = dense(vectors)
        if self.dense and spec.normalize:
            vectors = torch.nn.functional.normalize(vectors, p=2, dim=-1)
        if spec.truncate_dim is not None:
            vectors = vectors[:, : spec.truncate_dim]
        return vectors


__all__ = [
    "PROMPT_END",
    "SentenceHead",
    "load_dense",
    "mark_prompt",
    "marked_token_ids",
    "prompt_token_count",
    "split_prompt_lengths",
]
