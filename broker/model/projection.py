"""Entity member projection: the ``pick`` and ``omit`` parameters (GS CIM 009 clause 4.21).

Grammar (4.21)::

    ProjectionList   = ProjectionTerm *( ("," / "|") ProjectionTerm )
    ProjectionTerm   = ProjectionMember [ "{" ProjectionList "}" ]

A member is an Entity member (``id``, ``type``, ``scope``, ``createdAt``, ``modifiedAt``) or an Attribute name;
the braces select the members of the Linked Entities reached through a Relationship (4.5.23), one level of
braces per join level. Any other character, an empty member, unbalanced or doubled braces are BadRequestData.

A parsed projection is a ``Projection``: ``{member: sub-projection or None}``, where attribute names are
expanded IRIs (``expand``) so they compare with the internal entity form directly.
"""

from __future__ import annotations

from typing import Any

from ..errors import bad_request
from ..jsonld import Context
from . import names
from .entity import attribute_iri

Projection = dict[str, Any]  # member -> Projection | None

CORE_MEMBERS = frozenset(("id", "type", "scope", "createdAt", "modifiedAt", "deletedAt"))
_SEPARATORS = ",|"


def parse_projection(text: str, what: str) -> Projection:
    """The tree of a ``pick`` / ``omit`` value, member names as written."""
    tree, end = _list(text, 0, what)
    if end != len(text):
        raise bad_request(f"{what}: unexpected {text[end]!r} at position {end} (GS CIM 009 4.21)")
    return tree


def _list(text: str, pos: int, what: str) -> tuple[Projection, int]:
    tree: Projection = {}
    while True:
        start = pos
        while pos < len(text) and text[pos] not in ",|{}":
            pos += 1
        name = text[start:pos]
        if not name:
            found = repr(text[pos]) if pos < len(text) else "the end"
            raise bad_request(f"{what}: a member name is expected at position {start}, found {found} "
                              "(GS CIM 009 4.21)")
        if name not in CORE_MEMBERS:
            names.check_attribute_name(name, what)
        sub = None
        if pos < len(text) and text[pos] == "{":
            sub, pos = _list(text, pos + 1, what)
            if pos >= len(text) or text[pos] != "}":
                raise bad_request(f"{what}: unclosed '{{' after {name!r} (GS CIM 009 4.21)")
            pos += 1
        if name in tree and tree[name] != sub:
            raise bad_request(f"{what}: {name!r} is given twice with different selections")
        tree[name] = sub
        if pos < len(text) and text[pos] in _SEPARATORS:
            pos += 1
            continue
        return tree, pos


def from_list(items: Any, what: str) -> Projection:
    """A projection given as a JSON array of ProjectionTerm strings (the Query body's pick / omit)."""
    if isinstance(items, str):
        items = [items]
    if not isinstance(items, list) or not items or not all(isinstance(i, str) for i in items):
        raise bad_request(f"{what} must be a non-empty array of strings")
    return parse_projection(",".join(items), what)


def expand(tree: Projection, ctx: Context, what: str) -> Projection:
    """``tree`` with attribute names expanded with ``ctx`` (core members stay as they are)."""
    out: Projection = {}
    for name, sub in tree.items():
        if name in CORE_MEMBERS:
            if sub is not None:
                raise bad_request(f"{what}: {name!r} is not a Relationship: it cannot select Linked Entity members")
            out[name] = None
        else:
            out[attribute_iri(name, ctx)] = None if sub is None else expand(sub, ctx, what)
    return out


def depth(tree: Projection | None) -> int:
    """How many Linked Entity levels a projection reaches into (0: none)."""
    if not tree:
        return 0
    return max((1 + depth(sub) if sub is not None else 0) for sub in tree.values())


def check_conflicts(pick: Projection | None, omit: Projection | None, path: str = "") -> None:
    """BadRequestData when a member is both picked and omitted (4.21)."""
    if not pick or not omit:
        return
    for name, omitted in omit.items():
        if name not in pick:
            continue
        if omitted is None:
            raise bad_request(f"{path}{name} is both in pick and in omit (GS CIM 009 4.21)")
        check_conflicts(pick[name], omitted, f"{path}{name}.")


def keeps(member: str, pick: Projection | None, omit: Projection | None) -> bool:
    """Whether ``member`` survives the projection (a member omitted with a sub-selection stays)."""
    if pick is not None and member not in pick:
        return False
    return omit is None or member not in omit or omit[member] is not None


def linked(member: str, pick: Projection | None, omit: Projection | None
           ) -> tuple[Projection | None, Projection | None]:
    """The projection of the Linked Entities reached through the Relationship ``member``."""
    return (pick.get(member) if pick else None), (omit.get(member) if omit else None)
