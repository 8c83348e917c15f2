"""What a run reports while it works: one event per finished task, and the per-batch progress bar.

A CI log is not a terminal, so a progress bar (hidden there) cannot be the only sign of life: every finished task
is an event (:class:`TaskProgress`) handed to the run's ``on_task_done`` callback, and the default one,
:func:`print_task_line`, writes one plain line to stderr whether or not it is a terminal, with ``--quiet`` or
without. A Python caller passes its own callback to get the same events, or ``None`` to silence them.

The bar is :class:`BatchBar`: shown on a terminal only (and never with ``--quiet``), it moves per forward pass,
not per cache chunk of thousands of texts, so a slow model on a CPU still shows it is moving.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from tqdm.auto import tqdm


@dataclass(frozen=True)
class TaskProgress:
    """One task finished and written: its place in the run, the texts it needed, the time and its main score.

    ``encoded`` / ``cached``: distinct texts (and pairs) computed by the model vs read from the embedding cache for
    this task alone. ``main_score`` is the task's score as its result file gives it (``None`` when it has none).
    """

    index: int  # 1-based
    total: int
    task_name: str
    encoded: int
    cached: int
    seconds: float
    main_score_name: str
    main_score: float | None

    def line(self) -> str:
        """``evalkit: [2/9] STSBenchmark: 2758 texts (0 encoded, 2758 from cache) in 1.2 s, cosine_spearman 0.8203``."""
        from evalkit.reports.escape import escape_terminal

        texts = self.encoded + self.cached
        score = "no main score" if self.main_score is None else f"{self.main_score_name} {self.main_score:.4f}"
        return (
            f"evalkit: [{self.index}/{self.total}] {escape_terminal(self.task_name)}: {texts} texts "
            f"({self.encoded} encoded, {self.cached} from cache) in {self.seconds:.1f} s, {escape_terminal(score)}"
        )


TaskCallback = Callable[[TaskProgress], None]


def print_task_line(event: TaskProgress, stream: TextIO | None = None) -> None:
    """The default ``on_task_done``: the event's line on stderr, flushed at once (a CI log shows it live)."""
    stream = stream or sys.stderr
    print(event.line(), file=stream, flush=True)


class BatchBar:
    """A tqdm bar over ``total`` texts that the core advances per forward pass (``core.on_batch``).

    ``chunk_done`` re-syncs it to the exact count at each cache chunk (after an out-of-memory split, say), so the
    bar ends at ``total`` whatever the batches were. Hidden when stderr is not a terminal or ``show_progress`` is
    off; the core's ``on_batch`` is restored on exit. The seconds it was open (the texts missing from the cache
    tokenized, encoded and cached) are added to ``core.stats["encode_ns"]``: the run record's encode time.
    """

    def __init__(self, core: Any, total: int, desc: str) -> None:
        self.core = core
        self.bar = tqdm(total=total, desc=desc, unit="text", disable=None if core.show_progress else True)
        self.done = 0
        self._previous: Callable[[int], None] | None = None
        self._started = 0

    def __enter__(self) -> BatchBar:
        self._previous = self.core.on_batch
        self.core.on_batch = self.advance
        self._started = time.perf_counter_ns()
        return self

    def __exit__(self, *exc: object) -> None:
        self.core.on_batch = self._previous
        self.core.stats["encode_ns"] = self.core.stats.get("encode_ns", 0) + time.perf_counter_ns() - self._started
        self.bar.close()

    def advance(self, count: int) -> None:
        """One forward pass of ``count`` texts done (never past the current chunk's end)."""
        if self.bar.n + count <= self.bar.total:
            self.bar.update(count)

    def chunk_done(self, count: int) -> None:
        """A chunk of ``count`` texts is done and cached: the bar shows exactly what is done so far."""
        self.done += count
        if self.bar.n != self.done:
            self.bar.update(self.done - self.bar.n)


__all__ = ["BatchBar", "TaskCallback", "TaskProgress", "print_task_line"]
