"""Validation of NGSI-LD names (GS CIM 009 V1.8/V1.9): attribute and type names, scopes, language maps.

Plain functions on the hot write path, as in ``broker.model.values`` (whose helpers and error style they
share): precompiled regexes, a fast path for the common case, precise diagnostics built only on failure.

Names -- ``check_attribute_name``, ``check_type_name``
    Clause 4.6.2 ABNF: ``name = unicodeLetter *(unicodeLetter / unicodeNumber / "_")``, optionally
    ``prefix ":" name`` (a compact IRI); unicodeLetter = \\p{L}, unicodeNumber = \\p{N}. Absolute IRIs are
    accepted too (JSON-LD lets a payload use a full IRI as a key or type, e.g. ``https://x/context#speed``;
    the broker itself serves unmatched names that way, 5.5.7). Attribute names also may not be one of the
    Core @context's non-reified member terms (4.5.1, test 451_01): ``RESERVED_ATTRIBUTE_NAMES``.

Scopes -- ``check_scope``
    Clause 4.18 ABNF: ``Scope = ["/"] ScopeLevel *("/" ScopeLevel)`` / ``"urn:ngsi-ld:null"``,
    ``ScopeLevel = unicodeLetter *ScopeLevelChar``, ``ScopeLevelChar = unicodeLetter / unicodeNumber / "_"``;
    the Null "shall be only used and only appear in case of deleted scopes" (554_01_01: refused on create).

LanguageMaps -- ``check_language_map``
    Clauses 4.6.5 / 5.2.32: an object whose keys are RFC 5646 language tags (well-formedness, not registry
    validity) or ``@none``, values a string or an array of strings; ``{"@none": "urn:ngsi-ld:null"}`` only
    as a deletion marker.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from broker.errors import bad_request

from .values import _URI_RE, NGSI_LD_NULL, URI_MAX_LENGTH, _char, _json_type, _short

_str = str
_list = list
_dict = dict

# ============================================================================================ names

def _is_unicode_name(s: str) -> bool:
    """4.6.2 ``unicodeLetter *(unicodeLetter / unicodeNumber / "_")`` over all of Unicode."""
    if not s:
        return False
    cat = unicodedata.category
    if cat(s[0])[0] != "L":
        return False
    for c in s:
        if c != "_" and cat(c)[0] not in "LN":
            return False
    return True


def _name_problem(name: str, what: str) -> str:
    """Why ``name`` (which failed every accepted form) is not a valid name."""
    parts = name.split(":")
    if len(parts) > 2:
        return f"{what} {_short(name)} is neither a name nor an absolute IRI"
    for i, part in enumerate(parts):
        if not part:
            return f"{what} {_short(name)} has an empty name part"
        if unicodedata.category(part[0])[0] != "L":
            return (f"{what} {_short(name)} must start with a letter"
                    + (" after the prefix" if i else "") + " (GS CIM 009 4.6.2)")
        for c in part:
            if c != "_" and unicodedata.category(c)[0] not in "LN":
                return (f"{what} {_short(name)} contains character {_char(c)}: only letters, digits and '_' "
                        "are allowed (GS CIM 009 4.6.2)")
    return f"{what} {_short(name)} is not valid (GS CIM 009 4.6.2)"  # pragma: no cover


_ASCII_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*(?::[A-Za-z][A-Za-z0-9_]*)?")

#: Core @context terms of non-reified members of Entities and Attributes (4.5.1: "shall not be used as
#: Attribute names"). Entity-level members (id, type, scope, @context) are the caller's to separate first.
RESERVED_ATTRIBUTE_NAMES: frozenset[str] = frozenset((
    "createdAt", "modifiedAt", "deletedAt", "observedAt", "datasetId", "instanceId", "unitCode",
    "value", "object", "objectList", "objectType", "languageMap", "vocab", "json", "valueList", "valueType",
    "previousValue", "previousObject", "previousObjectList", "previousLanguageMap", "previousJson",
    "previousVocab", "previousValueList",
))


def _check_name(name: Any, where: str, what: str) -> None:
    if not isinstance(name, str):
        raise bad_request(f"{where}: {what} must be a string, got {_json_type(name)}")
    if not name:
        raise bad_request(f"{where}: {what} must not be empty")
    if ":" in name:
        if name[-1] != ":" and _URI_RE.fullmatch(name) is not None and len(name) <= URI_MAX_LENGTH:
            return  # an absolute IRI (or a compact one: prefix:name is IRI-shaped too)
        prefix, _, rest = name.partition(":")
        if _is_unicode_name(prefix) and _is_unicode_name(rest):
            return
    elif _is_unicode_name(name):
        return
    raise bad_request(f"{where}: {_name_problem(name, what)}")


def check_attribute_name(name: str, where: str) -> None:
    """4.6.2 name (or ``prefix:name``, or an absolute IRI), and not a reserved core term (4.5.1)."""
    if type(name) is _str and _ASCII_NAME_RE.fullmatch(name) is not None:
        if name in RESERVED_ATTRIBUTE_NAMES:
            raise bad_request(f"{where}: {name!r} is a core NGSI-LD member and cannot be used as an attribute "
                              "name (GS CIM 009 4.5.1)")
        return
    _check_name(name, where, "attribute name")
    if name in RESERVED_ATTRIBUTE_NAMES:  # pragma: no cover - reserved names are ASCII
        raise bad_request(f"{where}: {name!r} is a core NGSI-LD member and cannot be used as an attribute name")


def check_type_name(name: str, where: str) -> None:
    """4.6.2 name (or ``prefix:name``, or an absolute IRI) for an Entity Type."""
    if type(name) is _str and _ASCII_NAME_RE.fullmatch(name) is not None:
        return
    _check_name(name, where, "type name")


# ============================================================================================ scopes

_ASCII_SCOPE_RE = re.compile(r"/?[A-Za-z][A-Za-z0-9_]*(?:/[A-Za-z][A-Za-z0-9_]*)*")


def _check_one_scope(s: Any, where: str) -> str:
    if type(s) is _str and _ASCII_SCOPE_RE.fullmatch(s) is not None:
        return s
    if not isinstance(s, str):
        raise bad_request(f"{where}: a scope must be a string, got {_json_type(s)}")
    if s == NGSI_LD_NULL:
        raise bad_request(f"{where}: the NGSI-LD Null 'urn:ngsi-ld:null' is only allowed to delete scopes")
    if not s:
        raise bad_request(f"{where}: a scope must not be empty")
    levels = (s[1:] if s[0] == "/" else s).split("/")
    for level in levels:
        if not level:
            raise bad_request(f"{where}: scope {_short(s)} has an empty level (GS CIM 009 4.18)")
        if not _is_unicode_name(level):
            if unicodedata.category(level[0])[0] != "L":
                raise bad_request(f"{where}: scope {_short(s)}: level {_short(level)} must start with a letter "
                                  "(GS CIM 009 4.18)")
            bad = next(c for c in level if c != "_" and unicodedata.category(c)[0] not in "LN")
            raise bad_request(f"{where}: scope {_short(s)} contains character {_char(bad)}: a scope level holds "
                              "only letters, digits and '_' (GS CIM 009 4.18)")
    return s


def check_scope(value: Any, where: str, *, allow_null: bool = False) -> list[str]:
    """The entity ``scope`` member (a string or an array of strings, clause 4.18) in list form.

    ``allow_null`` (partial update / merge) admits the whole value ``"urn:ngsi-ld:null"`` -- "delete the
    scopes" -- returned as ``["urn:ngsi-ld:null"]``. An empty array is returned as ``[]``.
    """
    if type(value) is _str:
        if value == NGSI_LD_NULL and allow_null:
            return [NGSI_LD_NULL]
        return [_check_one_scope(value, where)]
    if isinstance(value, list):
        for s in value:
            _check_one_scope(s, where)
        return value if type(value) is _list else list(value)
    raise bad_request(f"{where}: scope must be a string or an array of strings, got {_json_type(value)}")


# ============================================================================================ language maps

_GRANDFATHERED = (
    "en-GB-oed|i-ami|i-bnn|i-default|i-enochian|i-hak|i-klingon|i-lux|i-mingo|i-navajo|i-pwn|i-tao|i-tay|"
    "i-tsu|sgn-BE-FR|sgn-BE-NL|sgn-CH-DE|art-lojban|cel-gaulish|no-bok|no-nyn|zh-guoyu|zh-hakka|zh-min|"
    "zh-min-nan|zh-xiang")
_LANGTAG_RE = re.compile(  # RFC 5646 2.1 well-formed Language-Tag
    r"(?:[a-z]{2,3}(?:-[a-z]{3}){0,3}|[a-z]{4}|[a-z]{5,8})"  # language [extlang]
    r"(?:-[a-z]{4})?"  # script
    r"(?:-(?:[a-z]{2}|[0-9]{3}))?"  # region
    r"(?:-(?:[a-z0-9]{5,8}|[0-9][a-z0-9]{3}))*"  # variants
    r"(?:-[0-9a-wyz](?:-[a-z0-9]{2,8})+)*"  # extensions
    r"(?:-x(?:-[a-z0-9]{1,8})+)?"  # private use
    rf"|x(?:-[a-z0-9]{{1,8}})+|{_GRANDFATHERED}",
    re.IGNORECASE | re.ASCII)


def check_language_map(value: Any, where: str, *, allow_null: bool = False) -> None:
    """LanguageProperty ``languageMap`` (4.6.5, 5.2.32): ``{tag | "@none": string | [string, ...]}``.

    Tags are RFC 5646 well-formed language tags (case-insensitive). The map must not be empty. ``allow_null``
    (partial update / merge) admits exactly ``{"@none": "urn:ngsi-ld:null"}``; the Null anywhere else is
    refused (5.2.1).
    """
    if type(value) is not _dict:
        if not isinstance(value, dict):
            raise bad_request(f"{where}: languageMap must be a JSON object, got {_json_type(value)}")
    if not value:
        raise bad_request(f"{where}: languageMap must contain at least one language")
    for tag, text in value.items():
        if tag != "@none" and (type(tag) is not _str or _LANGTAG_RE.fullmatch(tag) is None):
            if tag == "":
                raise bad_request(f"{where}: languageMap has an empty language tag")
            raise bad_request(f"{where}: languageMap key {_short(tag)} is not a language tag (RFC 5646) or '@none'")
        if type(text) is _str:
            if text == NGSI_LD_NULL:
                if allow_null and tag == "@none" and len(value) == 1:
                    return
                raise bad_request(f"{where}: languageMap[{tag!r}]: the NGSI-LD Null is only allowed as "
                                  "{\"@none\": \"urn:ngsi-ld:null\"} in a partial update or merge")
            continue
        if isinstance(text, list):
            for i, item in enumerate(text):
                if type(item) is not _str:
                    raise bad_request(f"{where}: languageMap[{tag!r}][{i}] must be a string, got {_json_type(item)}")
                if item == NGSI_LD_NULL:
                    raise bad_request(f"{where}: languageMap[{tag!r}][{i}]: the NGSI-LD Null is not allowed here")
            continue
        raise bad_request(f"{where}: languageMap[{tag!r}] must be a string or an array of strings, "
                          f"got {_json_type(text)}")
