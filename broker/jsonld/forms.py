"""The broker's internal value form (IF) of Property values and its relation to JSON-LD expanded form.

IF is JSON-LD expanded form except that a scalar stands for ``{"@value": x}``, a single value is not wrapped
in an array and arrays keep the shape the user wrote (nested arrays too). ``to_expanded`` gives the exact
expanded form (what JSON-LD processors and property tests compare); ``from_expanded`` reads pyld's output.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator


def is_list_object(v: Any) -> bool:
    return isinstance(v, dict) and "@list" in v


def to_expanded(value: Any) -> list[Any]:
    """The JSON-LD expanded form (an array) of an internal value."""
    if value is None:
        return []
    if isinstance(value, list):
        out: list[Any] = []
        for item in value:
            out.extend(to_expanded(item))
        return out
    return [expanded_item(value)]


def expanded_item(value: Any) -> Any:
    if not isinstance(value, dict):
        return {"@value": value}
    if "@value" in value:
        return dict(value)
    if "@list" in value:
        out = {k: v for k, v in value.items() if k != "@list"}
        out["@list"] = to_expanded(value["@list"])
        return out
    node: dict[str, Any] = {}
    for key, item in value.items():
        if key == "@type":
            node[key] = item if isinstance(item, list) else [item]
        elif key[:1] == "@":  # other keywords (@id, @index, @reverse, @graph, ...) stay in expanded form
            node[key] = item
        else:
            node[key] = to_expanded(item)
    return node


def from_expanded(value: Any) -> Any:
    """The internal form of pyld's expanded output (arrays of one become their element)."""
    if isinstance(value, list):
        return [from_expanded(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "@value" in value:
        return value["@value"] if len(value) == 1 else value
    if "@list" in value:
        out = dict(value)
        out["@list"] = [from_expanded(v) for v in value["@list"]]
        return out
    node: dict[str, Any] = {}
    for key, item in value.items():
        if key == "@type":
            node[key] = item[0] if isinstance(item, list) and len(item) == 1 else item
        elif key[:1] == "@":
            node[key] = item
        elif isinstance(item, list) and len(item) == 1:
            node[key] = from_expanded(item[0])
        else:
            node[key] = from_expanded(item)
    return node


def leaves(value: Any) -> Iterator[Any]:
    """The items of a value with nested arrays flattened (what JSON-LD sees)."""
    if isinstance(value, list):
        for item in value:
            yield from leaves(item)
    else:
        yield value


def map_shape(value: Any, fn: Callable[[Any], Any]) -> Any:
    """``fn`` applied to every item, keeping the (nested) array shape."""
    if isinstance(value, list):
        return [map_shape(v, fn) for v in value]
    return fn(value)


def kept_by_add_value(compacted: list[Any]) -> bool:
    """Whether pyld's compaction keeps an entry for these compacted items of one container-less term.

    pyld (like the JSON-LD "add value" algorithm) adds each item with ``add_value``, which *flattens* an
    array -- the compacted form of a ``@json`` literal that is an array -- and creates the entry for an
    empty array only when the item itself is ``[]``. So ``[[]]`` or ``[[], [[]]]`` add nothing, and when
    every item is like that the entry is absent. (Otherwise the user's shape is kept: equal modulo arrays.)
    """
    for item in compacted:
        if not isinstance(item, list) or not item or any(True for _ in leaves(item)):
            return True
    return False
