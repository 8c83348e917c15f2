"""Checks a run makes before it loads any data or builds any model: a bad option costs a second, not an hour.

Everything here is cheap and reads no task data: option ranges, whether the output and cache folders can be
written, whether the device exists, whether the maximum length fits the model's position table. Each failure is
one ``EvalkitError`` line (exit 2) naming the option.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from evalkit.errors import EvalkitError
from evalkit.safe_paths import safe_component

_DEVICE = re.compile(r"^(cpu|cuda(:\d+)?)$")

# Model types whose position table is absolute: a text longer than it cannot be encoded at all. RoBERTa-style
# models start their positions after the padding index, so two of their slots are never used by a text.
_ABSOLUTE_POSITIONS = {"bert", "distilbert", "electra", "albert", "mpnet", "nomic_bert"}
_OFFSET_POSITIONS = {"roberta", "xlm-roberta", "camembert", "longformer", "xlm-roberta-xl"}


def check_writable_dir(path: Path, option: str) -> None:
    """``path`` is a folder that exists and can be written, or one that can be created (its nearest existing
    ancestor is a writable folder). Nothing is created here."""
    path = Path(path).expanduser()
    flag = f"--{option.replace('_', '-')}"
    if path.exists() and not path.is_dir():
        raise EvalkitError(f"{flag} {path} is a file, not a folder", file=path, field=option)
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise EvalkitError(f"{flag} {path} cannot be created: {probe} is not a folder", file=probe, field=option)
    if not os.access(probe, os.W_OK | os.X_OK):
        what = "is not writable" if probe == path else f"cannot be created: {probe} is not writable"
        raise EvalkitError(f"{flag} {path} {what}", file=probe, field=option)


def check_device(device: str) -> None:
    """``cpu``, ``cuda``, ``cuda:N`` or a comma list of CUDA devices, and the CUDA ones must exist here."""
    devices = [d.strip() for d in device.split(",")] if "," in device else [device]
    for one in devices:
        if not _DEVICE.match(one):
            raise EvalkitError(f"--device {device!r}: expected cpu, cuda, cuda:N or cuda:0,cuda:1", field="device")
    cuda = [d for d in devices if d.startswith("cuda")]
    if not cuda:
        return
    if len(devices) > 1 and len(cuda) != len(devices):
        raise EvalkitError(f"--device {device!r}: several devices must all be GPUs", field="device")
    import torch

    if not torch.cuda.is_available():
        raise EvalkitError(f"--device {device}: no CUDA device is available on this machine", field="device")
    count = torch.cuda.device_count()
    for one in cuda:
        index = int(one.split(":", 1)[1]) if ":" in one else 0
        if index >= count:
            raise EvalkitError(f"--device {one}: this machine has {count} CUDA device(s)", field="device")


def position_limit(model_folder: Path | None) -> int | None:
    """The longest text (in tokens) the model's position table holds, when its ``config.json`` says so."""
    if model_folder is None:
        return None
    config_file = Path(model_folder) / "config.json"
    try:
        config: Any = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # the model loader reports a missing or malformed config in its own words
    if not isinstance(config, Mapping):
        return None
    positions, model_type = config.get("max_position_embeddings"), config.get("model_type")
    if isinstance(positions, bool) or not isinstance(positions, int):
        return None
    if model_type in _ABSOLUTE_POSITIONS:
        return positions
    if model_type in _OFFSET_POSITIONS:
        pad = config.get("pad_token_id", 1)
        return positions - (pad if isinstance(pad, int) and not isinstance(pad, bool) else 1) - 1
    return None  # relative or rotary positions: no hard limit to check


def check_max_length(max_length: int, model_folder: Path | None, *, overridden: bool) -> None:
    limit = position_limit(model_folder)
    if limit is not None and max_length > limit:
        origin = "--max-length" if overridden else "the model's max_length"
        raise EvalkitError(
            f"{origin} {max_length} is beyond the model's {limit} positions ({Path(model_folder or '')}/config.json)",
            field="max_length",
        )


def check_model_name(name: str) -> None:
    """The model's results folder (``org__name``) must be one safe name before anything is computed for it."""
    for part in name.split("/"):
        safe_component(part, what="model name", field="model")
