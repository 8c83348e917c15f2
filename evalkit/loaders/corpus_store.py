"""Corpora parsed once: a checksummed binary form beside the embedding cache, read back instead of the JSON lines.

Parsing a BEIR ``corpus.jsonl`` line by line (JSON, field checks, duplicate ids) is most of a warm run's data
loading. The first run that parses a corpus keeps its columns (ids, titles, texts) in
``<evalkit cache>/corpora/<key>.bin``, keyed by the SHA-256 and size of the source file's bytes (hashed anyway for
the run record), the id fields read and evalkit's code stamp (:mod:`evalkit.cache.memo`): another file, another
parser or another evalkit names another key. A form that is truncated, edited, of another key or malformed in any
way (offsets out of order, lengths that disagree, a payload failing its SHA-256) is never trusted: the source is
parsed again and the form rewritten. Written atomically.

Layout: ``MAGIC``, the header's length (8 bytes, little-endian), the header (JSON: key, count, byte length of each
column, payload SHA-256), then the payload: per column the ``count`` end offsets (little-endian uint64, in
characters), then per column its texts joined, UTF-8 (``surrogatepass``: every Python string round-trips).

The corpus's content checksum (the run record's ``data.content_sha256`` part for it) is remembered beside the form
(:func:`remembered_content_sha256`), so a warm run neither parses nor re-hashes the corpus.
"""

from __future__ import annotations

import hashlib
import json
import logging
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from evalkit.cache.memo import memo_key, memo_root, read_memo, write_atomic, write_memo
from evalkit.loaders.checksums import source_file
from evalkit.records import Corpus, SourceFile

logger = logging.getLogger(__name__)

MAGIC = b"EVALKIT-CORPUS-1"
FOLDER = "corpora"
KIND = "corpus"
DIGEST_KIND = "corpus-content"
_COLUMNS = ("ids", "titles", "texts")
_HEADER_MAX = 1 << 16
_LOADED: dict[int, tuple[weakref.ref[Corpus], str, tuple[int, ...]]] = {}  # id(corpus) -> (it, key, shape)


def _shape(corpus: Corpus) -> tuple[int, ...]:
    """The columns' identities and lengths: a corpus whose lists were replaced or resized is not the one read."""
    columns = (corpus.ids, corpus.titles, corpus.texts)
    return (*(id(c) for c in columns), *(len(c) for c in columns))


def store_folder(cache_root: Path | None = None) -> Path:
    """Where the binary forms live: beside the memos, in the evalkit cache folder."""
    return memo_root(cache_root).parent / FOLDER


def corpus_key(source: SourceFile, id_fields: Sequence[str]) -> str:
    """The form's key: the source's bytes (SHA-256, size), the id fields and evalkit's code stamp."""
    return memo_key(KIND, {"sha256": source.sha256, "size": source.size, "id_fields": list(id_fields)})


def encode_corpus(corpus: Corpus, key: str) -> bytes:
    """The binary form of ``corpus`` (see the module docstring)."""
    ends, blobs = [], []
    for name in _COLUMNS:
        column = getattr(corpus, name)
        ends.append(np.cumsum([len(s) for s in column], dtype=np.uint64).astype("<u8").tobytes())
        blobs.append("".join(column).encode("utf-8", "surrogatepass"))
    payload = b"".join(ends + blobs)
    header = {
        "key": key,
        "count": len(corpus),
        "column_bytes": [len(b) for b in blobs],
        "payload_sha256": hashlib.sha256(payload).hexdigest(),
    }
    head = json.dumps(header, sort_keys=True).encode("ascii")
    return MAGIC + len(head).to_bytes(8, "little") + head + payload


class CorruptForm(ValueError):
    """A binary form that cannot be trusted; the source is parsed again."""


def _header(data: bytes, key: str) -> tuple[dict[str, object], int]:
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + 8:
        raise CorruptForm("not a corpus form")
    size = int.from_bytes(data[len(MAGIC) : len(MAGIC) + 8], "little")
    start = len(MAGIC) + 8
    if size > _HEADER_MAX or start + size > len(data):
        raise CorruptForm("header length out of range")
    header = json.loads(data[start : start + size])
    if not isinstance(header, dict) or header.get("key") != key:
        raise CorruptForm("another key")
    return header, start + size


def decode_corpus(data: bytes, key: str) -> Corpus:
    """The corpus a form holds; :class:`CorruptForm` for anything but a sound form of ``key``."""
    try:
        header, start = _header(data, key)
        count, column_bytes = header["count"], header["column_bytes"]
        if not isinstance(count, int) or count < 1 or not isinstance(column_bytes, list) or len(column_bytes) != 3:
            raise CorruptForm("bad header fields")
        payload = memoryview(data)[start:]
        if hashlib.sha256(payload).hexdigest() != header["payload_sha256"]:
            raise CorruptForm("payload fails its checksum")
        if len(payload) != 3 * 8 * count + sum(int(b) for b in column_bytes):
            raise CorruptForm("payload length disagrees with the header")
        columns, at = [], 3 * 8 * count
        for index, nbytes in enumerate(column_bytes):
            ends = np.frombuffer(payload, dtype="<u8", count=count, offset=index * 8 * count).tolist()
            text = bytes(payload[at : at + nbytes]).decode("utf-8", "surrogatepass")
            at += nbytes
            if ends[-1] != len(text) or any(b < a for a, b in zip([0, *ends], ends, strict=False)):
                raise CorruptForm("column offsets out of order or out of range")
            columns.append([text[a:b] for a, b in zip([0, *ends[:-1]], ends, strict=True)])
    except CorruptForm:
        raise
    except (ValueError, KeyError, TypeError, UnicodeDecodeError, RecursionError) as err:
        raise CorruptForm(str(err)) from err
    return Corpus(ids=columns[0], titles=columns[1], texts=columns[2])


def read_corpus_stored(
    path: Path, parse: Callable[[Path], Corpus], id_fields: Sequence[str] = ("_id",), *, cache_root: Path | None = None
) -> tuple[Corpus, SourceFile]:
    """``parse(path)`` and the file's checksum, the corpus read from its binary form when a sound one exists (else
    parsed and the form written for the next run)."""
    source = source_file(path)
    key = corpus_key(source, id_fields)
    form = store_folder(cache_root) / f"{key[:40]}.bin"
    try:
        corpus = decode_corpus(form.read_bytes(), key)
    except FileNotFoundError:
        corpus = None
    except (OSError, CorruptForm) as err:
        logger.info("corpus form %s is unusable (%s); parsing the source again", form, err)
        corpus = None
    if corpus is None:
        corpus = parse(path)
        try:
            form.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(form, encode_corpus(corpus, key))
        except OSError as err:
            logger.info("cannot keep the corpus form %s (%s)", form, err)
    _remember_loaded(corpus, key)
    return corpus, source


def _remember_loaded(corpus: Corpus, key: str) -> None:
    number = id(corpus)
    _LOADED[number] = (weakref.ref(corpus, lambda _: _LOADED.pop(number, None)), key, _shape(corpus))


def remembered_content_sha256(corpus: Corpus, scheme: str, compute: Callable[[Corpus], str]) -> str:
    """``compute(corpus)`` (the run record's content checksum of a corpus under ``scheme``), remembered beside the
    corpus's binary form when the corpus was read through :func:`read_corpus_stored`."""
    entry = _LOADED.get(id(corpus))
    if entry is None or entry[0]() is not corpus or entry[2] != _shape(corpus):
        return compute(corpus)
    key = memo_key(DIGEST_KIND, {"form": entry[1], "scheme": scheme})
    root = memo_root()
    found, value = read_memo(root, DIGEST_KIND, key)
    if found and isinstance(value, str):
        return value
    value = compute(corpus)
    write_memo(root, DIGEST_KIND, key, value)
    return value
