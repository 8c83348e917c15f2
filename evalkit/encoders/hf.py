"""Hugging Face transformers adapter: tokenizer + AutoModel, then what a sentence-transformers folder computes after
the transformer (every pooling mode, Dense modules, Normalize, truncation: :mod:`evalkit.encoders.st_modules`).

Loading never runs remote code and reads safetensors only: pickled weights (``.bin``, ``.pt``) can run code when
unpickled and are refused with one line (BGE-M3's small head files are the one exception, see ``bge_m3.py``).
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch

from evalkit.encoders.protocol import TOKEN_DENSE, Capabilities
from evalkit.encoders.st_modules import (
    SentenceHead,
    mark_prompt,
    marked_token_ids,
    prompt_token_count,
    split_prompt_lengths,
)
from evalkit.errors import EvalkitError, UnknownModelError
from evalkit.loaders.weights_files import WEIGHT_PICKLE_SUFFIXES, weights_fingerprint
from evalkit.registry.models import ModelSpec
from evalkit.registry.st_folder import needs_remote_code

PICKLED_SUFFIXES = WEIGHT_PICKLE_SUFFIXES


def require_safetensors(folder: Path) -> None:
    """Refuse, before any work, a folder whose only weights are pickled (unpickling can run code)."""
    if any(folder.glob("*.safetensors")):
        return
    pickled = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in PICKLED_SUFFIXES)
    pickled = [p for p in pickled if p.name not in ("sparse_linear.pt", "colbert_linear.pt", "training_args.bin")]
    if pickled:
        raise UnknownModelError(
            "pickled weights are not loaded; convert to safetensors (e.g. `model.save_pretrained(folder, "
            "safe_serialization=True)`)",
            file=pickled[0],
        )


def padded_batch(token_ids: list[list[int]], pad_id: int, side: str = "right") -> tuple[torch.Tensor, torch.Tensor]:
    """Input ids padded to the batch's longest text, and the attention mask: what every transformers adapter feeds.

    ``side`` is where the padding goes: ``right`` (after the text), or ``left`` (before it), as a decoder
    embedder's tokenizer pads so that every text ends at the last position.
    """
    if side not in ("right", "left"):
        raise ValueError(f"padding side must be right or left, got {side!r}")
    longest = max(len(ids) for ids in token_ids)
    input_ids = torch.full((len(token_ids), longest), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(token_ids), longest), dtype=torch.long)
    for row, ids in enumerate(token_ids):
        span = slice(0, len(ids)) if side == "right" else slice(longest - len(ids), longest)
        input_ids[row, span] = torch.tensor(ids, dtype=torch.long)
        attention_mask[row, span] = 1
    return input_ids, attention_mask


def load_weights(model_class: type, folder: Path, config: object, **options: object) -> torch.nn.Module:
    """``model_class.from_pretrained`` as evalkit loads every model: never remote code, safetensors only, and a
    load failure as one line naming the folder."""
    try:
        return model_class.from_pretrained(  # type: ignore[attr-defined]
            folder,
            config=config,
            trust_remote_code=False,
            use_safetensors=True,
            **options,
        )
    except (OSError, ValueError) as err:
        raise UnknownModelError(f"cannot load model from {folder}: {str(err).splitlines()[0]}") from None


def load_tokenizer_and_config(folder: Path, **tokenizer_kwargs: Any) -> tuple[object, object]:
    """The folder's tokenizer and model config, or one line naming the folder: a malformed file in a model folder
    is bad input (transformers raises many kinds of error for one), not a bug of evalkit.

    ``tokenizer_kwargs`` are passed on as sentence-transformers passes its ``tokenizer_kwargs`` (mteb's loaders set
    e.g. ``add_eos_token`` for decoder embedders that pool the appended end-of-sequence token)."""
    from transformers import AutoConfig, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=False, **tokenizer_kwargs)
        config = AutoConfig.from_pretrained(folder, trust_remote_code=False)
    except Exception as err:  # JSON, protobuf, sentencepiece and KeyError all mean "bad folder"
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise UnknownModelError(f"cannot load model from {folder}: {reason[:200]}", file=folder) from None
    return tokenizer, config


PRECISIONS = ("fp32", "bf16", "fp16")
RUNTIMES = ("auto", "torch", "onnx")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class HFEncoder:
    """A transformers encoder with sentence-transformers-style pooling.

    ``precision``: fp32 (the faithful default), or bf16/fp16. On a GPU the reduced precision comes from autocast
    (weights stay fp32, matrix products run in half precision); on a CPU the weights are cast to bf16, which
    oneDNN runs on AMX where the processor has it. Pooling and normalisation are always computed in fp32.

    ``runtime``: ``torch``, ``onnx`` (ONNX Runtime; fp32 on a CPU only) or ``auto``, which takes ONNX Runtime for
    fp32 on a CPU when it is installed (the fastest faithful path measured, ``reports/bench/fp32_paths.md``) and
    torch otherwise. The exported graph is kept under ``artifact_dir`` (the embedding cache folder by default).
    """

    capabilities: Capabilities = TOKEN_DENSE

    def __init__(
        self,
        spec: ModelSpec,
        *,
        device: str = "cpu",
        precision: str = "fp32",
        runtime: str = "auto",
        artifact_dir: Path | None = None,
    ) -> None:
        if spec.local_path is None:
            raise UnknownModelError(f"model '{spec.name}' has no local weights")
        if precision not in PRECISIONS:
            raise EvalkitError(f"unknown precision '{precision}' (known: {', '.join(PRECISIONS)})", field="precision")
        self.spec = spec
        self.name = spec.name
        self.precision = precision
        self.device = torch.device(device)
        if self.device.type == "cpu" and precision == "fp16":
            raise EvalkitError("fp16 needs a GPU; on a CPU use --precision bf16", field="precision")
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # the core shows one progress bar for the work that counts
        folder = spec.local_path
        require_safetensors(folder)
        self.tokenizer, self._config = load_tokenizer_and_config(folder, **spec.tokenizer_kwargs)
        if needs_remote_code(getattr(self._config, "auto_map", None)):
            raise UnknownModelError(
                "the model needs its own code (trust_remote_code), which evalkit never runs",
                file=folder / "config.json",
                field="auto_map",
            )
        self._autocast = self.device.type == "cuda" and precision != "fp32"
        self._uses_token_types = "token_type_ids" in self.tokenizer.model_input_names
        self._pad_id = self.tokenizer.pad_token_id or 0
        self.runtime = self._resolve_runtime(runtime)
        self._artifact_dir = artifact_dir
        _ = self._sentence_head  # its Dense weights checked (and read: they are small) before any work

    @classmethod
    def from_spec(cls, spec: ModelSpec, encoding: Any, *, artifact_dir: Path | None = None) -> HFEncoder:
        """Built with every encoding option (see :func:`evalkit.encoders.adapters.build_encoder`)."""
        device, precision, runtime = encoding.device, encoding.precision, encoding.runtime
        return cls(spec, device=device, precision=precision, runtime=runtime, artifact_dir=artifact_dir)

    def _resolve_runtime(self, runtime: str) -> str:
        from evalkit.encoders.onnx_runtime import onnxruntime_available

        if runtime not in RUNTIMES:
            raise EvalkitError(f"unknown runtime '{runtime}' (known: {', '.join(RUNTIMES)})", field="runtime")
        onnx_fits = self.device.type == "cpu" and self.precision == "fp32"
        if runtime == "auto":  # the export is checked on right-padded batches only: left padding stays in torch
            right_padded = self.spec.padding_side == "right"
            return "onnx" if onnx_fits and right_padded and onnxruntime_available() else "torch"
        if runtime == "onnx" and self.spec.padding_side != "right":
            raise EvalkitError(
                "--runtime onnx is checked on right-padded batches only; this model pads on the left: use "
                "--runtime torch",
                field="runtime",
            )
        if runtime == "onnx" and not onnx_fits:
            raise EvalkitError("--runtime onnx runs fp32 on a CPU only", field="runtime")
        if runtime == "onnx" and not onnxruntime_available():
            raise EvalkitError(
                "--runtime onnx needs the onnxruntime package (pip install onnxruntime)", field="runtime"
            )
        return runtime

    @cached_property
    def model(self) -> torch.nn.Module:
        """The weights, loaded on first use: a run whose vectors are all cached never loads them."""
        from transformers import AutoModel

        assert self.spec.local_path is not None
        model = load_weights(AutoModel, self.spec.local_path, self._config)
        model.eval().to(self.device)
        if self.device.type == "cpu" and self.precision == "bf16":
            model.to(torch.bfloat16)
        return model

    @cached_property
    def _onnx_forward(self):
        """The exported graph, read back when its recorded checksum holds; exported and checked against torch
        otherwise (first use, or a graph damaged or changed since its export)."""
        from transformers import AutoModel

        from evalkit.cache.store import default_cache_dir
        from evalkit.encoders.onnx_runtime import export_checked, open_verified

        root = self._artifact_dir if self._artifact_dir is not None else default_cache_dir()
        kind = "bert-tt" if self._uses_token_types else "plain"
        assert self.spec.local_path is not None
        transformer_sha256 = weights_fingerprint(self.spec.local_path, modules=False)  # the graph is its forward
        path = root / "onnx" / f"{transformer_sha256[:32]}-{kind}-opset17.onnx"
        threads = torch.get_num_threads()
        forward = open_verified(path, self._uses_token_types, threads)
        if forward is None:
            assert self.spec.local_path is not None
            eager = load_weights(AutoModel, self.spec.local_path, self._config, attn_implementation="eager")
            export_checked(eager.eval(), self._uses_token_types, path)
            forward = open_verified(path, self._uses_token_types, threads)
        if forward is None:
            raise EvalkitError(
                "the ONNX graph just exported does not match its checksum; use --runtime torch", file=path
            )
        return forward

    @cached_property
    def _sentence_head(self) -> SentenceHead:
        """Pooling, Dense modules, Normalize and truncation (built with the encoder: Dense weights are small)."""
        return SentenceHead(self.spec, self.device)

    def prepare(self, texts: list[str], prompt: str) -> list[str]:
        """The prompt (the model's default prompt when none was resolved) before each text; for a model that pools
        without its prompt, the prompt's end is marked (see :mod:`evalkit.encoders.st_modules`)."""
        spec = self.spec
        if not prompt and spec.default_prompt_name:
            prompt = spec.prompts.get(spec.default_prompt_name, "")
        if not spec.include_prompt:
            return mark_prompt(texts, prompt)
        return [prompt + text for text in texts] if prompt else list(texts)

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        if self.spec.include_prompt:
            return self._token_ids(texts)
        return marked_token_ids(texts, self._token_ids, self._prompt_token_count)

    def _prompt_token_count(self, prompt: str) -> int:
        return prompt_token_count(self.tokenizer, prompt, self.spec.max_length)

    def _token_ids(self, texts: list[str]) -> list[list[int]]:
        encoded = self.tokenizer(
            texts,
            truncation=True,
            max_length=self.spec.max_length,
            padding=False,
            return_attention_mask=False,
            return_token_type_ids=False,
        )
        return encoded["input_ids"]

    @torch.inference_mode()
    def embed_batch(self, token_ids: list[list[int]]) -> np.ndarray:
        token_ids, prompt_lengths = split_prompt_lengths(token_ids)
        input_ids, attention_mask = padded_batch(token_ids, self._pad_id, self.spec.padding_side)
        inputs = {"input_ids": input_ids.to(self.device), "attention_mask": attention_mask.to(self.device)}
        if self._uses_token_types:
            inputs["token_type_ids"] = torch.zeros_like(inputs["input_ids"])
        if self.runtime == "onnx":
            hidden = self._onnx_forward(inputs["input_ids"], inputs["attention_mask"])
        else:
            with torch.autocast(self.device.type, dtype=_DTYPES.get(self.precision), enabled=self._autocast):
                hidden = self.model(**inputs).last_hidden_state.float()
        pooled = self._sentence_head(hidden, inputs["attention_mask"], prompt_lengths)
        return pooled.float().cpu().numpy()

    @cached_property
    def _weights_sha256(self) -> str:
        assert self.spec.local_path is not None
        return weights_fingerprint(self.spec.local_path)

    def fingerprint(self) -> dict[str, object]:
        return {
            "model": self.name,
            "revision": self.spec.revision,
            "weights_sha256": self._weights_sha256,
            "precision": self.precision,
            "runtime": self.runtime,
            **self.spec.settings(),
        }
