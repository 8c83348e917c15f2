"""Where results live: the MTEB results layout, with evalkit's own files in a subfolder mteb does not read.

Every name that becomes a path here (model folder, revision, task) is checked to be one safe component first: they
come from model specs, task specs and result files that others wrote.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from evalkit.safe_paths import safe_component

EVALKIT_DIR = "evalkit"  # our side files, in a subfolder the MTEB results loaders never read


@dataclass(frozen=True)
class ResultsLayout:
    """``<root>/<org>__<model>/<revision>/<Task>.json`` plus ``.../evalkit/<Task>.{per_item.jsonl.gz,run.json}``."""

    root: Path
    model_folder: str
    revision: str

    def __post_init__(self) -> None:
        safe_component(self.model_folder, what="model folder")
        safe_component(self.revision, what="revision")

    @property
    def revision_dir(self) -> Path:
        return self.root / self.model_folder / self.revision

    def task_result(self, task_name: str) -> Path:
        return self.revision_dir / f"{safe_component(task_name, what='task name')}.json"

    def per_item(self, task_name: str) -> Path:
        return self.revision_dir / EVALKIT_DIR / f"{safe_component(task_name, what='task name')}.per_item.jsonl.gz"

    def run_record(self, task_name: str) -> Path:
        return self.revision_dir / EVALKIT_DIR / f"{safe_component(task_name, what='task name')}.run.json"

    @property
    def model_meta(self) -> Path:
        return self.revision_dir / "model_meta.json"
