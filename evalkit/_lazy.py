"""Lazy exports for a package's ``__init__``: names imported on first use, so importing the package stays cheap.

``import evalkit`` and the CLI's ``--help`` must load neither torch nor mteb, and ``evalkit.subsets`` must not pull
its builder into every run; both packages name their public calls in one mapping (``name -> "module:attribute"``)
and get their module ``__getattr__`` (PEP 562) from here. This module imports nothing heavy, nor anything of evalkit.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(module_name: str, mapping: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports ``mapping[name]`` (``"package.module:attribute"``) on first access and
    stores it in the module's namespace, so each name is resolved once; any other name is an AttributeError, as
    for a plain module."""

    def __getattr__(name: str) -> Any:
        target = mapping.get(name)
        if target is None:
            raise AttributeError(f"module {module_name!r} has no attribute {name!r}")
        module, attr = target.split(":")
        value = getattr(importlib.import_module(module), attr)
        setattr(sys.modules[module_name], name, value)
        return value

    return __getattr__


def lazy_dir(module_name: str, mapping: Mapping[str, str]) -> Callable[[], list[str]]:
    """A module ``__dir__`` that lists the lazy names beside those already in the namespace (for completion)."""

    def __dir__() -> list[str]:
        return sorted([*vars(sys.modules[module_name]), *mapping])

    return __dir__
