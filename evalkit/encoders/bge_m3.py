"""BGE-M3: one XLM-RoBERTa forward pass, three outputs — a dense vector, sparse term weights, ColBERT vectors.

Follows FlagEmbedding's M3 model (``FlagEmbedding/finetune/embedder/encoder_only/m3/modeling.py`` and the
inference loop in ``inference/embedder/encoder_only/m3.py``):

- dense: the CLS token's last hidden state, L2-normalised;
- sparse: ``relu(sparse_linear(hidden))`` per token (``sparse_linear`` is ``Linear(hidden, 1)``), the special
  tokens (cls, eos, pad, unk) dropped, weights ≤ 0 dropped, and a token id that occurs twice keeps its largest
  weight (FlagEmbedding's ``lexical_weights``);
- colbert: ``colbert_linear(hidden[:, 1:])`` (``Linear(hidden, hidden)``) over the text's tokens without CLS
  (padding cut off), each vector L2-normalised.

The weights are laid out as the BAAI/bge-m3 repository ships them: the XLM-RoBERTa encoder in
``model.safetensors`` (a pickled ``pytorch_model.bin`` is refused: convert it), and ``sparse_linear.pt`` and
``colbert_linear.pt`` (torch state dicts, loaded weights-only) beside it. Scores are FlagEmbedding's
``compute_score`` formulas, in :mod:`evalkit.search.sparse` and :mod:`evalkit.search.multivector`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from evalkit.core.outputs import EncodedOutput, MultiVectorRows, SparseRows
from evalkit.encoders.hf import _DTYPES, HFEncoder, padded_batch, weights_fingerprint
from evalkit.encoders.pooling import pool
from evalkit.encoders.protocol import Capabilities, OutputKind
from evalkit.errors import UnknownModelError
from evalkit.registry.models import ModelSpec

SPARSE_HEAD = "sparse_linear.pt"
COLBERT_HEAD = "colbert_linear.pt"


class BGEM3Encoder(HFEncoder):
    """BGE-M3's dense, sparse and ColBERT outputs from one forward pass (torch, or ONNX Runtime for the encoder).

    The dense path is the HF adapter's (CLS pooling and normalisation from the model spec), so ``--retrieval
    dense`` scores as ``adapter: hf`` would; the two heads load only when their outputs are first asked for.
    """

    output_kinds: tuple[OutputKind, ...] = ("dense", "sparse", "colbert")
    capabilities: Capabilities = Capabilities(outputs=output_kinds)

    def __init__(
        self,
        spec: ModelSpec,
        *,
        device: str = "cpu",
        precision: str = "fp32",
        runtime: str = "auto",
        artifact_dir: Path | None = None,
    ) -> None:
        super().__init__(spec, device=device, precision=precision, runtime=runtime, artifact_dir=artifact_dir)
        # FlagEmbedding drops exactly these from the lexical weights (its `unused_tokens`).
        special = (
            self.tokenizer.cls_token_id,
            self.tokenizer.eos_token_id,
            self.tokenizer.pad_token_id,
            self.tokenizer.unk_token_id,
        )
        self.unused_token_ids = np.array(sorted({i for i in special if i is not None}), dtype=np.int64)

    def _head(self, file_name: str) -> torch.nn.Linear:
        folder = self.spec.local_path
        assert folder is not None
        path = folder / file_name
        if not path.is_file():
            raise UnknownModelError(
                f"model '{self.name}' has no {file_name} beside its weights in {folder}: BGE-M3's sparse and ColBERT "
                "outputs need sparse_linear.pt and colbert_linear.pt as BAAI/bge-m3 ships them",
                file=path,
            )
        try:
            # weights_only: the unpickler that builds tensors and plain containers only, never arbitrary objects.
            state = torch.load(path, map_location="cpu", weights_only=True)
            weight = state["weight"]
            head = torch.nn.Linear(weight.shape[1], weight.shape[0], bias="bias" in state)
            head.load_state_dict(state)
        except Exception as err:  # a truncated file, a non-tensor pickle, a state dict of another shape
            reason = str(err).splitlines()[0][:160] if str(err) else type(err).__name__
            raise UnknownModelError(
                f"cannot load BGE-M3's head as a weights-only state dict with 'weight' (and 'bias'): {reason}",
                file=path,
            ) from None
        return head.eval().to(self.device)

    @cached_property
    def sparse_linear(self) -> torch.nn.Linear:
        """``Linear(hidden, 1)``: one weight per token."""
        return self._head(SPARSE_HEAD)

    @cached_property
    def colbert_linear(self) -> torch.nn.Linear:
        """``Linear(hidden, hidden)``: one vector per token."""
        return self._head(COLBERT_HEAD)

    @torch.inference_mode()
    def embed_outputs(
        self, token_ids: list[list[int]], outputs: tuple[OutputKind, ...]
    ) -> Mapping[OutputKind, EncodedOutput]:
        if outputs == ("dense",):  # exactly the HF adapter's pass
            return {"dense": self.embed_batch(token_ids)}
        input_ids, attention_mask, hidden = self._last_hidden_state(token_ids)
        lengths = np.fromiter((len(ids) for ids in token_ids), dtype=np.int64, count=len(token_ids))
        result: dict[OutputKind, EncodedOutput] = {}
        if "dense" in outputs:
            result["dense"] = self._dense(hidden, attention_mask)
        if "sparse" in outputs:
            token_weights = torch.relu(self.sparse_linear(hidden)).squeeze(-1)
            result["sparse"] = lexical_weights(
                input_ids.cpu().numpy(), token_weights.float().cpu().numpy(), lengths, self.unused_token_ids
            )
        if "colbert" in outputs:
            vectors = self.colbert_linear(hidden[:, 1:]) * attention_mask[:, 1:, None].to(hidden.dtype)
            if self.spec.normalize:
                vectors = torch.nn.functional.normalize(vectors, dim=-1)
            kept = attention_mask[:, 1:].bool()  # row by row: text i's tokens 1..n_i-1, padding cut off
            result["colbert"] = MultiVectorRows.from_lengths(
                np.maximum(lengths - 1, 0), vectors[kept].float().cpu().numpy()
            )
        return result

    def _last_hidden_state(self, token_ids: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Padded ids, attention mask and the encoder's last hidden state (float32), as the dense path pads them."""
        input_ids, attention_mask = padded_batch(token_ids, self._pad_id)
        input_ids, attention_mask = input_ids.to(self.device), attention_mask.to(self.device)
        if self.runtime == "onnx":
            hidden = self._onnx_forward(input_ids, attention_mask)
        else:
            inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
            if self._uses_token_types:
                inputs["token_type_ids"] = torch.zeros_like(input_ids)
            with torch.autocast(self.device.type, dtype=_DTYPES.get(self.precision), enabled=self._autocast):
                hidden = self.model(**inputs).last_hidden_state
        return input_ids, attention_mask, hidden.float()

    def _dense(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> np.ndarray:
        pooled = pool(hidden, attention_mask, self.spec.pooling, normalize=self.spec.normalize)
        return pooled.float().cpu().numpy()

    @cached_property
    def _weights_sha256(self) -> str:
        """The encoder's weights and both heads: a retrained head is another model."""
        folder = self.spec.local_path
        assert folder is not None
        digest = hashlib.sha256(weights_fingerprint(folder).encode())
        for name in (SPARSE_HEAD, COLBERT_HEAD):
            path = folder / name
            if path.is_file():
                digest.update(name.encode())
                digest.update(hashlib.sha256(path.read_bytes()).digest())
        return digest.hexdigest()


def lexical_weights(
    input_ids: np.ndarray, token_weights: np.ndarray, lengths: np.ndarray, unused_token_ids: np.ndarray
) -> SparseRows:
    """FlagEmbedding's ``_process_token_weights`` for a batch, vectorised: per text, each token id once with its
    largest weight, special tokens and weights ≤ 0 dropped, ids ascending.

    ``input_ids`` and ``token_weights`` are ``(batch, padded length)``; ``lengths`` the texts' own lengths.
    """
    batch, width = input_ids.shape
    row = np.repeat(np.arange(batch, dtype=np.int64), width)
    ids = input_ids.reshape(-1).astype(np.int64)
    weights = token_weights.reshape(-1).astype(np.float32)
    keep = (np.tile(np.arange(width), batch) < lengths[row]) & (weights > 0) & ~np.isin(ids, unused_token_ids)
    row, ids, weights = row[keep], ids[keep], weights[keep]
    order = np.lexsort((-weights, ids, row))  # per (text, id): the largest weight first
    row, ids, weights = row[order], ids[order], weights[order]
    first = np.ones(len(row), dtype=bool)
    first[1:] = (row[1:] != row[:-1]) | (ids[1:] != ids[:-1])
    row, ids, weights = row[first], ids[first], weights[first]
    offsets = np.zeros(batch + 1, dtype=np.int64)
    np.cumsum(np.bincount(row, minlength=batch), out=offsets[1:])
    return SparseRows.from_arrays(offsets, ids.astype(np.int32), weights)
