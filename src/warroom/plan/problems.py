"""Validation errors as a person reads them: file, line, field, what is expected, and the key they meant.

pydantic reports where in the data a value failed; the YAML's marks (yamlfile.Located)
turn that into a line and column. An unknown key gets the nearest known one as a
suggestion (`did you mean poll_interval?`), found by walking the model along its location.
"""

from __future__ import annotations

import difflib
import types
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from warroom.core import secrets
from warroom.plan.fields import FROM_TEXT
from warroom.plan.urls import SECRET_VALUE
from warroom.plan.yamlfile import Loc, Located, PlanError, Problem, dotted

# pydantic adds union/validator tags (e.g. 'simulator', 'function-after[...]') into locations.
_UNION_TAGS = {"run", "webhook", "http", "prometheus", "simulator", "plugin"}

UNKNOWN_KEY = "unknown key (check the spelling: an unknown key is an error so a typo cannot silently disable anything)"

# Thresholds and comparisons: what their number means, said when it is not one.
THRESHOLDS = ("above", "below", "warn", "breach")
THRESHOLD_HELP = "a number in the pane's unit, or with a unit: 1% (ratio or percent pane), 500ms (seconds or ms pane)"
COMPARE_HELP = {
    "difference": "a signed difference in the pane's unit, or with a unit: +0.5pp (percentage points, ratio or percent), "
                  "+50ms (seconds or ms); + when higher is worse, - when lower is",
    "ratio": "a ratio of the new cohort to the control: ×2 (or 2) when higher is worse, ×0.5 when lower is",
}

M = TypeVar("M")


def clean_loc(loc: Loc) -> Loc:
    # A union tag comes right after a source's name or a step's index, once: the `http` of
    # ('steps', 2, 'http', 'http', 'headers') is first the tag, then the step's real key.
    out: list[Any] = []
    tagged_at = -1
    for part in loc:
        if isinstance(part, str) and "[" in part:
            continue
        if part in _UNION_TAGS and len(out) >= 2 and out[-2] in ("sources", "steps") and tagged_at != len(out) or (
                out == ["state"] and part in ("database", "file")):
            tagged_at = len(out)
            continue
        out.append(part)
    return tuple(out)


def suggestion(word: str, known: list[str]) -> str | None:
    """The known word closest to a misspelt one, if any is close."""
    close = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
    return close[0] if close else None


def _unwrap(tp: Any) -> list[Any]:
    """The types a value of `tp` may be: Annotated, Optional and unions opened."""
    origin = get_origin(tp)
    if origin is Annotated:
        return _unwrap(get_args(tp)[0])
    if origin is Union or origin is types.UnionType:
        return [t for arg in get_args(tp) for t in _unwrap(arg)]
    return [tp]


def _inside(tp: Any, part: Any) -> list[Any]:
    out: list[Any] = []
    for t in _unwrap(tp):
        origin = get_origin(t)
        if isinstance(t, type) and issubclass(t, BaseModel) and isinstance(part, str):
            out += [f.annotation for name, f in t.model_fields.items() if part in (name, f.alias)]
        elif origin in (list, tuple) and isinstance(part, int):
            out += list(get_args(t)[:1])
        elif origin is dict:
            out += list(get_args(t)[1:2])
    return out


def known_keys(root: Any, loc: Loc) -> list[str]:
    """The keys the model accepts in the mapping at `loc` (all of them, where a union leaves it open)."""
    here = [root]
    for part in loc:
        here = [t for tp in here for t in _inside(tp, part)]
    keys: list[str] = []
    for t in (t for tp in here for t in _unwrap(tp)):
        if isinstance(t, type) and issubclass(t, BaseModel):
            # Not the fields a plan never writes (base_dir, path: set by the loader).
            keys += [f.alias or name for name, f in t.model_fields.items() if not f.exclude and (f.alias or not name.endswith("_"))]
    return list(dict.fromkeys(keys))


def message(err: ErrorDetails, root: Any = None, loc: Loc = ()) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        key = loc[-1] if loc else None
        near = suggestion(key, known_keys(root, loc[:-1])) if isinstance(key, str) and root is not None else None
        return f"unknown key: did you mean {near}? (an unknown key is an error so a typo cannot silently disable anything)" if near \
            else UNKNOWN_KEY
    if kind == "missing":
        return "this key is required"
    if kind == "model_type":  # pydantic names the model class here: say what the plan should hold
        return f"expected a mapping (key: value, …), not {_kind_of(err.get('input'))}"
    msg = str(err["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix):]
    got = err.get("input")
    last = err["loc"][-1] if err["loc"] else None
    if kind == "float_parsing" and last in THRESHOLDS:
        msg = f"expected {THRESHOLD_HELP}"
    if kind == "float_parsing" and isinstance(last, str) and last in COMPARE_HELP:
        msg = f"expected {COMPARE_HELP[last]}"
    if kind == SECRET_VALUE or secrets.REF_HELP in msg:
        return msg  # the rejected value may be the secret itself: never echo it
    if kind not in ("model_type", "dict_type") and isinstance(got, (str, int, float, bool)) and "got" not in msg:
        msg += f" (got {got!r})"
    return msg


def _kind_of(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "text"
    if isinstance(value, bool):
        return "true or false"
    return "a number" if isinstance(value, (int, float)) else "nothing" if value is None else "another kind of value"


def validation_problems(exc: ValidationError, located: Located, prefix: Loc = (), root: Any = None) -> list[Problem]:
    """Each of pydantic's errors as a located problem; `root` is the model validated at `prefix` (for suggestions)."""
    problems = []
    for err in exc.errors():
        local = clean_loc(tuple(err["loc"]))
        loc = prefix + local
        # For a missing key, point at its parent mapping (where it should be added).
        line, col = located.where(loc[:-1] if err["type"] == "missing" else loc)
        problems.append(Problem(located.file, line, col, dotted(loc), message(err, root, local)))
    return problems


def validate_text(model: type[M], data: Any, located: Located, prefix: Loc = ()) -> M:
    """`data` read from YAML as a `model` (a pydantic model or any type), or a PlanError with every problem located."""
    try:
        return TypeAdapter(model).validate_python(data, context=FROM_TEXT)
    except ValidationError as exc:
        raise PlanError(validation_problems(exc, located, prefix, model)) from None
