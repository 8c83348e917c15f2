"""A run option is declared once, on the section that owns it: its flag, default, choices and help.

A section is a frozen dataclass whose fields carry their CLI declaration in ``metadata`` (see :func:`option`). From
that one declaration come the argparse arguments (:meth:`Section.add_arguments`), the values from parsed arguments
(:meth:`Section.from_namespace`) and from Python keywords (:func:`evalkit.options.RunOptions.from_kwargs`), so the
CLI and ``evalkit.evaluate(**options)`` take the same names and run the same checks (``Section.__post_init__``).
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from evalkit.errors import EvalkitError


def option(
    default: Any = None,
    *,
    help: str,
    flags: Sequence[str] = (),
    choices: Sequence[str] | None = None,
    type: Any = None,
    action: Any = None,
    nargs: str | None = None,
    metavar: str | None = None,
    default_factory: Any = None,
) -> Any:
    """A dataclass field with its command-line declaration; ``flags`` default to ``--field-name``."""
    cli = {"help": help, "flags": tuple(flags), "choices": choices, "type": type, "action": action}
    cli.update(nargs=nargs, metavar=metavar)
    if default_factory is not None:
        return dataclasses.field(default_factory=default_factory, metadata={"cli": cli})
    return dataclasses.field(default=default, metadata={"cli": cli})


@dataclasses.dataclass(frozen=True)
class Section:
    """One group of run options. Subclasses declare fields with :func:`option` and may override the hooks."""

    title: ClassVar[str] = ""

    def __post_init__(self) -> None:
        for spec in dataclasses.fields(self):
            choices = spec.metadata.get("cli", {}).get("choices")
            value = getattr(self, spec.name)
            if choices and value is not None and value not in choices:
                raise EvalkitError(
                    f"{flag_of(spec)} must be one of {', '.join(choices)}, got {value!r}", field=spec.name
                )
        self.validate()

    def validate(self) -> None:
        """Checks that need no files, data or model (ranges, combinations); raise ``EvalkitError``."""

    def tag(self) -> str:
        """What this section adds to the revision folder's name when it changes vectors or scores ('' if nothing)."""
        return ""

    def record(self) -> dict[str, Any]:
        """This section's entry in the run record."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group(cls.title) if cls.title else parser
        for spec in dataclasses.fields(cls):
            cli = spec.metadata.get("cli")
            if cli is None:
                continue
            kwargs = {k: v for k, v in cli.items() if k != "flags" and v is not None}
            if cli["action"] in ("store_true", "store_false"):
                kwargs.pop("type", None)
            default = spec.default if spec.default is not dataclasses.MISSING else None
            if cli["action"] == "append" or cli["nargs"]:
                default = None  # argparse appends to its default; an empty value means the field's default
            group.add_argument(*(cli["flags"] or (flag_of(spec),)), dest=spec.name, default=default, **kwargs)

    @classmethod
    def from_namespace(cls, namespace: argparse.Namespace) -> Section:
        return cls.from_values({name: getattr(namespace, name) for name in cls.names() if hasattr(namespace, name)})

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> Section:
        """The section from option values by name; ``None`` means the field's default."""
        given = {name: value for name, value in values.items() if value is not None}
        return cls(**{name: cls.convert(name, value) for name, value in given.items()})

    @classmethod
    def convert(cls, name: str, value: Any) -> Any:
        """A value as given (CLI string, Python object) → the field's type. Override per field where needed."""
        return value


def flag_of(spec: dataclasses.Field) -> str:
    flags = spec.metadata.get("cli", {}).get("flags") or ()
    return flags[0] if flags else "--" + spec.name.replace("_", "-")


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def check_positive(value: int | None, name: str, flag: str | None = None, *, allow_none: bool = True) -> None:
    """An integer option that must be at least 1 (``None`` means "the default" where allowed)."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        shown = flag or "--" + name.replace("_", "-")
        raise EvalkitError(f"{shown} must be a positive integer, got {value!r}", field=name)
