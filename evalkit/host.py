"""Facts of the host a run happens on, read without importing any heavy library: the cores this process may use
and the installed versions of packages. One place, for the runtime probe's host key, the warm run's memos, the
ONNX session's threads and the search's workers."""

from __future__ import annotations

import os
from functools import cache
from importlib import metadata


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity, which a container limits), not the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@cache  # read once per process: a run asks for the same few packages many times
def library_version(name: str) -> str:
    """An installed distribution's version from its metadata (nothing is imported), ``absent`` when missing."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"
