"""Which prompt (instruction) a model gets for a task and role, resolved exactly as mteb 2.26 and
sentence-transformers 6.2 resolve it at encode time.

Roles and mteb's prompt types. mteb's evaluators pass ``prompt_type=query`` / ``document`` only for retrieval
(which includes reranking and instruction retrieval: queries, documents); STS and pair classification pass their
task's ``input1_prompt_type`` / ``input2_prompt_type`` (``None`` but for two tasks); every other type
(classification, clustering, bitext mining, summarization, multilabel, ...) passes ``None``. evalkit's roles map
``query`` → query, ``document`` → document, ``symmetric`` → ``None``.

Two styles, as ``ModelSpec.prompt_style`` says:

``prompts`` (mteb's SentenceTransformerEncoderWrapper). ``ModelSpec.prompts`` is a mapping in mteb's
``model_prompts`` format: a role, a task type, a task name or ``<task name or type>-<role>``. mteb looks up, most
specific first: 1. ``<task name>-<role>`` 2. ``<task name>`` 3. ``<task type>-<role>`` 4. ``<task type>``
5. ``<role>``, and passes the text found as the prompt. When none applies it passes no prompt and
sentence-transformers chooses: ``encode_query`` takes the prompt named ``query``, ``encode_document`` the first of
``document``, ``passage``, ``corpus``, and ``encode`` (no role) the ``default_prompt_name``'s, each only when that
name is in the model's prompts. Prompts mteb's registry gives replace the model's own (as mteb's wrapper does);
otherwise the model's own apply, with sentence-transformers' empty ``query`` and ``document`` prompts beside them.

``instruct`` (mteb's InstructSentenceTransformerModel). The instruction is, in mteb's ``prompt_priority`` order,
the model's ``prompts_dict`` entry for the task name, for the task type, for the role, else the task metadata's
``prompt`` (a text, or one per role), else the task class's ``abstask_prompt``. It is put through the instruction
template (a text template only when the instruction is not empty; a template that was code always, as resolved in
``ModelSpec.instruction_templates``). Documents get no instruction unless ``instruction_to_documents``; then
sentence-transformers applies the ``default_prompt_name``'s prompt, if the model has one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from evalkit.encoders.protocol import Role
from evalkit.errors import EvalkitError

if TYPE_CHECKING:
    from evalkit.registry.models import ModelSpec

PROMPT_ROLES = ("query", "document")
TaskPrompt = str | Mapping[str, str] | None
"""mteb's TaskMetadata.prompt: one instruction, one per role (``{"query": ..., "document": ...}``), or none."""
_FROM_MODEL_CONFIG = "model config"


def prompt_name(prompts: Mapping[str, str], *, task_name: str, task_type: str, role: Role) -> str | None:
    """The key of ``prompts`` mteb uses for one task and role (mteb's ``get_prompt_name``), ``None`` if none."""
    role_name = role if role in PROMPT_ROLES else None
    candidates = [
        f"{task_name}-{role_name}" if role_name else None,
        task_name,
        f"{task_type}-{role_name}" if role_name else None,
        task_type,
        role_name,
    ]
    return next((key for key in candidates if key is not None and key in prompts), None)


def resolve_prompt(prompts: Mapping[str, str], *, task_name: str, task_type: str, role: Role) -> str:
    """The prompt text mteb finds in ``prompts`` for one task and role; ``""`` when no key applies."""
    key = prompt_name(prompts, task_name=task_name, task_type=task_type, role=role)
    return prompts[key] if key is not None else ""


def sentence_transformers_prompts(model: ModelSpec) -> dict[str, str]:
    """The prompts of the SentenceTransformer that mteb's wrapper encodes with.

    Prompts from mteb's registry (or an evalkit override) replace the model's own (``_resolve_model_prompts``);
    the model's own come with sentence-transformers' default empty ``query`` and ``document`` prompts.
    """
    if model.prompts and model.origins.get("prompts") != _FROM_MODEL_CONFIG:
        return dict(model.prompts)
    return {"query": "", "document": "", **model.prompts}


def named_prompt(model: ModelSpec, *, task_name: str, task_type: str, role: Role) -> str:
    """The prompt of a ``prompts``-style model, as mteb's SentenceTransformerEncoderWrapper.encode applies it."""
    prompts = sentence_transformers_prompts(model)
    key = prompt_name(prompts, task_name=task_name, task_type=task_type, role=role)
    if key is not None:
        return prompts[key]
    # mteb passes prompt=None: sentence-transformers' encode_query / encode_document / encode choose
    fallbacks = {"query": ("query",), "document": ("document", "passage", "corpus")}.get(role, ())
    name = next((candidate for candidate in fallbacks if candidate in prompts), None)
    if name is not None:
        return prompts[name]
    return _default_prompt(model, prompts)


def _default_prompt(model: ModelSpec, prompts: Mapping[str, str]) -> str:
    """sentence-transformers' prompt when it is given none: the ``default_prompt_name``'s, if it has that name."""
    if model.default_prompt_name is None:
        return ""
    return prompts.get(model.default_prompt_name) or ""


def task_instruction(
    model: ModelSpec, *, task_name: str, task_type: str, role: Role, task_prompt: TaskPrompt
) -> str | Mapping[str, str]:
    """mteb's ``AbsEncoder.get_instruction`` with its default ``prompt_priority``: the raw instruction."""
    instructions = model.instructions
    role_name = role if role in PROMPT_ROLES else None
    for key in (task_name, task_type, role_name):  # custom prompt, task type prompt, encode type prompt
        if key and key in instructions:
            chosen: TaskPrompt = instructions[key]
            break
    else:
        chosen = task_prompt  # the task's own prompt, which mteb also keeps when nothing else applies
    if isinstance(chosen, Mapping) and role_name is not None:
        return chosen.get(role_name) or ""
    if chosen:
        return chosen
    from mteb.abstasks.abstask import get_abstask_prompt

    return get_abstask_prompt(task_name)


def instruct_prompt(model: ModelSpec, *, task_name: str, task_type: str, role: Role, task_prompt: TaskPrompt) -> str:
    """The prompt of an ``instruct``-style model, as mteb's InstructSentenceTransformerModel.encode passes it."""
    if role == "document" and not model.instruction_to_documents:
        return _default_prompt(model, {"query": "", "document": "", **model.prompts})
    instruction = task_instruction(model, task_name=task_name, task_type=task_type, role=role, task_prompt=task_prompt)
    if model.instruction_templates:  # a template that is code: mteb always calls it
        if not isinstance(instruction, str):
            raise EvalkitError(
                f"model '{model.name}': mteb passes task {task_name}'s per-role prompt whole to its instruction "
                "template, which is code evalkit does not run; this task is not evaluated with this model"
            )
        if not instruction:  # what the code returned for an empty instruction, as it is
            return model.instruction_templates[f"{role}:empty"]
        return model.instruction_templates[role].format(instruction=instruction)
    if model.instruction_template is None or not instruction:
        return _as_text(model, task_name, instruction)
    return model.instruction_template.format(instruction=instruction)  # str.format, as mteb's format_instruction


def _as_text(model: ModelSpec, task_name: str, instruction: Any) -> str:
    if not isinstance(instruction, str):
        raise EvalkitError(
            f"model '{model.name}' has no instruction template and task {task_name}'s prompt is one per role: "
            "mteb would pass it whole as the prompt, which no model can use"
        )
    return instruction


def prompt_for(model: ModelSpec, *, task_name: str, task_type: str, role: Role, task_prompt: TaskPrompt = None) -> str:
    """The text put before each input of ``role`` for this task, as mteb does for this model."""
    if model.prompt_style == "instruct":
        return instruct_prompt(model, task_name=task_name, task_type=task_type, role=role, task_prompt=task_prompt)
    return named_prompt(model, task_name=task_name, task_type=task_type, role=role)


@dataclass(frozen=True)
class TaskPrompts:
    """The prompts one task uses, per role, resolved once before encoding starts.

    ``refused`` holds, per role, why evalkit cannot give that role mteb's prompt for this task (its text is then
    ``""``); ``for_role`` raises it. It happens only for a role mteb never encodes the task with (the symmetric role
    of a task whose prompt is one per role, with an instruction template that is code).
    """

    query: str = ""
    document: str = ""
    symmetric: str = ""
    refused: tuple[tuple[str, str], ...] = ()

    @classmethod
    def resolve(cls, prompts: Mapping[str, str], *, task_name: str, task_type: str) -> TaskPrompts:
        """From a bare ``model_prompts`` mapping (mteb's lookup only, no sentence-transformers fallback)."""

        def get(role: Role) -> str:
            return resolve_prompt(prompts, task_name=task_name, task_type=task_type, role=role)

        return cls(query=get("query"), document=get("document"), symmetric=get("symmetric"))

    @classmethod
    def for_model(
        cls, model: ModelSpec, *, task_name: str, task_type: str, task_prompt: TaskPrompt = None
    ) -> TaskPrompts:
        """From a whole ModelSpec and the task's mteb ``prompt`` (TaskSpec.prompt), as mteb resolves them."""
        texts: dict[str, str] = {}
        refused: list[tuple[str, str]] = []
        for role in ("query", "document", "symmetric"):
            try:
                texts[role] = prompt_for(
                    model, task_name=task_name, task_type=task_type, role=role, task_prompt=task_prompt
                )
            except EvalkitError as err:
                texts[role] = ""
                refused.append((role, err.message))
        return cls(**texts, refused=tuple(refused))

    def for_role(self, role: Role) -> str:
        for refused_role, reason in self.refused:
            if refused_role == (role if role in PROMPT_ROLES else "symmetric"):
                raise EvalkitError(reason)
        return {"query": self.query, "document": self.document}.get(role, self.symmetric)


NO_PROMPTS = TaskPrompts()
"""For models without prompts, and for callers that encode outside any task."""


def prompted_texts(spec: Any, texts: list[str], prompt: str) -> list[str] | None:
    """The texts a model that pools over its prompt encodes: the prompt (the model's default prompt when none was
    resolved) before each. None for a model that pools without its prompt (its texts are marked instead, which
    needs the encoder: :func:`evalkit.encoders.st_modules.mark_prompt`). One rule for the encoder and for the warm
    run's stand-in (:class:`evalkit.pipeline.warm.LazyEncoder`), so both prepare the same text for the cache key."""
    if not spec.include_prompt:
        return None
    if not prompt and spec.default_prompt_name:
        prompt = spec.prompts.get(spec.default_prompt_name, "")
    return [prompt + text for text in texts] if prompt else list(texts)
