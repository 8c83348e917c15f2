"""``evalkit.evaluate`` from a training loop: a model in memory, its scores equal to the published ones, and a
model changed in place encoded again (never served stale vectors from the cache)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import evalkit
from evalkit.registry.models import resolve_model

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
PUBLISHED = {"STSBenchmark": 0.82032, "SciFact": 0.64508}  # mteb's leaderboard values for this model


@pytest.fixture(scope="module")
def sentence_transformer():
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(resolve_model(MODEL).local_path), device="cpu")


def _encoded(results: evalkit.Results, task: str) -> int:
    (run,) = results.runs
    return int(run.tasks[task].record["run_settings"]["embedding_stats"]["encoded"])


@pytest.mark.slow
def test_an_in_memory_sentence_transformer_and_a_callable_get_the_published_scores(
    sentence_transformer, mirror: Path, tmp_path: Path
) -> None:
    """The training-loop case: the model object itself, then a plain function wrapping it, on both tasks."""
    common = dict(data_dir=mirror, cache_dir=tmp_path / "cache", show_progress=False)
    by_object = evalkit.evaluate(sentence_transformer, list(PUBLISHED), **common).main_scores()

    def embed(texts: list[str]) -> np.ndarray:
        return sentence_transformer.encode(texts, batch_size=32, normalize_embeddings=False)

    by_callable = evalkit.evaluate(embed, list(PUBLISHED), name="minilm-callable", **common).main_scores()
    for task, published in PUBLISHED.items():
        assert by_object[task] == pytest.approx(published, abs=5e-4), task
        assert by_callable[task] == pytest.approx(published, abs=5e-4), task


def test_a_model_changed_in_place_is_encoded_again(sentence_transformer, mirror: Path, tmp_path: Path) -> None:
    common = dict(data_dir=mirror, cache_dir=tmp_path / "cache", show_progress=False, output=tmp_path / "out")
    first = evalkit.evaluate(sentence_transformer, "STSBenchmark", **common)
    again = evalkit.evaluate(sentence_transformer, "STSBenchmark", **common)
    assert _encoded(first, "STSBenchmark") > 0 and _encoded(again, "STSBenchmark") == 0  # same weights: cached
    assert again.main_scores() == first.main_scores()

    parameter = next(p for n, p in sentence_transformer.named_parameters() if "intermediate.dense.weight" in n)
    saved = parameter.detach().clone()
    try:
        with torch.no_grad():  # one training step, in place (a layer's weights, not one LayerNorm would cancel)
            parameter.add_(torch.randn(parameter.shape, generator=torch.Generator().manual_seed(0)) * 0.05)
        changed = evalkit.evaluate(sentence_transformer, "STSBenchmark", **common)
    finally:
        with torch.no_grad():
            parameter.copy_(saved)
    assert _encoded(changed, "STSBenchmark") > 0  # a new parameter hash: no stale vector served
    assert changed.main_scores()["STSBenchmark"] != first.main_scores()["STSBenchmark"]
    assert {run.revision for run in changed.runs} != {run.revision for run in first.runs}


def test_an_opaque_callable_is_not_cached_and_says_so(
    mirror: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rng = np.random.default_rng(0)
    table: dict[str, np.ndarray] = {}

    def embed(texts: list[str]) -> np.ndarray:
        return np.stack([table.setdefault(t, rng.normal(size=8).astype(np.float32)) for t in texts])

    with caplog.at_level("WARNING", logger="evalkit"):
        results = evalkit.evaluate(
            embed, "STSBenchmark", data_dir=mirror, cache_dir=tmp_path / "cache", show_progress=False
        )
    assert any("not cached" in r.getMessage() for r in caplog.records)
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*.npy"))
    assert -1 <= results.main_scores()["STSBenchmark"] <= 1


def test_options_are_checked_as_the_cli_checks_them(mirror: Path, tmp_path: Path) -> None:
    with pytest.raises(evalkit.EvalkitError, match="--batch-size must be a positive integer"):
        evalkit.evaluate(MODEL, "STSBenchmark", data_dir=mirror, batch_size=0)
    with pytest.raises(evalkit.EvalkitError, match="unknown run option 'batchsize'"):
        evalkit.evaluate(MODEL, "STSBenchmark", data_dir=mirror, batchsize=8)
    with pytest.raises(evalkit.EvalkitError, match="cannot evaluate a int"):
        evalkit.evaluate(42, "STSBenchmark", data_dir=mirror, output=tmp_path)


def test_a_named_model_through_the_api_equals_the_cli(mirror: Path, tmp_path: Path) -> None:
    from evalkit.cli import main

    results = evalkit.evaluate(
        MODEL, ["STSBenchmark"], data_dir=mirror, output=tmp_path / "api", cache_dir=tmp_path / "c", show_progress=False
    )
    assert main(["run", "--model", MODEL, "--tasks", "STSBenchmark", "--data-dir", str(mirror), "--quiet",
                 "--output", str(tmp_path / "cli"), "--cache-dir", str(tmp_path / "c")]) == 0  # fmt: skip
    assert evalkit.load_results(tmp_path / "cli").main_scores() == results.main_scores()
    assert results.main_scores()["STSBenchmark"] == pytest.approx(PUBLISHED["STSBenchmark"], abs=5e-4)
    frame = results.to_dataframe()
    assert list(frame.columns) == ["model", "revision", "task", "type", "split", "subset", "metric", "value"]


def test_an_mteb_protocol_object_is_handed_each_tasks_metadata(mirror: Path, tmp_path: Path) -> None:
    """mteb's protocol: the model picks its prompts from the task's metadata, so each task gets its own."""
    seen: list[tuple[str, str]] = []

    class MtebStyle:
        def encode(self, inputs, *, task_metadata, hf_split, hf_subset, prompt_type=None, **kwargs):
            texts = [text for batch in inputs for text in batch["text"]]
            seen.append((task_metadata.name, str(prompt_type)))
            return np.stack([np.frombuffer(t.encode()[:8].ljust(8), dtype=np.uint8).astype(np.float32) for t in texts])

    results = evalkit.evaluate(
        MtebStyle(), ["STSBenchmark", "BIOSSES"], data_dir=mirror, output=tmp_path, revision="v1", show_progress=False
    )
    assert {task for task, _ in seen} == {"STSBenchmark", "BIOSSES"}
    assert set(results.main_scores()) == {"STSBenchmark", "BIOSSES"}
    assert {run.revision for run in results.runs} == {"v1"}
    with pytest.raises(evalkit.EvalkitError, match="task by task"):
        evalkit.evaluate(MtebStyle(), benchmark="MTEB(eng, v1)", data_dir=mirror, output=tmp_path, revision="v1")
