"""Turn pydantic's validation errors into ``ConfigProblem``s a line engineer can act on.

Each problem names the dotted key path, says what was expected in plain words, shows the
value (``<redacted>`` inside anything holding a secret) and the line in the YAML file.
"""

from __future__ import annotations

import difflib
import types
from typing import Annotated, Any, Literal, TypeGuard, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from agent.config.base import ConfigProblem, FieldError
from agent.config.secrets import SecretRef
from agent.config.yamlfile import YamlDocument

__all__ = ["problems_from_validation", "render_value"]

REDACTED = "<redacted>"
_MAX_VALUE = 60
_ABSENT = object()


def problems_from_validation(
    exc: ValidationError, root: type[BaseModel], document: YamlDocument
) -> list[ConfigProblem]:
    problems = [_problem(error, root, document) for error in exc.errors()]
    return sorted(set(problems), key=lambda p: (p.line or 0, p.path))


def render_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping" if value else "an empty mapping"
    if isinstance(value, list):
        return "a list" if value else "an empty list"
    text = repr(value)
    return text if len(text) <= _MAX_VALUE else text[: _MAX_VALUE - 3] + "..."


def _problem(error: ErrorDetails, root: type[BaseModel], document: YamlDocument) -> ConfigProblem:
    is_key = "[key]" in error["loc"]
    path = tuple(str(part) for part in error["loc"] if part != "[key]")
    kind = error["type"]
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, FieldError):
        path = (*path, cause.field)
    # Show the value as written in the file (validators may have changed it), else pydantic's input.
    value: Any = error.get("input") if is_key else _raw_at(document.data, path, error.get("input"))
    show_value = kind not in ("missing", "extra_forbidden") and value is not _ABSENT
    chain = _types_along(root, path)
    message = _message(error, kind, chain, path, cause)
    if is_key:
        message = f"invalid key: {message}"
    rendered = None
    if show_value:
        secret = any(_unwrap(t) is SecretRef for t in chain) or _holds_secret(chain[-1])
        rendered = REDACTED if secret else render_value(value)
    return ConfigProblem(".".join(path), message, rendered, document.line_of(path))


def _raw_at(data: Any, path: tuple[str, ...], fallback: Any) -> Any:
    for part in path:
        if not isinstance(data, dict):
            return fallback
        matches = [value for key, value in data.items() if str(key) == part]
        if not matches:
            return _ABSENT
        data = matches[0]
    return data


def _message(error: ErrorDetails, kind: str, chain: list[Any], path: tuple[str, ...], cause: object) -> str:
    if kind == "extra_forbidden":
        parent = _unwrap(chain[-2]) if len(chain) >= 2 else None
        allowed = list(parent.model_fields) if _is_model(parent) else []
        hint = difflib.get_close_matches(path[-1], allowed, n=1, cutoff=0.6) if path else []
        guess = f"; did you mean {hint[0]!r}?" if hint else ""
        return f"unknown key (allowed: {', '.join(allowed)}){guess}"
    if kind == "missing":
        return "required key is missing"
    if kind == "literal_error":
        literal = _unwrap(chain[-1])
        if get_origin(literal) is Literal:
            return "must be one of " + ", ".join(str(arg) for arg in get_args(literal))
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return "must be a mapping (a section of key: value lines)"
    if kind == "too_short" and (error.get("ctx") or {}).get("min_length") == 1:
        return "must not be empty"
    if isinstance(cause, ValueError):
        return str(cause)
    message = error["msg"]
    for old, new in (("Input should be ", "must be "), ("Value error, ", ""), ("String should", "must")):
        message = message.replace(old, new)
    return message


def _unwrap(annotation: Any) -> Any:
    """Strip Annotated[...] and Optional[...] down to the one type that matters."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            options = [arg for arg in get_args(annotation) if arg is not type(None)]
            if len(options) != 1:
                return annotation
            annotation = options[0]
        else:
            return annotation


def _is_model(annotation: Any) -> TypeGuard[type[BaseModel]]:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _types_along(root: type[BaseModel], path: tuple[str, ...]) -> list[Any]:
    """The declared type at each step of ``path`` (None once the path leaves the schema)."""
    chain: list[Any] = [root]
    current: Any = root
    for part in path:
        current = _unwrap(current)
        if _is_model(current):
            field = current.model_fields.get(part)
            current = field.annotation if field is not None else None
        elif get_origin(current) is dict:
            current = get_args(current)[1]
        else:
            current = None
        chain.append(current)
    return chain


def _holds_secret(annotation: Any, depth: int = 0) -> bool:
    """True for SecretRef and for any section that contains one (its raw value may hold a secret)."""
    annotation = _unwrap(annotation)
    if annotation is SecretRef:
        return True
    if get_origin(annotation) is dict:
        return _holds_secret(get_args(annotation)[1], depth + 1)
    if not _is_model(annotation) or depth > 8:
        return False
    return any(_holds_secret(field.annotation, depth + 1) for field in annotation.model_fields.values())
