"""CI logs (issue 15, part 4): one line per finished task on stderr when stderr is a pipe, ``--quiet`` or not.

A CI runner's log is not a terminal, so the progress bars are hidden there; the per-task line is what shows the run
is alive and what it scored. The real ``evalkit run`` goes through a subprocess with stderr a pipe; the score in
the line is checked against the result file, read by the one reader.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from evalkit.core import EmbeddingCore
from evalkit.progress import BatchBar, TaskProgress, print_task_line
from evalkit.results.record import read_task_record
from evalkit.runner import RunConfig, run

LINE = re.compile(
    r"^evalkit: \[(\d+)/(\d+)\] (\S+): (\d+) texts \((\d+) encoded, (\d+) from cache\) in [\d.]+ s, (\S+) (-?[\d.]+)$"
)


def _run(tmp_path: Path, mirror: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
        "EVALKIT_CACHE_DIR": str(tmp_path / "cache"),
    }
    argv = ["run", "--model", "sentence-transformers/all-MiniLM-L6-v2", "--tasks", "STSBenchmark"]
    argv += ["--data-dir", str(mirror), "--no-hub", "--output", str(tmp_path / "results"), *extra]
    code = "import sys; from evalkit.cli import main; sys.exit(main(sys.argv[1:]))"
    done = subprocess.run(
        [sys.executable, "-c", code, *argv],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,  # stderr a pipe, as in every CI log
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return done


def _task_lines(stderr: str) -> list[re.Match[str]]:
    return [m for m in map(LINE.match, stderr.splitlines()) if m]


def _result_file(tmp_path: Path) -> Path:
    (found,) = (tmp_path / "results").rglob("STSBenchmark.json")
    return found


@pytest.mark.slow
def test_a_run_into_a_pipe_prints_one_line_per_task_with_the_result_files_score(tmp_path, mirror):
    first = _run(tmp_path, mirror)
    (line,) = _task_lines(first.stderr)
    index, total, name, texts, encoded, cached, metric, score = line.groups()
    record = read_task_record(_result_file(tmp_path))
    assert (index, total, name) == ("1", "1", "STSBenchmark")
    assert metric == record.main_score_name
    assert float(score) == pytest.approx(record.main_score, abs=5e-5)
    assert int(encoded) > 0 and int(texts) == int(encoded) + int(cached)
    assert "\r" not in first.stderr  # no progress bar drawn into a log

    second = _run(tmp_path, mirror, "--quiet")  # the same cache: every text read back
    (again,) = _task_lines(second.stderr)
    assert again.group(5) == "0" and again.group(6) == texts
    assert float(again.group(8)) == pytest.approx(float(score), abs=5e-5)


@pytest.mark.slow
def test_a_library_caller_gets_the_events_instead_of_the_lines(tmp_path, mirror, capsys):
    events: list[TaskProgress] = []
    config = RunConfig(
        "sentence-transformers/all-MiniLM-L6-v2",
        tasks=["STSBenchmark"],
        data_dirs=[mirror],
        allow_hub=False,
        output_dir=tmp_path / "results",
        cache_dir=tmp_path / "cache",
        show_progress=False,
    )

    run(config, on_task_done=events.append)

    (event,) = events
    record = read_task_record(_result_file(tmp_path))
    assert (event.index, event.total, event.task_name) == (1, 1, "STSBenchmark")
    assert event.main_score == record.main_score and event.encoded > 0 and event.cached == 0
    assert "evalkit: [" not in capsys.readouterr().err  # the callback replaced the default printer


def test_the_event_is_a_value_a_caller_can_print_or_keep():
    event = TaskProgress(
        index=2, total=9, task_name="STSBenchmark", encoded=0, cached=2758, seconds=1.23,
        main_score_name="cosine_spearman", main_score=0.82031,
    )  # fmt: skip

    class Stream:
        text = ""

        def write(self, part: str) -> None:
            self.text += part

        def flush(self) -> None:
            pass

    stream = Stream()
    print_task_line(event, stream)  # type: ignore[arg-type]

    assert stream.text == (
        "evalkit: [2/9] STSBenchmark: 2758 texts (0 encoded, 2758 from cache) in 1.2 s, cosine_spearman 0.8203\n"
    )


class _CountingEncoder:
    """Texts of n words → n tokens; a vector of the token count, so the order is checkable."""

    name = "counting"

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        return [[1] * len(t.split()) for t in texts]

    def embed_batch(self, batch: list[list[int]]) -> np.ndarray:
        return np.array([[float(len(ids))] for ids in batch], dtype=np.float32)


def test_the_bar_moves_per_forward_pass_not_per_chunk():
    core = EmbeddingCore(batch_size=4, chunk_size=1000, show_progress=False)
    token_ids = [[1] * n for n in range(1, 11)]  # one chunk of three forward passes
    seen: list[int] = []

    with BatchBar(core, len(token_ids), "encoding") as bar:
        assert core.on_batch == bar.advance  # what the core calls after each pass

        def advance(count: int) -> None:
            seen.append(count)
            bar.advance(count)

        core.on_batch = advance
        vectors = core.encode_planned(_CountingEncoder(), token_ids, core.plan_batches(token_ids))  # type: ignore[arg-type]
        assert sorted(seen) == [2, 4, 4]
    assert core.on_batch is None  # restored: a later call outside a bar reports nowhere
    assert vectors[:, 0].tolist() == [float(n) for n in range(1, 11)]
