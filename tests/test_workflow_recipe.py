"""docs/regression-check.yml works and stays working: its properties are checked on the parsed YAML, and its own
``run:`` steps run in order, in a temporary repository with a fake ``GITHUB_*`` environment, against the packaged
all-MiniLM-L6-v2 on STSBenchmark from the mirror -- so a renamed option or a changed exit code breaks this test,
not a user's CI."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import evalkit

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / "docs" / "regression-check.yml"
BASH = ["bash", "--noprofile", "--norc", "-eo", "pipefail"]  # what `shell: bash` runs on GitHub's runners
SAME_REPO = "github.event.pull_request.head.repo.full_name == github.repository"
_EXPRESSION = re.compile(r"\$\{\{\s*(.+?)\s*\}\}")


def _workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))


def _steps() -> list[dict]:
    return _workflow()["jobs"]["regression"]["steps"]


def _step(name: str) -> dict:
    return next(step for step in _steps() if step.get("name") == name)


def _uses(prefix: str) -> dict:
    return next(step for step in _steps() if step.get("uses", "").startswith(prefix))


def test_installs_the_pinned_distribution_and_caches_pip() -> None:
    env = _workflow()["env"]
    assert env["EVALKIT_VERSION"] == evalkit.__version__
    install = _step("Install evalkit")["run"]
    assert 'pip install "evalkit-embed==${EVALKIT_VERSION}"' in install
    assert not re.search(r"pip install evalkit\b(?!-embed)", install)
    python = _uses("actions/setup-python")["with"]
    assert python["cache"] == "pip"
    assert python["cache-dependency-path"].endswith("regression-check.yml")


def test_cache_key_is_version_and_tasks_not_the_checkpoint() -> None:
    cache = _uses("actions/cache")["with"]
    assert "hashFiles" not in cache["key"]
    assert "steps.key.outputs.key" in cache["key"]
    assert ".evalkit-cache" in cache["path"] and ".hf-cache" in cache["path"]
    key_step = _step("Cache key")["run"]
    assert "EVALKIT_VERSION" in key_step and "TASKS" in key_step and "hashFiles" not in key_step


def test_writing_to_the_pull_request_only_from_this_repository() -> None:
    """A fork's GITHUB_TOKEN is read-only: a comment or check run there would fail the job."""
    writers = [
        step
        for step in _steps()
        if step.get("uses", "").split("@")[0]
        in {"marocchino/sticky-pull-request-comment", "mikepenz/action-junit-report"}
    ]
    assert len(writers) == 2
    for step in writers:
        assert SAME_REPO in step["if"]
        assert step["if"].startswith("always()")


def _substitute(text: str, env: dict[str, str], outputs: dict[str, dict[str, str]], workspace: Path) -> str:
    """The few ``${{ }}`` expressions the workflow's env and run lines use, as GitHub evaluates them."""

    def value(match: re.Match[str]) -> str:
        expression = match.group(1)
        if expression == "github.workspace":
            return str(workspace)
        if expression.startswith("env."):
            return env[expression[4:]]
        step_output = re.fullmatch(r"steps\.(\w+)\.outputs\.(\w+)", expression)
        if step_output:
            return outputs.get(step_output.group(1), {}).get(step_output.group(2), "")
        raise AssertionError(f"the test does not evaluate ${{{{ {expression} }}}}")

    return _EXPRESSION.sub(value, text)


def _run_steps(workspace: Path, overrides: dict[str, str]) -> tuple[int, str, str]:
    """Run the workflow's ``run:`` steps in order (the install step aside: this venv is the installed package),
    stopping at the first failing one as GitHub does; returns its exit code, the job's summary and its log."""
    outputs: dict[str, dict[str, str]] = {}
    workflow_env = {key: str(value) for key, value in _workflow()["env"].items()}
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env |= {key: _substitute(value, env, outputs, workspace) for key, value in workflow_env.items()} | overrides
    env |= {
        "GITHUB_ACTIONS": "true",
        "CI": "true",
        "GITHUB_WORKSPACE": str(workspace),
        "GITHUB_REPOSITORY": "org/models",
        "GITHUB_EVENT_NAME": "pull_request",
    }
    summary, log = "", ""
    for index, step in enumerate(_steps()):
        if "run" not in step or step["name"] == "Install evalkit":
            continue
        output, step_summary = workspace / f".out{index}", workspace / f".summary{index}"
        step_env = env | {"GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(step_summary)}
        for key, value in step.get("env", {}).items():
            step_env[key] = _substitute(str(value), env, outputs, workspace)
        script = workspace / f".step{index}.sh"
        script.write_text(_substitute(step["run"], env, outputs, workspace))
        done = subprocess.run(
            [*BASH, str(script)], cwd=workspace, env=step_env, capture_output=True, text=True, timeout=300
        )
        log += f"--- {step['name']}: exit {done.returncode}\n{done.stdout}{done.stderr}"
        if output.exists():
            pairs = (line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)
            outputs[step.get("id", f"step{index}")] = dict(pairs)
        summary += step_summary.read_text() if step_summary.exists() else ""
        if done.returncode != 0:
            return done.returncode, summary, log
    return 0, summary, log


def test_the_recipe_runs_and_fails_only_on_a_regression(tmp_path: Path, mirror: Path) -> None:
    """The same model passes (baseline evaluated here, exit 0); then, with that baseline committed, a CLS-pooling
    candidate -- a known drop of several points on STSBenchmark -- fails the job with diff's exit 1."""
    workspace = tmp_path / "repo"
    workspace.mkdir()
    small = {
        "MODEL": "sentence-transformers/all-MiniLM-L6-v2",
        "TASKS": "STSBenchmark",
        "EVALKIT_DATA_DIR": str(mirror),
    }

    code, summary, log = _run_steps(workspace, small)
    assert code == 0, log
    assert (workspace / "results" / "baseline").is_dir() and (workspace / "regression.xml").is_file()
    assert "STSBenchmark" in summary
    assert summary.strip().endswith((workspace / "regression.md").read_text().strip())
    assert any((workspace / ".evalkit-cache").iterdir()), "vectors went where the cache step saves from"

    for leftover in ("results/candidate", "regression.md", "regression.xml"):  # a fresh checkout of the next PR
        path = workspace / leftover
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    code, summary, log = _run_steps(workspace, small | {"CANDIDATE_OPTIONS": "--pooling cls"})
    assert code == 1, log
    assert "baseline results committed" in log
    assert "a significant regression" in log
    assert "STSBenchmark" in summary and (workspace / "regression.md").is_file()


@pytest.mark.parametrize(("diff_exit", "expected"), [("0", 0), ("1", 1), ("2", 2), ("70", 3)])
def test_verdict_step_keeps_regression_and_broken_job_apart(tmp_path: Path, diff_exit: str, expected: int) -> None:
    verdict = _step("Verdict")
    assert verdict["env"]["DIFF_EXIT"] == "${{ steps.diff.outputs.exit_code }}"
    done = subprocess.run(
        [*BASH, "-c", verdict["run"]],
        env=os.environ | {"DIFF_EXIT": diff_exit, "MAX_DROP": "0.5"},
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == expected
    assert ("broken" in done.stdout) == (diff_exit == "2")
