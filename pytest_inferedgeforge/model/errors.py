"""Errors a user can act on.

Every failure caused by input (a preset, a spec, a model, a record) or by a
missing toolchain is a :class:`ForgeError`. The CLI prints it as one
``Error: <message>`` line and the plugin shows it without a traceback, so the
message must stand on its own: name the file, the field and the reason.
"""

from __future__ import annotations

import difflib
import typing
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the plugin imports this module at start-up: no pydantic until a record is read
    from pydantic import BaseModel, ValidationError


class ForgeError(Exception):
    """Base class: an error whose message is meant for the user."""


class PresetError(ForgeError):
    """A preset file is missing, malformed or inconsistent."""


class SpecError(ForgeError):
    """An experiment spec is malformed or refers to something that does not exist."""


class ModelError(ForgeError):
    """The source model is missing, not ONNX, or cannot be used as given."""


class ToolchainUnavailable(ForgeError):
    """A backend's toolchain cannot run on this machine; the message says precisely why."""


class RunnerError(ForgeError):
    """The artifact failed to load or to run in its runtime. Backends translate their runtime's own
    exceptions into this, so anything else escaping a run is a bug in Forge and keeps its traceback."""


class BuildFailed(ForgeError):
    """The toolchain ran and failed."""


class RecordError(ForgeError):
    """A build record (metadata, manifest, run summary) is missing or malformed."""


def first_line(error: BaseException | str, limit: int = 400) -> str:
    """The first line of an error (a toolchain's message can be pages long), cut to ``limit`` characters."""
    text = str(error).strip() or (type(error).__name__ if isinstance(error, BaseException) else "")
    return text.splitlines()[0][:limit] if text else ""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices`` to a misspelled ``word``, or "" when none is close:
    a typo answered with the fix saves a trip to the docs."""
    close = difflib.get_close_matches(word, sorted(set(choices)), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _submodel(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside a field's annotation (``X``, ``X | None``, ``list[X]``, ``dict[str, X]``)."""
    from pydantic import BaseModel

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in typing.get_args(annotation):
        found = _submodel(argument)
        if found is not None:
            return found
    return None


def _allowed_keys(model: type[BaseModel], location: tuple[Any, ...]) -> list[str]:
    """The keys the model at ``location`` (the path to the unknown key's parent) accepts, aliases included."""
    current: type[BaseModel] | None = model
    for part in location:
        if current is None:
            return []
        if isinstance(part, int) or part not in current.model_fields:
            continue  # a list index or a dict key: the model is the same one level down
        current = _submodel(current.model_fields[part].annotation)
    if current is None:
        return []
    return [field.alias or name for name, field in current.model_fields.items()]


def describe_validation_error(error: ValidationError, source: str, model: type[BaseModel] | None = None) -> str:
    """Render a pydantic error as one line: ``<source>: field 'a.b': <reason>``.

    Only the first problem is shown in full; the count of the others follows,
    because one precise line is more useful than a wall of text. Given the
    ``model`` that was validated, an unknown key is answered with the closest
    key that model accepts.
    """
    problems = error.errors()
    first = problems[0]
    location = ".".join(str(part) for part in first["loc"]) or "<root>"
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown key"
        if model is not None and first["loc"]:
            message += did_you_mean(str(first["loc"][-1]), _allowed_keys(model, tuple(first["loc"][:-1])))
    more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
    return f"{source}: field '{location}': {message}{more}"
