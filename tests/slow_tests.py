"""Rewrite tests/slow_tests.txt from a ``pytest --durations=0`` log: every test whose setup, call and teardown
together took 1 s or more. ``make test-fast`` (``pytest --fast``) leaves those out, so the fast lane stays fast
as tests are added: run the full suite with ``--durations=0`` and regenerate."""

from __future__ import annotations

import collections
import re
import sys
from pathlib import Path

THRESHOLD_S = 1.0
LIST = Path(__file__).with_name("slow_tests.txt")
_LINE = re.compile(r"\s*([\d.]+)s (setup|call|teardown)\s+(\S+)")


def main(log: str) -> None:
    seconds: collections.Counter[str] = collections.Counter()
    for line in Path(log).read_text(encoding="utf-8").splitlines():
        match = _LINE.match(line)
        if match:
            seconds[match.group(3)] += float(match.group(1))
    slow = sorted(test for test, total in seconds.items() if total >= THRESHOLD_S)
    header = LIST.read_text(encoding="utf-8").splitlines()[:3] if LIST.is_file() else []
    LIST.write_text("\n".join([*header, *slow]) + "\n", encoding="utf-8")
    print(f"{len(slow)} slow tests written to {LIST}")


if __name__ == "__main__":
    main(sys.argv[1])
