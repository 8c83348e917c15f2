"""The census: every text model in mteb's registry is either run as mteb runs it, or refused with a reason.

For each model evalkit does not refuse, the prompt (or instruction) evalkit resolves for each role is compared with
the one mteb's own code passes, on a fixed sample of tasks of every text task type (two per type: one with a task
metadata prompt, one without, where the type has both). mteb's side is its real wrapper classes built without
weights (``object.__new__`` and the attributes their ``__init__`` sets) around a SentenceTransformer without
weights whose ``encode`` records the prompt sentence-transformers would put before the text. The similarity
function is compared the same way. A model's own ``config_sentence_transformers.json`` is unknown offline; each
model is checked under several such configs (none; prompts with ``passage``; a ``default_prompt_name``; dot
similarity), since evalkit reads the same file at run time.

``python -m evalkit.registry.census --write reports/models/registry_coverage.md`` writes the report.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from evalkit.encoders.prompts import prompt_for
from evalkit.errors import EvalkitError
from evalkit.registry import mteb_models
from evalkit.registry.models import merge_settings

FAITHFUL = "faithful"
FAITHFUL_CONFIG = "faithful, prompts from the model's own config"
REFUSED = "refused"
APPROXIMATED = "approximated"
FOLDER_CONFIGS: tuple[dict[str, Any], ...] = (
    {},
    {"prompts": {"query": "own query: ", "passage": "own passage: "}},
    {"prompts": {"query": "own query: ", "document": "own doc: ", "sym": "own sym: "}, "default_prompt_name": "sym"},
    {"similarity": "dot"},
)
"""Model-folder configs (config_sentence_transformers.json) each model is checked under."""
ROLES = {"query": "query", "document": "document", "symmetric": None}


@dataclass
class ModelOutcome:
    name: str
    loader: str
    outcome: str
    reason: str = ""
    mismatches: list[str] = field(default_factory=list)
    checks: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class SampleTask:
    """A task of the sample and the roles mteb's evaluator encodes it with."""

    metadata: Any
    roles: tuple[str, ...]


def task_roles(task: Any) -> tuple[str, ...]:
    """The roles mteb's evaluators encode a task with: retrieval (and reranking) queries and documents; STS and
    pair classification their ``input1_prompt_type`` / ``input2_prompt_type`` (``None``: symmetric); all else none.
    """
    from mteb.abstasks.retrieval import AbsTaskRetrieval

    if isinstance(task, AbsTaskRetrieval):
        return ("query", "document")
    inputs = (getattr(task, "input1_prompt_type", None), getattr(task, "input2_prompt_type", None))
    return tuple(dict.fromkeys(kind.value if kind is not None else "symmetric" for kind in inputs))


def sample_tasks(per_type: int = 2) -> list[SampleTask]:
    """Per text task type, the first task (by name) with a metadata prompt and the first without; plus every task
    whose two inputs mteb encodes as different roles (asymmetric pair tasks)."""
    import mteb

    by_type: dict[str, list[Any]] = collections.defaultdict(list)
    everything = mteb.get_tasks(modalities=["text"], exclusive_modality_filter=True)
    for task in sorted(everything, key=lambda t: t.metadata.name):
        by_type[task.metadata.type].append(task)
    sample = []
    for tasks in by_type.values():
        with_prompt = [t for t in tasks if t.metadata.prompt]
        without = [t for t in tasks if not t.metadata.prompt]
        chosen = (with_prompt[:1] + without[:1]) or tasks[:1]
        sample += (chosen + [t for t in tasks if t not in chosen])[:per_type]
    sample += [t for t in everything if getattr(t, "input1_prompt_type", None) is not None and t not in sample]
    return [SampleTask(task.metadata, task_roles(task)) for task in sample]


class _Inputs:
    """The smallest DataLoader mteb's encode reads: text features and one batch."""

    class dataset:
        features: ClassVar[dict[str, None]] = {"text": None}

    def __iter__(self) -> Any:
        return iter([{"text": ["a text"]}])


def _fake_sentence_transformer(folder: dict[str, Any]) -> Any:
    """A SentenceTransformer without weights, with a folder config's prompts; ``encode`` records the prompt."""
    from sentence_transformers import SentenceTransformer

    model = object.__new__(SentenceTransformer)
    object.__setattr__(model, "prompts", {"query": "", "document": "", **folder.get("prompts", {})})
    object.__setattr__(model, "default_prompt_name", folder.get("default_prompt_name"))
    object.__setattr__(model, "_similarity_fn_name", None)
    if folder.get("similarity"):
        model.similarity_fn_name = folder["similarity"]
    seen: list[str] = []

    def encode(inputs: Any, prompt_name: str | None = None, prompt: str | None = None, **_: Any) -> np.ndarray:
        seen.append(model._resolve_prompt(prompt, prompt_name) or "")
        return np.zeros((len(inputs), 4), dtype=np.float32)

    object.__setattr__(model, "encode", encode)
    object.__setattr__(model, "seen", seen)
    return model


def mteb_wrapper(meta: Any, folder: dict[str, Any]) -> Any:
    """mteb's own wrapper for the model (its loader's class), built without weights."""
    from mteb.models.abs_encoder import PromptSource
    from mteb.models.instruct_wrapper import InstructSentenceTransformerModel
    from mteb.models.sentence_transformer_wrapper import SentenceTransformerEncoderWrapper, _resolve_model_prompts

    kwargs = mteb_models.loader_kwargs(meta)
    model = _fake_sentence_transformer(folder)
    if mteb_models.loader_name(meta) in (mteb_models.ST_WRAPPER, mteb_models.ST_LOADER):
        wrapper: Any = object.__new__(SentenceTransformerEncoderWrapper)
        wrapper.model = model
        wrapper.model_prompts = _resolve_model_prompts(model, kwargs.get("model_prompts"))
        wrapper.fps = wrapper.max_frames = wrapper.num_frames = wrapper.target_sampling_rate = None
        wrapper.max_samples = None
    else:
        wrapper = object.__new__(InstructSentenceTransformerModel)
        if kwargs.get("prompt_priority") is not None:
            wrapper.prompt_priority = [PromptSource.from_str(s) for s in kwargs["prompt_priority"]]
        wrapper.instruction_template = kwargs.get("instruction_template")
        wrapper.model = model
        wrapper.apply_instruction_to_passages = kwargs.get("apply_instruction_to_passages", True)
        wrapper.prompts_dict = kwargs.get("prompts_dict")
        wrapper.fps = wrapper.max_frames = wrapper.num_frames = wrapper.target_sampling_rate = None
        wrapper.min_frames, wrapper.max_samples = 1, None
    wrapper.mteb_model_meta = meta
    return wrapper


def mteb_prompt(wrapper: Any, task: Any, role: str) -> str | None:
    """The prompt mteb's wrapper passes for one task and role; ``None`` when mteb itself fails on it."""
    from mteb.types import PromptType

    prompt_type = PromptType(ROLES[role]) if ROLES[role] else None
    try:
        wrapper.encode(_Inputs(), task_metadata=task, hf_split="test", hf_subset="default", prompt_type=prompt_type)
    except (TypeError, ValueError, KeyError):
        return None
    return wrapper.model.seen.pop()


def _similarity_matches(wrapper: Any, similarity: str) -> bool:
    """Whether mteb's ``similarity`` equals evalkit's function of that name on a few vectors."""
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(3, 4)).astype(np.float32), rng.normal(size=(2, 4)).astype(np.float32)
    expected = {
        "cosine": (a / np.linalg.norm(a, axis=1, keepdims=True)) @ (b / np.linalg.norm(b, axis=1, keepdims=True)).T,
        "dot": a @ b.T,
        "euclidean": -np.linalg.norm(a[:, None] - b[None], axis=2),
        "manhattan": -np.abs(a[:, None] - b[None]).sum(axis=2),
    }.get(similarity)
    got = np.asarray(wrapper.similarity(a, b), dtype=np.float64)
    return expected is not None and np.allclose(got, expected, atol=1e-5)


def check_model(meta: Any, tasks: list[Any], mteb_fields: dict[str, Any] | None = None) -> ModelOutcome:
    """Compare evalkit with mteb for one model over the sample tasks and folder configs.

    ``mteb_fields`` replaces what evalkit reads from mteb's registry (tests use it to show a wrong setting is caught).
    """
    loader = (mteb_models.loader_name(meta) or "none").rsplit(".", 1)[-1]
    reason = mteb_models.refusal_reason(meta)
    if reason is not None:
        return ModelOutcome(meta.name, loader, REFUSED, reason)
    mismatches: list[str] = []
    checks: collections.Counter[str] = collections.Counter()
    for number, folder in enumerate(FOLDER_CONFIGS):
        fields = mteb_fields if mteb_fields is not None else mteb_models.settings_from_meta(meta)
        spec = merge_settings(meta.name, mteb=fields, folder=folder)
        wrapper = mteb_wrapper(meta, folder)
        if not _similarity_matches(wrapper, spec.similarity):
            mismatches.append(f"config {number}: similarity {spec.similarity}")
        mismatches += _prompt_mismatches(spec, wrapper, tasks, number, checks)
    outcome = FAITHFUL_CONFIG if spec.prompt_style == "prompts" and not spec.prompts else FAITHFUL
    return ModelOutcome(
        meta.name, loader, APPROXIMATED if mismatches else outcome, mismatches=mismatches, checks=dict(checks)
    )


def _prompt_mismatches(
    spec: Any, wrapper: Any, tasks: list[Any], number: int, checks: collections.Counter[str]
) -> list[str]:
    """Each task and role where evalkit's prompt differs from mteb's; ``checks`` counts what was compared."""
    found = []
    for sample in tasks:
        task = sample.metadata
        for role in sample.roles:
            expected = mteb_prompt(wrapper, task, role)
            try:
                got: str | None = prompt_for(
                    spec,
                    task_name=task.name,
                    task_type=task.type,
                    role=role,
                    task_prompt=task.prompt,  # type: ignore[arg-type]
                )
            except EvalkitError:
                got = None  # refused for this task: never approximated
            checks["compared"] += 1
            checks["non-empty prompts"] += bool(expected)
            checks["mteb fails"] += expected is None
            checks["evalkit refuses the task"] += got is None
            if got is not None and got != expected:
                found.append(f"config {number}: {task.name}/{role}: evalkit {got!r} != mteb {expected!r}")
    return found


def run_census() -> list[ModelOutcome]:
    """The outcome for every text-only model in mteb's registry."""
    import logging
    import warnings

    import mteb

    tasks = sample_tasks()
    logging.getLogger("mteb").setLevel(logging.ERROR)  # mteb warns about each prompt it ignores; said in the report
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [check_model(meta, tasks) for meta in mteb.get_model_metas() if list(meta.modalities) == ["text"]]


def _reason_group(reason: str) -> str:
    return re.sub(r" \([^)]*\)", "", reason)


def render_report(outcomes: list[ModelOutcome], tasks: list[Any]) -> str:
    """reports/models/registry_coverage.md: counts by outcome, reason and loader, and how they were made."""
    import mteb

    by_outcome = collections.Counter(o.outcome for o in outcomes)
    by_reason = collections.Counter(_reason_group(o.reason) for o in outcomes if o.outcome == REFUSED)
    by_loader = collections.Counter((o.loader, o.outcome) for o in outcomes)
    lines = [
        "# mteb's model registry in evalkit: coverage",
        "",
        f"Made {datetime.date.today().isoformat()} by `python -m evalkit.registry.census --write {_REPORT}` with "
        f"mteb {mteb.__version__}, offline, without weights. {len(mteb.get_model_metas())} models in mteb's registry, "
        f"{len(outcomes)} of them text-only (the others are refused: another modality).",
        "",
        "Each text model evalkit does not refuse was checked against mteb's own code (its wrapper class built "
        "without weights, with a sentence-transformers model whose `encode` records the prompt) on "
        f"{len(tasks)} tasks ({', '.join(sorted({t.metadata.type for t in tasks}))}; with and without a task metadata "
        "prompt; and the tasks whose two inputs are encoded as query and document), for the roles mteb's evaluator "
        "encodes each with, under "
        f"{len(FOLDER_CONFIGS)} model-folder configs, and for the similarity function.",
        "",
        "Comparisons (model × folder config × task × role): "
        + ", ".join(f"{key} {value}" for key, value in sorted(_total_checks(outcomes).items()))
        + ". mteb's warnings about prompt keys that are not task names (the folder configs above) are silenced.",
        "",
        "## By outcome",
        "",
        "| outcome | models |",
        "| --- | ---: |",
        *[f"| {name} | {count} |" for name, count in sorted(by_outcome.items())],
        "",
        f"*{FAITHFUL_CONFIG}*: mteb's registry gives no prompts, so the prompts (and, for the sentence-transformers "
        "wrapper, the similarity function) are the model's own config_sentence_transformers.json. Unknown offline, "
        "these count as faithful only in that evalkit reads the same file at run time (checked under each folder "
        "config above). The similarity of every SentenceTransformerEncoderWrapper model is the folder's, as mteb "
        "uses `SentenceTransformer.similarity`.",
        "",
        "## Refusals by reason",
        "",
        "| reason | models |",
        "| --- | ---: |",
        *[f"| {reason} | {count} |" for reason, count in by_reason.most_common()],
        "",
        "## By mteb loader",
        "",
        "| loader | outcome | models |",
        "| --- | --- | ---: |",
        *[f"| {loader} | {outcome} | {count} |" for (loader, outcome), count in sorted(by_loader.items())],
        "",
    ]
    approximated = [o for o in outcomes if o.outcome == APPROXIMATED]
    if approximated:
        lines += ["## Approximated (must be none)", ""]
        lines += [f"- {o.name}: {o.mismatches[0]}" for o in approximated]
    return "\n".join(lines) + "\n"


_REPORT = "reports/models/registry_coverage.md"


def _total_checks(outcomes: list[ModelOutcome]) -> collections.Counter[str]:
    total: collections.Counter[str] = collections.Counter()
    for outcome in outcomes:
        total.update(outcome.checks)
    return total


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", type=Path, help=f"write the report here (e.g. {_REPORT})")
    args = parser.parse_args(argv)
    outcomes = run_census()
    text = render_report(outcomes, sample_tasks())
    if args.write:
        args.write.parent.mkdir(parents=True, exist_ok=True)
        args.write.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
