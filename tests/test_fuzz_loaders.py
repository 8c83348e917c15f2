"""Property tests over every loader and spec parser: any bytes give parsed data or evalkit's own error.

Issue 12: an exception other than ``EvalkitError`` reaching the CLI is a bug (exit 70). Each parser gets arbitrary
bytes, and text shaped like its format (JSON objects with its field names, lone surrogates, deep nesting, TSV
rows, YAML with tags and odd keys), so the search reaches past the first parse error. Bounded and derandomized.
"""

from __future__ import annotations

import gzip
import json
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evalkit.errors import EvalkitError
from evalkit.loaders.beir import read_corpus, read_qrels, read_queries
from evalkit.loaders.jsonl import iter_jsonl
from evalkit.loaders.miracl import read_miracl_corpus, read_topics, read_trec_qrels
from evalkit.loaders.mkqa import read_questions
from evalkit.loaders.pair_labels import load_pair_label_split
from evalkit.loaders.pairs import load_pair_split
from evalkit.loaders.reranking import _read_top_ranked, load_v1_reranking_split
from evalkit.registry.benchmarks import parse_benchmark_spec
from evalkit.registry.models import load_model_registry
from evalkit.registry.tasks import parse_task_spec

FUZZ = settings(
    max_examples=200, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow], database=None
)
FIELDS = [
    "_id",
    "docid",
    "id",
    "title",
    "text",
    "question",
    "answers",
    "sentence1",
    "sentence2",
    "score",
    "labels",
    "label",
    "query",
    "positive",
    "negative",
    "query-id",
    "corpus-ids",
]

plain_texts = st.text(alphabet=st.characters(codec="utf-8"), max_size=12)
texts = plain_texts | st.sampled_from(["", " ", "#", "a\tb"])
lone_surrogates = st.sampled_from(["\ud800", "a\udfffb", "\udc80x"])  # valid JSON escapes, no valid UTF-8
scalars = st.none() | st.booleans() | st.integers() | st.floats() | texts | lone_surrogates
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(FIELDS), inner, max_size=4)
)
ids = st.sampled_from(["q1", "d1", "1", "x"]) | st.integers(-2, 2) | texts
PLAUSIBLE = st.fixed_dictionaries(  # a row every reader accepts, before the mutations below
    {
        "_id": ids,
        "docid": ids,
        "id": ids,
        "query-id": ids,
        "corpus-ids": st.lists(ids, max_size=3),
        "title": texts,
        "text": texts,
        "question": texts,
        "query": texts,
        "answers": st.lists(texts, max_size=3),
        "sentence1": texts,
        "sentence2": texts,
        "score": st.floats() | st.integers(0, 5),
        "labels": st.sampled_from([0, 1, 2, 1.0, True]),
        "positive": st.lists(texts, max_size=3),
        "negative": st.lists(texts, max_size=3),
    }
)
json_objects = st.builds(
    lambda base, changed, dropped: {k: v for k, v in {**base, **changed}.items() if k not in dropped},
    PLAUSIBLE,
    st.dictionaries(st.sampled_from(FIELDS) | texts, json_values, max_size=3),
    st.sets(st.sampled_from(FIELDS), max_size=3),
)
json_lines = st.one_of(
    json_objects.map(lambda o: json.dumps(o)),  # ensure_ascii: surrogates stay \\u escapes
    json_objects.map(lambda o: json.dumps(o, ensure_ascii=False, allow_nan=True)),
    st.integers(1, 3000).map(lambda n: '{"text": ' + "[" * n + "]" * n + "}"),
    st.sampled_from(['{"a": 1' + "0" * 5000 + "}", "[1, 2]", "{", '{"score": NaN}', '{"_id": "\\ud800"}']),
    texts,
)
json_files = st.lists(json_lines, max_size=6).map(lambda lines: "\n".join(lines).encode("utf-8", "surrogatepass"))
tsv_cells = st.sampled_from(["q1", "d1", "0", "1", "-1", "Q0", "x", "", " ", "2.5", "q#1"]) | texts | lone_surrogates
tsv_lines = st.lists(tsv_cells, max_size=5).flatmap(
    lambda cells: st.sampled_from(["\t", " ", ","]).map(lambda sep: sep.join(cells))
)
tsv_files = st.lists(tsv_lines, max_size=6).map(lambda lines: "\n".join(lines).encode("utf-8", "surrogatepass"))
any_bytes = st.binary(max_size=300)


def file_bytes(shaped: st.SearchStrategy[bytes]) -> st.SearchStrategy[tuple[bytes, str]]:
    """``(content, how)``: written plain, gzipped (``.gz``), or as they are under a ``.gz`` name (not gzip data,
    or a gzip stream damaged past its header)."""
    damaged = shaped.map(lambda b: gzip.compress(b * 20)[:-8] + b"\xff" * 8)
    return st.one_of(
        st.tuples(st.one_of(shaped, shaped, shaped, any_bytes), st.sampled_from(["plain", "plain", "gzip"])),
        st.tuples(st.one_of(damaged, any_bytes), st.just("as-is.gz")),
    )


@contextmanager
def written(content: tuple[bytes, str], name: str) -> Iterator[Path]:
    data, how = content
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / (name if how == "plain" else f"{name}.gz")
        path.write_bytes(gzip.compress(data) if how == "gzip" else data)
        yield path


def parses_or_refuses(function: Callable[[Path], Any], path: Path) -> None:
    """The property: the call returns, or raises evalkit's own error (anything else propagates and fails)."""
    with suppress(EvalkitError):
        function(path)


JSONL_READERS: dict[str, Callable[[Path], Any]] = {
    "iter_jsonl": lambda p: list(iter_jsonl(p)),
    "beir corpus": read_corpus,
    "beir queries": read_queries,
    "miracl corpus": read_miracl_corpus,
    "mkqa questions": read_questions,
    "sts pairs": load_pair_split,
    "labelled pairs": load_pair_label_split,
    "reranking v1": lambda p: load_v1_reranking_split(p, "test"),
    "top ranked": lambda p: _read_top_ranked(p, {"d1", "1"}, {"q1", "1"}),
}
TSV_READERS: dict[str, Callable[[Path], Any]] = {
    "beir qrels": read_qrels,
    "miracl topics": read_topics,
    "trec qrels": lambda p: read_trec_qrels(p, {"d1", "x"}, {"q1", "x"}),
}


@FUZZ
@given(content=file_bytes(json_files))
def test_jsonl_loaders(content: tuple[bytes, str]) -> None:
    with written(content, "data.jsonl") as path:
        for reader in JSONL_READERS.values():
            parses_or_refuses(reader, path)


@FUZZ
@given(content=file_bytes(tsv_files))
def test_tsv_loaders(content: tuple[bytes, str]) -> None:
    with written(content, "data.tsv") as path:
        for reader in TSV_READERS.values():
            parses_or_refuses(reader, path)


SPEC_KEYS = [
    "name",
    "type",
    "languages",
    "eval_splits",
    "main_score",
    "hf_subsets",
    "dataset",
    "data_dir",
    "score_range",
    "subset_languages",
    "mirror_only",
    "mteb",
    "version",
    "description",
    "path",
    "revision",
    "[a, b]",
    "{a: 1}",
    "? [x]",
    "<<",
    "!!python/name:os.system",
]
yaml_scalars = st.sampled_from(
    [
        "Fuzz",
        "STS",
        "Retrieval",
        "[eng-Latn]",
        "[test]",
        "[5, 0]",
        "[1, .nan]",
        "ndcg_at_10",
        "cosine_spearman",
        "true",
        "2001-02-30",
        "!!python/object/apply:os.system [x]",
        "!!binary aGk=",
        "&a [*a]",
        "*missing",
        '"\\ud800"',
        "{path: x}",
        "[../x]",
        "'\x00'",
        "1e999",
        "- a",
        "|\n  text",
        "{en: [eng-Latn]}",
        "[true, 3]",
    ]
)
yaml_lines = st.tuples(st.sampled_from(SPEC_KEYS), yaml_scalars, st.sampled_from(["", "  ", "- "])).map(
    lambda t: f"{t[2]}{t[0]}: {t[1]}"
)
yaml_specs = st.dictionaries(st.sampled_from(SPEC_KEYS[:-5]), yaml_scalars, max_size=7).map(
    lambda fields: "\n".join(f"{key}: {value}" for key, value in {"name": "Fuzz", **fields}.items()).encode()
)
yaml_files = st.one_of(
    yaml_specs,
    yaml_specs,  # twice the weight: these get past the YAML and into the spec's own checks
    st.lists(yaml_lines | texts, max_size=8).map(lambda lines: "\n".join(lines).encode("utf-8", "surrogatepass")),
    st.integers(1, 2000).map(lambda n: ("name: Fuzz\ndescription: " + "[" * n + "]" * n).encode()),
)


@FUZZ
@given(content=st.one_of(yaml_files, any_bytes))
def test_task_spec_parser(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "Fuzz.yaml"
        path.write_bytes(content)
        parses_or_refuses(parse_task_spec, path)


@FUZZ
@given(content=st.one_of(yaml_files, any_bytes))
def test_model_registry_parser(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "models.yaml"
        path.write_bytes(content)
        parses_or_refuses(load_model_registry.__wrapped__, path)


BENCHMARK_KEYS = [
    "tasks",
    "languages",
    "aggregates",
    "not_in_mteb",
    "aliases",
    "version",
    "description",
    "reference",
    "language_table",
]
benchmark_values = st.sampled_from(
    [
        "[SciFact]",
        "[SciFact, SciFact]",
        "[CQADupstackRetrieval]",
        "[CQADupstackEnglishRetrieval, SciFact]",
        "[../../etc/passwd]",
        "[eng, xx-Zzzz]",
        "[zzz]",
        "{SciFact: {type: Retrieval, note: x}}",
        "{Fuzz: [SciFact]}",
        "'\x00'",
        "[1, 2]",
        "Fuzz",
        "{type: STS}",
        '"\\ud800"',
    ]
)
benchmark_files = st.dictionaries(st.sampled_from(BENCHMARK_KEYS), benchmark_values, min_size=1, max_size=6).map(
    lambda fields: "\n".join(
        f"{key}: {value}" for key, value in {"name": "Fuzz", "tasks": "[SciFact]", **fields}.items()
    ).encode()
)


@settings(FUZZ, max_examples=100)
@given(content=st.one_of(benchmark_files, any_bytes))
def test_benchmark_spec_parser(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "Fuzz.yaml"
        path.write_bytes(content)
        parses_or_refuses(parse_benchmark_spec, path)
