"""MKQA: DPR's answer matching, per-question Recall@k, the loader, the shared corpus encoded once, and the CLI."""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import mteb
import numpy as np
import pytest

from evalkit.cli import main
from evalkit.core import EmbeddingCore
from evalkit.errors import DataError, EvalkitError, MissingDataError
from evalkit.evaluators.answer_retrieval import evaluate_answer_retrieval_task
from evalkit.loaders import load_task_data
from evalkit.loaders.mkqa import load_answer_retrieval_splits
from evalkit.metrics.has_answer import (
    AnswerSet,
    answer_recall,
    first_hit_rank,
    has_answer,
    passage_text,
    tokenize,
)
from evalkit.records import AnswerRetrievalSplit
from evalkit.registry.benchmarks import get_benchmark
from evalkit.registry.tasks import TaskRegistry, task_spec_dirs
from evalkit.search.build import build_retriever
from evalkit.search.fusion import RetrievalSettings

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
# The languages of FlagEmbedding's MKQA evaluation (research/C_MTEB/MKQA/README.md), in its order.
BGE_M3_LANGUAGES = "ar da de es fi fr he hu it ja km ko ms nl no pl pt ru sv th tr vi zh_cn zh_hk zh_tw".split()  # noqa: SIM905


# --- answer matching: what DPR's has_answer really does ---------------------------------------------------------


@pytest.mark.parametrize(
    ("answers", "passage", "expected"),
    [
        (["Paris"], "The Eiffel Tower is in Paris, France.", True),
        (["paris"], "PARIS", True),  # uncased
        (["New York"], "he moved to new york city", True),
        (["York New"], "he moved to new york city", False),  # a token sequence, in order
        (["Par"], "The Eiffel Tower is in Paris.", False),  # whole tokens, never part of one
        (["U.S."], "the u.s. army", True),  # punctuation is a token of its own, and must match
        (["U.S."], "the us army", False),
        (["1969"], "Apollo 11 landed on 20 July 1969.", True),
        (["nope", "July 1969"], "Apollo 11 landed on 20 July 1969.", True),  # any one answer
    ],
)
def test_english_answers(answers: list[str], passage: str, expected: bool) -> None:
    assert has_answer(answers, passage) is expected


def test_accents_are_kept_but_unicode_forms_agree() -> None:
    # NFD splits "ü" into "u" + U+0308; the combining mark stays in the token, so accents are never stripped.
    assert tokenize("Zürich, 1969!") == ("zu\u0308rich", ",", "1969", "!")
    assert has_answer(["Zürich"], "The bank is based in Zurich.") is False
    assert has_answer(["Zurich"], "Die Bank sitzt in Zürich.") is False
    assert has_answer(["Zu\u0308rich"], "Die Bank sitzt in Z\u00fcrich.") is True  # decomposed vs precomposed
    assert has_answer(["ZÜRICH"], "in zürich") is True
    assert has_answer(["São Paulo"], "born in sao paulo") is False


def test_cjk_answers_match_whole_runs_of_letters_only() -> None:
    # Han characters are letters, so an unbroken run is one token: "北京" inside "首都是北京" is not a token.
    assert tokenize("中国的首都是北京。") == ("中国的首都是北京", "。")
    assert has_answer(["北京"], "中国的首都是北京。") is False
    assert has_answer(["北京"], "首都：北京。") is True
    assert has_answer(["北京"], "the capital is 北京 .") is True
    assert has_answer(["東京"], "東京タワー") is False  # kanji and katakana run together
    assert has_answer(["東京タワー"], "東京タワーは高い") is False
    assert has_answer(["東京タワー"], "「東京タワー」は高い") is True


def test_thai_answers_match_whole_space_delimited_runs() -> None:
    # Thai vowel signs are combining marks (\p{M}), so a Thai word and its neighbours form one token.
    assert has_answer(["กรุงเทพ"], "เมืองหลวงคือกรุงเทพ") is False
    assert has_answer(["กรุงเทพ"], "เมืองหลวงคือ กรุงเทพ มหานคร") is True
    assert has_answer(["กรุงเทพ มหานคร"], "เมืองหลวงคือ กรุงเทพ มหานคร") is True
    assert len(tokenize("เมืองหลวงคือกรุงเทพ")) == 1


def test_passage_text_is_flagembeddings_title_and_text() -> None:
    text = passage_text("World War II", "It lasted 1939\u20131945 \u2014 \u2018six years\u2019\u2026")
    assert text == "world war ii\nit lasted 1939-1945 - 'six years'..."
    assert has_answer(["1939-1945"], text) is True  # the en dash became a hyphen in the passage
    assert has_answer(["1939-1945"], "It lasted 1939\u20131945") is False  # no unification without passage_text
    assert has_answer(["World War II"], text) is True  # the title is searched too


def test_blank_answers_match_nothing() -> None:
    assert AnswerSet.of(["", "  ", "Paris"]).sequences == (("paris",),)
    assert has_answer([""], "anything at all") is False  # DPR would say True: an empty sequence is everywhere


def test_the_quick_filter_never_rejects_a_true_match() -> None:
    # Python lowercases a final Σ by context: the token "ΟΔΟΣ" alone ends in ς, inside "ΟΔΟΣ'Α" in σ.
    assert has_answer(["ΟΔΟΣ"], "ΟΔΟΣ'Α") is True
    assert has_answer(["οδος"], "στην οδος") is True


# --- Recall@k per question ----------------------------------------------------------------------------------------


def flagembedding_recall(hits_per_question: list[list[bool]], k: int) -> float:
    """FlagEmbedding's evaluate_recall_qa restated, bug included: buckets and the cap on k from question 0."""
    buckets = [0] * len(hits_per_question[0])
    for hits in hits_per_question:
        first = next((i for i, hit in enumerate(hits) if hit), None)
        if first is not None:
            buckets[first:] = [v + 1 for v in buckets[first:]]
    return buckets[min(k, len(buckets)) - 1] / len(hits_per_question)


def test_recall_is_per_question_whatever_the_first_ranking_holds() -> None:
    late_hit = [False] * 49 + [True] + [False] * 50
    cases = [
        ([[False, False, False], late_hit], 0.5, 0.0),  # a short first ranking capped k at 3 and lost rank 50
        ([[True, False, False], late_hit], 1.0, 0.5),
    ]
    for rankings, expected, buggy in cases:
        ranks = [first_hit_rank(hits) for hits in rankings]
        assert ranks[1] == 50
        assert answer_recall(ranks, [100])["recall_at_100"].mean() == expected
        assert flagembedding_recall(rankings, 100) == buggy != expected
    per_question = answer_recall([1, 50, 0, 10], [1, 10, 20, 100])
    assert per_question["recall_at_1"].tolist() == [1.0, 0.0, 0.0, 0.0]
    assert per_question["recall_at_10"].tolist() == [1.0, 0.0, 0.0, 1.0]
    assert per_question["recall_at_100"].tolist() == [1.0, 1.0, 0.0, 1.0]


def test_first_hit_rank_stops_at_the_first_hit() -> None:
    looked: list[int] = []

    def hits() -> Iterator[bool]:
        for i in range(100):
            looked.append(i)
            yield i == 2

    assert first_hit_rank(hits()) == 3 and looked == [0, 1, 2]
    assert first_hit_rank([False, False]) == 0


# --- registry and loader ------------------------------------------------------------------------------------------


def test_mkqa_spec_and_benchmark() -> None:
    spec = TaskRegistry(task_spec_dirs()).get("MKQA")
    assert (spec.type, spec.main_score, spec.metadata_source) == ("AnswerRetrieval", "recall_at_100", "spec")
    assert spec.hf_subsets == tuple(BGE_M3_LANGUAGES) and len(spec.hf_subsets) == 25
    assert spec.eval_splits == ("test",)
    assert spec.languages_of("no") == ("nor-Latn", "nno-Latn", "nob-Latn")
    assert spec.languages_of("zh_tw") == ("zho-Hant",)
    assert spec.restricted_to_languages(["jpn", "zho-Hant"]).hf_subsets == ("ja", "zh_hk", "zh_tw")
    bench = get_benchmark("MKQA")
    assert bench.task_names == ("MKQA",) and bench.task_type("MKQA") == "AnswerRetrieval"
    assert bench.spec_tasks["MKQA"].hf_subsets == spec.hf_subsets and bench.mteb_tasks() == ()
    assert bench.language_table == ("recall_at_100", "recall_at_20")


PASSAGES = [
    ("Eiffel Tower", "The tower stands in Paris, on the Champ de Mars."),
    ("Apollo 11", "Apollo 11 landed on the Moon in July 1969."),
    ("UBS", "The bank is based in Zurich."),
    ("Ada Lovelace", "She is often regarded as the first programmer."),
]
QUESTIONS = {  # id → (answers, question in de / ja / th); the answers are MKQA's English ones in every language
    "q1": (["Paris"], "Wo steht der Eiffelturm?", "エッフェル塔はどこにありますか?", "หอไอเฟลตั้งอยู่ที่ไหน"),
    "q2": (
        ["1969", "July 1969"],
        "Wann landete Apollo 11?",
        "アポロ11号はいつ着陸しましたか?",
        "อะพอลโล 11 ลงจอดเมื่อไหร่",
    ),
    "q3": (["Zürich"], "Wo sitzt die UBS?", "UBSの本社はどこですか?", "ยูบีเอสมีสำนักงานใหญ่ที่ไหน"),
    "q4": (
        ["Ada Lovelace", "Augusta Ada King"],
        "Wer war die erste Programmiererin?",
        "最初のプログラマーは誰?",
        "โปรแกรมเมอร์คนแรกคือใคร",
    ),
}


def write_mkqa(folder: Path, languages: tuple[str, ...] = ("de", "ja", "th"), fillers: int = 56) -> None:
    """A made-up MKQA folder: 4 answer-bearing passages (q3's "Zürich" is written "Zurich": not a match) and
    ``fillers`` others, so 3 of the 4 questions have an answer in the corpus."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = [{"_id": f"doc{i}", "title": title, "text": text} for i, (title, text) in enumerate(PASSAGES)]
    rows += [{"_id": f"doc{i}", "title": "", "text": f"Filler passage number {i}."} for i in range(4, 4 + fillers)]
    (folder / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    column = {"de": 1, "ja": 2, "th": 3}
    for lang in languages:
        lines = [
            json.dumps({"id": qid, "lang": lang, "question": entry[column[lang]], "answers": entry[0]})
            for qid, entry in QUESTIONS.items()
        ]
        (folder / f"{lang}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_loader_shares_one_corpus_across_languages(tmp_path: Path) -> None:
    write_mkqa(tmp_path / "MKQA")
    spec = TaskRegistry(task_spec_dirs()).get("MKQA").restricted_to_languages(["deu", "jpn", "tha"])
    data = load_task_data(spec, [tmp_path], allow_hub=False)
    assert list(data.splits) == ["de", "ja", "th"]
    splits = [data.splits[lang]["test"] for lang in ("de", "ja", "th")]
    assert all(isinstance(s, AnswerRetrievalSplit) for s in splits)
    assert splits[0].corpus is splits[1].corpus is splits[2].corpus  # type: ignore[union-attr]
    assert splits[1].queries.ids == ["q1", "q2", "q3", "q4"]  # type: ignore[union-attr]
    assert splits[1].answers[3] == ("Ada Lovelace", "Augusta Ada King")  # type: ignore[union-attr]
    assert len(splits[0].corpus) == 60  # type: ignore[union-attr]
    assert sorted(Path(f.path).name for f in data.source_files) == ["corpus.jsonl", "de.jsonl", "ja.jsonl", "th.jsonl"]


@pytest.mark.parametrize(
    ("row", "field", "message"),
    [
        ({"id": "q9", "question": "Wer?"}, "answers", "required field is missing"),
        ({"id": "q9", "question": "Wer?", "answers": "Paris"}, "answers", "got string"),
        ({"id": "q9", "question": "Wer?", "answers": []}, "answers", "got an empty array"),
        ({"id": "q9", "question": "Wer?", "answers": ["Paris", " "]}, "answers", "answer 1 is not a non-blank"),
        ({"id": "q9", "question": "Wer?", "answers": ["Paris", None]}, "answers", "answer 1 is not a non-blank"),
        ({"id": "q1", "question": "Wer?", "answers": ["Paris"]}, "id", "duplicate question id 'q1'"),
        ({"question": "Wer?", "answers": ["Paris"]}, "id", "required field is missing"),
        ({"id": "q9", "question": "", "answers": ["Paris"]}, "question", "empty question text"),
    ],
)
def test_malformed_question_lines_name_file_line_and_field(tmp_path: Path, row: dict, field: str, message: str) -> None:
    write_mkqa(tmp_path, languages=("de",))
    path = tmp_path / "de.jsonl"
    path.write_text(path.read_text(encoding="utf-8") + json.dumps(row) + "\n", encoding="utf-8")
    with pytest.raises(DataError) as err:
        load_answer_retrieval_splits(tmp_path, ["de"], ["test"])
    assert (err.value.file, err.value.line, err.value.field) == (str(path), 5, field)
    assert message in err.value.message


def test_missing_files_and_several_splits(tmp_path: Path) -> None:
    write_mkqa(tmp_path, languages=("de",))
    with pytest.raises(MissingDataError, match="questions for language 'ja'"):
        load_answer_retrieval_splits(tmp_path, ["de", "ja"], ["test"])
    (tmp_path / "corpus.jsonl").unlink()
    with pytest.raises(MissingDataError, match="no corpus"):
        load_answer_retrieval_splits(tmp_path, ["de"], ["test"])
    with pytest.raises(EvalkitError, match="one split per language"):
        load_answer_retrieval_splits(tmp_path, ["de"], ["dev", "test"])


# --- the evaluator: one corpus encoding for every language -------------------------------------------------------


class RankByNumberEncoder:
    """A fake adapter: passage ``passage <j>`` lies at angle j/100 from the one direction every question has, so
    every question ranks the passages by j; it records each text it embeds."""

    name = "rank-by-number"

    def __init__(self) -> None:
        self.embedded: list[str] = []
        self._texts: list[str] = []

    def prepare(self, texts: list[str], prompt: str) -> list[str]:
        return [prompt + t for t in texts]

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        start = len(self._texts)
        self._texts.extend(texts)
        return [[start + i] for i in range(len(texts))]

    def embed_batch(self, token_ids: list[list[int]]) -> np.ndarray:
        texts = [self._texts[ids[0]] for ids in token_ids]
        self.embedded += texts
        angles = [int(m.group(1)) / 100 if (m := re.search(r"passage (\d+)", t)) else 0.0 for t in texts]
        return np.array([[np.cos(a), np.sin(a)] for a in angles], dtype=np.float32)

    def fingerprint(self) -> dict[str, object]:
        return {"model": self.name}


def test_answer_retrieval_encodes_the_corpus_once_and_scores_each_question(tmp_path: Path) -> None:
    texts = {j: f"passage {j}: filler text number {j}." for j in range(150)}
    texts[0] = "passage 0: the tower stands in paris."
    texts[49] = "passage 49: apollo 11 landed in 1969."
    texts[5] = "passage 5: the bank is based in zurich."
    texts[120] = "passage 120: mount everest is the highest."
    titles = {9: "Ada Lovelace"}
    folder = tmp_path / "MKQA"
    folder.mkdir()
    corpus = [{"_id": f"p{j}", "title": titles.get(j, ""), "text": text} for j, text in texts.items()]
    (folder / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in corpus))
    answers = [["Paris"], ["July 1969", "1969"], ["Zürich"], ["Ada Lovelace"], ["Mount Everest"]]
    for lang in ("de", "ja", "th"):
        rows = [{"id": f"q{i}", "question": f"{lang} question {i}", "answers": a} for i, a in enumerate(answers)]
        (folder / f"{lang}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = TaskRegistry(task_spec_dirs()).get("MKQA").restricted_to_languages(["deu", "jpn", "tha"])
    data = load_task_data(spec, [tmp_path], allow_hub=False)
    encoder = RankByNumberEncoder()
    retriever, _ = build_retriever(RetrievalSettings(), encoder, EmbeddingCore(show_progress=False))  # no cache
    outcomes = evaluate_answer_retrieval_task(
        data.splits,
        SimpleNamespace(retriever=retriever),  # only the retriever can spare the re-encoding
        task_name=spec.name,
        eval_splits=spec.eval_splits,
        languages_of=spec.languages_of,
        main_score=spec.main_score,
    )
    assert sum("passage " in text for text in encoder.embedded) == 150  # not 450: once for the three languages
    assert "ada lovelace\npassage 9: filler text number 9." in encoder.embedded  # FlagEmbedding's passage text
    assert [o.hf_subset for o in outcomes] == ["de", "ja", "th"]
    for outcome in outcomes:
        # first answer-bearing ranks: 1 (paris), 50 (1969), none (zurich), 10 (title), 121 (beyond the top 100)
        assert outcome.per_item.item_ids == ["q0", "q1", "q2", "q3", "q4"]
        assert outcome.per_item.values["recall_at_100"].tolist() == [1.0, 1.0, 0.0, 1.0, 0.0]
        assert outcome.per_item.values["recall_at_20"].tolist() == [1.0, 0.0, 0.0, 1.0, 0.0]
        assert outcome.scores == pytest.approx(
            {"recall_at_1": 0.2, "recall_at_5": 0.2, "recall_at_10": 0.4, "recall_at_20": 0.4, "recall_at_100": 0.6}
        )
        assert outcome.main_score == pytest.approx(0.6)
    assert outcomes[2].languages == ("tha-Thai",)


# --- the CLI ------------------------------------------------------------------------------------------------------


def language_rows(printed: str) -> dict[str, list[str]]:
    """The per-language table printed at the end of a run: first column → the other columns."""
    lines = printed.split("MKQA (test), per language", 1)[1].splitlines()[1:]
    return {line.split()[0]: line.split()[1:] for line in lines if line.strip()}


def _run(tmp_path: Path, *args: str) -> int:
    return main(["run", "--model", MODEL, *args, "--data-dir", str(tmp_path / "data"), "--output",
                 str(tmp_path / "out"), "--no-hub", "--quiet", "--runtime", "torch", "--no-cache"])  # fmt: skip


def test_cli_mkqa_benchmark_on_three_languages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """With 60 passages every question retrieves the whole corpus in its top 100, so Recall@100 is exactly the
    share of questions with an answer somewhere in it (3 of 4), whatever the model."""
    write_mkqa(tmp_path / "data" / "MKQA")
    specs = tmp_path / "specs"
    (specs / "benchmarks").mkdir(parents=True)
    (specs / "benchmarks" / "MiniMKQA.yaml").write_text(
        "name: MiniMKQA\ntasks: [MKQA]\nlanguages: [deu, jpn, tha]\nlanguage_table: [recall_at_100, recall_at_20]\n"
    )
    monkeypatch.setenv("EVALKIT_TASKS_PATH", str(specs))
    assert _run(tmp_path, "--benchmark", "MiniMKQA") == 0
    printed = capsys.readouterr().out
    revision_dir = next((tmp_path / "out").glob("*/*/"))
    result = mteb.TaskResult.from_disk(revision_dir / "MKQA.json")  # the MTEB TaskResult format, though not mteb's
    cells = {cell["hf_subset"]: cell for cell in result.scores["test"]}
    assert list(cells) == ["de", "ja", "th"]
    for lang, cell in cells.items():
        assert cell["main_score"] == cell["recall_at_100"] == 0.75
        assert 0.0 <= cell["recall_at_20"] <= 0.75
        assert cell["languages"] == {"de": ["deu-Latn"], "ja": ["jpn-Jpan"], "th": ["tha-Thai"]}[lang]
    record = json.loads((revision_dir / "evalkit" / "MKQA.run.json").read_text())
    assert record["run_settings"]["embedding_stats"]["encoded"] == 60 + 3 * 4  # the corpus once, not per language
    with gzip.open(revision_dir / "evalkit" / "MKQA.per_item.jsonl.gz", "rt") as handle:
        rows = [json.loads(line) for line in handle]
    assert len(rows) == 12 and {row["id"]: row["recall_at_100"] for row in rows if row["hf_subset"] == "ja"} == {
        "q1": 1.0,
        "q2": 1.0,
        "q3": 0.0,
        "q4": 1.0,
    }
    assert "MiniMKQA: mean over tasks 75.00" in printed
    table = language_rows(printed)
    recall_at_20 = [100 * cells[lang]["recall_at_20"] for lang in ("de", "ja", "th")]
    assert table["de"] == ["75.00", f"{recall_at_20[0]:.2f}"]
    assert table["average"] == ["75.00", f"{sum(recall_at_20) / 3:.2f}"]


def test_cli_benchmark_mkqa_restricted_to_one_language(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    write_mkqa(tmp_path / "data" / "MKQA", languages=("th",), fillers=10)
    assert _run(tmp_path, "--benchmark", "MKQA", "--lang", "tha") == 0
    printed = capsys.readouterr().out
    assert "MKQA: mean over tasks missing" in printed  # 24 languages were not run: no partial mean
    rows = language_rows(printed)
    assert rows["th"][0] == "75.00" and rows["ar"] == ["missing", "missing"]
    assert rows["average"] == ["missing", "missing"]
