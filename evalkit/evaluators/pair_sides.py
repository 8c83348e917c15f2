"""The two sides of a pair task encoded as mteb encodes them: together with no role (almost every STS and pair task),
or each side with its own role and prompt where the task names one (TERRa: documents, then queries)."""

from __future__ import annotations

from typing import Any

import numpy as np

from evalkit.encoders.prompts import TaskPrompts

SYMMETRIC = ("symmetric", "symmetric")


def encode_pair_sides(
    core: Any,
    encoder: Any,
    texts1: list[str],
    texts2: list[str],
    *,
    prompts: TaskPrompts,
    input_roles: tuple[str, str] = SYMMETRIC,
    desc: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Vectors of each side. Symmetric sides go in one call, so a sentence on both sides is encoded once."""
    if tuple(input_roles) == SYMMETRIC:
        vectors = core.encode(encoder, texts1 + texts2, "symmetric", prompt=prompts.for_role("symmetric"), desc=desc)
        return vectors[: len(texts1)], vectors[len(texts1) :]
    role1, role2 = input_roles
    vectors1 = core.encode(encoder, texts1, role1, prompt=prompts.for_role(role1), desc=f"{desc} (side 1, {role1})")
    vectors2 = core.encode(encoder, texts2, role2, prompt=prompts.for_role(role2), desc=f"{desc} (side 2, {role2})")
    return vectors1, vectors2
