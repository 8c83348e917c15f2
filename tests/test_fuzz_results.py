"""Property tests over the result files that ``diff``, ``leaderboard`` and ``submit`` read (issue 12).

Any bytes, any JSON shape, and any small mutation of a valid file, in a TaskResult JSON, a per-item .jsonl.gz, a
run record or a model_meta.json, give either parsed data or evalkit's own error (``EvalkitError``, exit 2): never
another exception (exit 70), and never a verdict built on a non-finite score. Bounded and derandomised for CI.
"""

from __future__ import annotations

import copy
import gzip
import json
import shutil
import tempfile
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from run_folders import write_run

from evalkit.errors import EvalkitError
from evalkit.registry.tasks import TaskRegistry, default_registry
from evalkit.reports.diff import DiffSettings, diff_runs
from evalkit.reports.runs import Run, load_run
from evalkit.results.benchmark_scores import load_model_results, task_score  # task_score: the one rule, per task
from evalkit.results.submit import submit_results

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "results" / "sentence-transformers__all-MiniLM-L6-v2"
FUZZ = settings(
    max_examples=150, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow]
)
FEW = settings(FUZZ, max_examples=60)  # a submit runs mteb's own loader on every accepted file

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.just(10**400)
    | st.floats()
    | st.text(max_size=6)
    | st.sampled_from(["test", "default", "main_score", "../x", "/abs", "SciFact", "NaN"])
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=10,
)


def _mutate(draw: Callable[[Any], Any], node: Any) -> Any:
    """``node`` with one value somewhere below it replaced by any JSON value, or one key / item deleted."""
    if isinstance(node, (dict, list)) and node and draw(st.integers(0, 4)) > 0:
        key = draw(st.sampled_from(list(node) if isinstance(node, dict) else range(len(node))))
        if draw(st.integers(0, 5)) == 0:
            del node[key]
        else:
            node[key] = _mutate(draw, node[key])
        return node
    return draw(JSON)


@st.composite
def mutated(draw: Callable[[Any], Any], document: Any) -> Any:
    changed = copy.deepcopy(document)
    for _ in range(draw(st.integers(1, 3))):
        changed = _mutate(draw, changed)
    return changed


@st.composite
def flipped(draw: Callable[[Any], Any], data: bytes) -> bytes:
    """``data`` with a few bytes overwritten, or cut short."""
    buffer = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        buffer[draw(st.integers(0, len(buffer) - 1))] = draw(st.integers(0, 255))
    return bytes(buffer[: draw(st.integers(0, len(buffer)))]) if draw(st.booleans()) else bytes(buffer)


def json_file(document: Any) -> st.SearchStrategy[bytes]:
    """Bytes of a JSON file: anything, any JSON, the valid document mutated, or its bytes damaged."""
    text = json.dumps(document).encode()
    return st.one_of(
        st.binary(max_size=64),
        JSON.map(lambda d: json.dumps(d).encode()),
        mutated(document).map(lambda d: json.dumps(d).encode()),
        flipped(text),
    )


def rows_file(rows: list[dict[str, Any]]) -> st.SearchStrategy[bytes]:
    """Bytes of a per-item .jsonl.gz: not gzip, gzip of anything, rows mutated, or the valid gzip damaged."""

    def packed(lines: Any) -> bytes:
        lines = lines if isinstance(lines, list) else [lines]  # a mutation may replace the whole list
        return gzip.compress("".join(json.dumps(line) + "\n" for line in lines).encode(), mtime=0)

    return st.one_of(
        st.binary(max_size=64),
        st.binary(max_size=64).map(lambda b: gzip.compress(b, mtime=0)),
        st.lists(JSON, max_size=4).map(packed),
        mutated(rows).map(packed),
        flipped(packed(rows)),
    )


@cache
def _registry() -> TaskRegistry:
    return default_registry()


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run with a retrieval and an STS task; every example damages one file of a copy of it."""
    rng = np.random.default_rng(0)
    gold = rng.random(12) * 5
    root = tmp_path_factory.mktemp("fuzz-template")
    return write_run(root / "run", retrieval=rng.random(12), sts=(gold, gold + rng.normal(0, 1, 12)))


@pytest.fixture(scope="module")
def baseline(template: Path) -> Run:
    return load_run(template, _registry())


def _damaged(template: Path, file_name: str, data: bytes) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="evalkit-fuzz-") as scratch:
        run = Path(scratch) / "run"
        shutil.copytree(template, run, symlinks=True)
        next(run.rglob(file_name)).write_bytes(data)
        yield run


def _diff_or_own_error(template: Path, baseline: Run, file_name: str, data: bytes) -> None:
    for run in _damaged(template, file_name, data):
        try:
            diff = diff_runs(baseline, load_run(run, _registry()), DiffSettings(resamples=20))
        except EvalkitError as err:
            assert str(err)  # the one-line message the CLI prints
            continue
        assert diff.exit_code in (0, 1)
        assert all(np.isfinite([t.baseline, t.candidate]).all() for t in diff.tasks)


def _valid(template: Path, file_name: str) -> Any:
    path = next(template.rglob(file_name))
    if file_name.endswith(".gz"):
        with gzip.open(path, "rt") as handle:
            return [json.loads(line) for line in handle]
    return json.loads(path.read_text())


@FUZZ
@given(data=st.data())
def test_any_task_result_file_is_parsed_or_refused_by_diff(template: Path, baseline: Run, data: st.DataObject) -> None:
    for name in ("SciFact.json", "STSBenchmark.json"):
        _diff_or_own_error(template, baseline, name, data.draw(json_file(_valid(template, name))))


@FUZZ
@given(data=st.data())
def test_any_per_item_file_is_parsed_or_refused_by_diff(template: Path, baseline: Run, data: st.DataObject) -> None:
    for name in ("SciFact.per_item.jsonl.gz", "STSBenchmark.per_item.jsonl.gz"):
        _diff_or_own_error(template, baseline, name, data.draw(rows_file(_valid(template, name))))


@FUZZ
@given(data=st.data())
def test_any_run_record_is_parsed_or_refused_by_diff(template: Path, baseline: Run, data: st.DataObject) -> None:
    name = "SciFact.run.json"
    _diff_or_own_error(template, baseline, name, data.draw(json_file(_valid(template, name))))


@FUZZ
@given(data=st.data())
def test_any_model_meta_is_parsed_or_refused_by_diff(template: Path, baseline: Run, data: st.DataObject) -> None:
    name = "model_meta.json"
    _diff_or_own_error(template, baseline, name, data.draw(json_file(_valid(template, name))))


@FUZZ
@given(data=st.data())
def test_any_result_or_meta_file_is_parsed_or_refused_by_the_leaderboard_reader(
    template: Path, data: st.DataObject
) -> None:
    import mteb

    name = data.draw(st.sampled_from(["SciFact.json", "model_meta.json"]))
    for run in _damaged(template, name, data.draw(json_file(_valid(template, name)))):
        try:
            files = load_model_results(next(run.iterdir()))
        except EvalkitError:
            continue
        for file in files:
            if file.name == "SciFact":
                score, why = task_score(file, mteb.get_task("SciFact"))
                assert (score is None) != (why is None) and (score is None or np.isfinite(score))


def _submission_source(root: Path) -> Path:
    (source,) = COMMITTED.iterdir()
    run = root / "run" / COMMITTED.name / source.name
    run.mkdir(parents=True)
    for name in ("STSBenchmark.json", "model_meta.json"):
        shutil.copy(source / name, run / name)
    return root / "run"


@FEW
@given(data=st.data())
def test_any_result_or_meta_file_is_submitted_or_refused(data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(["STSBenchmark.json", "model_meta.json"]))
    with tempfile.TemporaryDirectory(prefix="evalkit-fuzz-") as scratch:
        run = _submission_source(Path(scratch))
        target = next(run.rglob(name))
        target.write_bytes(data.draw(json_file(json.loads(target.read_text()))))
        out = Path(scratch) / "out"
        try:
            written = submit_results(run, out)
        except EvalkitError:
            assert not any(p.is_file() for p in out.rglob("*")) if out.exists() else True
            return
        assert all(path.is_file() and out in path.parents for path in written)
