"""Hugging Face transformers adapter: tokenizer + AutoModel, mean or CLS pooling, optional L2 normalisation.

Loading never runs remote code and prefers safetensors; ``.bin`` weights go through torch's weights-only loader.
"""

from __future__ import annotations

import hashlib
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from evalkit.errors import EvalkitError, UnknownModelError
from evalkit.registry.models import ModelSpec


def weights_fingerprint(folder: Path) -> str:
    """SHA-256 over the weight and config files' contents, so a renamed or retrained folder is told apart."""
    files = sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and (p.suffix in {".safetensors", ".bin"} or p.name in {"config.json", "tokenizer.json"})
    )
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode())
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def padded_batch(token_ids: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Input ids padded to the batch's longest text, and the attention mask: what every transformers adapter feeds."""
    longest = max(len(ids) for ids in token_ids)
    input_ids = torch.full((len(token_ids), longest), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(token_ids), longest), dtype=torch.long)
    for row, ids in enumerate(token_ids):
        input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        attention_mask[row, : len(ids)] = 1
    return input_ids, attention_mask


def load_weights(model_class: type, folder: Path, config: object, **options: object) -> torch.nn.Module:
    """``model_class.from_pretrained`` as evalkit loads every model: never remote code, safetensors when present,
    and a load failure as one line naming the folder."""
    try:
        return model_class.from_pretrained(  # type: ignore[attr-defined]
            folder,
            config=config,
            trust_remote_code=False,
            use_safetensors=any(Path(folder).glob("*.safetensors")),
            **options,
        )
    except (OSError, ValueError) as err:
        raise UnknownModelError(f"cannot load model from {folder}: {str(err).splitlines()[0]}") from None


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
        from transformers import AutoConfig, AutoTokenizer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # the core shows one progress bar for the work that counts
        folder = spec.local_path
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
            self._config = AutoConfig.from_pretrained(folder, trust_remote_code=False)
        except (OSError, ValueError) as err:
            raise UnknownModelError(f"cannot load model from {folder}: {str(err).splitlines()[0]}") from None
        self._autocast = self.device.type == "cuda" and precision != "fp32"
        self._uses_token_types = "token_type_ids" in self.tokenizer.model_input_names
        self._pad_id = self.tokenizer.pad_token_id or 0
        self.runtime = self._resolve_runtime(runtime)
        self._artifact_dir = artifact_dir

    def _resolve_runtime(self, runtime: str) -> str:
        from evalkit.encoders.onnx_runtime import onnxruntime_available

        if runtime not in RUNTIMES:
            raise EvalkitError(f"unknown runtime '{runtime}' (known: {', '.join(RUNTIMES)})", field="runtime")
        onnx_fits = self.device.type == "cpu" and self.precision == "fp32"
        if runtime == "auto":
            return "onnx" if onnx_fits and onnxruntime_available() else "torch"
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
        """The exported graph, exported and checked against torch on first use, then reused from disk."""
        from transformers import AutoModel

        from evalkit.cache.store import default_cache_dir
        from evalkit.encoders.onnx_runtime import OnnxForward, export_checked

        root = self._artifact_dir if self._artifact_dir is not None else default_cache_dir()
        kind = "bert-tt" if self._uses_token_types else "plain"
        path = root / "onnx" / f"{self._weights_sha256[:32]}-{kind}-opset17.onnx"
        if not path.is_file():
            assert self.spec.local_path is not None
            eager = load_weights(AutoModel, self.spec.local_path, self._config, attn_implementation="eager")
            export_checked(eager.eval(), self._uses_token_types, path)
        return OnnxForward(path, self._uses_token_types, threads=torch.get_num_threads())

    def prepare(self, texts: list[str], prompt: str) -> list[str]:
        return [prompt + text for text in texts] if prompt else list(texts)

    def tokenize(self, texts: list[str]) -> list[list[int]]:
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
        input_ids, attention_mask = padded_batch(token_ids, self._pad_id)
        inputs = {"input_ids": input_ids.to(self.device), "attention_mask": attention_mask.to(self.device)}
        if self._uses_token_types:
            inputs["token_type_ids"] = torch.zeros_like(inputs["input_ids"])
        if self.runtime == "onnx":
            hidden = self._onnx_forward(inputs["input_ids"], inputs["attention_mask"])
        else:
            with torch.autocast(self.device.type, dtype=_DTYPES.get(self.precision), enabled=self._autocast):
                hidden = self.model(**inputs).last_hidden_state.float()
        if self.spec.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            mask = inputs["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        if self.spec.normalize:
            pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
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
