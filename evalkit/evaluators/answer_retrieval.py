"""Answer retrieval (MKQA): encode the shared passage corpus once, search it with every language's questions, and
count a question as answered at k when one of its top k passages contains an answer.

The passage text, encoded and matched, is FlagEmbedding's (``evalkit.metrics.has_answer.passage_text``): title and
text on two lines, lowercased, punctuation unified. Rankings are the exact top k, best first (equal scores by
corpus order), as the flat inner-product index FlagEmbedding searches returns them. The search is the run's
retriever (:class:`evalkit.search.retriever.Retriever`), which keeps the shared corpus by content: every language
searches one indexing of it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from evalkit.encoders.prompts import NO_PROMPTS, TaskPrompts
from evalkit.errors import EvalkitError
from evalkit.evaluators.outcome import PerItemScores, SplitOutcome
from evalkit.evaluators.retrieval import RetrievalModels
from evalkit.metrics.has_answer import AnswerSet, answer_recall, first_hit_rank, passage_text
from evalkit.records import AnswerRetrievalSplit, Corpus, Split

ANSWER_K_VALUES: tuple[int, ...] = (1, 5, 10, 20, 100)
"""Cutoffs reported; the BGE-M3 paper's MKQA table gives Recall@20 and Recall@100."""


def corpus_passage_texts(corpus: Corpus) -> list[str]:
    """Every passage's text, as encoded."""
    return [passage_text(title, text) for title, text in zip(corpus.titles, corpus.texts, strict=True)]


def first_answer_ranks(
    ranked_indices: np.ndarray, answers: Sequence[tuple[str, ...]], text_of: Callable[[int], str]
) -> np.ndarray:
    """Per question (row), the 1-based rank of its first passage holding an answer (0: none in its ranking).

    ``ranked_indices[row]`` are corpus positions, best first; ``text_of`` gives a position's passage text.
    Matching stops at a question's first hit, so most questions look at a few passages only.
    """
    ranks = np.zeros(len(answers), dtype=np.int64)
    for row, question_answers in enumerate(answers):
        answer_set = AnswerSet.of(question_answers)
        ranks[row] = first_hit_rank(answer_set.found_in(text_of(int(i))) for i in ranked_indices[row])
    return ranks


def evaluate_answer_retrieval(
    split: AnswerRetrievalSplit,
    models: RetrievalModels,
    *,
    split_name: str,
    hf_subset: str,
    languages: tuple[str, ...],
    main_score: str,
    k_values: Sequence[int] = ANSWER_K_VALUES,
    prompts: TaskPrompts = NO_PROMPTS,
) -> SplitOutcome:
    """Scores of one language; the corpus indexed already (the same passages) is not indexed again."""
    reported = [f"recall_at_{k}" for k in k_values]
    if main_score not in reported:  # checked before the encoding, which may take hours
        raise EvalkitError(
            f"main score '{main_score}' is not one of the answer-retrieval scores ({', '.join(reported)})",
            field="main_score",
        )
    retriever = models.retriever
    started = time.perf_counter()
    retriever.index(corpus_passage_texts(split.corpus), prompt=prompts.document, languages=languages)
    indexed = time.perf_counter()
    top = retriever.search(
        split.queries.texts, max(k_values), prompt=prompts.query, desc=f"{hf_subset} {split_name} questions"
    )
    searched = time.perf_counter()
    corpus = split.corpus
    ranks = first_answer_ranks(top.indices, split.answers, lambda i: passage_text(corpus.titles[i], corpus.texts[i]))
    per_question = answer_recall(ranks, k_values)
    scores = {name: float(values.mean()) for name, values in per_question.items()}
    return SplitOutcome(
        split=split_name,
        hf_subset=hf_subset,
        languages=languages,
        scores=scores,
        main_score=scores[main_score],
        per_item=PerItemScores(item_ids=list(split.queries.ids), values=per_question),
        timings={
            "encode_corpus_s": indexed - started,
            "search_s": searched - indexed,
            "score_s": time.perf_counter() - searched,
        },
    )


def evaluate_answer_retrieval_task(
    splits: Mapping[str, Mapping[str, Split]],
    models: RetrievalModels,
    *,
    task_name: str,
    eval_splits: Sequence[str],
    languages_of: Callable[[str], tuple[str, ...]],
    main_score: str,
    prompts: TaskPrompts = NO_PROMPTS,
    search_backend: str = "numpy",
) -> list[SplitOutcome]:
    """Every language of a task, the shared corpus encoded once for all of them (even with the cache off): the
    retriever keeps it by content, so a subset with a corpus of its own simply gets it indexed.

    ``search_backend`` is the run's, already in the retriever; taken for the evaluators' common signature.
    """
    outcomes: list[SplitOutcome] = []
    for hf_subset, subset_splits in splits.items():
        for split_name in eval_splits:
            split = subset_splits[split_name]
            if not isinstance(split, AnswerRetrievalSplit):
                raise EvalkitError(
                    f"task '{task_name}': expected AnswerRetrievalSplit data, got {type(split).__name__}"
                )
            outcome = evaluate_answer_retrieval(
                split,
                models,
                split_name=split_name,
                hf_subset=hf_subset,
                languages=languages_of(hf_subset),
                main_score=main_score,
                prompts=prompts,
            )
            outcomes.append(outcome)
    return outcomes
