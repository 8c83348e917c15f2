"""Task kinds: each task type is one module and one registry line.

The worked example registers a new type from inside the test — "WordOverlap": sentence pairs whose target is their
word overlap, scored by the Spearman correlation of the model's cosine with it — writes a spec and a mirror folder
for a task of that type, and runs it through ``evalkit run`` with the packaged model. No evalkit file changes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from evalkit.cli import main
from evalkit.errors import EvalkitError, SpecError
from evalkit.evaluators.outcome import PerItemScores, SplitOutcome
from evalkit.kinds import (
    PerItemStatistic,
    SplitArgs,
    TaskKind,
    all_kinds,
    each_split,
    get_kind,
    known_types,
    register,
    unregister,
)
from evalkit.loaders.checksums import source_file
from evalkit.loaders.jsonl import get_str, iter_jsonl
from evalkit.loaders.mirror import each_subset, one_file_per_split
from evalkit.pipeline.models import RunModels
from evalkit.records import PairSplit, SourceFile, Split
from evalkit.registry.tasks import parse_task_spec

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
RESULTS = "sentence-transformers__all-MiniLM-L6-v2/8b3219a92973c328a8e22fadcfa821b5dc75636a"
PAIRS = [
    ("the cat sat on the mat", "a cat sat on a mat"),
    ("the cat sat on the mat", "stock prices fell sharply today"),
    ("bake the cake for forty minutes", "bake the bread for twenty minutes"),
    ("interest rates rose again", "interest rates rose again this year"),
    ("the striker scored a late goal", "the goalkeeper saved a late penalty"),
    ("add sugar and butter to the dough", "investors sold their bonds"),
]


# --- the new type: a reader, an evaluator, a kind ---------------------------------------------------------------


def word_overlap(text1: str, text2: str) -> float:
    words1, words2 = set(text1.lower().split()), set(text2.lower().split())
    return len(words1 & words2) / len(words1 | words2)


def load_overlap_pairs(path: Path) -> tuple[Split, SourceFile]:
    """``<split>.jsonl`` rows of ``sentence1``/``sentence2``; the target is computed, not read."""
    texts1, texts2 = [], []
    for line, row in iter_jsonl(path):
        texts1.append(get_str(row, "sentence1", path=path, line=line))
        texts2.append(get_str(row, "sentence2", path=path, line=line))
    overlaps = np.array([word_overlap(a, b) for a, b in zip(texts1, texts2, strict=True)])
    return PairSplit(texts1=texts1, texts2=texts2, scores=overlaps), source_file(path)


def evaluate_overlap(split: Split, models: RunModels, args: SplitArgs) -> SplitOutcome:
    assert isinstance(split, PairSplit)
    vectors = models.core.encode(
        models.encoder, split.texts1 + split.texts2, "symmetric", prompt=args.prompts.symmetric
    )
    first, second = vectors[: len(split)], vectors[len(split) :]
    cosine = np.sum(first * second, axis=1) / (np.linalg.norm(first, axis=1) * np.linalg.norm(second, axis=1))
    scores = {"overlap_spearman": float(stats.spearmanr(cosine, split.scores).statistic)}
    return SplitOutcome(
        split=args.split_name,
        hf_subset=args.hf_subset,
        languages=args.languages,
        scores=scores,
        main_score=scores[args.main_score],
        per_item=PerItemScores([str(i) for i in range(len(split))], {"gold": split.scores, "cosine": cosine}),
    )


WORD_OVERLAP = TaskKind(
    name="WordOverlap",
    split_type=PairSplit,
    default_main_score="overlap_spearman",
    evaluate=each_split(evaluate_overlap),
    read_mirror=each_subset(one_file_per_split(load_overlap_pairs)),
    score_names=frozenset({"overlap_spearman"}),
    per_item_statistic=lambda main_score: PerItemStatistic("cosine", "spearman"),
)


@pytest.fixture
def word_overlap_kind() -> Iterator[TaskKind]:
    register(WORD_OVERLAP)  # the one registry line
    yield WORD_OVERLAP
    unregister("WordOverlap")


def write_spec(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(text)
    return path


# --- tests ------------------------------------------------------------------------------------------------------


def test_a_new_type_is_one_module_and_one_registry_line(
    word_overlap_kind: TaskKind, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = "name: OverlapToy\nmteb: false\ntype: WordOverlap\nlanguages: [eng-Latn]\neval_splits: [test]\n"
    write_spec(tmp_path / "specs", "OverlapToy", spec + "mirror_only: true\n")
    monkeypatch.setenv("EVALKIT_TASKS_PATH", str(tmp_path / "specs"))
    rows = "".join(json.dumps({"sentence1": a, "sentence2": b}) + "\n" for a, b in PAIRS)
    (tmp_path / "data" / "OverlapToy").mkdir(parents=True)
    (tmp_path / "data" / "OverlapToy" / "test.jsonl").write_text(rows)
    out = tmp_path / "out"
    argv = ["run", "--model", MODEL, "--tasks", "OverlapToy", "--data-dir", str(tmp_path / "data"),
            "--output", str(out), "--quiet", "--no-hub", "--no-cache"]  # fmt: skip
    assert main(argv) == 0
    result = json.loads((out / RESULTS / "OverlapToy.json").read_text())
    scores = result["scores"]["test"][0]
    assert scores["main_score"] == scores["overlap_spearman"] > 0.5  # similar sentences share words
    assert result["task_name"] == "OverlapToy"


def test_a_spec_main_score_is_checked_against_the_kind(word_overlap_kind: TaskKind, tmp_path: Path) -> None:
    text = "name: OverlapToy\nmteb: false\ntype: WordOverlap\nlanguages: [eng-Latn]\neval_splits: [test]\n"
    path = write_spec(tmp_path, "OverlapToy", text + "mirror_only: true\nmain_score: overlap_pearson\n")
    with pytest.raises(SpecError, match=r"'overlap_pearson' is not a WordOverlap score.*overlap_spearman"):
        parse_task_spec(path)
    path.write_text(text + "mirror_only: true\n")
    assert parse_task_spec(path).main_score == "overlap_spearman"  # the kind's default


def test_an_unknown_type_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(EvalkitError, match=r"unknown task type 'WordOverlap' .*Retrieval.*STS"):
        get_kind("WordOverlap")
    text = "name: Odd\nmteb: false\ntype: WordOverlap\nlanguages: [eng-Latn]\neval_splits: [test]\nmirror_only: true\n"
    with pytest.raises(SpecError, match="field 'type': unknown task type 'WordOverlap'"):
        parse_task_spec(write_spec(tmp_path, "Odd", text))


def test_a_type_is_registered_once(word_overlap_kind: TaskKind) -> None:
    with pytest.raises(EvalkitError, match="already registered"):
        register(WORD_OVERLAP)
    assert register(WORD_OVERLAP, replace=True) is WORD_OVERLAP
    assert "WordOverlap" in known_types() and get_kind("WordOverlap") is WORD_OVERLAP


def test_every_type_of_the_benchmarks_has_a_kind() -> None:
    from evalkit.registry.benchmarks import list_benchmarks

    types = set()
    for bench in list_benchmarks():
        types |= {bench.task_type(task) for task in bench.task_names}
    assert {"Retrieval", "STS", "Classification", "Clustering", "PairClassification", "Reranking"} <= types
    for task_type in types:
        assert get_kind(task_type).name == task_type


def test_every_kind_declares_a_consistent_whole() -> None:
    for kind in all_kinds():
        assert kind.read_mirror is not None and kind.evaluate is not None
        if kind.score_names is not None:
            assert kind.default_main_score in kind.score_names, kind.name
    assert get_kind("STS").per_item_statistic("cosine_spearman") == PerItemStatistic("cosine", "spearman")
    assert get_kind("STS").per_item_statistic("manhattan_pearson") == PerItemStatistic("manhattan", "pearson")
    assert get_kind("Retrieval").per_item_statistic("ndcg_at_10") == PerItemStatistic("ndcg_at_10", "mean")
    assert get_kind("PairClassification").per_item_statistic("max_ap") is None
    assert get_kind("Classification").score_names is None  # mteb's evaluator names its scores
    assert get_kind("AnswerRetrieval").read_hub is None and get_kind("AnswerRetrieval").retrieval == "dense"
    assert [kind.name for kind in all_kinds() if kind.retrieval == "any"] == ["Retrieval"]


def test_knowing_the_types_imports_no_kind_and_parsing_specs_no_torch() -> None:
    code = (
        "import sys\nfrom evalkit.kinds import known_types\nassert 'STS' in known_types()\n"
        "print(sorted(m for m in sys.modules if m.startswith('evalkit.kinds.') and m != 'evalkit.kinds.kind'))\n"
        "from evalkit.registry.tasks import default_registry\n"
        "default_registry().select(task_type='STS')\n"
        "print([m for m in ('torch', 'transformers') if m in sys.modules])\n"
    )
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split("\n")[:2] == ["[]", "[]"], (out.stdout, time.perf_counter() - started)
