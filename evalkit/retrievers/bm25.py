"""BM25 as mteb's baseline runs it (``mteb/baseline-bm25s``): bm25s, Lucene scoring, k1 = 1.5, b = 0.75.

The language of a task subset picks the preprocessing, exactly as mteb's ``BM25Search`` picks it: a bm25s stopword
list and a Snowball stemmer (PyStemmer) for languages that have them, a character split for scripts written without
spaces, and for a language with no stopword list the tokens found in at least 90 % of the documents dropped
instead. Subsets with several languages, and no language at all, fall back to English, as in mteb.

Documents and queries are tokenized separately; a query term the corpus never saw scores nothing. The texts are
taken as given: mteb joins a document's title and text with a newline, and since tokens are runs of word
characters any separator gives the same tokens.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import numpy as np
import scipy.sparse as sp

from evalkit.core.outputs import SparseRows
from evalkit.errors import EvalkitError
from evalkit.retrievers import LEXICAL_CAPABILITIES
from evalkit.search.dense import TopK

# ISO 639-3 code → (bm25s stopword key, PyStemmer language, tokenizer): mteb's ``_ISO3_TO_LANG``, copied so that a
# change there shows up as a failing test (tests/test_bm25.py) instead of silently changing scores here.
LANGUAGE_SETTINGS: dict[str, tuple[str | None, str | None, str | None]] = {
    "eng": ("en", "english", None),
    "deu": ("de", "german", None),
    "nld": ("nl", "dutch", None),
    "fra": ("fr", "french", None),
    "spa": ("es", "spanish", None),
    "por": ("pt", "portuguese", None),
    "ita": ("it", "italian", None),
    "rus": ("ru", "russian", None),
    "swe": ("sv", "swedish", None),
    "nob": ("no", "norwegian", None),
    "nno": ("no", "norwegian", None),
    "nor": ("no", "norwegian", None),
    "zho": ("zh", None, "char"),
    "cmn": ("zh", None, "char"),
    "jpn": (None, None, "char"),
    "kor": (None, None, "char"),
    "tha": (None, None, "char"),
    "khm": (None, None, "char"),
    "mya": (None, None, "char"),
    "bod": (None, None, "char"),
    "lao": (None, None, "char"),
    "ara": (None, "arabic", None),
    "arb": (None, "arabic", None),
    "hye": (None, "armenian", None),
    "eus": (None, "basque", None),
    "cat": (None, "catalan", None),
    "dan": (None, "danish", None),
    "epo": (None, "esperanto", None),
    "est": (None, "estonian", None),
    "fin": (None, "finnish", None),
    "ell": (None, "greek", None),
    "hin": (None, "hindi", None),
    "hun": (None, "hungarian", None),
    "ind": (None, "indonesian", None),
    "gle": (None, "irish", None),
    "lit": (None, "lithuanian", None),
    "nep": (None, "nepali", None),
    "ron": (None, "romanian", None),
    "srp": (None, "serbian", None),
    "tam": (None, "tamil", None),
    "tur": (None, "turkish", None),
    "yid": (None, "yiddish", None),
}

_SUM_OF_TERM_WEIGHTS = ("lucene", "robertson", "atire")
"""bm25s methods whose score is a plain sum of per-term document weights (BM25L and BM25+ add a constant per
query term for documents without it)."""

_STOPWORD_LISTS = {
    "en": "STOPWORDS_EN",
    "de": "STOPWORDS_GERMAN",
    "nl": "STOPWORDS_DUTCH",
    "fr": "STOPWORDS_FRENCH",
    "es": "STOPWORDS_SPANISH",
    "pt": "STOPWORDS_PORTUGUESE",
    "it": "STOPWORDS_ITALIAN",
    "ru": "STOPWORDS_RUSSIAN",
    "sv": "STOPWORDS_SWEDISH",
    "no": "STOPWORDS_NORWEGIAN",
    "zh": "STOPWORDS_CHINESE",
}


def task_language(languages: Sequence[str]) -> str:
    """The one ISO 639-3 code of a subset's languages (``eng-Latn`` → ``eng``); ``eng`` when there are several or
    none, which is what mteb's BM25 falls back to."""
    codes = {language.split("-")[0] for language in languages}
    return next(iter(codes)) if len(codes) == 1 else "eng"


@dataclass(frozen=True)
class Preprocessing:
    """How one language's texts become BM25 terms."""

    stopwords: str | None  # a bm25s stopword list key
    stemmer: str | None  # a PyStemmer language
    tokenizer: str | None  # None: bm25s's word tokenizer; "char": one term per character

    @classmethod
    def for_language(cls, language: str) -> Preprocessing:
        return cls(*LANGUAGE_SETTINGS.get(language, (None, None, None)))


def _char_terms(text: str) -> list[str]:
    """Characters as terms, for scripts without spaces: NFKC, lower-cased, spaces removed (mteb's ``char``)."""
    return list(unicodedata.normalize("NFKC", text).lower().replace(" ", ""))


class BM25Retriever:
    """BM25 over bm25s with mteb's parameters; satisfies :class:`evalkit.retrievers.LexicalRetriever`.

    ``freq_threshold``: for a language without a stopword list, terms in at least this share of the documents are
    dropped (mteb's default 0.9; 0 turns it off).
    """

    capabilities = LEXICAL_CAPABILITIES  # ranks texts itself; its term weights are a hybrid's sparse rows

    def __init__(
        self,
        name: str = "bm25",
        *,
        k1: float = 1.5,
        b: float = 0.75,
        delta: float = 0.5,
        method: str = "lucene",
        freq_threshold: float = 0.9,
        show_progress: bool = False,
    ) -> None:
        try:
            import bm25s  # noqa: F401  (checked here so a missing package fails at load, not mid-run)
        except ImportError:
            raise EvalkitError("the bm25 model needs the bm25s package (pip install bm25s PyStemmer)") from None
        self.name = name
        self.k1, self.b, self.delta, self.method = k1, b, delta, method
        self.freq_threshold = freq_threshold
        self.show_progress = show_progress

    def fingerprint(self) -> dict[str, object]:
        return {
            "model": self.name,
            "adapter": "bm25",
            "k1": self.k1,
            "b": self.b,
            "delta": self.delta,
            "method": self.method,
            "freq_threshold": self.freq_threshold,
            "bm25s": metadata.version("bm25s"),
        }

    def top_k(self, corpus_texts: list[str], query_texts: list[str], k: int, *, languages: Sequence[str] = ()) -> TopK:
        """Index ``corpus_texts`` and rank it for every query; see :class:`evalkit.retrievers.LexicalRetriever`."""
        k = max(0, min(int(k), len(corpus_texts)))
        if k == 0 or not query_texts:
            empty = (len(query_texts), k)
            return TopK(np.zeros(empty, dtype=np.int64), np.zeros(empty, dtype=np.float32))
        index, terms = self._index(corpus_texts, languages)
        indices = np.empty((len(query_texts), k), dtype=np.int64)
        scores = np.empty((len(query_texts), k), dtype=np.float32)
        no_match = np.zeros(len(corpus_texts), dtype=np.float32)
        for row, query_terms in enumerate(terms.queries(query_texts)):
            # a query left with no terms scores every document 0, as bm25s's own retrieve scores it
            doc_scores = np.asarray(index.get_scores(query_terms), dtype=np.float32) if query_terms else no_match
            indices[row], scores[row] = best_k(doc_scores, k)
        return TopK(indices=indices, scores=scores)

    def sparse_rows(
        self, corpus_texts: list[str], query_texts: list[str], *, languages: Sequence[str] = ()
    ) -> tuple[SparseRows, SparseRows]:
        """BM25 as sparse vectors over the corpus's terms, ``(queries, documents)``: a query's dot product with a
        document is that document's BM25 score for it.

        Lucene's BM25 is a sum over the query's terms (each occurrence counted, as bm25s counts it) of a weight that
        depends on the term and the document only; bm25s precomputes those weights as its index. So a document's
        row is its column of that index and a query's row counts its terms. This is what lets BM25 be the sparse
        retriever of a hybrid (``--sparse-model bm25``), whose weighted sum needs BM25's exact score for documents
        outside BM25's own top k.
        """
        if self.method not in _SUM_OF_TERM_WEIGHTS:
            raise EvalkitError(f"BM25 method {self.method!r} adds a non-occurrence score; it has no sparse form")
        index, terms = self._index(corpus_texts, languages)
        postings = index.scores  # term × document weights, CSR by term (bm25s's ``indptr`` indexed by term id)
        n_terms = len(postings["indptr"]) - 1
        by_term = sp.csr_array(
            (postings["data"], postings["indices"], postings["indptr"]), shape=(n_terms, len(corpus_texts))
        )
        by_doc = sp.csr_array(by_term.T)
        by_doc.sort_indices()
        documents = SparseRows.from_arrays(by_doc.indptr, by_doc.indices, by_doc.data.astype(np.float32))
        query_ids = [index.get_tokens_ids(query_terms) for query_terms in terms.queries(query_texts)]
        counts = [np.unique(np.asarray(ids, dtype=np.int64), return_counts=True) for ids in query_ids]
        offsets = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum([len(ids) for ids, _ in counts], out=offsets[1:])
        queries = SparseRows.from_arrays(
            offsets,
            np.concatenate([ids for ids, _ in counts]) if counts else np.zeros(0, dtype=np.int64),
            np.concatenate([n for _, n in counts]).astype(np.float32) if counts else np.zeros(0, dtype=np.float32),
        )
        return queries, documents

    def _index(self, corpus_texts: list[str], languages: Sequence[str]) -> tuple[Any, _Terms]:
        """The corpus indexed by bm25s, and the term maker (its stopwords fitted on the corpus) for the queries."""
        import bm25s

        terms = _Terms(Preprocessing.for_language(task_language(languages)), self.freq_threshold, self.show_progress)
        index = bm25s.BM25(k1=self.k1, b=self.b, delta=self.delta, method=self.method)
        index.index(terms.fit_corpus(corpus_texts), show_progress=self.show_progress)
        return index, terms


def best_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best documents of one query, best first, equal scores by index — exact at the cut too.

    BM25 gives many documents the same score (every document without a query term scores 0), so which of them
    make the cut must not be left to ``argpartition``: all documents above the k-th score are taken, then the
    lowest-indexed of those equal to it.
    """
    kth = np.partition(scores, len(scores) - k)[len(scores) - k]
    above = np.flatnonzero(scores > kth)
    tied = np.flatnonzero(scores == kth)[: k - len(above)]
    chosen = np.concatenate([above, tied])
    chosen = chosen[np.lexsort((chosen, -scores[chosen]))]
    return chosen, scores[chosen]


class _Terms:
    """Texts → term lists for one language, stopwords learned from the corpus reused for the queries."""

    def __init__(self, preprocessing: Preprocessing, freq_threshold: float, show_progress: bool) -> None:
        self.preprocessing = preprocessing
        self.freq_threshold = freq_threshold
        self.show_progress = show_progress
        self.stopwords: list[str] | None = None
        if preprocessing.stemmer is not None:
            try:
                import Stemmer
            except ImportError:
                raise EvalkitError("the bm25 model needs the PyStemmer package (pip install PyStemmer)") from None
            self.stemmer: Any = Stemmer.Stemmer(preprocessing.stemmer)
        else:
            self.stemmer = None

    def _frequent(self, term_lists: list[list[str]]) -> set[str]:
        """Terms in at least ``freq_threshold`` of the documents: the stopwords of a language without a list."""
        if self.preprocessing.stopwords is not None or self.freq_threshold <= 0:
            return set()
        counts: dict[str, int] = {}
        for terms in term_lists:
            for term in set(terms):
                counts[term] = counts.get(term, 0) + 1
        return {term for term, count in counts.items() if count / len(term_lists) >= self.freq_threshold}

    def _named_stopwords(self) -> set[str]:
        from bm25s import tokenization

        key = self.preprocessing.stopwords
        return set(getattr(tokenization, _STOPWORD_LISTS[key])) if key is not None else set()

    def fit_corpus(self, texts: list[str]) -> list[list[str]]:
        """The documents' terms; sets the stopwords the queries get."""
        named = self._named_stopwords()
        if self.preprocessing.tokenizer == "char":
            term_lists = [_char_terms(text) for text in texts]
        else:
            term_lists = self._word_terms(texts, sorted(named) or None)
        frequent = self._frequent(term_lists)
        self.stopwords = sorted(named | frequent) or None
        if self.preprocessing.tokenizer == "char":
            return [[t for t in terms if t not in named | frequent] for terms in term_lists]
        return [[t for t in terms if t not in frequent] for terms in term_lists] if frequent else term_lists

    def queries(self, texts: list[str]) -> list[list[str]]:
        """The queries' terms, with the corpus's stopwords removed.

        mteb hands the frequency stopwords (stemmed terms) to bm25s as a stopword list, which bm25s applies before
        stemming; this does the same, so a query keeps exactly the terms it keeps in mteb.
        """
        if self.preprocessing.tokenizer == "char":
            stops = set(self.stopwords or ())
            return [[t for t in _char_terms(text) if t not in stops] for text in texts]
        return self._word_terms(texts, self.stopwords)

    def _word_terms(self, texts: list[str], stopwords: list[str] | None) -> list[list[str]]:
        """bm25s's tokenizer: lower-cased runs of two or more word characters, stopwords removed, then stemmed."""
        import bm25s

        tokenized = bm25s.tokenize(
            texts, stopwords=stopwords, stemmer=self.stemmer, show_progress=self.show_progress, return_ids=True
        )
        term_of = {term_id: term for term, term_id in tokenized.vocab.items()}
        return [[term_of[term_id] for term_id in ids] for ids in tokenized.ids]
