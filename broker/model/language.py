"""The language filter of GS CIM 009 clause 4.15: picking one language of a LanguageProperty.

The ``lang`` parameter is an ``Accept-Language``-style list (IETF RFC 9110 12.5.4): language ranges with
optional weights, e.g. ``fr-CH,fr;q=0.9,en;q=0.8,*;q=0.5``. Ranges are tried by descending weight (list order
breaks ties; ``q=0`` excludes a range); each range is matched against the map's tags case-insensitively
(RFC 5646 2.1.1) the IETF RFC 4647 way: an exact tag, then a longer tag it is a prefix of (basic filtering,
3.3.1: ``en`` matches ``en-US``), then the range truncated from the right (lookup, 3.4: ``nl-BE`` falls back to
``nl``). ``*`` matches any tag. When nothing matches, the broker "shall default to any supported language"
(4.15): the ``@none`` entry if there is one, else the first tag of the map.

The chosen tag is reported in the ``lang`` member of the Property the LanguageProperty turns into (4.15,
4.5.18); a value taken from ``@none`` carries no ``lang``.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from ..errors import bad_request

_RANGE = re.compile(r"\*|[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*")
_WEIGHT = re.compile(r"q=(0(?:\.\d{0,3})?|1(?:\.0{0,3})?)", re.IGNORECASE)

Ranges = tuple[str, ...]  # lower-cased language ranges, best first


@lru_cache(maxsize=256)
def parse_lang(text: str) -> Ranges:
    """The ranges of a ``lang`` parameter, best first; BadRequestData when it is not a valid list."""
    weighted: list[tuple[float, int, str]] = []
    for position, item in enumerate(text.split(",")):
        parts = [p.strip() for p in item.split(";")]
        tag = parts[0]
        if not _RANGE.fullmatch(tag):
            raise bad_request(f"lang: {tag!r} is not a language range (GS CIM 009 4.15, IETF RFC 4647)")
        weight = 1.0
        for param in parts[1:]:
            found = _WEIGHT.fullmatch(param)
            if found is None:
                raise bad_request(f"lang: invalid parameter {param!r} (only a weight q=0..1 is allowed)")
            weight = float(found.group(1))
        if weight > 0:
            weighted.append((-weight, position, tag.lower()))
    weighted.sort()
    return tuple(tag for _, _, tag in weighted)


def choose_tag(lmap: dict[str, Any], ranges: Ranges) -> str | None:
    """The tag of ``lmap`` the ranges select (see the module docstring); None for an empty map."""
    if not lmap:
        return None
    tags = {tag.lower(): tag for tag in lmap if tag != "@none"}
    for wanted in ranges:
        if wanted == "*":
            if tags:
                return next(iter(tags.values()))
            continue
        found = _match(wanted, tags)
        if found is not None:
            return found
    if "@none" in lmap:
        return "@none"
    return next(iter(lmap))


def _match(wanted: str, tags: dict[str, str]) -> str | None:
    if wanted in tags:
        return tags[wanted]
    prefix = wanted + "-"
    for low, tag in tags.items():
        if low.startswith(prefix):
            return tag
    while "-" in wanted:
        wanted = wanted.rsplit("-", 1)[0]
        if len(wanted) == 1:  # a singleton ("x-...") is no range of its own (RFC 4647 3.4)
            break
        if wanted in tags:
            return tags[wanted]
    return None


def pick_language(lmap: dict[str, Any], lang: str) -> Any:
    """The value of the language ``lang`` (a ``lang`` parameter) selects in ``lmap``."""
    tag = choose_tag(lmap, parse_lang(lang))
    return None if tag is None else lmap[tag]
