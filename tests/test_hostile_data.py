"""Issue 12, classes 5 and 6: degenerate data and inputs that used to end in a traceback.

Each case runs ``evalkit`` as a user would, on a small made-up task (a spec file found through
``EVALKIT_TASKS_PATH`` whose ``data_dir`` holds the files), and asserts the contract: exit 2 with one line naming
the file / line / field, nothing written to the output folder, nothing outside it changed; or, for valid but
degenerate data, a run that succeeds and says so in the run record.
"""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hostile import run_cli, snapshot

from evalkit.errors import DataError
from evalkit.evaluators.outcome import PerItemScores, SplitOutcome, TaskOutcome
from evalkit.kinds import get_kind
from evalkit.loaders.hub import _strings
from evalkit.metrics.pair_classification import pair_classification_scores
from evalkit.metrics.retrieval import K_VALUES, METRIC_PREFIXES
from evalkit.metrics.sts import pair_similarities, sts_scores

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
STS_ROWS = [
    {"sentence1": "A man plays a guitar.", "sentence2": "A man is playing music.", "score": 4.2},
    {"sentence1": "A cat sleeps.", "sentence2": "The stock market fell.", "score": 0.1},
    {"sentence1": "Kids play football.", "sentence2": "Children are playing soccer.", "score": 4.8},
]


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    """Dicts are dumped with ``ensure_ascii`` (so ``\\ud800`` stays a JSON escape); strings are written raw."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def make_task(root: Path, name: str, task_type: str, spec_extra: str = "") -> Path:
    """A spec ``<root>/specs/<name>.yaml`` pointing at ``<root>/data/<name>``; returns that data folder."""
    data = root / "data" / name
    data.mkdir(parents=True, exist_ok=True)
    specs = root / "specs"
    specs.mkdir(exist_ok=True)
    (specs / f"{name}.yaml").write_text(
        f"name: {name}\ntype: {task_type}\nlanguages: [eng-Latn]\neval_splits: [test]\ndata_dir: ../data/{name}\n"
        + spec_extra,
        encoding="utf-8",
    )
    return data


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("EVALKIT_TASKS_PATH", str(tmp_path / "specs"))
    return tmp_path


def run_refused(root: Path, capsys: pytest.CaptureFixture[str], *tasks: str) -> str:
    """``evalkit run`` on ``tasks``: exit 2, one line, the output folder never created, the inputs untouched."""
    before = snapshot(root)
    out = root / "out"
    outcome = run_cli(
        ["run", "--model", MODEL, "--quiet", "--no-hub", "--no-cache", "--tasks", *tasks, "--output", out], capsys
    )
    assert outcome.code == 2, outcome.stderr
    line = outcome.error_line
    assert not out.exists()
    assert snapshot(root) == before
    return line


# --- class 5: degenerate data -------------------------------------------------------------------------------


@pytest.mark.parametrize("score_range", ["[5, 0]", "[3, 3]", "[0, .nan]", "[true, 5]"])
def test_bad_score_range_is_refused_when_the_spec_is_parsed(
    root: Path, capsys: pytest.CaptureFixture[str], score_range: str
) -> None:
    write_jsonl(make_task(root, "MySTS", "STS", f"score_range: {score_range}\n") / "test.jsonl", STS_ROWS)
    line = run_refused(root, capsys, "MySTS")
    assert "MySTS.yaml:6: field 'score_range'" in line


@pytest.mark.parametrize(
    ("rows", "problem"),
    [([{**r, "score": 2.5} for r in STS_ROWS], "every gold score is 2.5"), (STS_ROWS[:1], "at least 2 pairs")],
)
def test_gold_scores_without_a_correlation_are_refused_at_load(
    root: Path, capsys: pytest.CaptureFixture[str], rows: list[dict[str, Any]], problem: str
) -> None:
    write_jsonl(make_task(root, "MySTS", "STS") / "test.jsonl", rows)
    line = run_refused(root, capsys, "MySTS")
    assert "test.jsonl: field 'score'" in line and problem in line


def test_a_main_score_the_type_does_not_compute_is_refused_before_encoding(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_jsonl(make_task(root, "MySTS", "STS", "main_score: ndcg_at_10\n") / "test.jsonl", STS_ROWS)
    line = run_refused(root, capsys, "MySTS")
    assert "MySTS.yaml:6: field 'main_score'" in line and "not a STS score" in line


def test_a_non_finite_main_score_names_task_and_split_and_is_never_written(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Identical sentences on both sides: every similarity is 1, so no correlation exists after the encoding."""
    rows = [{"sentence1": "same words", "sentence2": "same words", "score": float(s)} for s in (1, 2, 3)]
    write_jsonl(make_task(root, "MySTS", "STS") / "test.jsonl", rows)
    out = root / "out"
    outcome = run_cli(
        ["run", "--model", MODEL, "--quiet", "--no-hub", "--no-cache", "--tasks", "MySTS", "--output", out], capsys
    )
    assert outcome.code == 2
    assert "task 'MySTS', split 'test', subset 'default': the main score is nan" in outcome.error_line
    assert not [p for p in out.rglob("*") if p.is_file()] if out.exists() else True


def test_outcome_refuses_a_non_finite_main_score() -> None:
    split = SplitOutcome("dev", "en", ("eng-Latn",), {"x": math.inf}, math.inf, PerItemScores([], {}))
    with pytest.raises(DataError, match="task 'T', split 'dev', subset 'en'"):
        TaskOutcome("T", [split], 0.0)


def test_sts_scores_of_undefined_correlations_are_nan_not_a_scipy_error() -> None:
    vectors = np.eye(3, dtype=np.float32)
    for gold in (np.array([1.0]), np.array([2.0, 2.0, 2.0])):
        n = len(gold)
        scores = sts_scores(pair_similarities(vectors[:n], vectors[:n][::-1]), gold)
        assert all(math.isnan(v) for v in scores.values())


def test_degenerate_but_valid_data_is_scored_with_a_warning(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every judgement grade 0 (retrieval) and one label only (pair classification): scores, and a warning."""
    retrieval = make_task(root, "MyRetrieval", "Retrieval")
    write_jsonl(retrieval / "corpus.jsonl", [{"_id": f"d{i}", "text": f"document {i}"} for i in range(3)])
    write_jsonl(retrieval / "queries.jsonl", [{"_id": "q1", "text": "document one"}])
    (retrieval / "qrels").mkdir()
    (retrieval / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t0\n")
    pairs = make_task(root, "MyPairs", "PairClassification")
    write_jsonl(pairs / "test.jsonl", [{**r, "labels": 1} for r in STS_ROWS])
    out = root / "out"
    outcome = run_cli(
        [
            "run",
            "--model",
            MODEL,
            "--quiet",
            "--no-hub",
            "--no-cache",
            "--tasks",
            "MyRetrieval",
            "MyPairs",
            "--output",
            out,
        ],
        capsys,
    )
    assert outcome.code == 0, outcome.stderr
    records = {p.name.split(".")[0]: json.loads(p.read_text()) for p in out.rglob("*.run.json")}
    assert records["MyRetrieval"]["warnings"] == [
        "test/default: no judgement has a grade above 0, so every ranking score is 0"
    ]
    assert records["MyPairs"]["warnings"] == [
        "test/default: every pair has label 1: the scores say little about the model"
    ]
    results = {p.stem: json.loads(p.read_text()) for p in out.rglob("My*.json") if p.parent.name != "evalkit"}
    assert all(math.isfinite(r["scores"]["test"][0]["main_score"]) for r in results.values())
    printed = [line for line in outcome.stderr.splitlines() if line.startswith("evalkit: warning: ")]
    assert printed == [
        "evalkit: warning: MyRetrieval: test/default: no judgement has a grade above 0, so every ranking score is 0",
        "evalkit: warning: MyPairs: test/default: every pair has label 1: the scores say little about the model",
    ]


def test_the_score_names_table_matches_what_the_metrics_compute() -> None:
    vectors = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    sts = sts_scores(pair_similarities(vectors, vectors[::-1]), np.array([1.0, 2.0, 3.0, 4.0]))
    assert set(sts) == get_kind("STS").score_names
    from evalkit.metrics.pair_classification import pair_similarities as pair_label_similarities

    pair = pair_classification_scores(pair_label_similarities(vectors, vectors[::-1].copy()), np.array([0, 1, 0, 1]))
    assert set(pair) == get_kind("PairClassification").score_names
    ranking = {f"{prefix}_at_{k}" for prefix in METRIC_PREFIXES for k in K_VALUES} | {"accuracy"}
    assert ranking == get_kind("Retrieval").score_names


# --- class 6: inputs that used to end in a traceback ----------------------------------------------------------


def test_a_lone_surrogate_in_a_document_is_refused_before_any_task_is_written(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The first task is fine; the second's corpus holds ``"\\ud800"``: nothing at all is written."""
    write_jsonl(make_task(root, "AGoodSTS", "STS") / "test.jsonl", STS_ROWS)
    retrieval = make_task(root, "MyRetrieval", "Retrieval")
    write_jsonl(retrieval / "corpus.jsonl", [{"_id": "d1", "text": "fine"}, {"_id": "d2", "text": "bad \ud800 text"}])
    write_jsonl(retrieval / "queries.jsonl", [{"_id": "q1", "text": "a query"}])
    (retrieval / "qrels").mkdir()
    (retrieval / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    line = run_refused(root, capsys, "AGoodSTS", "MyRetrieval")
    assert "corpus.jsonl:2: field 'text'" in line and "lone surrogate" in line


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ({"sentence1": "ok", "sentence2": "x\udfff", "labels": 1}, "sentence2"),
        ({"sentence1": ["ok", "\ud83d"], "sentence2": ["a", "b"], "labels": [0, 1]}, "sentence1[1]"),
        ({"sentence1": "ok", "sentence2": "ok", "labels": 1, "meta": {"\ud800": 1}}, "meta.<key>"),
    ],
)
def test_a_lone_surrogate_anywhere_in_a_row_names_its_field(
    root: Path, capsys: pytest.CaptureFixture[str], row: dict[str, Any], field: str
) -> None:
    write_jsonl(make_task(root, "MyPairs", "PairClassification") / "test.jsonl", [row])
    assert f"test.jsonl:1: field '{field}'" in run_refused(root, capsys, "MyPairs")


def test_a_lone_surrogate_in_hub_rows_names_the_row() -> None:
    with pytest.raises(DataError, match=r"hub:org/x@r: field 'text': row 1: invalid text"):
        _strings(["fine", "bad\ud800"], "hub:org/x@r", "corpus", "text")


def test_damaged_deflate_data_in_a_gz_file(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = make_task(root, "MySTS", "STS")
    packed = bytearray(gzip.compress(("".join(json.dumps(r) + "\n" for r in STS_ROWS * 50)).encode()))
    packed[20:40] = b"\xff" * 20  # the header stays valid; the deflate stream does not
    (data / "test.jsonl.gz").write_bytes(bytes(packed))
    line = run_refused(root, capsys, "MySTS")
    assert "test.jsonl.gz" in line and "cannot read the file" in line


def test_deeply_nested_json(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nested = '{"sentence1": ' + "[" * 100_000 + "]" * 100_000 + ', "sentence2": "b", "score": 1}'
    write_jsonl(make_task(root, "MySTS", "STS") / "test.jsonl", [STS_ROWS[0], nested])
    assert "test.jsonl:2: invalid JSON (nested too deeply)" in run_refused(root, capsys, "MySTS")


def test_invalid_utf8_bytes_in_a_qrels_file(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    retrieval = make_task(root, "MyRetrieval", "Retrieval")
    write_jsonl(retrieval / "corpus.jsonl", [{"_id": "d1", "text": "fine"}])
    write_jsonl(retrieval / "queries.jsonl", [{"_id": "q1", "text": "a query"}])
    (retrieval / "qrels").mkdir()
    (retrieval / "qrels" / "test.tsv").write_bytes(b"query-id\tcorpus-id\tscore\nq1\td\xff1\t1\n")
    assert "test.tsv:2: not valid UTF-8" in run_refused(root, capsys, "MyRetrieval")


@pytest.mark.parametrize(
    ("yaml_text", "where"),
    [
        ("? [a, b]\n: 1\n", "MyTask.yaml:1"),  # a non-scalar key
        (
            "name: MyTask\ndescription: !!python/object/apply:os.system [echo hi]\n",
            "MyTask.yaml:2: field 'description'",
        ),
        ("name: MyTask\nversion: 2001-02-30\n", "MyTask.yaml:2: field 'version'"),
        ('name: MyTask\ndescription: "bad \\ud800"\n', "MyTask.yaml:2: field 'description'"),
        (
            "name: MyTask\ntype: STS\nlanguages: [eng-Latn]\neval_splits: [../../etc]\nmirror_only: true\n",
            "MyTask.yaml:4: field 'eval_splits'",
        ),
        ("name: MyTask\ndescription: &a [*a]\n", "aliases refer to themselves or expand too far"),
        (
            "name: MyTask\nv0: &v0 [x, x, x, x, x, x, x, x, x, x]\n"
            + "".join(f"v{i}: &v{i} [{', '.join([f'*v{i - 1}'] * 10)}]\n" for i in range(1, 7)),
            "aliases refer to themselves or expand too far",
        ),  # a "billion laughs"
    ],
)
def test_hostile_yaml_specs_are_one_line_errors_for_run_and_tasks(
    root: Path, capsys: pytest.CaptureFixture[str], yaml_text: str, where: str
) -> None:
    (root / "specs").mkdir()
    (root / "specs" / "MyTask.yaml").write_text(yaml_text, encoding="utf-8")
    line = run_refused(root, capsys, "MyTask")
    assert where in line and "MyTask.yaml" in line
    listed = run_cli(["tasks"], capsys)
    assert listed.code == 2 and where in listed.error_line
