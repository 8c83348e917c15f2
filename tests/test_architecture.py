"""The shape of the code, enforced: small modules and functions, no import cycles, fast answers.

``ruff`` checks complexity and statement counts (C901, PLR0915 in pyproject.toml); this file checks what ruff does
not: lines per module and per function, cycles between evalkit's modules, and what the CLI imports to answer.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "evalkit"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def _modules() -> dict[str, Path]:
    return {
        ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__"): path
        for path in sorted(PACKAGE.rglob("*.py"))
    }


def test_no_module_over_400_lines() -> None:
    sizes = {name: len(path.read_text().splitlines()) for name, path in _modules().items()}
    long = {name: n for name, n in sizes.items() if n > MAX_MODULE_LINES}
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


def test_no_function_over_60_lines() -> None:
    long = {}
    for name, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                if lines > MAX_FUNCTION_LINES:
                    long[f"{name}.{node.name}"] = lines
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"


def _top_level_imports(path: Path, modules: set[str], own: str) -> set[str]:
    """evalkit modules a module imports when it is imported (not inside functions, not for type checking only)."""
    found: set[str] = set()
    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        for inner in ast.walk(node) if not isinstance(node, (ast.FunctionDef, ast.ClassDef)) else []:
            if isinstance(inner, ast.ImportFrom) and inner.module:
                base = inner.module if inner.level == 0 else _relative(own, inner.module, inner.level, path)
                candidates = [f"{base}.{alias.name}" for alias in inner.names] + [base]
                found.update(c for c in candidates if c in modules)
            elif isinstance(inner, ast.Import):
                found.update(alias.name for alias in inner.names if alias.name in modules)
    found.discard(own)
    return found


def _relative(own: str, module: str, level: int, path: Path) -> str:
    parts = own.split(".")
    base = parts if path.name == "__init__.py" else parts[:-1]
    return ".".join([*base[: len(base) - level + 1], module])


def test_no_import_cycles() -> None:
    modules = _modules()
    graph = {name: _top_level_imports(path, set(modules), name) for name, path in modules.items()}
    # A package imports its submodules when it is imported; a submodule importing its package's __init__ is normal.
    cycles: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if node.startswith(nxt + "."):
                continue  # a module importing its own package
            if state.get(nxt) == 1:
                cycles.append([*trail[trail.index(nxt) :], nxt] if nxt in trail else [node, nxt])
            elif state.get(nxt) is None:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for name in graph:
        if state.get(name) is None:
            visit(name, [name])
    assert not cycles, f"import cycles: {cycles[:5]}"


@pytest.mark.parametrize(
    ("argv", "forbidden"),
    [
        (["--help"], ("torch", "mteb", "transformers")),
        (["run", "--help"], ("torch", "mteb", "transformers")),
        (["run"], ("torch", "mteb", "transformers")),  # an argument error: --model missing
        (["run", "--model", "m", "--tasks", "T", "--precision", "fp64"], ("torch", "mteb", "transformers")),
        (["models"], ("torch", "transformers")),
    ],
)
def test_fast_answers_import_no_heavy_library(argv: list[str], forbidden: tuple[str, ...]) -> None:
    code = (
        "import sys\nfrom evalkit.cli import main\n"
        f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
        f"print('LOADED', [m for m in {forbidden!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "LOADED []", out.stdout[-500:] + out.stderr[-2000:]
