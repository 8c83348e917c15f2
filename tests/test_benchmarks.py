"""Named benchmarks and benchmark scores, checked against mteb's own definitions and leaderboard code.

The reference for every score is mteb itself: its benchmark objects for task lists, and for scores the functions the
leaderboard app calls (``ResultCache.load_results`` → ``Benchmark._create_per_task_table`` / ``_create_summary_table``
and ``Benchmark.get_score``) run over the same files.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import mteb
import pytest

from evalkit.errors import DataError, SpecError, UnknownTaskError
from evalkit.registry.benchmarks import get_benchmark, list_benchmarks, parse_benchmark_spec
from evalkit.results.benchmark_scores import benchmark_scores, load_model_results
from evalkit.results.record import TaskRecord, read_task_record

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")

MTEB_BENCHMARKS = {"MTEB(eng, v1)": 56, "MTEB(eng, v2)": 41, "MTEB(cmn, v1)": 31}
CQADUPSTACK_FORUMS = [
    f"CQADupstack{forum}Retrieval"
    for forum in (
        "Android",
        "English",
        "Gaming",
        "Gis",
        "Mathematica",
        "Physics",
        "Programmers",
        "Stats",
        "Tex",
        "Unix",
        "Webmasters",
        "Wordpress",
    )
]
BEIR_18 = [
    "TRECCOVID",
    "BioASQ",
    "NFCorpus",
    "NQ",
    "HotpotQA",
    "FiQA2018",
    "Signal1M",
    "TRECNews",
    "Robust04",
    "ArguAna",
    "Touche2020",
    "CQADupstackRetrieval",
    "QuoraRetrieval",
    "DBPedia",
    "SCIDOCS",
    "FEVER",
    "ClimateFEVER",
    "SciFact",
]
BEIR_NOT_IN_MTEB = {"BioASQ", "Signal1M", "TRECNews", "Robust04"}


# --- the registry -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "count"), MTEB_BENCHMARKS.items())
def test_mteb_benchmarks_have_mtebs_tasks_in_mtebs_order(name: str, count: int) -> None:
    bench = get_benchmark(name)
    mteb_names = [t.metadata.name for t in mteb.get_benchmark(name).tasks]
    assert len(bench.task_names) == count
    assert list(bench.task_names) == mteb_names
    assert [t.metadata.name for t in bench.mteb_tasks()] == mteb_names
    assert bench.source == "mteb"


@pytest.mark.parametrize(
    ("alias", "name"),
    [
        ("MTEB(eng, v1)", "MTEB(eng, v1)"),
        ("MTEB(eng, classic)", "MTEB(eng, v1)"),
        ("MTEB", "MTEB(eng, v1)"),
        ("mteb(eng,v1)", "MTEB(eng, v1)"),
        ("MTEB(eng, v2)", "MTEB(eng, v2)"),
        ("MTEB(cmn, v1)", "MTEB(cmn, v1)"),
        ("C-MTEB", "MTEB(cmn, v1)"),
        ("CMTEB", "MTEB(cmn, v1)"),
        ("MTEB(Chinese)", "MTEB(cmn, v1)"),
        ("BEIR", "BEIR"),
    ],
)
def test_names_and_aliases(alias: str, name: str) -> None:
    assert get_benchmark(alias).name == name


def test_c_mteb_alias_is_ours_not_mtebs() -> None:
    with pytest.raises(KeyError):
        mteb.get_benchmark("C-MTEB")
    assert "C-MTEB" in get_benchmark("MTEB(cmn, v1)").aliases


def test_task_objects_keep_the_benchmarks_restriction() -> None:
    eng = {t.metadata.name: t for t in get_benchmark("MTEB(eng, v1)").mteb_tasks()}
    assert list(eng["STS17"].hf_subsets) == ["en-en"]
    assert list(eng["AmazonReviewsClassification"].hf_subsets) == ["en"]
    cmn = {t.metadata.name: t for t in get_benchmark("C-MTEB").mteb_tasks()}
    assert list(cmn["ATEC"].eval_splits) == ["test"]  # the task's metadata has validation and test
    assert list(cmn["ATEC"].metadata.eval_splits) == ["validation", "test"]


def test_mteb_eng_v1_counts_cqadupstack_as_one_aggregated_task() -> None:
    bench = get_benchmark("MTEB(eng, v1)")
    assert "CQADupstackRetrieval" in bench.task_names
    assert not set(CQADUPSTACK_FORUMS) & set(bench.task_names)
    assert list(bench.aggregates["CQADupstackRetrieval"]) == CQADUPSTACK_FORUMS
    assert [t.metadata.name for t in bench.member_tasks("CQADupstackRetrieval")] == CQADUPSTACK_FORUMS


def test_beir_is_the_papers_18_datasets() -> None:
    bench = get_benchmark("BEIR")
    assert list(bench.task_names) == BEIR_18
    assert "MSMARCO" not in bench.task_names
    assert bench.source.endswith(os.path.join("tasks", "benchmarks", "BEIR.yaml"))
    assert list(bench.aggregates) == ["CQADupstackRetrieval"]
    assert list(bench.aggregates["CQADupstackRetrieval"]) == CQADUPSTACK_FORUMS
    assert [t.metadata.name for t in bench.member_tasks("CQADupstackRetrieval")] == CQADUPSTACK_FORUMS
    assert set(bench.not_in_mteb) == BEIR_NOT_IN_MTEB
    assert all(bench.task_type(name) == "Retrieval" for name in bench.task_names)
    assert [t.metadata.name for t in bench.mteb_tasks()] == [n for n in BEIR_18 if n not in BEIR_NOT_IN_MTEB]


def test_mtebs_own_beir_differs_only_by_msmarco_and_the_non_public_four() -> None:
    mteb_beir = [t.metadata.name for t in mteb.get_benchmark("BEIR").tasks]
    assert len(mteb_beir) == 15
    assert "MSMARCO" in mteb_beir
    assert set(mteb_beir) - {"MSMARCO"} == set(BEIR_18) - BEIR_NOT_IN_MTEB


def test_list_benchmarks() -> None:
    names = [b.name for b in list_benchmarks()]
    assert names[:4] == ["MTEB(eng, v1)", "MTEB(eng, v2)", "MTEB(cmn, v1)", "BEIR"]


def test_unknown_benchmark_is_one_line_naming_the_known_ones() -> None:
    with pytest.raises(UnknownTaskError) as info:
        get_benchmark("MTEB(eng, v3)")
    message = str(info.value)
    assert "\n" not in message
    assert "MTEB(eng, v2)" in message and "BEIR" in message and "MTEB(cmn, v1)" in message


def _write_spec(folder: Path, text: str, name: str = "Mine.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "field", "line", "says"),
    [
        ("name: X\ntasks: [SciFact]\nlanguage: [eng]\n", "language", 3, "unknown field"),
        ("name: X\n", "tasks", 1, "required"),
        ("name: X\ntasks: [SciFakt]\n", "tasks", 2, "did you mean SciFact"),
        ("name: X\ntasks: [SciFact, SciFact]\n", "tasks", 2, "listed twice"),
        ("name: X\ntasks: [SciFact]\nnot_in_mteb:\n  SciFact: {type: Retrieval, note: n}\n", "SciFact", 4, "mteb has"),
        ("name: X\ntasks: [BioASQ]\nnot_in_mteb:\n  BioASQ: {type: Retrieval}\n", "note", 4, "required"),
        ("name: X\ntasks: [BioASQ]\nnot_in_mteb:\n  BioASQ: {type: R, note: n, url: u}\n", "url", 4, "unknown"),
        (
            "name: X\ntasks: [CQADupstackRetrieval]\naggregates:\n  CQADupstackRetrieval: [CQADupstackTexRetrieval]\n",
            "CQADupstackRetrieval",
            4,
            "other members",
        ),
        ("name: X\ntasks: [SciFact]\naggregates:\n  SciFact: [NFCorpus]\n", "SciFact", 4, "ordinary mteb task"),
    ],
)
def test_benchmark_yaml_is_strict(tmp_path: Path, text: str, field: str, line: int, says: str) -> None:
    path = _write_spec(tmp_path, text)
    with pytest.raises(SpecError) as info:
        parse_benchmark_spec(path)
    err = info.value
    assert (err.field, err.line, err.file) == (field, line, str(path))
    assert says in str(err) and "\n" not in str(err)


def test_user_benchmark_from_evalkit_tasks_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_spec(tmp_path / "benchmarks", "name: Tiny\naliases: [tiny-set]\ntasks: [SciFact, NFCorpus]\n")
    monkeypatch.setenv("EVALKIT_TASKS_PATH", str(tmp_path))
    bench = get_benchmark("tiny-set")
    assert (bench.name, bench.task_names) == ("Tiny", ("SciFact", "NFCorpus"))


# --- loading result files -----------------------------------------------------------------------------------------


def _revision_dirs(shared_data: Path) -> list[Path]:
    return sorted(p for p in (shared_data / "mteb_results" / "results").glob("*/*") if p.is_dir())


def test_every_shared_result_file_loads(shared_data: Path) -> None:
    revision_dirs = _revision_dirs(shared_data)
    assert len(revision_dirs) == 7
    for revision_dir in revision_dirs:
        on_disk = {p for p in revision_dir.glob("*.json") if p.name != "model_meta.json"}
        loaded = load_model_results(revision_dir)
        assert {f.result_file for f in loaded} == on_disk
        assert {f.name for f in loaded} == {p.stem for p in on_disk}
        assert [f.result_file for f in load_model_results(revision_dir.parent)] == [f.result_file for f in loaded]
        assert {f.model for f in loaded} == {revision_dir.parent.name.replace("__", "/")}


def test_legacy_pre_1_11_files_are_converted(shared_data: Path) -> None:
    folder = shared_data / "mteb_results" / "results" / "BAAI__bge-small-zh-v1.5" / "no_revision_available"
    files = {f.name: f for f in load_model_results(folder)}
    assert len(files) == 30
    assert files["Cmnli"].revision == "no_revision_available"  # no model_meta.json: identity from the path
    cmnli = files["Cmnli"].scores["validation"][0]
    assert cmnli["main_score"] == cmnli["max_accuracy"]  # {"max": {"accuracy": …}} became max_accuracy
    assert files["T2Reranking"].scores["dev"][0]["main_score"] is None  # only "map"; mteb now wants map_at_1000


def test_a_file_mteb_cannot_read_is_a_data_error(tmp_path: Path) -> None:
    bad = tmp_path / "STS12.json"
    bad.write_text('{"task_name": "STS12", "scores": 3}', encoding="utf-8")
    with pytest.raises(DataError) as info:
        load_model_results(tmp_path)
    assert info.value.file == str(bad) and "\n" not in str(info.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no task result files"):
        load_model_results(tmp_path / "empty")


# --- scores against mteb's leaderboard code, on the real files -----------------------------------------------------


def _none_if_nan(value: Any) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def _assert_same(ours: float | None, reference: Any, what: str) -> None:
    reference = _none_if_nan(reference)
    assert (ours is None) == (reference is None), f"{what}: evalkit {ours}, mteb {reference}"
    if ours is not None:
        assert abs(ours - reference) < 1e-9, f"{what}: evalkit {ours}, mteb {reference}"


@pytest.fixture(scope="module")
def leaderboard(shared_data: Path) -> dict[str, dict[str, Any]]:
    """What mteb's leaderboard code makes of the shared results, per benchmark: per-task and summary tables."""
    cache = mteb.ResultCache(cache_path=shared_data / "mteb_results")
    tables = {}
    for name in MTEB_BENCHMARKS:
        bench = mteb.get_benchmark(name)
        results = cache.load_results(tasks=bench, require_model_meta=False, include_remote=False)
        frame = results._to_results_df(bench.tasks)
        tables[name] = {
            "per_task": bench._create_per_task_table(frame).to_pandas().set_index("Model"),
            "summary": bench._create_summary_table(frame).df.to_pandas().set_index("Model"),
            "get_score": bench.get_score(results),
        }
    return tables


@pytest.mark.parametrize("name", MTEB_BENCHMARKS)
def test_scores_equal_the_leaderboards_for_every_shared_model(
    shared_data: Path, leaderboard: dict[str, dict[str, Any]], name: str
) -> None:
    per_task, summary = leaderboard[name]["per_task"], leaderboard[name]["summary"]
    for model_dir in sorted((shared_data / "mteb_results" / "results").iterdir()):
        scores = benchmark_scores(model_dir, name)
        assert scores.benchmark == name
        assert scores.model == model_dir.name.replace("__", "/")
        assert list(scores.per_task) == list(get_benchmark(name).task_names)
        for task, ours in scores.per_task.items():
            reference = per_task.at[scores.model, task] if scores.model in per_task.index else None
            _assert_same(ours, reference, f"{name} {scores.model} {task}")
            assert (ours is None) == (task in scores.missing) == (task in scores.notes)
        if scores.model not in summary.index:  # mteb drops a model with no score at all from its table
            assert all(v is None for v in scores.per_task.values())
            continue
        for task_type, ours in scores.per_type.items():
            _assert_same(ours, summary.at[scores.model, task_type], f"{name} {scores.model} {task_type}")
        _assert_same(scores.mean, summary.at[scores.model, "Mean (Task)"], f"{name} {scores.model} mean")
        if scores.missing:
            assert scores.mean is None and scores.mean_task_type is None


@pytest.mark.parametrize("name", ["MTEB(eng, v1)", "MTEB(eng, v2)"])
def test_a_complete_model_has_mtebs_mean(shared_data: Path, leaderboard: dict[str, dict[str, Any]], name: str) -> None:
    scores = benchmark_scores(shared_data / "mteb_results" / "results" / "intfloat__multilingual-e5-small", name)
    assert scores.missing == [] and scores.notes == {}
    assert scores.revision == "fd1525a9fd15316a2d503bf26ab031a61d056e98"
    reference = leaderboard[name]["get_score"]["intfloat/multilingual-e5-small"]
    _assert_same(scores.mean, reference["Mean(Task)"], "Mean(Task)")
    _assert_same(scores.mean_task_type, reference["Mean(TaskType)"], "Mean(TaskType)")
    for task_type, ours in scores.per_type.items():
        _assert_same(ours, reference[task_type], task_type)


def test_legacy_c_mteb_model_matches_the_published_flagembedding_figures(shared_data: Path) -> None:
    """bge-small-zh-v1.5's pre-1.11 files: the types mteb scores the same way as FlagEmbedding's table reproduce it.

    FlagEmbedding's published C-MTEB row for bge-small-zh-v1.5 has Retrieval 61.77 and Clustering 44.18. Its STS
    (49.11) and PairClassification (70.41) differ from mteb by design: FlagEmbedding's STS also averages STS22-zh and
    its PairClassification uses max AP where mteb uses max accuracy for Ocnli/Cmnli.
    """
    folder = shared_data / "mteb_results" / "results" / "BAAI__bge-small-zh-v1.5"
    scores = benchmark_scores(folder, "C-MTEB")
    assert (scores.model, scores.revision) == ("BAAI/bge-small-zh-v1.5", "no_revision_available")
    assert round(100 * scores.per_type["Retrieval"], 2) == 61.77
    assert round(100 * scores.per_type["Clustering"], 2) == 44.18
    assert scores.missing == [
        "T2Reranking",
        "MMarcoReranking",
        "CMedQAv1-reranking",
        "CMedQAv2-reranking",
        "MultilingualSentiment",
    ]
    assert "map_at_1000" in scores.notes["T2Reranking"] and "map, mrr" in scores.notes["T2Reranking"]
    assert scores.notes["CMedQAv1-reranking"] == "no result file"
    assert "split 'test'" in scores.notes["MultilingualSentiment"]  # the legacy file has validation only
    assert scores.per_task["AFQMC"] is not None and scores.per_type["Reranking"] is None and scores.mean is None


def test_beir_reports_the_non_public_datasets_as_not_in_mteb(shared_data: Path) -> None:
    scores = benchmark_scores(shared_data / "mteb_results" / "results" / "intfloat__multilingual-e5-small", "BEIR")
    assert scores.missing == ["BioASQ", "Signal1M", "TRECNews", "Robust04"]
    assert all(scores.notes[name].startswith("not in mteb") for name in scores.missing)
    assert scores.mean is None and scores.per_type == {"Retrieval": None}
    v1 = benchmark_scores(shared_data / "mteb_results" / "results" / "intfloat__multilingual-e5-small", "MTEB")
    assert {t: s for t, s in scores.per_task.items() if s is not None} == {
        t: v1.per_task[t] for t in BEIR_18 if t not in BEIR_NOT_IN_MTEB
    }


# --- made-up results ------------------------------------------------------------------------------------------------


def _write_result(folder: Path, task: Any, value: float, splits: list[str] | None = None) -> Path:
    """A TaskResult file as mteb writes it, with ``value`` as every cell's main score."""
    main = task.metadata.main_score
    scores = {
        split: {subset: {main: value, "main_score": value} for subset in task.hf_subsets}
        for split in (splits or task.eval_splits)
    }
    result = mteb.TaskResult.from_task_results(task, scores, evaluation_time=1.0)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{task.metadata.name}.json"
    result.to_disk(path)
    return path


def test_made_up_results_one_task_missing(tmp_path: Path) -> None:
    folder = tmp_path / "results" / "org__made-up" / "rev1"
    bench = get_benchmark("C-MTEB")
    values = {}
    for position, task in enumerate(bench.mteb_tasks()):
        values[task.metadata.name] = 0.5 + position / 100
        if task.metadata.name != "PAWSX":
            _write_result(folder, task, values[task.metadata.name])
    # ATEC's file also holds a validation score; C-MTEB scores the test split only.
    full_atec = mteb.get_task("ATEC")
    (folder / "ATEC.json").unlink()
    atec = mteb.TaskResult.from_task_results(
        full_atec,
        {"validation": {"default": {"cosine_spearman": 0.0, "main_score": 0.0}}}
        | {"test": {"default": {"cosine_spearman": values["ATEC"], "main_score": values["ATEC"]}}},
        evaluation_time=1.0,
    )
    atec.to_disk(folder / "ATEC.json")

    scores = benchmark_scores(folder, bench)
    assert (scores.model, scores.revision) == ("org/made-up", "rev1")
    assert scores.missing == ["PAWSX"] and scores.notes == {"PAWSX": "no result file"}
    assert scores.mean is None and scores.mean_task_type is None and scores.per_type["STS"] is None
    assert scores.per_type["Retrieval"] == pytest.approx(sum(list(values.values())[:8]) / 8, abs=1e-12)
    assert scores.per_task["ATEC"] == pytest.approx(values["ATEC"], abs=1e-12)

    _write_result(folder, next(t for t in bench.mteb_tasks() if t.metadata.name == "PAWSX"), values["PAWSX"])
    complete = benchmark_scores(folder, "C-MTEB")
    assert complete.missing == [] and complete.mean == pytest.approx(sum(values.values()) / 31, abs=1e-12)
    results = mteb.ResultCache(cache_path=tmp_path).load_results(
        tasks=mteb.get_benchmark("MTEB(cmn, v1)"), require_model_meta=False, include_remote=False
    )
    reference = mteb.get_benchmark("MTEB(cmn, v1)").get_score(results)["org/made-up"]
    _assert_same(complete.mean, reference["Mean(Task)"], "Mean(Task)")
    _assert_same(complete.mean_task_type, reference["Mean(TaskType)"], "Mean(TaskType)")


def test_cqadupstack_from_its_forums_as_mteb_aggregates_them(tmp_path: Path) -> None:
    bench = get_benchmark("BEIR")
    forums = bench.member_tasks("CQADupstackRetrieval")
    paths = [_write_result(tmp_path, task, 0.30 + i / 50) for i, task in enumerate(forums)]
    files = load_model_results(tmp_path)

    scores = benchmark_scores(files, bench)
    aggregate_task = mteb.get_task("CQADupstackRetrieval")
    combined = aggregate_task.combine_task_results([mteb.TaskResult.from_disk(f.result_file) for f in files])
    assert scores.per_task["CQADupstackRetrieval"] == pytest.approx(combined.get_score(), abs=1e-12)
    assert "mean of its 12 member tasks" in scores.notes["CQADupstackRetrieval"]
    assert benchmark_scores(tmp_path, "MTEB(eng, v1)").per_task["CQADupstackRetrieval"] == pytest.approx(
        combined.get_score(), abs=1e-12
    )

    paths[3].unlink()
    partial = benchmark_scores(tmp_path, bench)
    assert partial.per_task["CQADupstackRetrieval"] is None
    assert "CQADupstackGisRetrieval" in partial.notes["CQADupstackRetrieval"]

    combined.to_disk(tmp_path / "CQADupstackRetrieval.json")  # mteb's own aggregate file wins, as on the leaderboard
    with_file = benchmark_scores(tmp_path, bench)
    assert with_file.per_task["CQADupstackRetrieval"] == pytest.approx(combined.get_score(), abs=1e-12)
    assert "CQADupstackRetrieval" not in with_file.notes


def test_several_revisions_keep_one_file_per_task_by_mtebs_rule(tmp_path: Path) -> None:
    task = mteb.get_task("SciFact")
    old = _write_result(tmp_path / "org__m" / "no_revision_available", task, 0.1)
    new = _write_result(tmp_path / "org__m" / "abc123", task, 0.2)  # a real revision beats no_revision_available
    _write_result(tmp_path / "org__m" / "abc123", mteb.get_task("NFCorpus"), 0.3)
    loaded = {f.name: f for f in load_model_results(tmp_path / "org__m")}
    assert loaded["SciFact"].result_file == new and old.exists()
    older_mteb = json.loads(new.read_text(encoding="utf-8")) | {"mteb_version": "1.0.0"}
    (tmp_path / "org__m" / "zzz999").mkdir()
    (tmp_path / "org__m" / "zzz999" / "SciFact.json").write_text(json.dumps(older_mteb), encoding="utf-8")
    assert {f.name: f for f in load_model_results(tmp_path / "org__m")}["SciFact"].result_file == new


def test_scores_from_loaded_files_or_mteb_results(tmp_path: Path) -> None:
    path = _write_result(tmp_path, mteb.get_task("SciFact"), 0.25)
    file = read_task_record(path)
    for given in ([file], [mteb.TaskResult.from_disk(path)]):
        scores = benchmark_scores(given, "BEIR")
        assert scores.per_task["SciFact"] == 0.25
        assert scores.model is None
    assert isinstance(file, TaskRecord) and file.name == "SciFact"
