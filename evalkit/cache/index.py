"""The in-memory index of a namespace: text digest → (shard, row), by binary search over sorted digests.

A sorted numpy array instead of a dict of bytes: built in ~0.1 s for a million digests and searched in ~0.04 s
for a million queries (the queries are sorted first, which makes ``searchsorted`` about 5× faster), with no
per-key Python objects. The search runs on the digests' first 8 bytes as one uint64 and confirms on all 32.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from evalkit.cache.keys import DIGEST_BYTES


def _words(digests: np.ndarray) -> np.ndarray:
    """``(n, 32)`` uint8 digests as ``(n, 4)`` uint64 words: comparing and moving 4 words beats 32 bytes."""
    return np.ascontiguousarray(digests).view(np.uint64)


class DigestIndex:
    """Digests of several shards, sorted, with the shard number and row of each."""

    def __init__(self, shard_digests: Sequence[np.ndarray]) -> None:
        """``shard_digests[k]`` is shard k's ``(rows, 32)`` digests in row order."""
        if shard_digests:
            words = _words(np.concatenate(shard_digests))
            shard = np.repeat(np.arange(len(shard_digests), dtype=np.int32), [len(d) for d in shard_digests])
            row = np.concatenate([np.arange(len(d), dtype=np.int32) for d in shard_digests])
        else:
            words = np.zeros((0, DIGEST_BYTES // 8), dtype=np.uint64)
            shard = row = np.zeros(0, dtype=np.int32)
        order = np.argsort(words[:, 0])
        self.words = words[order]
        self.prefixes = np.ascontiguousarray(self.words[:, 0])
        self.shard = shard[order]
        self.row = row[order]

    def __len__(self) -> int:
        return len(self.prefixes)

    def find(self, digests: np.ndarray) -> np.ndarray:
        """For each query digest, its position in the index (use with :attr:`shard` and :attr:`row`), else -1."""
        found = np.full(len(digests), -1, dtype=np.int64)
        if not len(self) or not len(digests):
            return found
        words = _words(digests)
        queries = words[:, 0]
        order = np.argsort(queries)
        position = np.empty(len(queries), dtype=np.int64)
        position[order] = np.searchsorted(self.prefixes, queries[order])
        candidate = np.flatnonzero(position < len(self))
        candidate = candidate[self.prefixes[position[candidate]] == queries[candidate]]
        same = (self.words[position[candidate]] == words[candidate]).all(axis=1)
        found[candidate[same]] = position[candidate[same]]
        # Two different digests sharing 8 leading bytes (odds ~1e-8 in a million): look along the equal run.
        for query in candidate[~same]:
            at = int(position[query]) + 1
            while at < len(self) and self.prefixes[at] == queries[query]:
                if (self.words[at] == words[query]).all():
                    found[query] = at
                    break
                at += 1
        return found
