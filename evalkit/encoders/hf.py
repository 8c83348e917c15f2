"""Hugging Face transformers adapter: tokenizer + AutoModel, then what a sentence-transformers folder computes after
the transformer (every pooling mode, Dense modules, Normalize, truncation: :mod:`evalkit.encoders.st_modules`).

Loading never runs remote code and reads safetensors only: pickled weights (``.bin``, ``.pt``) can run code when
unpickled and are refused with one line (BGE-M3's small head files are the one exception, see ``bge_m3.py``).
"""

from __future__ import annotations

from functools import cached_property, partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from evalkit.encoders.graph_runtime import GRAPH_RUNTIMES, auto_candidates, refuse_graph_runtime
from evalkit.encoders.prompts import prompted_texts
from evalkit.encoders.protocol import TOKEN_DENSE, Capabilities
from evalkit.encoders.runtime_probe import (
    BF16_VECTOR_TOLERANCE,
    PROBE_TEXTS,
    PROBE_TOKEN_BUDGET,
    VECTOR_TOLERANCE,
    RuntimeChoice,
    choose_runtime,
    host_key,
    probe_batches,
)
from evalkit.encoders.st_modules import (
    SentenceHead,
    mark_prompt,
    marked_token_ids,
    prompt_token_count,
    split_prompt_lengths,
)
from evalkit.errors import EvalkitError, UnknownModelError
from evalkit.loaders.weights_files import require_safetensors, weights_fingerprint
from evalkit.registry.models import ModelSpec
from evalkit.registry.st_folder import needs_remote_code


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
RUNTIMES = ("auto", "torch", "onnx", "openvino")  # the CLI offers evalkit.options.sections.RUNTIMES
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
SYNTHETIC = ((16, 256), (128, 32))  # (rows, tokens) of the probe's batches when no text was prepared yet


class HFEncoder:
    """A transformers encoder with sentence-transformers-style pooling.

    ``precision``: fp32 (the faithful default), or bf16/fp16. On a GPU the reduced precision comes from autocast
    (weights stay fp32, matrix products run in half precision); on a CPU the weights are cast to bf16, which
    oneDNN runs on AMX where the processor has it. Pooling and normalisation are always computed in fp32.

    ``runtime``: ``torch``, ``onnx`` (ONNX Runtime; fp32 on a CPU only), ``openvino`` (fp32, or bf16 on a CPU with
    bf16 units, checked against the fp32 graph first: :mod:`evalkit.encoders.graph_runtime`) or ``auto``: on a CPU,
    the fastest of those that fit the precision (fp32: torch, ONNX Runtime, OpenVINO; bf16: torch, OpenVINO),
    measured on the run's first texts when the runtime is first needed and remembered per host and weights
    (:mod:`evalkit.encoders.runtime_probe`); torch otherwise.
    ``runtime_choice`` says which ran and why. The exported graph and the probe's memo are kept under
    ``artifact_dir`` (:meth:`_artifact_root`), so a run writes nothing outside the folders it names.
    """

    capabilities: Capabilities = TOKEN_DENSE
    _candidates: tuple[str, ...] = ("torch",)  # what ``auto`` measures (set when it has more than torch)
    _bf16_check: dict[str, Any] | None = None  # OpenVINO bf16's check against the fp32 graph, set by its forward

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
        self._artifact_dir = artifact_dir
        self._probe_texts: list[str] = []
        self._choice: RuntimeChoice | None = None
        self._runtime = self._resolve_runtime(runtime)
        _ = self._sentence_head  # its Dense weights checked (and read: they are small) before any work

    @classmethod
    def from_spec(cls, spec: ModelSpec, encoding: Any, *, artifact_dir: Path | None = None) -> HFEncoder:
        """Built with every encoding option (see :func:`evalkit.encoders.adapters.build_encoder`)."""
        device, precision, runtime = encoding.device, encoding.precision, encoding.runtime
        return cls(spec, device=device, precision=precision, runtime=runtime, artifact_dir=artifact_dir)

    def _resolve_runtime(self, runtime: str) -> str:
        if runtime not in RUNTIMES:
            raise EvalkitError(f"unknown runtime '{runtime}' (known: {', '.join(RUNTIMES)})", field="runtime")
        if runtime == "auto":  # the export is checked on right-padded batches only: left padding stays in torch
            names, why_torch = auto_candidates(
                self.device.type, self.precision, self.spec.padding_side, self._openvino_fits
            )
            if len(names) > 1:
                self._candidates = names
                return "auto"  # measured when first needed (the run's first texts are the probe's shapes)
            self._choice = RuntimeChoice("torch", "only candidate", why_torch)
            return "torch"
        if runtime in GRAPH_RUNTIMES:
            refuse_graph_runtime(runtime, self.device.type, self.precision, self.spec.padding_side)
        if runtime == "openvino" and not self._openvino_fits:
            raise EvalkitError("--runtime openvino runs plain transformers encoders only", field="runtime")
        self._choice = RuntimeChoice(runtime, "requested")
        return runtime

    @property
    def _openvino_fits(self) -> bool:
        """OpenVINO runs the plain transformers forward; a subclass with forward passes of its own (BGE-M3's heads,
        SPLADE) runs ONNX Runtime or torch only."""
        return type(self) is HFEncoder

    @property
    def runtime(self) -> str:
        """The runtime that runs the forward pass (``auto`` is resolved here, on first use)."""
        if self._runtime == "auto":
            self._choice = self._probe_runtime()
            self._runtime = self._choice.runtime
        return self._runtime

    @runtime.setter
    def runtime(self, runtime: str) -> None:
        """A subclass that builds itself (a model object already in memory) names its runtime directly."""
        self._runtime = runtime
        self._choice = RuntimeChoice(runtime, "requested")

    @property
    def runtime_choice(self) -> dict[str, Any]:
        """Which runtime runs the model and why (requested, only candidate, probed with its figures, remembered),
        and, for OpenVINO bf16, its check against the fp32 graph: the run record's ``runtime_choice``."""
        runtime = self.runtime
        record = (self._choice or RuntimeChoice(runtime, "requested")).record()
        check = self._bf16_check
        return {**record, "bf16_check": check} if check and runtime == "openvino" else record

    def _probe_runtime(self) -> RuntimeChoice:
        candidates = {name: partial(self._embed_with, name) for name in self._candidates}
        setting = {"device": str(self.device), "precision": self.precision, "threads": str(torch.get_num_threads())}
        choice = choose_runtime(
            candidates,
            self._probe_sample,
            memo_root=self._artifact_root(),  # the run's cache folder, or its scratch folder: never elsewhere
            host=host_key(),
            weights_sha256=self._weights_sha256,
            setting=setting,
            tolerance=BF16_VECTOR_TOLERANCE if self.precision == "bf16" else VECTOR_TOLERANCE,
        )
        if choice.runtime != "torch":
            self.__dict__.pop("model", None)  # the probe's torch weights: not needed for the run
        return choice

    def _artifact_root(self) -> Path:
        """Where the ONNX export and the probe's memo go: the run's ``artifact_dir`` (its cache folder, or with the
        cache off a scratch folder removed at exit: the choice is not remembered past that run, and nothing is written
        outside what the run named), else, for an encoder built with none, evalkit's default cache folder."""
        if self._artifact_dir is not None:
            return self._artifact_dir
        from evalkit.cache.store import default_cache_dir

        return default_cache_dir()

    def _probe_sample(
        self, budget: int = PROBE_TOKEN_BUDGET, count: int = 2, synthetic: tuple[tuple[int, int], ...] = SYNTHETIC
    ) -> list[list[list[int]]]:
        """The probe's batches: the longest of the run's first texts as the core batches them, or, when nothing
        was prepared yet, batches of synthetic ids at a typical document and query length."""
        if self._probe_texts:
            return probe_batches(self.tokenize(self._probe_texts), budget=budget, count=count)
        words = ("evidence", "protein", "claim", "study", "cell", "results", "model", "patients", "levels", "data")
        return [  # through the tokenizer, so special tokens and the model's length limit hold (tiny models: 64)
            self.tokenize([" ".join(words[(row + i) % len(words)] for i in range(tokens)) for row in range(rows)])
            for rows, tokens in synthetic
        ]

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

        from evalkit.encoders.onnx_runtime import export_checked, open_verified

        root = self._artifact_root()
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
    def _openvino_forward(self):
        """The same exported graph, checked and verified as ONNX Runtime's, compiled by OpenVINO in the run's
        precision; in bf16 refused unless its vectors match the fp32 graph's on the run's longest first texts."""
        from evalkit.encoders.graph_runtime import GUARD_SYNTHETIC, GUARD_TOKEN_BUDGET, check_bf16
        from evalkit.encoders.onnx_runtime import OpenVinoForward

        fp32 = self._onnx_forward
        forward = OpenVinoForward(fp32.path, self._uses_token_types, torch.get_num_threads(), self.precision)
        if self.precision == "bf16":
            batches = self._probe_sample(GUARD_TOKEN_BUDGET, 1, GUARD_SYNTHETIC)
            vectors = np.concatenate([self._embed_through(forward, batch) for batch in batches])
            reference = np.concatenate([self._embed_through(fp32, batch) for batch in batches])
            self._bf16_check = {"min_cosine_vs_fp32_graph": round(check_bf16(vectors, reference, fp32.path), 6),
                                "texts": len(vectors)}  # fmt: skip
        return forward

    @cached_property
    def _sentence_head(self) -> SentenceHead:
        """Pooling, Dense modules, Normalize and truncation (built with the encoder: Dense weights are small)."""
        return SentenceHead(self.spec, self.device)

    def prepare(self, texts: list[str], prompt: str) -> list[str]:
        """The prompt (the model's default prompt when none was resolved) before each text; for a model that pools
        without its prompt, the prompt's end is marked (see :mod:`evalkit.encoders.st_modules`)."""
        spec = self.spec
        prepared = prompted_texts(spec, texts, prompt)
        if prepared is None:
            if not prompt and spec.default_prompt_name:
                prompt = spec.prompts.get(spec.default_prompt_name, "")
            prepared = mark_prompt(texts, prompt)
        checked = self._runtime == "auto" or (self._runtime == "openvino" and self.precision == "bf16")
        if checked and not self._probe_texts:  # the run's own shapes, to probe the runtime or check a bf16 graph
            self._probe_texts = prepared[:PROBE_TEXTS]
        return prepared

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

    def embed_batch(self, token_ids: list[list[int]]) -> np.ndarray:
        return self._embed_with(self.runtime, token_ids)

    def _embed_with(self, runtime: str, token_ids: list[list[int]]) -> np.ndarray:
        forward = None
        if runtime in GRAPH_RUNTIMES:
            forward = self._onnx_forward if runtime == "onnx" else self._openvino_forward
        return self._embed_through(forward, token_ids)

    @torch.inference_mode()
    def _embed_through(self, forward: Any, token_ids: list[list[int]]) -> np.ndarray:
        """Pooled vectors of one batch through ``forward`` (an exported graph's), or torch's model when None."""
        token_ids, prompt_lengths = split_prompt_lengths(token_ids)
        input_ids, attention_mask = padded_batch(token_ids, self._pad_id, self.spec.padding_side)
        inputs = {"input_ids": input_ids.to(self.device), "attention_mask": attention_mask.to(self.device)}
        if self._uses_token_types:
            inputs["token_type_ids"] = torch.zeros_like(inputs["input_ids"])
        if forward is not None:
            hidden = forward(inputs["input_ids"], inputs["attention_mask"])
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
