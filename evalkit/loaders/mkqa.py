"""Open-domain QA retrieval data (MKQA): one passage corpus shared by every language, and per language a file of
questions with their answers.

Layout of the task folder (``<data_dir>/MKQA/``), as FlagEmbedding's MKQA evaluation lays it out:

* ``corpus.jsonl`` (or ``.jsonl.gz``): BEIR's ``nq`` corpus, ``{"_id": "doc0", "title": "…", "text": "…"}``;
* ``<lang>.jsonl`` for each language (``ar.jsonl``, ``zh_cn.jsonl``, …, the files of FlagEmbedding's
  ``MKQA_test-data.zip``): ``{"id": "…", "question": "…", "answers": ["…", …]}``; other fields (``lang``) are
  ignored. The answers are MKQA's English answers and their aliases, the same for every language.

The corpus is read once and the one object is shared by every language's split, which lets the evaluator encode
it once for the whole task.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from evalkit.errors import DataError, EvalkitError
from evalkit.loaders.beir import read_corpus, require_file
from evalkit.loaders.checksums import source_file
from evalkit.loaders.jsonl import get_id, get_str, iter_jsonl, type_name
from evalkit.records import AnswerRetrievalSplit, Corpus, Queries, SourceFile


def questions_name(subset: str) -> str:
    return f"{subset}.jsonl"


def read_questions(path: Path) -> tuple[Queries, list[tuple[str, ...]]]:
    """Questions in file order with their answers; each needs a non-empty list of non-blank answer strings."""
    ids: list[str] = []
    texts: list[str] = []
    answers: list[tuple[str, ...]] = []
    first_line: dict[str, int] = {}
    for line, record in iter_jsonl(path):
        question_id = get_id(record, "id", path=path, line=line)
        if question_id in first_line:
            raise DataError(
                f"duplicate question id '{question_id}' (first on line {first_line[question_id]})",
                file=path,
                line=line,
                field="id",
            )
        first_line[question_id] = line
        question = get_str(record, "question", path=path, line=line)
        if not question.strip():
            raise DataError("empty question text", file=path, line=line, field="question")
        if "answers" not in record:
            raise DataError("required field is missing", file=path, line=line, field="answers")
        given = record["answers"]
        if not isinstance(given, list) or not given:
            got = "an empty array" if isinstance(given, list) else type_name(given)
            raise DataError(
                f"expected a non-empty array of answer strings, got {got}", file=path, line=line, field="answers"
            )
        for position, answer in enumerate(given):
            if not isinstance(answer, str) or not answer.strip():
                got = repr(answer) if isinstance(answer, str) else type_name(answer)
                raise DataError(
                    f"answer {position} is not a non-blank string (got {got})", file=path, line=line, field="answers"
                )
        ids.append(question_id)
        texts.append(question)
        answers.append(tuple(given))
    if not ids:
        raise DataError("the file holds no questions", file=path)
    return Queries(ids=ids, texts=texts), answers


def load_answer_retrieval_splits(
    task_dir: Path, subsets: Sequence[str], splits: Sequence[str]
) -> tuple[dict[str, dict[str, AnswerRetrievalSplit]], list[SourceFile]]:
    """``splits[subset][split]`` for every language; every file is found before the corpus is read.

    The layout holds one split per language (``<lang>.jsonl``), so a spec naming several splits is an error.
    """
    if len(splits) != 1:
        raise EvalkitError(
            f"an answer-retrieval task has one split per language (<lang>.jsonl); the spec names {len(splits)}: "
            f"{', '.join(splits)}",
            field="eval_splits",
        )
    (split,) = splits
    question_paths = {s: require_file(task_dir, questions_name(s), f"questions for language '{s}'") for s in subsets}
    corpus_path = require_file(task_dir, "corpus.jsonl", "corpus")
    corpus: Corpus = read_corpus(corpus_path)
    loaded: dict[str, dict[str, AnswerRetrievalSplit]] = {}
    for subset, path in question_paths.items():
        queries, answers = read_questions(path)
        loaded[subset] = {split: AnswerRetrievalSplit(corpus=corpus, queries=queries, answers=answers)}
    files = [corpus_path, *question_paths.values()]
    return loaded, [source_file(p) for p in files]
