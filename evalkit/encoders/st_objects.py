"""sentence-transformers objects in memory: a ``SentenceTransformer`` through evalkit's own token-level path when
its modules are ones evalkit reproduces exactly, else through its own ``encode``; a ``CrossEncoder`` as a pair
scorer. Split from :mod:`evalkit.encoders.objects` so that module never imports sentence-transformers or torch.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
import torch

from evalkit.encoders.cross_encoder import CrossEncoderReranker
from evalkit.encoders.hf import HFEncoder
from evalkit.encoders.object_text import ObjectTextEncoder, as_float32_rows, object_fingerprint, parameters_sha256
from evalkit.encoders.pooling import POOLING_MODES
from evalkit.encoders.protocol import Role
from evalkit.errors import EvalkitError
from evalkit.registry.models import ModelSpec
from evalkit.registry.st_folder import SIMILARITIES

SUPPORTED_SIMILARITIES = (*SIMILARITIES, None)
"""The functions evalkit scores with exactly as mteb does (``evalkit.search.similarity``); ``None`` is cosine."""

_PRECISION_OF = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}


def sentence_transformer_encoder(st: Any, *, revision: str | None = None, name: str | None = None) -> Any:
    """The evalkit model for a ``SentenceTransformer``: token-level when reproducible, else its own ``encode``."""
    name = name or _st_name(st)
    normalizes = _module_names(st)[2:] == ["Normalize"]
    _check_similarity(st, name, normalizes=normalizes)
    prompts = {key: text for key, text in (getattr(st, "prompts", None) or {}).items() if text}
    default_name = getattr(st, "default_prompt_name", None)
    default_prompt = prompts.get(default_name, "") if default_name else ""
    if reproducible(st):
        return InMemoryTransformerEncoder(
            st, name=name, revision=revision, prompts=prompts, default_prompt=default_prompt
        )

    if prompts and any(getattr(module, "include_prompt", True) is False for module in st):
        raise EvalkitError(  # evalkit prepends a prompt to the text; this model pools without it: not the same
            f"{name}: its Pooling leaves the prompt out (include_prompt: false), which evalkit cannot reproduce "
            "through the model's own encode",
            field="include_prompt",
        )

    def encode(texts: list[str], role: Role) -> Any:  # the prompt is in the text already (see prepare)
        return st.encode(texts, prompt="", convert_to_numpy=True, show_progress_bar=False)

    fingerprint = object_fingerprint(st, revision)
    if fingerprint is not None:
        max_length = getattr(st, "max_seq_length", None)
        fingerprint = {**fingerprint, "modules": _module_names(st), "max_seq_length": max_length}
    encoder = ObjectTextEncoder(name, encode, fingerprint, default_prompt=default_prompt)
    similarity = _similarity_of(st)
    encoder.spec = ModelSpec(name=name, adapter="object", prompts=prompts, similarity=similarity, source="object")
    return encoder


def reproducible(st: Any) -> bool:
    """Whether evalkit's token path gives this model's vectors: Transformer + Pooling (a reproduced mode, prompts
    pooled) [+ Normalize], no lower-casing of its own, weights in one torch module with a tokenizer."""
    names = _module_names(st)
    if names[:2] != ["Transformer", "Pooling"] or names[2:] not in ([], ["Normalize"]):
        return False
    transformer, pooling = st[0], st[1]
    mode = getattr(pooling, "pooling_mode", None)
    return (
        isinstance(mode, str)
        and mode in POOLING_MODES
        and getattr(pooling, "include_prompt", True)
        and not getattr(transformer, "do_lower_case", False)
        and isinstance(getattr(transformer, "auto_model", None), torch.nn.Module)
        and getattr(st, "tokenizer", None) is not None
    )


class InMemoryTransformerEncoder(HFEncoder):
    """:class:`HFEncoder` over a module and tokenizer already in memory (a training loop's model): the same
    tokenization, forward pass and pooling, so its vectors equal the registry model's for the same weights.

    The fingerprint hashes the parameters when wrapped; the module is run in eval mode and its own mode restored.
    """

    def __init__(
        self, st: Any, *, name: str, revision: str | None, prompts: dict[str, str], default_prompt: str
    ) -> None:
        module = st[0].auto_model
        parameter = next(module.parameters())
        self.spec = ModelSpec(
            name=name,
            adapter="hf",
            revision=revision,
            pooling=st[1].pooling_mode,
            normalize=_module_names(st)[2:] == ["Normalize"],
            max_length=int(st.max_seq_length),
            prompts=prompts,
            similarity=_similarity_of(st),
            padding_side=getattr(st.tokenizer, "padding_side", None) or "right",  # a decoder pads on the left
            source="object",
        )
        self.name = name
        self.precision = _PRECISION_OF.get(parameter.dtype, str(parameter.dtype))
        self.device = parameter.device
        self.tokenizer = st.tokenizer
        self._autocast = False
        self._uses_token_types = "token_type_ids" in self.tokenizer.model_input_names
        self._pad_id = self.tokenizer.pad_token_id or 0
        self.runtime = "torch"
        self._artifact_dir = None
        self._default_prompt = default_prompt
        self.__dict__["model"] = module  # the cached property, filled: nothing is loaded from disk
        self._weights = {"revision": revision} if revision else {"weights_sha256": parameters_sha256(module)}
        self._tokenizer_sha256 = _tokenizer_digest(self.tokenizer)

    def prepare(self, texts: list[str], prompt: str) -> list[str]:
        return super().prepare(texts, prompt or self._default_prompt)

    def embed_batch(self, token_ids: list[list[int]]) -> np.ndarray:
        training = self.model.training
        self.model.eval()
        try:
            return super().embed_batch(token_ids)
        finally:
            self.model.train(training)

    def fingerprint(self) -> dict[str, object]:
        return {
            "model": self.name,
            "object": "sentence_transformers.SentenceTransformer",
            **self._weights,  # the caller's revision, or a hash of the parameters (as every object model keys them)
            "tokenizer_sha256": self._tokenizer_sha256,
            "default_prompt": self._default_prompt,
            "precision": self.precision,
            "runtime": self.runtime,
            **self.spec.settings(),
        }


class InMemoryCrossEncoder(CrossEncoderReranker):
    """A ``sentence_transformers.CrossEncoder`` as a pair scorer: its classifier and tokenizer, its activation
    (sigmoid for one label, as ``predict`` applies it), evalkit's pair tokenization (the document truncated)."""

    def __init__(self, ce: Any, *, name: str, revision: str | None) -> None:
        module = ce.model
        parameter = next(module.parameters())
        max_length = getattr(ce, "max_seq_length", None) or module.config.max_position_embeddings
        self.spec = ModelSpec(name=name, adapter="cross-encoder", max_length=int(max_length), source="object")
        self.name = name
        self.device = parameter.device
        self.precision = _PRECISION_OF.get(parameter.dtype, str(parameter.dtype))
        self._set_tokenizer(ce.tokenizer)
        self.__dict__["model"] = module
        self._activation = getattr(ce, "activation_fn", None)
        self.__dict__["_weights_sha256"] = revision or parameters_sha256(module)

    def score_batch(self, token_ids: list[list[int]]) -> np.ndarray:
        training = self.model.training
        self.model.eval()
        try:
            logits = self.logits(token_ids)
            scores = self._activation(logits) if self._activation is not None else logits
            return as_float32_rows(scores[:, -1])
        finally:
            self.model.train(training)

    def fingerprint(self) -> dict[str, object]:
        return {**super().fingerprint(), "activation": type(self._activation).__name__}


def in_memory_cross_encoder(ce: Any, *, revision: str | None = None, name: str | None = None) -> InMemoryCrossEncoder:
    return InMemoryCrossEncoder(ce, name=name or _st_name(ce), revision=revision)


def _check_similarity(st: Any, name: str, *, normalizes: bool) -> None:
    similarity = getattr(st, "similarity_fn_name", None)
    if similarity in SUPPORTED_SIMILARITIES:
        return
    raise EvalkitError(
        f"model '{name}' scores by {similarity} similarity, which evalkit does not compute (known: "
        f"{', '.join(SIMILARITIES)})",
        field="similarity_fn_name",
    )


def _similarity_of(st: Any) -> str:
    """The model's own similarity function, as mteb scores it (sentence-transformers' default is cosine)."""
    return getattr(st, "similarity_fn_name", None) or "cosine"


def _module_names(st: Any) -> list[str]:
    return [type(module).__name__ for module in st]


def _tokenizer_digest(tokenizer: Any) -> str:
    """The tokenizer's vocabulary, normaliser and pre-tokeniser, less its truncation and padding state (which each
    call sets anew, so it would change the key between two calls with the same model)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        state = {k: v for k, v in json.loads(backend.to_str()).items() if k not in ("truncation", "padding")}
        text = json.dumps(state, sort_keys=True)
    else:
        text = repr(sorted(tokenizer.get_vocab().items()))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _st_name(model: Any) -> str:
    card = getattr(getattr(model, "model_card_data", None), "base_model", None)
    path = getattr(getattr(model, "tokenizer", None), "name_or_path", None)
    from evalkit.encoders.object_text import model_name

    return model_name(str(card or path)) if card or path else f"object/{type(model).__name__}"
