"""Reranking data, in either of the two layouts mteb has used, turned into the ids mteb 2.x gives them.

1. mteb v1 / C-MTEB hub shape, ``<split>.jsonl[.gz]``: one query per line,
   ``{"query": "...", "positive": ["...", ...], "negative": ["...", ...]}``.
   Ids are assigned exactly as mteb's ``AbsTaskReranking.transform_old_dataset_format`` assigns them (and as the
   converted hub datasets, e.g. ``mteb/AskUbuntuDupQuestions``, carry them):

   * a line with no positive or no negative is dropped, and the kept lines are numbered from 0:
     query id ``{split}_query{n}``;
   * every candidate gets its own document, ``apositive_{query id}_{i:05d}`` (grade 1) or
     ``negative_{query id}_{i:05d}`` (grade 0), even when its text repeats another candidate's, in this query
     or in another. Texts are never merged, so a positive that equals a negative is two documents with one
     score, and trec_eval's tie-break (doc id, descending) ranks the ``negative_`` one first.

2. BEIR files plus candidates: ``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv`` (see ``beir.py``) and
   ``top_ranked/<split>.jsonl[.gz]`` with ``{"query-id": "...", "corpus-ids": ["...", ...]}``, the layout of the
   converted hub datasets. Queries without a judgement are dropped (as mteb does); a judged query without a
   ``top_ranked`` line has no candidates and scores 0, as in mteb.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evalkit.errors import DataError
from evalkit.loaders.beir import find_file, qrels_name, read_checked_qrels, read_corpus, read_queries, require_file
from evalkit.loaders.checksums import source_file
from evalkit.loaders.jsonl import get_id, get_str, iter_jsonl, type_name
from evalkit.records import Corpus, Qrels, Queries, RerankingSplit, SourceFile


def top_ranked_name(split: str) -> str:
    return f"top_ranked/{split}.jsonl"


def load_reranking_splits(folder: Path, splits: Sequence[str]) -> tuple[dict[str, RerankingSplit], list[SourceFile]]:
    """Every split of one task folder, in the BEIR layout when ``top_ranked/<split>.jsonl`` is there for all
    splits, else in the one-file-per-split v1 layout."""
    if all(find_file(folder, top_ranked_name(split)) is not None for split in splits):
        return load_beir_reranking_splits(folder, splits)
    loaded: dict[str, RerankingSplit] = {}
    files: list[SourceFile] = []
    for split in splits:
        loaded[split], read = load_v1_reranking_split(require_file(folder, f"{split}.jsonl", f"split '{split}'"), split)
        files.append(read)
    return loaded, files


def load_v1_reranking_split(path: Path, split: str) -> tuple[RerankingSplit, SourceFile]:
    """One ``{query, positive, negative}`` file, with mteb's ids (module docstring), and the file's checksum."""
    query_ids: list[str] = []
    query_texts: list[str] = []
    candidates: list[list[str]] = []
    doc_ids: list[str] = []
    doc_texts: list[str] = []
    qrels: Qrels = {}
    for line, record in iter_jsonl(path):
        query = get_str(record, "query", path=path, line=line)
        positives = _str_list(record, "positive", path, line)
        negatives = _str_list(record, "negative", path, line)
        if not positives or not negatives:
            continue  # mteb drops these before numbering the queries
        query_id = f"{split}_query{len(query_ids)}"
        judged = {f"apositive_{query_id}_{i:05d}": 1 for i in range(len(positives))}
        judged.update({f"negative_{query_id}_{i:05d}": 0 for i in range(len(negatives))})
        query_ids.append(query_id)
        query_texts.append(query)
        candidates.append(list(judged))
        doc_ids += judged
        doc_texts += positives + negatives
        qrels[query_id] = judged
    if not query_ids:
        raise DataError("the file holds no query with both a positive and a negative", file=path)
    corpus = Corpus(ids=doc_ids, titles=[""] * len(doc_ids), texts=doc_texts)
    split_data = RerankingSplit(
        queries=Queries(ids=query_ids, texts=query_texts), candidates=candidates, corpus=corpus, qrels=qrels
    )
    return split_data, source_file(path)


def load_beir_reranking_splits(
    folder: Path, splits: Sequence[str]
) -> tuple[dict[str, RerankingSplit], list[SourceFile]]:
    """Several splits of one BEIR folder with ``top_ranked`` files; the corpus and queries are read once."""
    qrels_paths = {split: require_file(folder, qrels_name(split), f"qrels for split '{split}'") for split in splits}
    top_paths = {split: require_file(folder, top_ranked_name(split), f"candidates for '{split}'") for split in splits}
    corpus_path = require_file(folder, "corpus.jsonl", "corpus")
    queries_path = require_file(folder, "queries.jsonl", "queries")
    corpus = read_corpus(corpus_path)
    all_queries = read_queries(queries_path)
    doc_ids = set(corpus.ids)
    query_ids = set(all_queries.ids)
    loaded: dict[str, RerankingSplit] = {}
    for split in splits:
        qrels = read_checked_qrels(qrels_paths[split], doc_ids, query_ids)
        top_ranked = _read_top_ranked(top_paths[split], doc_ids, query_ids)
        keep = [i for i, query_id in enumerate(all_queries.ids) if qrels.get(query_id)]
        queries = Queries(ids=[all_queries.ids[i] for i in keep], texts=[all_queries.texts[i] for i in keep])
        candidates = [top_ranked.get(query_id, []) for query_id in queries.ids]
        loaded[split] = RerankingSplit(queries=queries, candidates=candidates, corpus=corpus, qrels=qrels)
    files = [corpus_path, queries_path, *qrels_paths.values(), *top_paths.values()]
    return loaded, [source_file(p) for p in files]


def _read_top_ranked(path: Path, doc_ids: set[str], query_ids: set[str]) -> dict[str, list[str]]:
    """Candidates per query, a repeated id kept once (mteb's run is a dict, so a repeat collapses there too)."""
    top_ranked: dict[str, list[str]] = {}
    first_line: dict[str, int] = {}
    for line, record in iter_jsonl(path):
        query_id = get_id(record, "query-id", path=path, line=line)
        if query_id not in query_ids:
            raise DataError(f"query '{query_id}' is not in the queries file", file=path, line=line, field="query-id")
        if query_id in first_line:
            raise DataError(
                f"duplicate query id '{query_id}' (first on line {first_line[query_id]})",
                file=path,
                line=line,
                field="query-id",
            )
        first_line[query_id] = line
        ranked = _id_list(record, "corpus-ids", path, line)
        for i, doc_id in enumerate(ranked):
            if doc_id not in doc_ids:
                raise DataError(
                    f"document '{doc_id}' is not in the corpus", file=path, line=line, field=f"corpus-ids[{i}]"
                )
        top_ranked[query_id] = list(dict.fromkeys(ranked))
    return top_ranked


def _str_list(record: dict[str, Any], name: str, path: Path, line: int) -> list[str]:
    if name not in record:
        raise DataError("required field is missing", file=path, line=line, field=name)
    values = record[name]
    if not isinstance(values, list):
        raise DataError(f"expected an array of strings, got {type_name(values)}", file=path, line=line, field=name)
    for i, value in enumerate(values):
        if not isinstance(value, str):
            raise DataError(f"expected a string, got {type_name(value)}", file=path, line=line, field=f"{name}[{i}]")
    return values


def _id_list(record: dict[str, Any], name: str, path: Path, line: int) -> list[str]:
    """An array of ids; integers are turned into strings, as mteb casts ids."""
    if name not in record:
        raise DataError("required field is missing", file=path, line=line, field=name)
    values = record[name]
    if not isinstance(values, list):
        raise DataError(f"expected an array of ids, got {type_name(values)}", file=path, line=line, field=name)
    ids = []
    for i, value in enumerate(values):
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise DataError(
                f"expected a string or integer id, got {type_name(value)}", file=path, line=line, field=f"{name}[{i}]"
            )
        ids.append(value)
    return ids
