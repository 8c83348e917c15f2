"""mteb's model registry read as evalkit settings: what mteb's loader would pass, or why evalkit refuses the model.

mteb 2.26 records, for each model, a ``ModelMeta`` whose ``loader`` and ``loader_kwargs`` say how the leaderboard
ran it. Two loaders are plain sentence-transformers models that evalkit's own encoder reproduces:
``SentenceTransformerEncoderWrapper`` (prompts by name: ``model_prompts``) and ``InstructSentenceTransformerModel``
(a task instruction put through an ``instruction_template``). For those, this module turns the loader's arguments
into ``ModelSpec`` fields, resolving a template that is Python code into the text it returns for each role. Every
other model gets a one-line refusal reason: a setting we cannot reproduce exactly is refused, never approximated.

Importing this module imports ``mteb`` (which does not import torch) and nothing heavier.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Mapping
from typing import Any

ORIGIN_MTEB = "mteb registry"
ORIGIN_CONFIG = "model config"
ORIGIN_OVERRIDE = "evalkit override"
ORIGIN_DEFAULT = "default"

ST_WRAPPER = "mteb.models.sentence_transformer_wrapper.SentenceTransformerEncoderWrapper"
ST_LOADER = "mteb.models.sentence_transformer_wrapper.sentence_transformers_loader"
INSTRUCT = "mteb.models.instruct_wrapper.InstructSentenceTransformerModel"
_IMPLS = "mteb.models.model_implementations."
INSTRUCT_LOADERS: dict[str, tuple[str, dict[str, Any]]] = {
    # loader function -> (module holding what it passes, the arguments it adds to loader_kwargs), read from its
    # source: q3e_instruct_loader passes qwen3_models.instruction_template and apply_instruction_to_passages=False
    # (and pads on the left only under flash-attention 2, which changes no vector of a correct last-token pooling).
    _IMPLS + "qwen3_models.q3e_instruct_loader": (
        _IMPLS + "qwen3_models",
        {"instruction_template": "instruction_template", "apply_instruction_to_passages": False},
    ),
    # instruct_loader passes its arguments through unchanged (the same flash-attention-2 padding side).
    _IMPLS + "samilpwc_models.instruct_loader": (_IMPLS + "samilpwc_models", {}),
}
"""Loader functions that build an InstructSentenceTransformerModel, with what each passes beyond loader_kwargs."""

_MODEL_TYPE_REASONS = {
    "cross-encoder": "a cross-encoder (scores query-document pairs, gives no embeddings): use it as a reranker "
    "(evalkit's --reranker path)",
    "sparse": "a sparse encoder (term weights, not dense vectors)",
    "late-interaction": "a multi-vector (late-interaction) model",
    "hybrid": "a hybrid of several retrievers",
    "router": "a Router model (separate query and document modules), which evalkit does not compute",
}
_ST_KWARGS = {"model_prompts", "model_kwargs", "config_kwargs", "embed_dim"}
_INSTRUCT_KWARGS = {
    "instruction_template",
    "apply_instruction_to_passages",
    "prompts_dict",
    "max_seq_length",
    "padding_side",
    "add_eos_token",
    "include_prompt",
    "embed_dim",
    "model_kwargs",
    "tokenizer_kwargs",
    "config_kwargs",
}
_TOKENIZER_KWARGS = {"add_eos_token", "add_bos_token", "pad_token", "padding_side"}
"""Tokenizer arguments evalkit passes on exactly as sentence-transformers does (``ModelSpec.tokenizer_kwargs``)."""
_MODEL_KWARGS = {"dtype", "torch_dtype", "attn_implementation"}
_CONFIG_KWARGS = {"use_cache"}
ROLES = ("query", "document", "symmetric")
_SENTINELS = ("\x00Evalkit instruction a\x00", "\x00Evalkit instruction b\x00")  # mixed case: str methods change them


def loader_name(meta: Any) -> str | None:
    """The dotted name of a ModelMeta's loader (a class or a function), ``None`` when mteb has none."""
    loader = getattr(meta, "loader", None)
    if loader is None:
        return None
    return f"{loader.__module__}.{loader.__qualname__}"


def find_meta(name: str) -> Any | None:
    """mteb's ModelMeta for a model name (or a renamed one's new name), ``None`` when mteb does not list it."""
    import warnings

    import mteb

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return mteb.get_model_meta(name)
    except (KeyError, ValueError):
        return None


def _prompt_style(meta: Any) -> str | None:
    """``prompts`` for the sentence-transformers wrapper, ``instruct`` for the instruct wrapper, else ``None``."""
    name = loader_name(meta)
    if name in (ST_WRAPPER, ST_LOADER):
        return "prompts"
    if name == INSTRUCT or name in INSTRUCT_LOADERS:
        return "instruct"
    return None


def loader_kwargs(meta: Any) -> dict[str, Any]:
    """What mteb's loader receives: ``loader_kwargs`` plus what a known loader function adds (read from its source)."""
    kwargs = dict(meta.loader_kwargs or {})
    extra = INSTRUCT_LOADERS.get(loader_name(meta) or "")
    if extra is not None:
        import importlib

        module = importlib.import_module(extra[0])
        for key, value in extra[1].items():
            kwargs[key] = getattr(module, value) if key == "instruction_template" else value
    return kwargs


def refusal_reason(meta: Any) -> str | None:
    """Why evalkit cannot run this mteb model exactly as mteb does (one line), or ``None`` when it can."""
    first = _kind_refusal(meta)
    if first is not None:
        return first
    kwargs = loader_kwargs(meta)
    if kwargs.get("trust_remote_code") or (kwargs.get("model_kwargs") or {}).get("trust_remote_code"):
        return "custom code needed: mteb loads it with trust_remote_code, which evalkit never runs"
    if _prompt_style(meta) is None:
        return _loader_refusal(meta)
    allowed = _ST_KWARGS if _prompt_style(meta) == "prompts" else _INSTRUCT_KWARGS
    unknown = sorted(set(kwargs) - allowed - {"trust_remote_code"})
    if unknown:
        return f"mteb's loader argument '{unknown[0]}' is not reproduced by evalkit"
    nested = _nested_kwargs_refusal(kwargs)
    if nested is not None:
        return nested
    if _prompt_style(meta) == "instruct":
        try:
            resolve_template(kwargs.get("instruction_template"))
        except ValueError as err:
            return str(err)
    return None


def _kind_refusal(meta: Any) -> str | None:
    """Refusals that follow from what the model is: no loader, another modality, not a dense encoder."""
    if meta.loader is None:
        return "mteb has no implementation of it (no loader)"
    if list(meta.modalities) != ["text"]:
        return f"another modality: {'+'.join(meta.modalities)} (evalkit runs text-only models)"
    for kind in meta.model_type:
        if kind in _MODEL_TYPE_REASONS:
            return _MODEL_TYPE_REASONS[kind]
    return None


def _loader_refusal(meta: Any) -> str:
    """The reason for a model mteb loads with its own class or function (an API client, a custom model)."""
    short = (loader_name(meta) or "").rsplit(".", 1)[-1]
    if "API" in (meta.framework or []) or meta.open_weights is False:
        return f"an API model ({short}): its vectors come from a remote service evalkit does not call"
    if "bm25" in short.lower():
        return f"a lexical model with its own loader ({short}): evalkit's registry runs mteb/baseline-bm25s"
    return f"an architecture evalkit does not run: mteb loads it with its own code ({short})"


def _nested_kwargs_refusal(kwargs: Mapping[str, Any]) -> str | None:
    """Refuse tokenizer, model and config arguments whose effect evalkit does not reproduce."""
    for group, allowed in (
        ("tokenizer_kwargs", _TOKENIZER_KWARGS),
        ("model_kwargs", _MODEL_KWARGS),
        ("config_kwargs", _CONFIG_KWARGS),
    ):
        unknown = sorted(set(kwargs.get(group) or {}) - allowed)
        if unknown:
            return f"mteb's loader argument {group}['{unknown[0]}'] is not reproduced by evalkit"
    return None


def resolve_template(template: str | Callable[..., str] | None) -> tuple[str | None, dict[str, str]]:
    """An instruction template as data: ``(text template, {})`` or, for code, ``(None, per-role templates)``.

    A text template is mteb's own (``str.format`` with ``instruction``; an empty instruction stays empty). A callable
    is always called by mteb, with the instruction and the prompt type; it is resolved by calling it, per role, with
    two distinct instructions and with an empty one. It must return the same text around the instruction both
    times, or it is not a template and the model is refused. Keys: ``query``, ``document``, ``symmetric`` (a
    ``{instruction}`` template) and ``<role>:empty`` (the text for an empty instruction).
    """
    if template is None:
        return None, {}  # mteb passes the instruction as it is
    if isinstance(template, str):
        if "{instruction}" not in template:
            raise ValueError("mteb's instruction_template has no '{instruction}'")
        return template, {}
    from mteb.types import PromptType

    templates: dict[str, str] = {}
    for role, prompt_type in zip(ROLES, (PromptType.query, PromptType.document, None), strict=True):
        outputs = [template(sentinel, prompt_type) for sentinel in _SENTINELS]
        as_templates = {_as_format(out, sentinel) for out, sentinel in zip(outputs, _SENTINELS, strict=True)}
        if len(as_templates) != 1 or not all(isinstance(out, str) for out in outputs):
            raise ValueError(
                f"mteb's instruction_template ({template.__module__}.{template.__qualname__}) is code whose output "
                "is not the instruction inside fixed text"
            )
        templates[role] = as_templates.pop()
        templates[f"{role}:empty"] = template("", prompt_type)
    return None, templates


def _as_format(text: str, sentinel: str) -> str:
    """``text`` as a ``str.format`` template with ``{instruction}`` where ``sentinel`` was."""
    return text.replace("{", "{{").replace("}", "}}").replace(sentinel, "{instruction}")


def settings_from_meta(meta: Any) -> dict[str, Any]:
    """ModelSpec fields from mteb's registry, with ``origins``; prompt settings only for a model evalkit runs."""
    fields: dict[str, Any] = {"mteb_meta": meta_as_json(meta)}
    if meta.revision is not None:
        fields["revision"] = meta.revision
    if meta.languages:
        fields["languages"] = tuple(meta.languages)
    if isinstance(meta.embed_dim, int):
        fields["embedding_dim"] = meta.embed_dim
    if refusal_reason(meta) is None:
        kwargs = loader_kwargs(meta)
        if _prompt_style(meta) == "prompts":
            fields.update(_st_wrapper_fields(meta, kwargs))
        else:
            fields.update(_instruct_fields(meta, kwargs))
    fields["origins"] = {key: ORIGIN_MTEB for key in fields if key != "mteb_meta"}
    return fields


def _st_wrapper_fields(meta: Any, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """SentenceTransformerEncoderWrapper: its model_prompts (which replace the model's own), its truncation.

    Its similarity is the model's own (``SentenceTransformer.similarity``: the folder's similarity_fn_name), not
    ModelMeta's, so none is taken from the registry here.
    """
    fields: dict[str, Any] = {}
    if kwargs.get("model_prompts"):
        fields["prompts"] = dict(kwargs["model_prompts"])
    if kwargs.get("embed_dim") is not None:
        fields["truncate_dim"] = int(kwargs["embed_dim"])
    return fields


def _instruct_fields(meta: Any, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """InstructSentenceTransformerModel's constructor arguments, as ModelSpec fields."""
    template, role_templates = resolve_template(kwargs.get("instruction_template"))
    fields: dict[str, Any] = {
        "prompt_style": "instruct",
        "instruction_to_documents": bool(kwargs.get("apply_instruction_to_passages", True)),
        "instructions": dict(kwargs.get("prompts_dict") or {}),
    }
    if kwargs.get("include_prompt") is False:  # only then does mteb change the folder's Pooling.include_prompt
        fields["include_prompt"] = False
    fields["instruction_template"] = template if template is not None else role_templates.get("query")
    if role_templates:
        fields["instruction_templates"] = role_templates
    if meta.similarity_fn_name is not None:  # AbsEncoder.similarity uses ModelMeta's, when it names one
        fields["similarity"] = str(meta.similarity_fn_name.value)
    if kwargs.get("max_seq_length"):
        fields["max_length"] = int(kwargs["max_seq_length"])
    if kwargs.get("embed_dim") is not None:
        fields["truncate_dim"] = int(kwargs["embed_dim"])
    tokenizer = dict(kwargs.get("tokenizer_kwargs") or {})
    if kwargs.get("add_eos_token"):
        tokenizer["add_eos_token"] = True
    if kwargs.get("padding_side") is not None:
        tokenizer["padding_side"] = kwargs["padding_side"]
    if "padding_side" in tokenizer:
        fields["padding_side"] = tokenizer["padding_side"]
    if tokenizer:
        fields["tokenizer_kwargs"] = tokenizer
    return fields


def meta_as_json(meta: Any) -> dict[str, Any]:
    """ModelMeta as mteb writes it to model_meta.json (``to_dict``), with loader arguments made JSON-safe."""
    values = meta.to_dict()
    values["loader_kwargs"] = _json_safe(dict(meta.loader_kwargs or {}))
    return json.loads(json.dumps(values, default=str, sort_keys=True))


def _json_safe(value: Any) -> Any:
    """Callables become their dotted name (a ``default=str`` would write a memory address)."""
    if callable(value) and hasattr(value, "__qualname__"):
        return f"{value.__module__}.{value.__qualname__}"
    if isinstance(value, Mapping):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_json_safe(item) for item in value]
    if isinstance(value, enum.Enum):
        return value.value  # mteb's OutputDType and the like
    return value


def mteb_model_names() -> list[str]:
    """Every model name in mteb's registry."""
    import mteb

    return [meta.name for meta in mteb.get_model_metas() if meta.name]


def mteb_fields(name: str) -> dict[str, Any]:
    """mteb's settings for a model (``settings_from_meta``), ``{}`` when mteb does not list it."""
    meta = find_meta(name)
    return settings_from_meta(meta) if meta is not None else {}


def runnable_mteb_fields(name: str) -> tuple[str, dict[str, Any]] | None:
    """(mteb's name, mteb's settings) for a model in mteb's registry, ``None`` when it is not there.

    A model evalkit cannot run exactly raises UnknownModelError with the reason (the CLI exits 2).
    """
    from evalkit.errors import UnknownModelError

    meta = find_meta(name)
    if meta is None:
        return None
    reason = refusal_reason(meta)
    if reason is not None:
        raise UnknownModelError(f"model '{name}' is in mteb's registry, but evalkit does not run it: {reason}")
    return str(meta.name), settings_from_meta(meta)


def mteb_model_spec(name: str) -> Any | None:
    """A ModelSpec with mteb's settings alone for ``name`` (no models.yaml, no folder); ``None`` when mteb does not
    list it; a model evalkit refuses raises UnknownModelError with the reason."""
    from evalkit.registry.models import merge_settings

    known = runnable_mteb_fields(name)
    return None if known is None else merge_settings(known[0], mteb=known[1], source="hub")
