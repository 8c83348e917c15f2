"""One real run per task type through the CLI, with the packaged model.

Banking77 is real data (../shared/data/tasks); clustering, bitext mining, summarization, multilabel
classification and the multilingual STS17 use small made-up datasets in the mirror format (mteb's column names):
they check the wiring into mteb's evaluators and the subset handling, not published numbers.
"""

from __future__ import annotations

import json
from pathlib import Path

import mteb
import pytest

from evalkit.cli import EXIT_INCOMPLETE, main

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
RESULTS = "sentence-transformers__all-MiniLM-L6-v2/8b3219a92973c328a8e22fadcfa821b5dc75636a"

TOPICS = {
    0: ["The striker scored a late goal", "The match ended in a draw", "Fans cheered the winning team"],
    1: ["Bake the cake for forty minutes", "Add sugar and butter to the dough", "The soup needs more salt"],
    2: ["The stock market fell sharply", "Interest rates rose again", "Investors sold their bonds"],
}


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def run(task: str, data: Path, out: Path, *extra: str) -> int:
    return main(["run", "--model", MODEL, "--tasks", task, "--data-dir", str(data), "--output", str(out), "--quiet",
                 "--no-hub", *extra])  # fmt: skip


def load(out: Path, task: str) -> mteb.TaskResult:
    return mteb.TaskResult.from_disk(out / RESULTS / f"{task}.json")


def test_banking77_classification_equals_the_leaderboard(mirror: Path, tmp_path: Path) -> None:
    assert run("Banking77Classification", mirror, tmp_path) == 0
    scores = load(tmp_path, "Banking77Classification").scores["test"][0]
    assert scores["accuracy"] == pytest.approx(0.80042, abs=0.003)
    assert scores["main_score"] == scores["accuracy"]


def test_clustering(tmp_path: Path) -> None:
    rows = [{"sentences": text, "labels": label} for label, texts in TOPICS.items() for text in texts] * 4
    write_jsonl(tmp_path / "data" / "TwentyNewsgroupsClustering.v2" / "test.jsonl", rows)
    assert run("TwentyNewsgroupsClustering.v2", tmp_path / "data", tmp_path / "out") == 0
    scores = load(tmp_path / "out", "TwentyNewsgroupsClustering.v2").scores["test"][0]
    assert 0.0 <= scores["v_measure"] <= 1.0 and scores["main_score"] == scores["v_measure"]


def test_bitext_mining_on_one_language_subset(tmp_path: Path) -> None:
    pairs = [
        ("Der Hund schläft im Garten.", "The dog sleeps in the garden."),
        ("Ich trinke gern Kaffee.", "I like drinking coffee."),
        ("Das Wetter ist heute schön.", "The weather is nice today."),
        ("Wir fahren morgen nach Berlin.", "We are going to Berlin tomorrow."),
    ]
    write_jsonl(
        tmp_path / "data" / "BUCC" / "de-en" / "test.jsonl", [{"sentence1": a, "sentence2": b} for a, b in pairs]
    )
    assert run("BUCC", tmp_path / "data", tmp_path / "out", "--lang", "deu") == 0
    result = load(tmp_path / "out", "BUCC")
    assert [entry["hf_subset"] for entry in result.scores["test"]] == ["de-en"]
    assert 0.0 <= result.scores["test"][0]["f1"] <= 1.0


def test_summarization(tmp_path: Path) -> None:
    rows = [
        {
            "text": "The council approved a new park in the city centre after a long debate about costs.",
            "human_summaries": ["The council approved a new city park.", "A new park was approved by the council."],
            "machine_summaries": ["The council approved a park.", "Costs were debated.", "A cat sat on a mat."],
            "relevance": [4.5, 3.0, 1.0],
        },
        {
            "text": "Heavy rain caused floods across the region, closing roads and schools for two days.",
            "human_summaries": ["Floods closed roads and schools.", "Heavy rain flooded the region."],
            "machine_summaries": ["Rain caused floods.", "Schools were closed.", "The stock market rose."],
            "relevance": [4.0, 3.5, 1.0],
        },
    ]
    write_jsonl(tmp_path / "data" / "SummEvalSummarization.v2" / "test.jsonl", rows)
    assert run("SummEvalSummarization.v2", tmp_path / "data", tmp_path / "out") == 0
    scores = load(tmp_path / "out", "SummEvalSummarization.v2").scores["test"][0]
    assert -1.0 <= scores["cosine_spearman"] <= 1.0


def test_multilabel_classification(tmp_path: Path) -> None:
    def rows(n: int) -> list[dict]:
        return [
            {"text": text, "label": [label, (label + 1) % 3]} for label, texts in TOPICS.items() for text in texts
        ] * n

    write_jsonl(tmp_path / "data" / "SciRepEvalFoSClassification" / "train.jsonl", rows(12))
    write_jsonl(tmp_path / "data" / "SciRepEvalFoSClassification" / "test.jsonl", rows(2))
    assert run("SciRepEvalFoSClassification", tmp_path / "data", tmp_path / "out") == 0
    scores = load(tmp_path / "out", "SciRepEvalFoSClassification").scores["test"][0]
    assert 0.0 <= scores["accuracy"] <= 1.0


def test_multilingual_sts_scores_each_subset(tmp_path: Path) -> None:
    pairs = [
        ("A man is playing a guitar.", "A man plays the guitar.", 4.8),
        ("A dog runs.", "A cat sleeps.", 0.5),
        ("Kids play football.", "Children are playing soccer.", 4.2),
        ("It rains.", "The sun shines.", 1.0),
    ]
    for subset in ("es-en", "es-es"):
        write_jsonl(
            tmp_path / "data" / "STS17" / subset / "test.jsonl",
            [{"sentence1": a, "sentence2": b, "score": s} for a, b, s in pairs],
        )
    # As mteb filters languages: every subset with Spanish in it, the cross-lingual one included.
    assert run("STS17", tmp_path / "data", tmp_path / "out", "--lang", "spa") == 0
    result = load(tmp_path / "out", "STS17")
    by_subset = {entry["hf_subset"]: entry for entry in result.scores["test"]}
    assert set(by_subset) == {"es-en", "es-es"}
    assert by_subset["es-en"]["languages"] == ["spa-Latn", "eng-Latn"]
    assert by_subset["es-es"]["languages"] == ["spa-Latn"]
    expected = (by_subset["es-en"]["main_score"] + by_subset["es-es"]["main_score"]) / 2
    assert result.get_score() == pytest.approx(expected)


def test_partial_run_skips_missing_tasks(mirror: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    args = ["run", "--model", MODEL, "--tasks", "BIOSSES", "STS17", "--data-dir", str(mirror), "--no-hub", "--quiet"]
    assert main([*args, "--output", str(tmp_path / "a")]) == EXIT_INCOMPLETE
    err = capsys.readouterr().err
    assert "STS17" in err and "skipped 1 task" in err and "--allow-missing" in err
    assert (tmp_path / "a" / RESULTS / "BIOSSES.json").is_file()
    assert not (tmp_path / "a" / RESULTS / "STS17.json").exists()
    assert main([*args, "--output", str(tmp_path / "b"), "--allow-missing"]) == 0


def test_pair_classification(tmp_path: Path) -> None:
    rows = [
        {"sentence1": "How do I reset my password?", "sentence2": "How can I change my password?", "labels": 1},
        {"sentence1": "The app crashes on start", "sentence2": "Application crashes when launched", "labels": 1},
        {"sentence1": "How do I reset my password?", "sentence2": "Where is the nearest train station?", "labels": 0},
        {"sentence1": "The app crashes on start", "sentence2": "I like chocolate cake", "labels": 0},
    ]
    write_jsonl(tmp_path / "data" / "SprintDuplicateQuestions" / "test.jsonl", rows)
    assert run("SprintDuplicateQuestions", tmp_path / "data", tmp_path / "out") == 0
    scores = load(tmp_path / "out", "SprintDuplicateQuestions").scores["test"][0]
    assert scores["main_score"] == scores["max_ap"] == 1.0  # the model separates these perfectly


def test_reranking(tmp_path: Path) -> None:
    rows = [
        {
            "query": "neural networks for image recognition",
            "positive": ["Deep convolutional networks classify images"],
            "negative": ["A history of medieval trade routes", "Soil chemistry of wetlands"],
        },
        {
            "query": "climate change and sea level",
            "positive": ["Rising oceans caused by global warming"],
            "negative": ["Deep convolutional networks classify images", "Opera in the nineteenth century"],
        },
    ]
    write_jsonl(tmp_path / "data" / "SciDocsRR" / "test.jsonl", rows)
    assert run("SciDocsRR", tmp_path / "data", tmp_path / "out") == 0
    scores = load(tmp_path / "out", "SciDocsRR").scores["test"][0]
    assert scores["main_score"] == scores["map_at_1000"] == 1.0
