"""Plugin parameters checked against the annotations of the plugin's ``__init__``.

``bench run --methods 'otsu(min_size=20)'`` gives parameters as text; :func:`from_text`
reads each value as the annotated type (``int``, ``float``, ``bool``, ``str``,
``Literal[...]`` choices, ``X | None``), so ``polarity=none`` stays the word ``"none"``
for a ``str`` parameter and is refused for one whose choices do not include it.  Values that
arrive typed (a suite file, the Python API) are checked by :func:`check`.  A value that does
not fit raises :class:`~harness.types.PluginError` naming the plugin, the parameter, the value
and what is allowed, before anything is planned.  Parameters without an annotation, or with
one these rules do not cover (tuples, paths, classes), are passed through unchecked.
"""

from __future__ import annotations

import ast
import inspect
import math
import types
import typing
from collections.abc import Mapping
from typing import Any

from harness.types import PluginError

_UNCHECKED = object()  # an annotation these rules do not cover


def init_annotations(cls: type) -> dict[str, Any]:
    """Parameter name → resolved annotation (``_UNCHECKED`` when absent or unresolvable)."""
    try:
        hints = typing.get_type_hints(cls.__init__)  # type: ignore[misc]
    except Exception:  # noqa: BLE001 - a name only importable under TYPE_CHECKING, say
        hints = {}
    out = {}
    for p in inspect.signature(cls.__init__).parameters.values():  # type: ignore[misc]
        if p.name != "self":
            out[p.name] = hints.get(p.name, _UNCHECKED)
    return out


def _members(annotation: Any) -> list[Any]:
    """The alternatives of a union (``X | None``, ``Optional[X]``), else the annotation."""
    origin = typing.get_origin(annotation)
    if origin is typing.Union or (hasattr(types, "UnionType") and origin is types.UnionType):
        out = []
        for arg in typing.get_args(annotation):
            out += _members(arg)
        return out
    return [annotation]


def _covered(member: Any) -> bool:
    return member in (int, float, bool, str, type(None)) or typing.get_origin(member) is typing.Literal


def describe(annotation: Any) -> str:
    """What an annotation allows, in words: ``int``, ``one of 'a', 'b'``, ``float or none``."""
    words = []
    for m in _members(annotation):
        if m is type(None):
            words.append("none")
        elif m is bool:
            words.append("true or false")
        elif typing.get_origin(m) is typing.Literal:
            choices = ", ".join(repr(c) for c in typing.get_args(m))
            words.append(f"one of {choices}")
        elif m is str:
            words.append("text")
        else:
            words.append(getattr(m, "__name__", str(m)))
    return " or ".join(words)


def _fits(member: Any, value: Any) -> bool:
    if member is type(None):
        return value is None
    if member is bool:
        return isinstance(value, bool)
    if member is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if member is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if member is str:
        return isinstance(value, str)
    if typing.get_origin(member) is typing.Literal:
        return any(value == c and type(value) is type(c) for c in typing.get_args(member))
    return True


def _read(member: Any, text: str) -> Any:
    """``text`` as a value of one alternative, or ``_UNCHECKED`` when it is not one."""
    word = text.strip()
    if member is type(None):
        return None if word.lower() in ("none", "null") else _UNCHECKED
    if member is bool:
        return {"true": True, "false": False}.get(word.lower(), _UNCHECKED)
    if member is int:
        try:
            value = ast.literal_eval(word)
        except (ValueError, SyntaxError):
            return _UNCHECKED
        return value if isinstance(value, int) and not isinstance(value, bool) else _UNCHECKED
    if member is float:
        try:
            value = float(word)
        except ValueError:
            return _UNCHECKED
        return value if not math.isnan(value) else _UNCHECKED
    if member is str:
        return _unquote(word)
    if typing.get_origin(member) is typing.Literal:
        for choice in typing.get_args(member):
            if isinstance(choice, str) and _unquote(word) == choice:
                return choice
            if not isinstance(choice, str) and _read(type(choice), word) == choice:
                return choice
        return _UNCHECKED
    return _UNCHECKED


def _unquote(word: str) -> str:
    if len(word) >= 2 and word[0] == word[-1] and word[0] in "'\"":
        return word[1:-1]
    return word


def _problem(label: str, name: str, shown: str, annotation: Any, default: Any) -> PluginError:
    hint = "" if default is inspect.Parameter.empty else f" (default {default!r})"
    return PluginError(f"{label}: parameter {name}={shown}: expected {describe(annotation)}{hint}")


def _defaults(cls: type) -> dict[str, Any]:
    return {p.name: p.default for p in inspect.signature(cls.__init__).parameters.values()}  # type: ignore[misc]


def from_text(label: str, cls: type, name: str, text: str, fallback: Any) -> Any:
    """One parameter's text read as its annotated type; ``fallback(text)`` when unchecked."""
    annotation = init_annotations(cls).get(name, _UNCHECKED)
    members = [] if annotation is _UNCHECKED else _members(annotation)
    if not members or not all(_covered(m) for m in members):
        return fallback(text)
    order = sorted(members, key=lambda m: m is str)  # text is the last reading tried
    for member in order:
        value = _read(member, text)
        if value is not _UNCHECKED:
            return value
    raise _problem(label, name, text.strip(), annotation, _defaults(cls).get(name, inspect.Parameter.empty))


def check(label: str, cls: type, params: Mapping[str, Any]) -> None:
    """``PluginError`` for a typed value its annotation does not allow (unknown names are
    the caller's check)."""
    hints = init_annotations(cls)
    defaults = _defaults(cls)
    for name, value in params.items():
        annotation = hints.get(name, _UNCHECKED)
        if annotation is _UNCHECKED:
            continue
        members = _members(annotation)
        if not all(_covered(m) for m in members):
            continue
        if isinstance(value, float) and math.isnan(value):
            raise _problem(label, name, "nan", annotation, defaults.get(name, inspect.Parameter.empty))
        if not any(_fits(m, value) for m in members):
            raise _problem(label, name, repr(value), annotation, defaults.get(name, inspect.Parameter.empty))
