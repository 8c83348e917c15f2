"""Several outputs from one forward pass (dense, sparse, ColBERT), each cached in its own namespace.

Split from :mod:`evalkit.core.embed` so the core's one-vector path reads on its own; the steps are the same
(dedup, cache lookup, chunked encoding with tokenization overlap, token-budget batches, out-of-memory backoff),
driven through the :class:`~evalkit.core.embed.EmbeddingCore` passed in.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from evalkit.cache import CacheNamespace, CacheWriter, RaggedNamespace, text_digests
from evalkit.core.outputs import RAGGED_TYPES, EncodedOutput, RaggedRows, concat_rows, select_rows
from evalkit.encoders.protocol import Encoder, OutputKind, capabilities_of
from evalkit.progress import BatchBar

if TYPE_CHECKING:
    from evalkit.core.embed import EmbeddingCore

Outputs = dict[OutputKind, EncodedOutput]


def encode_outputs_of_distinct(
    core: EmbeddingCore,
    encoder: Encoder,
    distinct: list[str],
    kinds: tuple[OutputKind, ...],
    namespaces: dict[OutputKind, CacheNamespace] | None,
    *,
    desc: str,
) -> Outputs:
    """Outputs of distinct texts: cached rows read per output, the texts missing any encoded once, cached."""
    digests = text_digests(distinct) if namespaces is not None else None
    hit: dict[OutputKind, np.ndarray] = {}
    parts: dict[OutputKind, list[tuple[np.ndarray, EncodedOutput]]] = {kind: [] for kind in kinds}
    for kind in kinds:
        hit[kind] = np.zeros(len(distinct), dtype=bool)
        if namespaces is not None:
            found = namespaces[kind].lookup(digests)
            hit[kind] = found.hit
            if found.hit.any():
                parts[kind].append((np.flatnonzero(found.hit), _cached_output(kind, found)))
    missing = np.flatnonzero(~np.logical_and.reduce([hit[kind] for kind in kinds]))
    computed = tuple(kind for kind in kinds if not hit[kind].all())
    core.stats["cached"] += len(distinct) - len(missing)
    core.stats["encoded"] += len(missing)
    writers: dict[OutputKind, CacheWriter] = {}
    encode = partial(encode_tokenized_outputs, core, outputs=computed)
    try:
        with BatchBar(core, len(missing), desc) as progress:
            for chunk, chunk_outputs in core.encode_chunks(encoder, [distinct[i] for i in missing], missing, encode):
                for kind in computed:
                    new = np.flatnonzero(~hit[kind][chunk])  # a row already cached stays as cached
                    rows = select_rows(chunk_outputs[kind], new)
                    parts[kind].append((chunk[new], rows))
                    if namespaces is not None and len(new):
                        if kind not in writers:
                            writers[kind] = _open_writer(namespaces[kind], rows)
                        _add_rows(writers[kind], digests[chunk[new]], rows)
                        writers[kind].flush()  # durable now: a killed run recomputes at most this chunk
                progress.chunk_done(len(chunk))
    finally:
        for writer in writers.values():
            writer.close()
    merged: Outputs = {}
    for kind in kinds:
        positions = np.concatenate([where for where, _ in parts[kind]])
        merged[kind] = select_rows(concat_rows([rows for _, rows in parts[kind]]), np.argsort(positions))
    return merged


def encode_tokenized_outputs(
    core: EmbeddingCore, encoder: Encoder, token_ids: list[list[int]], *, outputs: tuple[OutputKind, ...]
) -> Outputs:
    """One chunk's outputs: the core's batches for dense vectors, rows put back in chunk order."""
    embed = partial(_embed_outputs, outputs=outputs)
    results = core.run_batches(encoder, token_ids, core.plan_batches(token_ids), embed, _concat_outputs)
    order = np.argsort(np.concatenate([batch for batch, _ in results]))
    return {
        kind: select_rows(concat_rows([batch_outputs[kind] for _, batch_outputs in results]), order)
        for kind in outputs
    }


def _embed_outputs(encoder: Encoder, batch: list[list[int]], *, outputs: tuple[OutputKind, ...]) -> Outputs:
    if outputs == ("dense",) and capabilities_of(encoder).outputs == ("dense",):  # a dense-only adapter
        return {"dense": encoder.embed_batch(batch)}
    return dict(encoder.embed_outputs(batch, outputs))  # type: ignore[attr-defined]


def _concat_outputs(halves: list[Outputs]) -> Outputs:
    return {kind: concat_rows([half[kind] for half in halves]) for kind in halves[0]}


def _cached_output(kind: OutputKind, found: Any) -> EncodedOutput:
    """A lookup's rows as the output type the core hands out."""
    if kind == "dense":
        return found.vectors
    return RAGGED_TYPES[kind](found.offsets, found.values)


def _open_writer(namespace: CacheNamespace, rows: EncodedOutput) -> CacheWriter:
    if isinstance(namespace, RaggedNamespace):
        assert isinstance(rows, RaggedRows)
        return namespace.writer(rows.values.shape[1:]).__enter__()
    assert isinstance(rows, np.ndarray)
    return namespace.writer(rows.shape[1]).__enter__()


def _add_rows(writer: CacheWriter, digests: np.ndarray, rows: EncodedOutput) -> None:
    if isinstance(rows, RaggedRows):
        writer.add(digests, rows.offsets, rows.values)  # type: ignore[call-arg]
    else:
        writer.add(digests, rows)


__all__ = ["encode_outputs_of_distinct", "encode_tokenized_outputs"]
