"""Which prompt (instruction) a model gets for a task and role, resolved exactly as mteb resolves it.

A model's prompts are a mapping in mteb's ``model_prompts`` format. Keys may be a role (``query``, ``document``),
a task type (``Retrieval``), a task name (``SciFact``), or a compound ``<task name or type>-<role>``. The most
specific key wins, in mteb's order:

1. ``<task name>-<role>``   2. ``<task name>``   3. ``<task type>-<role>``   4. ``<task type>``   5. ``<role>``

mteb asks with a role only where the task is asymmetric (retrieval and reranking queries and documents); STS,
classification, clustering and the rest ask with no role, so a bare ``query`` prompt does not reach them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from evalkit.encoders.protocol import Role

PROMPT_ROLES = ("query", "document")


def resolve_prompt(prompts: Mapping[str, str], *, task_name: str, task_type: str, role: Role) -> str:
    """The prompt text for one task and role; ``""`` when no key applies."""
    if not prompts:
        return ""
    role_name = role if role in PROMPT_ROLES else None
    candidates = [
        f"{task_name}-{role_name}" if role_name else None,
        task_name,
        f"{task_type}-{role_name}" if role_name else None,
        task_type,
        role_name,
    ]
    for key in candidates:
        if key is not None and key in prompts:
            return prompts[key]
    return ""


@dataclass(frozen=True)
class TaskPrompts:
    """The prompts one task uses, per role, resolved once before encoding starts."""

    query: str = ""
    document: str = ""
    symmetric: str = ""

    @classmethod
    def resolve(cls, prompts: Mapping[str, str], *, task_name: str, task_type: str) -> TaskPrompts:
        def get(role: Role) -> str:
            return resolve_prompt(prompts, task_name=task_name, task_type=task_type, role=role)

        return cls(query=get("query"), document=get("document"), symmetric=get("symmetric"))

    def for_role(self, role: Role) -> str:
        return {"query": self.query, "document": self.document}.get(role, self.symmetric)


NO_PROMPTS = TaskPrompts()
"""For models without prompts, and for callers that encode outside any task."""
