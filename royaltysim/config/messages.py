"""Pydantic's validation errors in a reader's words: ``(key path, message)`` pairs.

:func:`_pydantic_issues` turns each error into the scenario's key path (``schemes[2].ai.params``, without
the union tags pydantic adds after ``source``) and a message that names the allowed keys of the model the
path points into (:func:`_model_at`) or the allowed values.
"""

from __future__ import annotations

from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from royaltysim.config.schema import Arm, CorpusSource, FittedSource, Scenario


def _fmt_loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


_SOURCE_TAGS = {"corpus": CorpusSource, "fitted": FittedSource}


def _strip_tags(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """A pydantic error location without the union tag it adds after ``source`` (``source.fitted.x``)."""
    return tuple(p for i, p in enumerate(loc) if not (i > 0 and loc[i - 1] == "source" and p in _SOURCE_TAGS))


def _unwrap(ann: Any) -> Any:
    """``X | None`` and ``Annotated[X, ...]`` -> ``X`` (a union of several models is left as it is)."""
    while True:
        origin = get_origin(ann)
        if origin is Annotated:
            ann = get_args(ann)[0]
            continue
        if origin in (Union, UnionType):
            inner = [a for a in get_args(ann) if a is not type(None)]
            if len(inner) == 1:
                ann = inner[0]
                continue
        return ann


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model class that the key path ``loc`` (with union tags) points into, for listing its keys."""
    ann: Any = Scenario
    for i, part in enumerate(loc):
        if i > 0 and loc[i - 1] == "source" and part in _SOURCE_TAGS:
            ann = _SOURCE_TAGS[part]
            continue
        ann = _unwrap(ann)
        origin = get_origin(ann)
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            if isinstance(part, int) or part not in ann.model_fields:
                return None
            ann = ann.model_fields[part].annotation
        elif origin in (list, tuple) and isinstance(part, int) and get_args(ann):
            ann = get_args(ann)[0]
        elif origin is dict and get_args(ann):
            ann = get_args(ann)[1]  # any key of a mapping leads to its values' type
        else:
            return None
    ann = _unwrap(ann)
    return ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None


def _keys_of(model: type[BaseModel]) -> str:
    return ", ".join(model.model_fields)


def _pydantic_issues(err: ValidationError) -> list[tuple[str, str]]:
    issues = []
    for e in err.errors():
        raw_loc = tuple(e["loc"])
        loc = _strip_tags(raw_loc)
        msg = e["msg"]
        kind = e["type"]
        got = e.get("input")
        shown = "" if isinstance(got, (dict, list)) else f" (got {got!r})"
        if kind == "extra_forbidden":
            parent = _model_at(raw_loc[:-1])
            msg = f"unknown key {loc[-1]!r}" + (f"; allowed keys: {_keys_of(parent)}" if parent else "")
        elif kind == "missing":
            msg = "required key is missing"
        elif kind in ("model_type", "model_attributes_type", "dict_type"):
            model = _model_at(raw_loc)
            if loc == ("source",):
                msg = ("expected a mapping such as {kind: corpus, run: runs/default}; kind is corpus or fitted, "
                       f"other keys: {_keys_of(FittedSource)}{shown}")
            elif model is not None:
                msg = f"expected a mapping with the keys {_keys_of(model)}{shown}"
            else:
                msg = f"expected a mapping (key: value){shown}"
        elif kind == "union_tag_invalid":
            ctx = e.get("ctx") or {}
            msg = f"unknown source kind {ctx.get('tag')!r}; allowed: corpus, fitted"
        elif kind == "union_tag_not_found":
            msg = "the source needs `kind: corpus` (the run's creators) or `kind: fitted` (a synthetic population)"
        elif kind in ("list_type", "tuple_type"):
            if loc == ("schemes",):
                msg = f"expected a list of arms, each a mapping with the keys {_keys_of(Arm)}{shown}"
            elif loc[:2] == ("sweep", "grid"):
                msg = f"expected a list of the values to sweep, e.g. [0.1, 0.2, 0.3]{shown}"
            else:
                msg = f"expected a list{shown}"
        elif kind == "value_error" and (e.get("ctx") or {}).get("error") is not None:
            msg = str(e["ctx"]["error"])  # our own validators' words, without pydantic's "Value error, "
        elif kind == "finite_number":
            msg = f"must be a finite number{shown}; .inf and .nan are not allowed"
        elif shown:
            msg = f"{msg}{shown}"
        issues.append((_fmt_loc(loc), msg))
    return issues
