"""Retrieval data in MIRACL's own layout: TREC topics and qrels files beside a ``docid``/``title``/``text`` corpus.

Layout of one language's folder (``<data_dir>/MIRACLRetrieval/<lang>/``):

* ``corpus.jsonl`` (or ``.jsonl.gz``): ``{"docid": "32589#0", "title": "…", "text": "…"}``, as MIRACL's corpus
  files are (``_id``, BEIR's name, is accepted too);
* ``topics.<split>.tsv``: ``qid<TAB>query``, no header, as MIRACL's ``topics.miracl-v1.0-<lang>-<split>.tsv``;
* ``qrels.<split>.tsv``: ``qid Q0 docid rel`` (tabs or spaces), no header, as MIRACL's
  ``qrels.miracl-v1.0-<lang>-<split>.tsv``; grade 0 rows are judged non-relevant.

Ids are taken verbatim: MIRACL's passage ids carry a ``#`` (``32589#0``, the article and the passage in it), which
is an ordinary character here, never a comment. A folder holding BEIR files instead (``queries.jsonl``,
``qrels/<split>.tsv``, as mteb's copy of MIRACL) is read by :mod:`evalkit.loaders.beir`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from evalkit.errors import DataError
from evalkit.loaders.beir import find_file, read_corpus, require_file
from evalkit.loaders.checksums import source_file
from evalkit.loaders.jsonl import iter_lines
from evalkit.records import Corpus, Qrels, Queries, RetrievalSplit, SourceFile

_ID_FIELDS = ("docid", "_id")


def topics_name(split: str) -> str:
    return f"topics.{split}.tsv"


def qrels_name(split: str) -> str:
    return f"qrels.{split}.tsv"


def has_topics_layout(folder: Path, splits: Sequence[str]) -> bool:
    """Whether ``folder`` holds MIRACL's topics files (rather than BEIR's ``queries.jsonl``) for these splits."""
    return any(find_file(folder, topics_name(split)) is not None for split in splits)


def read_miracl_corpus(path: Path) -> Corpus:
    """MIRACL's corpus: BEIR's reader with MIRACL's ``docid`` (or ``_id``) as the id field."""
    return read_corpus(path, id_fields=_ID_FIELDS)


def read_topics(path: Path) -> Queries:
    """``qid<TAB>query`` lines in file order; blank lines are skipped, anything else malformed is an error."""
    ids: list[str] = []
    texts: list[str] = []
    first_line: dict[str, int] = {}
    for line, text in iter_lines(path):
        if not text.strip():
            continue
        columns = text.split("\t")
        if len(columns) != 2:
            raise DataError(f"expected 2 tab-separated columns (qid, query), got {len(columns)}", file=path, line=line)
        query_id, query = columns
        if not query_id:
            raise DataError("empty query id", file=path, line=line, field="qid")
        if not query.strip():
            raise DataError("empty query text", file=path, line=line, field="query")
        if query_id in first_line:
            raise DataError(
                f"duplicate query id '{query_id}' (first on line {first_line[query_id]})",
                file=path,
                line=line,
                field="qid",
            )
        first_line[query_id] = line
        ids.append(query_id)
        texts.append(query)
    if not ids:
        raise DataError("the topics file holds no queries", file=path)
    return Queries(ids=ids, texts=texts)


def read_trec_qrels(path: Path, doc_ids: set[str], query_ids: set[str]) -> Qrels:
    """``qid Q0 docid rel`` rows whose every query and document exists (a later row for a pair wins, as in BEIR).

    The second column is ignored, as trec_eval ignores it.
    """
    qrels: Qrels = {}
    for line, text in iter_lines(path):
        columns = text.split()
        if not columns:
            continue
        if len(columns) != 4:
            raise DataError(f"expected 4 columns (qid, Q0, docid, rel), got {len(columns)}", file=path, line=line)
        query_id, _, doc_id, grade_text = columns
        try:
            grade = int(grade_text)
        except ValueError:
            raise DataError(
                f"expected an integer grade, got {grade_text!r}", file=path, line=line, field="rel"
            ) from None
        if query_id not in query_ids:
            raise DataError(f"query '{query_id}' is not in the topics file", file=path, line=line, field="qid")
        if doc_id not in doc_ids:
            raise DataError(f"document '{doc_id}' is not in the corpus", file=path, line=line, field="docid")
        qrels.setdefault(query_id, {})[doc_id] = grade
    if not qrels:
        raise DataError("the qrels file holds no judgements", file=path)
    return qrels


def load_miracl_splits(folder: Path, splits: Sequence[str]) -> tuple[dict[str, RetrievalSplit], list[SourceFile]]:
    """Several splits of one language folder, reading the corpus once; every file is found before any is read.

    Each split keeps the topics that have at least one judgement (of any grade, as BEIR and mteb keep queries),
    in topics-file order, and shares the one corpus object.
    """
    topics_paths = {split: require_file(folder, topics_name(split), f"topics for split '{split}'") for split in splits}
    qrels_paths = {split: require_file(folder, qrels_name(split), f"qrels for split '{split}'") for split in splits}
    corpus_path = require_file(folder, "corpus.jsonl", "corpus")
    corpus = read_miracl_corpus(corpus_path)
    doc_ids = set(corpus.ids)
    loaded: dict[str, RetrievalSplit] = {}
    for split in splits:
        topics = read_topics(topics_paths[split])
        qrels = read_trec_qrels(qrels_paths[split], doc_ids, set(topics.ids))
        keep = [i for i, query_id in enumerate(topics.ids) if query_id in qrels]
        queries = Queries(ids=[topics.ids[i] for i in keep], texts=[topics.texts[i] for i in keep])
        loaded[split] = RetrievalSplit(corpus=corpus, queries=queries, qrels=qrels)
    files = [corpus_path, *topics_paths.values(), *qrels_paths.values()]
    return loaded, [source_file(p) for p in files]
