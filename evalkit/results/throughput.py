"""How fast the vectors behind a result were computed: the run record's ``throughput`` object, written and read.

Written per task (:func:`task_throughput`) from the embedding core's counters taken before and after the task, so
a speed is never guessed from wall time: ``encode_s`` is the time the core spent on texts missing from the cache
(tokenizing, forward passes, writing the new vectors to the cache), and a task whose vectors all came from the
cache has ``texts_encoded`` 0, ``cached_share`` 1.0 and no speed (``texts_per_s`` null, never 0). With
``--backend ray`` the corpus is encoded in workers, whose texts, tokens and seconds the backend adds to the
driver's counters: ``encode_s`` is then summed over workers (``encode_s_scope`` says so, ``worker_encode_s`` is
their share), so ``texts_per_s`` is a per-worker speed, not the cluster's.
``peak_rss_mib`` is the process's peak resident memory so far (``getrusage``), not the task's own.

Read per run (:func:`run_throughput`) by the comparison report and the leaderboard. Run records written before the
object existed are read by an estimate, and say so (``source``): texts encoded per task from the differences of the
run's cumulative ``embedding_stats`` between consecutive tasks, seconds from the ``encode*`` timings (plus
``search_s`` where the queries were encoded inside the search step).
"""

from __future__ import annotations

import math
import resource
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

RECORDED = "recorded"
DERIVED = "derived from timings and embedding_stats"
WORKERS_SUMMED = "summed over Ray workers (each worker's busy seconds added, not wall time) plus the driver's own"


def peak_rss_mib() -> float:
    """The process's peak resident set size so far, in MiB (process-wide: every task run so far counts)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)  # bytes on macOS, KiB on Linux


def _peak_device_mib() -> float | None:
    """Peak GPU memory torch allocated in this process (MiB), when CUDA was used; else None."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return None
    return round(sum(torch.cuda.max_memory_allocated(i) for i in range(torch.cuda.device_count())) / 2**20, 1)


def _rate(count: float | None, seconds: float) -> float | None:
    return count / seconds if count and seconds > 0 else None


def task_throughput(
    before: Mapping[str, int], after: Mapping[str, int], *, device: str | None, precision: str | None
) -> dict[str, Any]:
    """The ``throughput`` object of one task, from the core's counters before and after it (``core.stats``)."""
    encoded = after.get("encoded", 0) - before.get("encoded", 0)
    cached = after.get("cached", 0) - before.get("cached", 0)
    tokens: int | None = after.get("tokens", 0) - before.get("tokens", 0)
    if encoded and not tokens:  # a text-level model (an API, a callable) has no tokens the core sees
        tokens = None
    encode_s = (after.get("encode_ns", 0) - before.get("encode_ns", 0)) / 1e9
    worker_s = (after.get("worker_encode_ns", 0) - before.get("worker_encode_ns", 0)) / 1e9
    scope = {"encode_s_scope": WORKERS_SUMMED, "worker_encode_s": round(worker_s, 6)} if worker_s > 0 else {}
    return {
        "texts_encoded": encoded,
        "texts_cached": cached,
        "tokens_encoded": tokens,
        "encode_s": round(encode_s, 6),
        "texts_per_s": _rate(encoded, encode_s),
        "tokens_per_s": _rate(tokens, encode_s),
        "peak_rss_mib": peak_rss_mib(),
        "peak_rss_scope": "process",
        "peak_device_mib": _peak_device_mib(),
        "device": device,
        "precision": precision,
        "cached_share": cached / (encoded + cached) if encoded + cached else None,
        **scope,
    }


def compute_seconds(splits: Iterable[Mapping[str, float]]) -> float:
    """Encode + search + score: every timed step of every split (not loading, not writing)."""
    return sum(float(v) for timings in splits for v in timings.values() if _number(v))


@dataclass(frozen=True)
class Throughput:
    """A run's encode speed over the tasks that encoded anything: texts, tokens and seconds summed over them."""

    texts_encoded: int
    tokens_encoded: int | None  # None: some task's tokens were not counted
    encode_s: float
    device: str | None
    precision: str | None
    source: str  # RECORDED, or DERIVED for run records older than the throughput object

    @property
    def texts_per_s(self) -> float | None:
        return _rate(self.texts_encoded, self.encode_s)

    @property
    def tokens_per_s(self) -> float | None:
        return _rate(self.tokens_encoded, self.encode_s)


def _mapping(value: object) -> Mapping[str, Any]:
    """A JSON object read from an untrusted record, or an empty one for anything else."""
    return value if isinstance(value, Mapping) else {}


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _legacy_seconds(record: Mapping[str, Any]) -> float:
    """Seconds of encoding in an old record's split timings (``search_s`` too where it holds the query encoding)."""
    splits = _mapping(_mapping(record.get("timings")).get("splits"))
    total = 0.0
    for timings in splits.values():
        if not isinstance(timings, Mapping):
            continue
        total += sum(float(v) for k, v in timings.items() if str(k).startswith("encode") and _number(v))
        if "encode_corpus_s" in timings and "encode_queries_s" not in timings and _number(timings.get("search_s")):
            total += float(timings["search_s"])
    return total


def _stats(record: Mapping[str, Any]) -> tuple[int, int] | None:
    stats = _mapping(_mapping(record.get("run_settings")).get("embedding_stats"))
    if not all(_number(stats.get(k)) for k in ("encoded", "cached")):
        return None
    return int(stats["encoded"]), int(stats["cached"])


def _legacy_tasks(records: list[Mapping[str, Any]]) -> list[tuple[int, float]]:
    """(texts encoded, seconds) per old record, in run order: cumulative counters differenced while the command
    is the same and the counters only grow (a new process starts again from its own counts)."""
    ordered = sorted(records, key=lambda r: str(r.get("started_at", "")))
    found, previous, previous_command = [], (0, 0), None
    for record in ordered:
        stats = _stats(record)
        if stats is None:
            continue
        same_process = record.get("command") == previous_command and all(
            now >= before for now, before in zip(stats, previous, strict=True)
        )
        encoded = stats[0] - previous[0] if same_process else stats[0]
        found.append((encoded, _legacy_seconds(record)))
        previous, previous_command = stats, record.get("command")
    return found


def _settings(records: list[Mapping[str, Any]], name: str) -> str | None:
    found = (_mapping(r.get("run_settings")).get(name) for r in records)
    values = {str(value) for value in found if value}
    return values.pop() if len(values) == 1 else ("mixed" if values else None)


def run_throughput(records: Iterable[Mapping[str, Any] | None]) -> Throughput | None:
    """The run's speed from its tasks' run records; None when no task encoded a text (all cached, or no records:
    a published result file), so a report shows "n/a" and never 0."""
    records = [r for r in records if isinstance(r, Mapping)]
    recorded = [r["throughput"] for r in records if isinstance(r.get("throughput"), Mapping)]
    if recorded:
        used = [t for t in recorded if _number(t.get("texts_encoded")) and t["texts_encoded"] > 0]
        used = [t for t in used if _number(t.get("encode_s")) and t["encode_s"] > 0]
        tokens = [t.get("tokens_encoded") for t in used]
        source, settings = RECORDED, recorded
        texts = sum(int(t["texts_encoded"]) for t in used)
        seconds = sum(float(t["encode_s"]) for t in used)
        token_total = sum(int(n) for n in tokens) if tokens and all(_number(n) for n in tokens) else None
    else:
        pairs = [(n, s) for n, s in _legacy_tasks(records) if n > 0 and s > 0]
        source, settings = DERIVED, [_mapping(r.get("run_settings")) for r in records]
        texts, seconds, token_total = sum(n for n, _ in pairs), sum(s for _, s in pairs), None
    if texts <= 0 or seconds <= 0:
        return None
    return Throughput(
        texts_encoded=texts,
        tokens_encoded=token_total,
        encode_s=seconds,
        device=_settings([{"run_settings": s} for s in settings], "device"),
        precision=_settings([{"run_settings": s} for s in settings], "precision"),
        source=source,
    )


__all__ = [
    "DERIVED",
    "RECORDED",
    "WORKERS_SUMMED",
    "Throughput",
    "compute_seconds",
    "peak_rss_mib",
    "run_throughput",
    "task_throughput",
]
