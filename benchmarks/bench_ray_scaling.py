"""``--backend ray`` measured: corpus encoding with 1 and 2 Ray workers against the local core, and search over
2,000,000 × 384 vectors in shards against one process (evalkit's search and faiss ``IndexFlatIP``).

Everything runs on this machine: a Ray head (no CPUs) and worker nodes of one CPU each, separate processes on
loopback (:class:`evalkit.distributed.local_cluster.LocalRayCluster`). The peer of the encoding runs is the local
backend in this process on the same texts (its own 2 threads); the peer of the sharded search is one process
holding the whole corpus. The Ray vectors are compared with the local ones bit for bit.

    .venv/bin/python benchmarks/bench_ray_scaling.py                    # SciFact corpus; 2M × 384, 1,000 queries
    .venv/bin/python benchmarks/bench_ray_scaling.py --docs 1000 --search-docs 200000 --queries 100
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from _common import OtherCpu, PeakMemory, activity_section, other_activity
from _machine import machine_header, write_report

from evalkit.core import EmbeddingCore
from evalkit.core.embed import dedup
from evalkit.distributed.local_cluster import LocalRayCluster
from evalkit.distributed.ray_backend import RayBackend, ShardedCorpus, encoder_settings
from evalkit.distributed.shard_store import ShardStore
from evalkit.encoders import load_encoder
from evalkit.registry.models import resolve_model
from evalkit.search.dense import exact_top_k

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "tasks" / "SciFact" / "corpus.jsonl"
SEARCH_SHARD = 100_000


def scifact_texts(limit: int | None) -> list[str]:
    with DATA.open() as handle:
        rows = [json.loads(line) for line in handle]
    texts = [f"{row['title']} {row['text']}".strip() for row in rows]
    return texts[:limit] if limit else texts


def encode_locally(texts: list[str]) -> tuple[np.ndarray, float]:
    encoder = load_encoder(resolve_model(MODEL))
    core = EmbeddingCore(token_budget=4096, show_progress=False)
    started = time.perf_counter()
    vectors = core.encode(encoder, texts, "document")
    return vectors, time.perf_counter() - started


def encode_on_ray(address: str, texts: list[str], workers: int, store_dir: Path) -> tuple[dict, np.ndarray]:
    """One run of the backend with a fresh store; the vectors read back from the shards, for the comparison."""
    import ray

    spec = resolve_model(MODEL)
    encoder = load_encoder(spec)
    core = EmbeddingCore(token_budget=4096, show_progress=False)
    backend = RayBackend(store_url=str(store_dir), address=address, workers=workers, show_progress=False)
    backend.settings = encoder_settings(spec, encoder, core, device="cpu", precision="fp32", runtime="auto")
    started = time.perf_counter()
    corpus = backend.encode_corpus(core, encoder, texts, "document")
    wall = time.perf_counter() - started
    parts = {key: corpus.store.read(key) for key in corpus.keys}
    vectors = np.stack([parts[corpus.keys[s]][r] for s, r in zip(corpus.shard_of, corpus.row_of, strict=True)])
    ray.shutdown()
    per_worker = backend.stats["workers"]
    return {
        "workers": workers,
        "wall_s": wall,
        "shards": backend.stats["shards_encoded"],
        "per_worker": per_worker,
    }, vectors


def write_search_shards(store: ShardStore, docs: int, dim: int, seed: int) -> ShardedCorpus:
    """Random float32 shards of ``SEARCH_SHARD`` rows, written one at a time (this process never holds them all)."""
    rng = np.random.default_rng(seed)
    keys, shard_of, row_of = [], np.empty(docs, dtype=np.int32), np.empty(docs, dtype=np.int64)
    for number, start in enumerate(range(0, docs, SEARCH_SHARD)):
        rows = min(SEARCH_SHARD, docs - start)
        key = f"random-{docs}x{dim}-seed{seed}-shard{number}"
        if store.info(key) is None:
            store.write(key, rng.standard_normal((rows, dim), dtype=np.float32))
        else:
            rng.standard_normal((rows, dim), dtype=np.float32)  # keep the stream where a fresh run would be
        keys.append(key)
        shard_of[start : start + rows] = number
        row_of[start : start + rows] = np.arange(rows)
    return ShardedCorpus(store, keys, shard_of, row_of, dim)


def search_on_ray(address: str, corpus: ShardedCorpus, queries: np.ndarray, k: int) -> tuple[float, float, object]:
    import ray

    backend = RayBackend(store_url=corpus.store.url, address=address, show_progress=False)
    backend.top_k(queries[:2], corpus, k)  # workers started and warm (imports), not in the timing
    with PeakMemory() as memory:
        started = time.perf_counter()
        top = backend.top_k(queries, corpus, k)
        wall = time.perf_counter() - started
    ray.shutdown()
    return wall, memory.anon_mib, top


def near_tie_agreement(a, b) -> str:
    differ = a.indices != b.indices
    gap = np.abs(a.scores - b.scores).max()
    return (
        f"{int(differ.any(axis=1).sum())} of {len(a.indices)} queries differ in some position "
        f"({int(differ.sum())} positions of {differ.size}); largest score difference at the same rank {gap:.2g}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=None, help="SciFact documents to encode (default: all 5,183)")
    parser.add_argument("--search-docs", type=int, default=2_000_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--k", type=int, default=1000)
    parser.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "evalkit-bench-ray")
    args = parser.parse_args()
    before = other_activity()
    texts = scifact_texts(args.docs)
    n_distinct = len(dedup(texts)[0])
    lines: list[str] = []
    with OtherCpu() as others:
        local_vectors, local_s = encode_locally(texts)
        print(f"local: {local_s:.1f} s")
        encode_rows = []
        with LocalRayCluster() as cluster:
            for workers in (1, 2):
                while len(cluster.workers) < workers:
                    cluster.add_worker(cpus=1)
                store_dir = args.work_dir / f"encode-{workers}"
                shutil.rmtree(store_dir, ignore_errors=True)
                result, vectors = encode_on_ray(cluster.address, texts, workers, store_dir)
                result["identical"] = bool(np.array_equal(vectors, local_vectors))
                encode_rows.append(result)
                print(f"ray, {workers} worker(s): {result['wall_s']:.1f} s, identical: {result['identical']}")

            store = ShardStore(args.work_dir / "search")
            corpus = write_search_shards(store, args.search_docs, args.dim, seed=0)
            queries = np.random.default_rng(1).standard_normal((args.queries, args.dim), dtype=np.float32)
            search_rows = []
            for workers in (1, 2):
                cluster_size = len(cluster.workers)
                if cluster_size > workers:
                    cluster.kill_worker(cluster.workers[-1])
                while len(cluster.workers) < workers:
                    cluster.add_worker(cpus=1)
                wall, driver_mib, top = search_on_ray(cluster.address, corpus, queries, args.k)
                search_rows.append((workers, wall, driver_mib, top))
                print(f"sharded search, {workers} worker(s): {wall:.2f} s, driver +{driver_mib:.0f} MiB")

        # The single-process peers: the whole corpus in this process's memory.
        whole = np.concatenate([store.read(key) for key in corpus.keys])
        with PeakMemory() as memory:
            started = time.perf_counter()
            single = exact_top_k(queries, whole, args.k, threads=2)
            single_s = time.perf_counter() - started
        faiss_s = None
        try:
            import faiss

            from evalkit.search.dense import l2_normalized

            index = faiss.IndexFlatIP(args.dim)
            index.add(l2_normalized(whole))
            faiss.omp_set_num_threads(2)
            started = time.perf_counter()
            index.search(l2_normalized(queries), args.k)
            faiss_s = time.perf_counter() - started
            del index
        except ImportError:
            pass
        del whole

    lines += [
        "# `--backend ray`: encoding with 1 and 2 workers, and search over shards",
        "",
        machine_header(packages=("ray", "torch", "onnxruntime", "numpy", "faiss-cpu")),
        "",
        "A Ray head (0 CPUs) and worker nodes of 1 CPU each, separate process groups on loopback, on this one "
        "2-core machine: two workers are the whole machine, so they show the backend's overhead and that work "
        "spreads, not what more machines would give (see docs/scaling.md for the projection). The Ray workers are "
        "separate processes, so 'What else was running' below counts them: there, they are the measurement.",
        "",
        f"## Encoding: all-MiniLM-L6-v2 (fp32, ONNX Runtime), {n_distinct:,} distinct SciFact documents",
        "",
        "| backend | wall (s) | texts/s | vs local | shards | vectors identical to local |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
        f"| local, this process (2 threads) | {local_s:.1f} | {n_distinct / local_s:.1f} | 1.00× | | |",
    ]
    for row in encode_rows:
        lines.append(
            f"| ray, {row['workers']} worker(s) × 1 CPU | {row['wall_s']:.1f} | {n_distinct / row['wall_s']:.1f} "
            f"| {local_s / row['wall_s']:.2f}× | {row['shards']} | {'yes, bit for bit' if row['identical'] else 'NO'} |"
        )
    lines += ["", "Per worker (a worker's own time on its shards, so the shard throughput of one CPU):", ""]
    lines += ["| run | worker | shards | texts | seconds | texts/s |", "| --- | --- | ---: | ---: | ---: | ---: |"]
    for row in encode_rows:
        for name, entry in sorted(row["per_worker"].items()):
            lines.append(
                f"| {row['workers']} worker(s) | {name} | {entry['shards']} | {entry['rows']} | "
                f"{entry['seconds']:.1f} | {entry['rows'] / entry['seconds']:.1f} |"
            )
    shard_mib = SEARCH_SHARD * args.dim * 4 / 2**20
    lines += [
        "",
        f"## Search: {args.queries:,} queries, top {args.k:,}, over {args.search_docs:,} × {args.dim} "
        f"random float32 vectors in {len(corpus.keys)} shards of {SEARCH_SHARD:,} ({shard_mib:.0f} MiB each)",
        "",
        "| method | wall (s) | driver's extra memory (MiB) |",
        "| --- | ---: | ---: |",
    ]
    for workers, wall, driver_mib, _ in search_rows:
        lines.append(
            f"| ray, 2 search tasks per worker (runs of consecutive shards), {workers} worker(s) × 1 CPU "
            f"| {wall:.2f} | {driver_mib:.0f} |"
        )
    lines.append(f"| one process, evalkit exact_top_k, 2 threads, corpus in memory | {single_s:.2f} | "
                 f"{memory.anon_mib:.0f} (+ the corpus, {args.search_docs * args.dim * 4 / 2**20:.0f}) |")  # fmt: skip
    if faiss_s is not None:
        lines.append(f"| one process, faiss IndexFlatIP.search, 2 threads (search only) | {faiss_s:.2f} | (+ index) |")
    best_ray = min(wall for _, wall, _, _ in search_rows)
    lines += [
        "",
        f"**Sharded search at 2 workers vs one process: {single_s / search_rows[-1][1]:.2f}× evalkit's "
        + (f"and {faiss_s / search_rows[-1][1]:.2f}× faiss's speed" if faiss_s else "speed")
        + f"** (best Ray time {best_ray:.2f} s). No process holds more than one shard: each task reads its shards "
        "from the store one at a time (memory-mapped), the driver holds the queries and merges the tasks' "
        f"top-{args.k} lists as they arrive.",
        "",
        "Same results? 2-worker sharded search against the one-process search: "
        + near_tie_agreement(search_rows[-1][3], single)
        + " (a score's last bit depends on where its row sits in a matrix product; tests/test_shards.py holds "
        "the differing places to near-ties).",
        "",
        f"Peak resident memory of this driver process over the whole benchmark (ru_maxrss): "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB (includes the one-process peers).",
        "",
        *activity_section(others, before),
    ]
    path = write_report("ray_scaling", "\n".join(lines) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
