"""A cross-encoder reranker (bge-reranker style) seen by the embedding core as an encoder of (query, document) pairs.

A pair travels through the core as one string, ``query + PAIR_SEPARATOR + document``, so the core's dedup,
length-sorted token-budget batching, out-of-memory backoff and content-addressed cache apply to reranking exactly
as to embedding: a rerun scores nothing twice. The "vector" of a pair is its relevance score, shape ``(1,)``: the
classification logit (one label, as bge-reranker and ms-marco cross-encoders have), or the logit of the last label
for two-label models.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from evalkit.encoders.hf import (
    PRECISIONS,
    load_tokenizer_and_config,
    load_weights,
    padded_batch,
    require_safetensors,
    weights_fingerprint,
)
from evalkit.errors import EvalkitError, UnknownModelError
from evalkit.registry.models import ModelSpec

PAIR_SEPARATOR = "\x1f"  # ASCII unit separator: never in natural text


def pair_texts(queries: list[str], documents: list[str]) -> list[str]:
    return [f"{query}{PAIR_SEPARATOR}{document}" for query, document in zip(queries, documents, strict=True)]


class CrossEncoderReranker:
    """``AutoModelForSequenceClassification`` over (query, document) pairs, truncating the document first."""

    def __init__(self, spec: ModelSpec, *, device: str = "cpu", precision: str = "fp32") -> None:
        if spec.local_path is None:
            raise UnknownModelError(f"reranker '{spec.name}' has no local weights")
        if precision not in PRECISIONS:
            raise EvalkitError(f"unknown precision '{precision}'", field="precision")
        self.spec = spec
        self.name = spec.name
        self.precision = precision
        self.device = torch.device(device)
        require_safetensors(spec.local_path)
        self.tokenizer, self._config = load_tokenizer_and_config(spec.local_path)
        self._uses_token_types = "token_type_ids" in self.tokenizer.model_input_names
        self._pad_id = self.tokenizer.pad_token_id or 0
        self._sep_id = self.tokenizer.sep_token_id

    @cached_property
    def model(self) -> torch.nn.Module:
        from transformers import AutoModelForSequenceClassification

        assert self.spec.local_path is not None
        model = load_weights(AutoModelForSequenceClassification, self.spec.local_path, self._config)
        model.eval().to(self.device)
        if self.precision != "fp32":
            model.to(torch.bfloat16 if self.precision == "bf16" else torch.float16)
        return model

    def prepare(self, texts: list[str], prompt: str) -> list[str]:
        return list(texts)  # an instruction, if any, is part of the query half already

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        queries, documents = zip(*(text.split(PAIR_SEPARATOR, 1) for text in texts), strict=True) if texts else ((), ())
        encoded = self.tokenizer(
            list(queries),
            list(documents),
            truncation="only_second",
            max_length=self.spec.max_length,
            padding=False,
            return_attention_mask=False,
            return_token_type_ids=False,
        )
        return encoded["input_ids"]

    def _token_types(self, input_ids: torch.Tensor) -> torch.Tensor:
        """BERT-style segment ids: 0 up to and including the first [SEP], 1 after it."""
        is_sep = (input_ids == self._sep_id).long()
        return ((torch.cumsum(is_sep, dim=1) - is_sep) > 0).long()

    @torch.inference_mode()
    def embed_batch(self, token_ids: list[list[int]]) -> np.ndarray:
        input_ids, attention_mask = padded_batch(token_ids, self._pad_id)
        inputs = {"input_ids": input_ids.to(self.device), "attention_mask": attention_mask.to(self.device)}
        if self._uses_token_types:
            inputs["token_type_ids"] = self._token_types(input_ids).to(self.device) * attention_mask.to(self.device)
        logits = self.model(**inputs).logits.float()
        return logits[:, -1:].cpu().numpy().astype(np.float32)

    @cached_property
    def _weights_sha256(self) -> str:
        assert self.spec.local_path is not None
        return weights_fingerprint(Path(self.spec.local_path))

    def fingerprint(self) -> dict[str, object]:
        return {
            "model": self.name,
            "kind": "cross-encoder",
            "revision": self.spec.revision,
            "weights_sha256": self._weights_sha256,
            "precision": self.precision,
            "max_length": self.spec.max_length,
        }
