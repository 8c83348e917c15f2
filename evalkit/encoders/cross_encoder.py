"""A cross-encoder reranker (bge-reranker style): a pair scorer the embedding core drives over (query, document)
pairs (``capabilities.level == "pairs"``).

The core dedups the pairs, batches them by a budget of padded tokens (length-sorted), backs off on out-of-memory
and caches each pair's score under a key of both texts (:mod:`evalkit.core.pairs`), so reranking gets what
embedding gets: a rerun scores nothing twice. A pair's score is the classification logit (one label, as
bge-reranker and ms-marco cross-encoders have), or the logit of the last label for two-label models.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

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
from evalkit.encoders.protocol import PAIR_SCORES, Capabilities
from evalkit.errors import EvalkitError, UnknownModelError
from evalkit.registry.models import ModelSpec

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def check_precision(precision: str, device: torch.device) -> None:
    """The precisions a pair scorer runs in: fp32, bf16 (weights cast), fp16 on a GPU only."""
    if precision not in PRECISIONS:
        raise EvalkitError(f"unknown precision '{precision}' (known: {', '.join(PRECISIONS)})", field="precision")
    if device.type == "cpu" and precision == "fp16":
        raise EvalkitError("fp16 needs a GPU; on a CPU use --precision bf16", field="precision")


class CrossEncoderReranker:
    """``AutoModelForSequenceClassification`` over (query, document) pairs, truncating the document first."""

    capabilities: Capabilities = PAIR_SCORES

    def __init__(self, spec: ModelSpec, *, device: str = "cpu", precision: str = "fp32") -> None:
        if spec.local_path is None:
            raise UnknownModelError(f"reranker '{spec.name}' has no local weights")
        self.spec = spec
        self.name = spec.name
        self.precision = precision
        self.device = torch.device(device)
        check_precision(precision, self.device)
        require_safetensors(spec.local_path)
        tokenizer, self._config = load_tokenizer_and_config(spec.local_path)
        self._set_tokenizer(tokenizer)

    @classmethod
    def from_spec(cls, spec: ModelSpec, encoding: Any, *, artifact_dir: Path | None = None) -> CrossEncoderReranker:
        """Built with the run's device and precision (torch always: ``--runtime`` picks the dense model's pass)."""
        return cls(spec, device=encoding.device, precision=encoding.precision)

    def _set_tokenizer(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self._uses_token_types = "token_type_ids" in tokenizer.model_input_names
        self._pad_id = tokenizer.pad_token_id or 0
        self._sep_id = tokenizer.sep_token_id

    @cached_property
    def model(self) -> torch.nn.Module:
        from transformers import AutoModelForSequenceClassification

        assert self.spec.local_path is not None
        model = load_weights(AutoModelForSequenceClassification, self.spec.local_path, self._config)
        model.eval().to(self.device)
        if self.precision != "fp32":
            model.to(_DTYPES[self.precision])
        return model

    def tokenize_pairs(self, pairs: list[tuple[str, str]]) -> list[list[int]]:
        """Token ids of ``[CLS] query [SEP] document [SEP]``, the document truncated first to the max length."""
        if not pairs:
            return []
        encoded = self.tokenizer(
            [query for query, _ in pairs],
            [document for _, document in pairs],
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
    def logits(self, token_ids: list[list[int]]) -> torch.Tensor:
        """The classifier's logits (float32) for a batch of tokenized pairs."""
        input_ids, attention_mask = padded_batch(token_ids, self._pad_id)
        inputs = {"input_ids": input_ids.to(self.device), "attention_mask": attention_mask.to(self.device)}
        if self._uses_token_types:
            inputs["token_type_ids"] = self._token_types(input_ids).to(self.device) * attention_mask.to(self.device)
        return self.model(**inputs).logits.float()

    def score_batch(self, token_ids: list[list[int]]) -> np.ndarray:
        return self.logits(token_ids)[:, -1].cpu().numpy().astype(np.float32)

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
