"""Retrieval data in the BEIR layout, read as BEIR's ``GenericDataLoader`` reads it, but strictly.

Layout of a folder: ``corpus.jsonl`` (``{_id, title, text}``, title optional), ``queries.jsonl``
(``{_id, text}``), ``qrels/<split>.tsv`` (tab-separated, a header line, then ``query-id corpus-id score``
with an integer score). Each may also be gzipped (``.gz``); the plain file wins when both exist.

Where BEIR would silently go on (a duplicate id overwriting a document, a judgement naming a document that
does not exist), this raises DataError naming the file, line and field: such data gives wrong numbers.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from evalkit.errors import DataError, MissingDataError
from evalkit.loaders.checksums import source_file
from evalkit.loaders.corpus_store import read_corpus_stored
from evalkit.loaders.jsonl import get_id, get_str, iter_jsonl, iter_lines
from evalkit.records import Corpus, Qrels, Queries, RetrievalSplit, SourceFile


def candidates(folder: Path, name: str) -> list[Path]:
    """The paths a file may have: plain first, then gzipped."""
    return [folder / name, folder / f"{name}.gz"]


def find_file(folder: Path, name: str) -> Path | None:
    """The first existing candidate of :func:`candidates`, or ``None``."""
    return next((p for p in candidates(folder, name) if p.is_file()), None)


def require_file(folder: Path, name: str, what: str) -> Path:
    """Like :func:`find_file`, but a missing file is a MissingDataError naming every path looked for."""
    path = find_file(folder, name)
    if path is None:
        looked = ", ".join(str(p) for p in candidates(folder, name))
        raise MissingDataError(f"no {what}: none of {looked} exists")
    return path


def qrels_name(split: str) -> str:
    return f"qrels/{split}.tsv"


def read_corpus(path: Path, id_fields: Sequence[str] = ("_id",)) -> Corpus:
    """Documents in file order; a missing or null title reads as ``""``.

    ``id_fields``: the names a document id may go by, first match wins (MIRACL writes ``docid``, BEIR ``_id``).
    """
    ids: list[str] = []
    titles: list[str] = []
    texts: list[str] = []
    first_line: dict[str, int] = {}
    for line, record in iter_jsonl(path):
        id_field = next((name for name in id_fields if name in record), id_fields[0])
        doc_id = get_id(record, id_field, path=path, line=line)
        if doc_id in first_line:
            raise DataError(
                f"duplicate document id '{doc_id}' (first on line {first_line[doc_id]})",
                file=path,
                line=line,
                field=id_field,
            )
        first_line[doc_id] = line
        ids.append(doc_id)
        titles.append(get_str(record, "title", path=path, line=line, optional=True))
        texts.append(get_str(record, "text", path=path, line=line))
    if not ids:
        raise DataError("the corpus holds no documents", file=path)
    return Corpus(ids=ids, titles=titles, texts=texts)


def read_queries(path: Path) -> Queries:
    """All queries in file order, judged or not."""
    ids: list[str] = []
    texts: list[str] = []
    first_line: dict[str, int] = {}
    for line, record in iter_jsonl(path):
        query_id = get_id(record, "_id", path=path, line=line)
        if query_id in first_line:
            raise DataError(
                f"duplicate query id '{query_id}' (first on line {first_line[query_id]})",
                file=path,
                line=line,
                field="_id",
            )
        first_line[query_id] = line
        ids.append(query_id)
        texts.append(get_str(record, "text", path=path, line=line))
    return Queries(ids=ids, texts=texts)


def iter_qrels(path: Path) -> Iterator[tuple[int, str, str, int]]:
    """Yield ``(line, query_id, corpus_id, score)`` for each judgement row of a BEIR qrels file.

    The first non-blank line must be a header (any names): BEIR skips the first line unread, so a file without
    one would lose its first judgement there, and that is an error here. Ids are taken verbatim (``#`` and
    quotes are ordinary characters).
    """
    seen_header = False
    for line, text in iter_lines(path):
        if not text.strip():
            continue
        columns = text.split("\t")
        if not seen_header:
            seen_header = True
            if len(columns) == 3 and _is_int(columns[2]):
                raise DataError(
                    "the first line is a judgement, not the header 'query-id<TAB>corpus-id<TAB>"
                    "score' (BEIR skips the first line unread)",
                    file=path,
                    line=line,
                )
            continue
        if len(columns) != 3:
            raise DataError(
                f"expected 3 tab-separated columns (query-id, corpus-id, score), got {len(columns)}",
                file=path,
                line=line,
            )
        query_id, corpus_id, score = columns
        try:
            grade = int(score)
        except ValueError:
            raise DataError(f"expected an integer grade, got {score!r}", file=path, line=line, field="score") from None
        yield line, query_id, corpus_id, grade


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def read_qrels(path: Path) -> Qrels:
    """A qrels file as ``{query_id: {doc_id: grade}}``, ids unchecked (a later row for a pair wins, as BEIR).

    For judgement files that come without a corpus.
    """
    qrels: Qrels = {}
    for _, query_id, corpus_id, grade in iter_qrels(path):
        qrels.setdefault(query_id, {})[corpus_id] = grade
    return qrels


def read_checked_qrels(path: Path, doc_ids: set[str], query_ids: set[str]) -> Qrels:
    """Judgements whose every query and document exists: a qrel naming an unknown one is a DataError."""
    qrels: Qrels = {}
    for line, query_id, corpus_id, grade in iter_qrels(path):
        if query_id not in query_ids:
            raise DataError(f"query '{query_id}' is not in the queries file", file=path, line=line, field="query-id")
        if corpus_id not in doc_ids:
            raise DataError(f"document '{corpus_id}' is not in the corpus", file=path, line=line, field="corpus-id")
        qrels.setdefault(query_id, {})[corpus_id] = grade
    if not qrels:
        raise DataError("the qrels file holds no judgements", file=path)
    return qrels


def load_beir_splits(folder: Path, splits: Sequence[str]) -> tuple[dict[str, RetrievalSplit], list[SourceFile]]:
    """Several splits of one BEIR folder, reading the shared corpus and queries once.

    Each split keeps the queries that have at least one judgement (of any grade, as BEIR and mteb do), in
    queries-file order, and shares the one corpus object.
    """
    qrels_paths = {split: require_file(folder, qrels_name(split), f"qrels for split '{split}'") for split in splits}
    corpus_path = require_file(folder, "corpus.jsonl", "corpus")
    queries_path = require_file(folder, "queries.jsonl", "queries")
    corpus, corpus_file = read_corpus_stored(corpus_path, read_corpus)  # parsed once, then read back in binary
    all_queries = read_queries(queries_path)
    doc_ids = set(corpus.ids)
    query_ids = set(all_queries.ids)
    loaded: dict[str, RetrievalSplit] = {}
    for split, qrels_path in qrels_paths.items():
        qrels = read_checked_qrels(qrels_path, doc_ids, query_ids)
        keep = [i for i, query_id in enumerate(all_queries.ids) if query_id in qrels]
        queries = Queries(ids=[all_queries.ids[i] for i in keep], texts=[all_queries.texts[i] for i in keep])
        loaded[split] = RetrievalSplit(corpus=corpus, queries=queries, qrels=qrels)
    return loaded, [corpus_file, *(source_file(p) for p in [queries_path, *qrels_paths.values()])]


def load_beir_split(folder: Path, split: str) -> tuple[RetrievalSplit, list[SourceFile]]:
    """One split of a BEIR folder, with the checksums of the corpus, queries and qrels files read."""
    loaded, files = load_beir_splits(folder, [split])
    return loaded[split], files
