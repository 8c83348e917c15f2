r"""Answer matching for open-domain QA retrieval (MKQA), and the per-question top-k recall built on it.

A passage counts as relevant when it contains an answer, decided as DPR's ``has_answer`` decides it
(facebookresearch/DPR ``dpr/data/qa_validation.py``, match type ``string``, with ``dpr/utils/tokenizers.py``'s
``SimpleTokenizer``), which FlagEmbedding's MKQA evaluation copies:

* both sides are put in Unicode NFD form, then cut into tokens by the regex ``[\p{L}\p{N}\p{M}]+|[^\p{Z}\p{C}]``
  (a run of letters, digits and combining marks, or any other single visible character), and lowercased;
* an answer is found when its token sequence occurs, contiguous, in the passage's token sequence.

What follows from that, and what the tests pin: accents are *not* stripped (NFD splits ``ü`` into ``u`` and a
combining mark, and the mark stays in the token), so "Zürich" never matches "Zurich", but a precomposed and a
decomposed "Zürich" match each other. Scripts written without spaces (Chinese, Japanese, Thai) form one token per
run of letters, so an answer matches only a whole run, never part of one. Punctuation tokens must match too.

The passage text is FlagEmbedding's (``research/C_MTEB/MKQA``): ``f"{title}\n{text}"``, lowercased, with its
punctuation unified by contriever's ``normalize_text.normalize`` (:func:`unify_punctuation`), the same text it
encodes. The answers get no such unification there, and none here.

One deliberate difference from DPR: an answer with no tokens at all (an empty string) would match every passage
in DPR (an empty sequence occurs everywhere); here it matches none, since a blank answer is a data error and
would otherwise make its question a hit whatever was retrieved. The MKQA loader rejects blank answers.

Recall@k is RocketQA's and DPR's top-k accuracy: per question, 1 when one of its top k passages holds an answer,
else 0; the task score is the mean over questions. FlagEmbedding's ``evaluate_recall_qa`` sizes its rank
buckets from the first question's list and caps k by it, so when that list is shorter than the others, later
questions' hits past its length are lost. Here each question is scored on its own list (:func:`first_hit_rank`).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import regex

_TOKEN = regex.compile(r"[\p{L}\p{N}\p{M}]+|[^\p{Z}\p{C}]", flags=regex.IGNORECASE | regex.UNICODE | regex.MULTILINE)
"""DPR's SimpleTokenizer (ALPHA_NUM | NON_WS) with its flags; without its capture groups, which change nothing."""

_PUNCTUATION = str.maketrans(
    {
        **dict.fromkeys("\u0001\u0002\u0003\u0004\u0005\u0006\u0007\u0008\u000e\u000f", ""),
        **dict.fromkeys("\u0011\u0012\u0013\u0014\u0015\u0016\u0017\u0018\u0019\u001a\u001b", ""),
        **dict.fromkeys("\u000b\u000c\u0085", " "),
        **dict.fromkeys("\u2010\u2011\u2043\u2012\u2013\u2014\u2015\u2212\uff0d\u207b", "-"),  # hyphens, minuses
        "\u00ad": "",  # soft hyphen
        **dict.fromkeys("\u201c\u201d\u201e\u201f", '"'),
        **dict.fromkeys("\u2018\u2019\u201a\u201b\u055a\ua78b\ua78c\uff07`\u00b4\u2032\u2035", "'"),
        **dict.fromkeys("\u2033\u2036", "''"),  # double primes
        **dict.fromkeys("\u2034\u2037", "'''"),  # triple primes
        "\u2057": "''''",  # quadruple prime
        "\u2026": "...",  # ellipsis
        **dict.fromkeys("\u2044\u2215", "/"),  # fraction and division slashes
    }
)
"""contriever's ``normalize`` (adapted from ChemDataExtractor): every replacement it makes one character at a time.
Its sequence of ``str.replace`` calls never feeds one replacement's output to another, so one table is the same."""


def unify_punctuation(text: str) -> str:
    """contriever's ``normalize_text.normalize``: one form for dashes, quotes, primes, slashes and ellipses."""
    return text.translate(_PUNCTUATION).replace(" . . . ", " ... ")


def passage_text(title: str, text: str) -> str:
    """The passage as FlagEmbedding's MKQA evaluation encodes and searches it for answers."""
    return unify_punctuation(f"{title}\n{text}".lower())


def tokenize(text: str) -> tuple[str, ...]:
    """DPR's ``SimpleTokenizer(...).tokenize(NFD(text)).words(uncased=True)``."""
    return tuple(token.lower() for token in _TOKEN.findall(unicodedata.normalize("NFD", text)))


@lru_cache(maxsize=1 << 16)
def answer_tokens(answer: str) -> tuple[str, ...]:
    """An answer's tokens, cached: every language of MKQA asks the same questions with the same answers."""
    return tokenize(answer)


@dataclass(frozen=True)
class AnswerSet:
    """One question's answers as token sequences, tokenized once and matched against many passages."""

    sequences: tuple[tuple[str, ...], ...]

    @classmethod
    def of(cls, answers: Iterable[str]) -> AnswerSet:
        """Answers with no token are left out (see the module notes: DPR would let them match everything)."""
        return cls(tuple(dict.fromkeys(seq for seq in map(answer_tokens, answers) if seq)))

    def found_in(self, passage: str) -> bool:
        """Whether the passage holds one of the answers, as DPR's ``has_answer`` decides it."""
        if not self.sequences:
            return False
        text = unicodedata.normalize("NFD", passage)
        if "Σ" not in text:
            # A cheap test that only rules passages out: without Σ (the one letter Python lowercases by context)
            # every lowercased token is a substring of the lowercased text, so a missing first token means no match.
            folded = text.lower()
            if not any(seq[0] in folded for seq in self.sequences):
                return False
        tokens = [token.lower() for token in _TOKEN.findall(text)]
        for seq in self.sequences:
            width = len(seq)
            for start in range(len(tokens) - width + 1):
                if tokens[start] == seq[0] and tuple(tokens[start : start + width]) == seq:
                    return True
        return False


def has_answer(answers: Iterable[str], passage: str) -> bool:
    """Whether ``passage`` contains one of ``answers``: DPR's ``has_answer`` with match type ``string``."""
    return AnswerSet.of(answers).found_in(passage)


def first_hit_rank(found: Iterable[bool]) -> int:
    """The 1-based rank of a question's first answer-bearing passage, 0 when none of its passages has one.

    Reads lazily, so a caller passing a generator stops matching at the first hit.
    """
    return next((rank for rank, hit in enumerate(found, start=1) if hit), 0)


def answer_recall(first_hit_ranks: Sequence[int] | np.ndarray, k_values: Sequence[int]) -> dict[str, np.ndarray]:
    """Per question, 1.0 when its first answer-bearing passage is within the top k, else 0.0 (``recall_at_<k>``).

    Each question is judged on its own ranking only, however long the others' are; the mean over questions is
    Recall@k as the BGE-M3 paper reports it for MKQA.
    """
    ranks = np.asarray(first_hit_ranks, dtype=np.int64)
    return {f"recall_at_{k}": ((ranks >= 1) & (ranks <= k)).astype(np.float64) for k in k_values}
