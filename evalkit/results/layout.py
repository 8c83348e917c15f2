"""Where results live: the MTEB results layout, with evalkit's own files in a subfolder mteb does not read."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

EVALKIT_DIR = "evalkit"  # our side files, in a subfolder the MTEB results loaders never read


@dataclass(frozen=True)
class ResultsLayout:
    """``<root>/<org>__<model>/<revision>/<Task>.json`` plus ``.../evalkit/<Task>.{per_item.jsonl.gz,run.json}``."""

    root: Path
    model_folder: str
    revision: str

    @property
    def revision_dir(self) -> Path:
        return self.root / self.model_folder / self.revision

    def task_result(self, task_name: str) -> Path:
        return self.revision_dir / f"{task_name}.json"

    def per_item(self, task_name: str) -> Path:
        return self.revision_dir / EVALKIT_DIR / f"{task_name}.per_item.jsonl.gz"

    def run_record(self, task_name: str) -> Path:
        return self.revision_dir / EVALKIT_DIR / f"{task_name}.run.json"

    @property
    def model_meta(self) -> Path:
        return self.revision_dir / "model_meta.json"
