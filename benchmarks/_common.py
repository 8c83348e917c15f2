"""Helpers the search and metrics benchmarks share: peak memory per step, and what else was running.

Peak memory is read from the kernel, not from tracemalloc, which sees only Python's own allocations and misses
what BLAS, faiss and numpy's large buffers take. ``ru_maxrss`` is the process's high-water mark, so its delta is
only meaningful for the first step that raises it; :class:`PeakMemory` therefore also samples the resident set
every few milliseconds and reports each step's own peak above its starting point.
"""

from __future__ import annotations

import os
import resource
import subprocess
import threading
import time
from pathlib import Path
from types import TracebackType

_MIB = 1024.0


def _status_kib() -> dict[str, int]:
    """VmRSS, RssAnon (memory the process allocated) and RssFile (mapped file pages) in KiB."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "RssAnon", "RssFile"):
            fields[name] = int(value.split()[0])
    return fields


class PeakMemory:
    """Peak resident memory of one step, above what the process held when it began.

    ``anon_mib`` counts memory the step allocated; ``rss_mib`` adds pages of memory-mapped files it kept mapped
    (page cache the kernel can drop, but which ``top`` shows). ``maxrss_mib`` is the ``ru_maxrss`` delta.
    """

    def __init__(self, interval_s: float = 0.005) -> None:
        self.interval_s = interval_s
        self.rss_mib = self.anon_mib = self.maxrss_mib = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> PeakMemory:
        self._start = _status_kib()
        self._peak = dict(self._start)
        self._maxrss_start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()
        self._take_sample()
        self.rss_mib = (self._peak["VmRSS"] - self._start["VmRSS"]) / _MIB
        self.anon_mib = (self._peak["RssAnon"] - self._start["RssAnon"]) / _MIB
        self.maxrss_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - self._maxrss_start) / _MIB

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._take_sample()
            time.sleep(self.interval_s)

    def _take_sample(self) -> None:
        for name, value in _status_kib().items():
            self._peak[name] = max(self._peak[name], value)


def _busy_cpu_seconds() -> float:
    """CPU time all processes on the machine have used since boot (user, nice, system, irq, softirq, steal)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(value) for value in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


class OtherCpu:
    """CPU seconds used by everything but this process while the block ran: the share of the machine that other
    work took from the measurement (0 on a quiet machine; up to wall time × cores when it is saturated)."""

    def __enter__(self) -> OtherCpu:
        self._machine, self._own, self._wall = _busy_cpu_seconds(), _own_cpu_seconds(), time.perf_counter()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.wall_s = time.perf_counter() - self._wall
        own = _own_cpu_seconds() - self._own
        self.seconds = max(0.0, _busy_cpu_seconds() - self._machine - own)

    def summary(self) -> str:
        cores = os.cpu_count() or 1
        return (
            f"other processes used {self.seconds:.1f} CPU-seconds during the {self.wall_s:.0f} s of measurements "
            f"({self.seconds / (self.wall_s * cores):.1%} of the machine's {cores} cores)"
        )


def _own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def other_activity(limit: int = 5) -> str:
    """The load average and the busiest other processes, for the report: on a shared machine they skew timings."""
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    lines = [f"load average (1, 5, 15 min): {load}"]
    try:
        listing = subprocess.run(
            ["top", "-b", "-n", "1", "-c", "-w", "200"], capture_output=True, text=True, check=True
        ).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return lines[0]
    header = next((i for i, line in enumerate(listing) if line.split()[:1] == ["PID"]), None)
    busy = []
    for line in listing[header + 1 :] if header is not None else []:
        fields = line.split(None, 11)
        if len(fields) == 12 and fields[0] != str(os.getpid()) and float(fields[8]) >= 5.0:
            busy.append(f"    pid {fields[0]}, {fields[8]}% CPU: {fields[11][:120]}")
    lines.append("other processes using ≥5% CPU at this moment (top):")
    return "\n".join(lines + (busy[:limit] or ["    none"]))


def activity_section(others: OtherCpu, before: str) -> list[str]:
    """The report's closing section: how much CPU other processes took, and what ran before and after."""
    return [
        "## What else was running",
        "",
        f"Measured from /proc/stat: {others.summary()}.",
        "",
        "Before the run:",
        "",
        "```",
        before,
        "```",
        "",
        "After the run:",
        "",
        "```",
        other_activity(),
        "```",
        "",
    ]
