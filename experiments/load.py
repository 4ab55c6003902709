"""YAML text → :class:`~experiments.model.Trial`, every failure as a :class:`Problem` with its line.

Loading never raises on bad input: malformed YAML, duplicate keys, unknown keys and wrong types
all become problems that say what to change. To report as many mistakes as possible in one run,
unknown keys and invalid values of optional fields are set aside and the rest is validated again,
so the rules in :mod:`experiments.rules` can still look at the trial.
"""

from __future__ import annotations

import copy
import difflib
from dataclasses import dataclass, field
from pathlib import Path as FilePath
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails, PydanticUndefined

from experiments.media import trial_text
from experiments.model import Trial
from experiments.problems import LineMap, Path, Problem, dotted

#: Hints for required fields, shown when one is missing.
MISSING_HINTS: dict[str, str] = {
    "planned_sample_size": "state the planned number of randomized visits; the check needs it "
    "for the minimum detectable effect",
    "baseline_rate": "state the expected outcome rate under control (a proportion, e.g. 0.05)",
    "disclosure": "every trial shows a disclosure on every page; see docs/trial-format.md",
    "privacy": "declare privacy.contact, privacy.retention_days and privacy.statement",
    "hypotheses": "pre-register at least one hypothesis",
    "purpose": "state the aim of the trial publicly (e.g. 'help people consider assisted "
    "voluntary return')",
}

PATTERN_HINTS: dict[str, str] = {
    r"^[a-z0-9][a-z0-9-]{0,62}$": "must be a slug: lowercase letters, digits and hyphens "
    "(e.g. 'azc-budel')",
    r"^[a-z][a-z0-9_]{0,62}$": "must be an identifier: lowercase letters, digits and "
    "underscores, starting with a letter (e.g. 'gain_frame')",
    r"^[a-z]{2,3}$": "must be a lowercase ISO 639 language code (e.g. 'nl', 'ar')",
}


@dataclass
class Loaded:
    """The outcome of loading one file: the trial (if it could be built) and the problems."""

    file: str
    source: str
    trial: Trial | None
    problems: list[Problem] = field(default_factory=list)
    lines: LineMap = field(default_factory=LineMap)
    #: True when the trial was built only after setting invalid parts aside.
    repaired: bool = False


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses duplicate keys instead of keeping the last one."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False):  # type: ignore[no-untyped-def]
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key {key!r} (first on line {seen[key]}); remove one of them",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,  # type: ignore[arg-type]
)


def _line_map(node: yaml.Node) -> LineMap:
    lines: dict[Path, int] = {}
    keys: dict[Path, int] = {}

    def walk(current: yaml.Node, path: Path) -> None:
        lines[path] = current.start_mark.line + 1
        if isinstance(current, yaml.MappingNode):
            for key_node, value_node in current.value:
                child = (*path, key_node.value)
                keys[child] = key_node.start_mark.line + 1
                walk(value_node, child)
        elif isinstance(current, yaml.SequenceNode):
            for index, item in enumerate(current.value):
                walk(item, (*path, index))

    walk(node, ())
    return LineMap(lines, keys)


def load_text(source: str, file: str = "<trial>") -> Loaded:
    """Parse and validate trial YAML; see the module docstring. A stored version's media
    archive (YAML comments at the end, :mod:`experiments.media`) is not parsed."""
    text = trial_text(source)
    try:
        node = yaml.compose(text, Loader=_UniqueKeyLoader)
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark else 1
        reason = error.problem or str(error)
        message = f"not valid YAML: {reason}"
        if error.context and "duplicate" not in reason:
            message += f" ({error.context})"
        return Loaded(file, source, None, [Problem(file, line, (), message, rule="yaml")])
    except yaml.YAMLError as error:
        return Loaded(
            file, source, None, [Problem(file, 1, (), f"not valid YAML: {error}", rule="yaml")]
        )
    if node is None or not isinstance(data, dict):
        message = "the file is empty" if node is None else "the top level must be a mapping of keys"
        return Loaded(
            file, source, None, [Problem(file, 1, (), f"{message}; see docs/trial-format.md")]
        )
    lines = _line_map(node)
    trial, problems, repaired = _validate(data, file, lines)
    return Loaded(file, source, trial, problems, lines, repaired)


def load_path(path: str | FilePath) -> Loaded:
    """Read and load a trial file; unreadable files become problems, not exceptions."""
    name = str(path)
    try:
        source = FilePath(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return Loaded(name, "", None, [Problem(name, 1, (), "file not found", rule="file")])
    except UnicodeDecodeError as error:
        return Loaded(
            name,
            "",
            None,
            [
                Problem(
                    name,
                    1,
                    (),
                    f"not UTF-8 text ({error.reason}); save the file as UTF-8",
                    rule="file",
                )
            ],
        )
    except OSError as error:
        return Loaded(
            name, "", None, [Problem(name, 1, (), f"cannot read: {error.strerror}", rule="file")]
        )
    return load_text(source, name)


def _validate(
    data: dict[str, Any], file: str, lines: LineMap
) -> tuple[Trial | None, list[Problem], bool]:
    try:
        return Trial.model_validate(data), [], False
    except ValidationError as error:
        details = error.errors(include_url=False)
    problems = [_problem(detail, file, lines) for detail in details]
    repaired = _set_aside(data, details)
    if repaired is None:
        return None, problems, False
    try:
        return Trial.model_validate(repaired), problems, True
    except ValidationError:
        return None, problems, False


def _set_aside(data: dict[str, Any], details: list[ErrorDetails]) -> dict[str, Any] | None:
    """A copy without unknown keys and invalid optional values; None if that is not enough."""
    repaired = copy.deepcopy(data)
    for detail in details:
        loc = _clean_loc(detail["loc"])
        optional = detail["type"] == "extra_forbidden" or _has_default(loc)
        if not optional or not loc:
            return None
        parent = _get(repaired, loc[:-1])
        if isinstance(parent, dict):
            parent.pop(loc[-1], None)
        else:
            return None
    return repaired


def _get(data: Any, loc: Path) -> Any:
    for part in loc:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _clean_loc(loc: tuple[str | int, ...]) -> Path:
    """Drop pydantic's ``[key]`` marker (an invalid dict key) from an error location."""
    return tuple(part for part in loc if part != "[key]")


def _model_at(loc: Path) -> type[BaseModel] | None:
    """The pydantic model class that holds the field at ``loc`` (its parent), if any."""
    model: Any = Trial
    for part in loc[:-1]:
        if isinstance(part, int) or model is None:
            continue
        annotation = _field_model(model, str(part))
        model = annotation
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _field_model(model: Any, name: str) -> Any:
    """Follow a field to the model inside it (through lists, dicts and optionals)."""
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return None
    info = model.model_fields.get(name)
    if info is None:
        return model  # a dict key such as a language code: stay on the value model
    return _inner_model(info.annotation)


def _inner_model(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        inner = _inner_model(arg)
        if inner is not None:
            return inner
    return None


def _has_default(loc: Path) -> bool:
    model = _model_at(loc)
    if model is None or not loc or isinstance(loc[-1], int):
        return False
    info = model.model_fields.get(str(loc[-1]))
    return info is not None and (
        info.default is not PydanticUndefined or info.default_factory is not None
    )


def _problem(detail: ErrorDetails, file: str, lines: LineMap) -> Problem:
    loc = _clean_loc(detail["loc"])
    kind = detail["type"]
    name = str(loc[-1]) if loc else ""
    if kind == "extra_forbidden":
        model = _model_at(loc)
        allowed = sorted(model.model_fields) if model else []
        message = f"unknown key {name!r}"
        close = difflib.get_close_matches(name, allowed, n=1)
        if close:
            message += f"; did you mean {close[0]!r}?"
        elif allowed:
            message += f"; allowed keys here: {', '.join(allowed)}"
        return Problem(file, lines.line(loc, key=True), loc, message)
    if kind == "missing":
        message = f"required key {name!r} is missing"
        if name in MISSING_HINTS:
            message += f": {MISSING_HINTS[name]}"
        return Problem(file, lines.line(loc), loc, message)
    if kind == "string_pattern_mismatch":
        pattern = str((detail.get("ctx") or {}).get("pattern", ""))
        hint = PATTERN_HINTS.get(pattern, f"must match {pattern}")
        return Problem(file, lines.line(loc), loc, f"{detail['input']!r} {hint}")
    if kind == "literal_error":
        expected = str((detail.get("ctx") or {}).get("expected", ""))
        return Problem(
            file, lines.line(loc), loc, f"{detail['input']!r} is not allowed here; use {expected}"
        )
    value = detail.get("input")
    shown = f" (got {value!r})" if isinstance(value, str | int | float | bool) else ""
    return Problem(file, lines.line(loc), loc, f"{_lower_first(detail['msg'])}{shown}")


def _lower_first(message: str) -> str:
    return message[:1].lower() + message[1:]


__all__ = ["Loaded", "dotted", "load_path", "load_text"]
