"""Whole-process SciFact runs: ``evalkit run`` cold (fresh cache, no memos, no parsed corpora) against warm (every
vector, memo and corpus form in place), as a new user runs it twice. Prints each side's wall and CPU time, their
medians and spread, the cold/warm ratio, the start-up of ``evalkit run`` on the already-cached task (the warm
process's wall time less the task's own evaluation time from its result file), and which heavy modules a warm
process imported (none is the goal: no torch, transformers or mteb when nothing is encoded).

Cold and warm alternate (cold, warm × n, cold, warm × n): each cold run gets its own fresh cache folder
(``--cache-dir`` and ``EVALKIT_CACHE_DIR``), and the warm runs after it reuse that folder. The host's MiniLM-shaped
matmul rates (fp32 torch and MLAS, bf16 torch) are measured before the first round and after each one, and named in
the report: a cold run's time means little on another host without them.

    .venv/bin/python benchmarks/bench_warm_run.py [--data-dir ../shared/data/tasks] [--cold-runs 2] [--warm-runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import OtherCpu, activity_section, matmul_rate_lines, matmul_rates, other_activity
from _machine import machine_header, write_report

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
HEAVY = ("torch", "transformers", "mteb", "datasets", "sklearn", "scipy", "pandas", "onnxruntime")
_PROBE = (
    "import json, sys\nfrom evalkit.cli import main\ncode = main(sys.argv[1:])\n"
    f"print('HEAVY=' + json.dumps(sorted(m for m in {set(HEAVY)!r} if m in sys.modules)), file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def run_once(data_dir: Path, cache: Path, out: Path) -> dict[str, object]:
    """One whole ``evalkit run`` process: wall and CPU seconds, nDCG@10, evaluation time, heavy modules loaded."""
    env = {**os.environ, "EVALKIT_CACHE_DIR": str(cache), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    args = ["run", "--model", MODEL, "--tasks", "SciFact", "--data-dir", str(data_dir), "--output", str(out)]
    args += ["--cache-dir", str(cache / "embeddings-root")]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"evalkit run failed ({done.returncode}): {done.stderr[-2000:]}")
    heavy = next(line for line in done.stderr.splitlines() if line.startswith("HEAVY="))
    (result_file,) = out.rglob("SciFact.json")
    result = json.loads(result_file.read_text())
    return {
        "wall_s": wall,
        "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        "ndcg_at_10": result["scores"]["test"][0]["ndcg_at_10"],
        "evaluation_s": float(result.get("evaluation_time") or 0.0),
        "heavy": json.loads(heavy.removeprefix("HEAVY=")),
    }


def _spread(values: list[float]) -> str:
    return f"median {statistics.median(values):.2f} s (min {min(values):.2f}, max {max(values):.2f}, n={len(values)})"


def measure(data_dir: Path, cold_runs: int, warm_runs: int) -> tuple[list[dict], list[dict], list[tuple]]:
    cold, warm, readings = [], [], [("before round 1", matmul_rates())]
    with tempfile.TemporaryDirectory(prefix="bench-warm-") as scratch:
        for round_number in range(cold_runs):
            cache = Path(scratch) / f"cache-{round_number}"
            cold.append(run_once(data_dir, cache, Path(scratch) / f"out-cold-{round_number}"))
            print(f"cold {round_number + 1}: {cold[-1]}", flush=True)
            for index in range(warm_runs):
                warm.append(run_once(data_dir, cache, Path(scratch) / f"out-warm-{round_number}-{index}"))
                print(f"warm {round_number + 1}.{index + 1}: {warm[-1]}", flush=True)
            readings.append((f"after round {round_number + 1}", matmul_rates()))
    return cold, warm, readings


def report(
    cold: list[dict], warm: list[dict], header: str, others: OtherCpu, before: str, readings: list[tuple] | None = None
) -> str:
    cold_wall, warm_wall = [r["wall_s"] for r in cold], [r["wall_s"] for r in warm]
    startup = [r["wall_s"] - r["evaluation_s"] for r in warm]
    ratio = statistics.median(cold_wall) / statistics.median(warm_wall)
    cpu_ratio = statistics.median([r["cpu_s"] for r in cold]) / statistics.median([r["cpu_s"] for r in warm])
    scores = sorted({round(r["ndcg_at_10"], 6) for r in cold + warm})
    heavy = sorted({m for r in warm for m in r["heavy"]})
    lines = [
        "# Warm run: a cached SciFact run costs its work, not its start-up",
        "",
        header,
        *(matmul_rate_lines(readings) if readings else []),
        "",
        "`benchmarks/bench_warm_run.py`: whole `evalkit run` processes on SciFact with the packaged all-MiniLM-L6-v2,",
        "cold (fresh cache folder: no vectors, memos or parsed corpora) then warm (the same folder), alternated.",
        "",
        "| side | wall | CPU (user+sys) |",
        "| --- | --- | --- |",
        f"| cold | {_spread(cold_wall)} | {_spread([r['cpu_s'] for r in cold])} |",
        f"| warm | {_spread(warm_wall)} | {_spread([r['cpu_s'] for r in warm])} |",
        "",
        f"- cold/warm ratio, whole process: **{ratio:.0f}×** wall, {cpu_ratio:.0f}× CPU time",
        f"- start-up of `evalkit run` on the cached task (warm wall less the task's own evaluation time): "
        f"{_spread(startup)}",
        f"- nDCG@10, every run: {', '.join(f'{s:.5f}' for s in scores)} (one value: warm scores equal cold)",
        f"- heavy modules a warm process imported: {', '.join(heavy) or 'none'}",
        "",
        *activity_section(others, before),
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/tasks")
    parser.add_argument("--cold-runs", type=int, default=2, help="each ~150-200 s on 2 cores")
    parser.add_argument("--warm-runs", type=int, default=3, help="warm runs after each cold one")
    parser.add_argument("--no-report", action="store_true", help="print only; leave reports/bench/ as it is")
    args = parser.parse_args()
    header, before = machine_header(), other_activity()
    with OtherCpu() as others:
        cold, warm, readings = measure(args.data_dir.resolve(), args.cold_runs, args.warm_runs)
    text = report(cold, warm, header, others, before, readings)
    print(text)
    if not args.no_report:
        print(f"written: {write_report('warm_run', text)}")


if __name__ == "__main__":
    main()
