"""``evalkit.evaluate``: the library call behind ``evalkit run``, for a model name or any model object.

A model team evaluates from its training code — a checkpoint in memory, a callback every N steps, a notebook — so
the model may be what the CLI takes (a registry name, a local folder, a hub id) or an object: a
``SentenceTransformer`` (through evalkit's own fast path where its modules are ones evalkit reproduces exactly), an
object following mteb's encoder protocol, anything with ``.encode(list[str])``, or a plain callable. The options are
the CLI's, by the same names, checked the same way (:class:`evalkit.options.RunOptions`).
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evalkit.errors import EvalkitError
from evalkit.progress import print_task_line
from evalkit.results.api import Results, load_results


def evaluate(
    model: Any,
    tasks: str | Sequence[str] | None = None,
    *,
    benchmark: str | None = None,
    data_dir: str | Path | Sequence[str | Path] | None = None,
    output: str | Path | None = None,
    name: str | None = None,
    revision: str | None = None,
    on_task_done: Any = print_task_line,
    **options: Any,
) -> Results:
    """Evaluate ``model`` on ``tasks`` (and/or a ``benchmark``) and return the results.

    ``output``: the results root (the MTEB layout); by default a temporary folder that lives as long as the
    process, so the returned :class:`~evalkit.results.api.Results` can still read per-item scores. ``name`` and
    ``revision`` name a model object in the results (default: its class name, a hash of its parameters) —
    ``revision`` also keys its vectors in the cache instead of the parameter hash. ``reranker=`` takes a
    registry name, a folder or a ``CrossEncoder`` object. Every other keyword is an ``evalkit run`` option by
    its Python name (``precision="bf16"``, ``retrieval="hybrid"``, ``use_cache=False``; see
    ``evalkit.options.option_names()``). ``on_task_done`` gets one :class:`~evalkit.progress.TaskProgress` per
    finished task (default: its line on stderr, as ``evalkit run`` prints it; ``None``: nothing).
    """
    from evalkit.runner import RunConfig, RunSummary, run

    named = _named_options(tasks, benchmark, data_dir, options)
    named["output_dir"] = Path(output) if output is not None else _scratch_output()
    reranker = named.get("reranker")
    reranker_model = None
    if reranker is not None and not isinstance(reranker, (str, Path)):
        reranker_model = _object_model(reranker, revision=None, name=None)
        named["reranker"] = reranker_model.name
    if isinstance(model, (str, Path)):
        if name is not None or revision is not None:
            raise EvalkitError("name= and revision= are for model objects; a named model has its own", field="name")
        summary = run(RunConfig(str(model), **named), reranker_model=reranker_model, on_task_done=on_task_done)
    else:
        encoder = _object_model(model, revision=revision, name=name)
        summaries = [
            run(
                RunConfig(encoder.name, **task_options),
                encoder=bound,
                reranker_model=reranker_model,
                on_task_done=on_task_done,
            )
            for task_options, bound in _bound_to_tasks(encoder, named)
        ]
        summary = RunSummary(
            written=[w for s in summaries for w in s.written], skipped=[k for s in summaries for k in s.skipped]
        )
    folders = sorted({w.result_file.parent for w in summary.written})
    if not folders:
        raise EvalkitError("no task was evaluated: " + "; ".join(f"{s.name}: {s.reason}" for s in summary.skipped))
    return load_results(folders)


def _bound_to_tasks(encoder: Any, named: dict[str, Any]) -> list[tuple[dict[str, Any], Any]]:
    """The run(s) for a model object: one, or — for an object following mteb's protocol, which is handed each
    task's metadata to choose its prompts — one per task, the object bound to it (``for_task``)."""
    from evalkit.encoders.objects import MtebObjectEncoder

    if not isinstance(encoder, MtebObjectEncoder):
        return [(named, encoder)]
    from evalkit.options import RunOptions
    from evalkit.pipeline.plan import plan_run
    from evalkit.registry.tasks import default_registry

    if named.get("benchmark"):  # a per-task run would lose the benchmark's own splits and subsets
        raise EvalkitError("a model following mteb's protocol runs task by task: name tasks=, not benchmark=")
    selection = RunOptions.from_kwargs(**{k: v for k, v in named.items() if k != "command"}).selection
    names = [spec.name for spec in plan_run(selection, default_registry()).specs]
    return [({**named, "tasks": [task], "benchmark": None}, encoder.for_task(task)) for task in names]


def _named_options(
    tasks: str | Sequence[str] | None,
    benchmark: str | None,
    data_dir: str | Path | Sequence[str | Path] | None,
    options: dict[str, Any],
) -> dict[str, Any]:
    named = dict(options)
    if tasks is not None:
        named["tasks"] = [tasks] if isinstance(tasks, str) else list(tasks)
    if benchmark is not None:
        named["benchmark"] = benchmark
    if data_dir is not None:
        named["data_dirs"] = [data_dir] if isinstance(data_dir, (str, Path)) else list(data_dir)
    return named


def _object_model(obj: Any, *, revision: str | None, name: str | None) -> Any:
    """A model object wrapped once per call, so a model changed in place since the last call gets a new key (an
    opaque callable, which cannot be cached, says so in one warning on the ``evalkit`` logger)."""
    from evalkit.encoders.objects import encoder_from_object

    return encoder_from_object(obj, revision=revision, name=name)


def _scratch_output() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="evalkit-results-"))
    atexit.register(shutil.rmtree, folder, True)
    return folder
