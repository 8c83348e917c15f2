"""Test environment: offline, and every library cache in a temporary folder, so a fresh machine behaves the same.

The variables are set at import time, before any test module imports huggingface_hub, datasets or mteb, which
read them once.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

_CACHE_ROOT = Path(tempfile.mkdtemp(prefix="evalkit-test-caches-"))
for _name, _sub in {
    "HF_HOME": "hf",
    "HF_DATASETS_CACHE": "hf/datasets",
    "XDG_CACHE_HOME": "xdg",
    "NUMBA_CACHE_DIR": "numba",
    "MTEB_CACHE": "mteb",
    "EVALKIT_CACHE_DIR": "evalkit",
}.items():
    os.environ[_name] = str(_CACHE_ROOT / _sub)
os.environ["RAY_AUTH_MODE"] = "disabled"  # loopback clusters only: see evalkit/distributed/local_cluster.py
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.pop("EVALKIT_DATA_DIR", None)
os.environ.pop("EVALKIT_TASKS_PATH", None)

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
MIRROR = SHARED_DATA / "tasks"


@pytest.fixture(scope="session")
def mirror() -> Path:
    """The real local mirror in ../shared/data/tasks (CI always has it beside the clone)."""
    if not MIRROR.is_dir():
        pytest.skip(f"the shared benchmark data is not at {MIRROR}")
    return MIRROR


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"the shared benchmark data is not at {SHARED_DATA}")
    return SHARED_DATA


try:  # property tests: reproducible in CI (derandomized), no example database written into the checkout
    from hypothesis import HealthCheck, settings

    settings.register_profile(
        "evalkit", database=None, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
    )
    settings.load_profile("evalkit")
except ImportError:  # pragma: no cover - hypothesis is in the dev extra
    pass


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fast",
        action="store_true",
        help="the fast lane: leave out tests marked slow and those tests/slow_tests.txt lists (1 s or more)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--fast"):
        return
    listed = Path(__file__).with_name("slow_tests.txt").read_text(encoding="utf-8").splitlines()
    slow = {line.strip() for line in listed if line.strip() and not line.startswith("#")}
    kept, left_out = [], []
    for item in items:
        is_slow = item.nodeid in slow or item.get_closest_marker("slow") is not None
        (left_out if is_slow else kept).append(item)
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = kept
