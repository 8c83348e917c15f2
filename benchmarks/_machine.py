"""What a benchmark ran on, for the header of every report under reports/bench/."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import platform
from importlib import metadata
from pathlib import Path


def _lines(path: str) -> list[str]:
    try:
        return Path(path).read_text().splitlines()
    except OSError:
        return []


def _first(lines: list[str], prefix: str) -> str:
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith(prefix)), "unknown")


def machine_header(
    packages: tuple[str, ...] = ("torch", "transformers", "sentence-transformers", "mteb", "numpy"),
) -> str:
    cpuinfo = _lines("/proc/cpuinfo")
    cpu = _first(cpuinfo, "model name")
    flags = " ".join(sorted({w for w in _first(cpuinfo, "flags").split() if w.startswith(("avx512_bf16", "amx"))}))
    mem_kib = _first(_lines("/proc/meminfo"), "MemTotal").split()[0]
    memory = f"{int(mem_kib) / 2**20:.1f} GiB" if mem_kib.isdigit() else "unknown"
    versions = []
    for name in packages:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions.append(f"{name} {metadata.version(name)}")
    load = os.getloadavg()[0]
    return "\n".join(
        [
            f"- date: {dt.datetime.now(dt.timezone.utc).isoformat(timespec='seconds')}",
            f"- machine: {cpu}, {os.cpu_count()} cores ({flags or 'no bf16 flags'}), {memory} RAM",
            f"- platform: {platform.platform()}",
            f"- load average at start: {load:.2f} (other work on the machine skews timings)",
            f"- packages: {', '.join(versions)}",
        ]
    )


def write_report(name: str, text: str) -> Path:
    path = Path(__file__).resolve().parents[1] / "reports" / "bench" / f"{name}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
