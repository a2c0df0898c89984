"""Validation and normalisation of NGSI-LD scalar members (GS CIM 009 V1.8/V1.9, TS 104 175).

Plain functions for the hot write path: precompiled regexes, a fast path that returns as soon as the common
case is proven valid, and precise diagnostics built only on failure. Every failure raises ``NgsiError``
``BadRequestData`` whose detail reads ``"<where>: <what is wrong>"`` (``where`` names the member, e.g.
``"entity id"`` or ``"attribute 'speed' observedAt"``).

Identifiers -- ``check_uri``, ``check_dataset_id``
    Clause 4.5.1 / 5.2.1: ids, Relationship objects, datasetIds are URIs, which "also includes ... IRIs as
    defined in IETF RFC 3987". Accepted: ``scheme ":" rest`` with an RFC 3986 scheme
    (``ALPHA *(ALPHA / DIGIT / "+" / "-" / ".")``) and a rest made of RFC 3986 unreserved / reserved
    characters, well-formed ``%HH`` escapes and RFC 3987 ``ucschar`` (private-use characters only in the
    query, as ``iprivate``). Rejected on top of RFC 3987 (tests 451_02_*): whitespace of every kind, control
    and bidi-formatting characters (RFC 3987 4.1 forbids the latter), the Unicode default-ignorable code
    points (zero-width space/joiners, BOM, variation selectors, Hangul fillers, ...) and the Braille blank --
    characters that render invisibly and would make two different ids look the same. Not checked: the
    authority/host syntax, RFC 8141 URN namespace rules. Length limit ``URI_MAX_LENGTH`` = 2048 characters
    (the spec sets none; the common de-facto limit of HTTP stacks for a URL that carries the id).
    ``urn:ngsi-ld:null`` (the NGSI-LD Null) is refused unless the caller says it is a deletion (5.2.1).

DateTimes -- ``parse_datetime``, ``now_iso``, ``to_datetime``, ``from_datetime``
    Clause 4.6.3: ISO 8601 ``YYYY-MM-DDThh:mm:ss[.fraction]Z``; "the string shall not contain expressions of
    the difference between local time and UTC" -- a ``+02:00`` offset is rejected, not converted (test
    463_01_03 and temporal 5744_01 expect 400), and so is a local time without ``Z``. The fraction may use
    ``.`` or ``,`` (ISO 8601 allows both) and has 1..9 digits (nanoseconds at most); ``T`` and ``Z`` are
    upper case ("the trailing timestamp component shall always be equal to the character Z", test 408_01).
    Canonical form returned and stored: the input itself, with a decimal comma turned into a dot -- the
    given precision is KEPT, not padded to milli/microseconds, because
    clients and the ETSI suite compare the served ``observedAt`` with what they sent, sometimes as strings
    (452_02 expects ``2026-01-01T00:00:00Z`` back verbatim). Two stored strings of different precision do
    not sort as text: order and compare through ``to_datetime`` (the database gets timestamptz).
    Leap seconds (``:60``), ``24:00:00`` and year 0000 are rejected (not representable in Python/PostgreSQL).
    Broker timestamps (createdAt, modifiedAt) come from ``now_iso``: always microseconds, always ``Z``.

Others -- ``check_unit_code``, ``check_json_value``, ``check_vocab``, ``check_not_null``,
``check_prohibited_members`` (see each docstring).
"""

from __future__ import annotations

import re
import time
import unicodedata
from datetime import datetime, timezone
from typing import Any, Callable, Mapping

from broker.errors import NgsiError, bad_request

__all__ = [
    "NGSI_LD_NULL", "URI_MAX_LENGTH", "PROHIBITED_MEMBERS",
    "check_uri", "check_dataset_id",
    "parse_datetime", "now_iso", "to_datetime", "from_datetime",
    "check_unit_code", "check_json_value", "check_vocab", "check_not_null",
    "check_prohibited_members",
]

NGSI_LD_NULL = "urn:ngsi-ld:null"
URI_MAX_LENGTH = 2048

_str = str
_list = list
_dict = dict


def _json_type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, (int, float)):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, (list, tuple)):
        return "an array"
    if isinstance(v, dict):
        return "an object"
    return type(v).__name__


def _short(v: Any, limit: int = 80) -> str:
    r = repr(v)
    return r if len(r) <= limit else r[: limit - 3] + "..."


def _char(c: str) -> str:
    name = unicodedata.name(c, "")
    return f"U+{ord(c):04X}" + (f" {name}" if name else "")


# ============================================================================================ URIs / IRIs

def _class(ranges: list[tuple[int, int]], minus: list[tuple[int, int]]) -> str:
    """Regex class body for ``ranges`` minus ``minus`` (code point ranges, inclusive)."""
    out: list[tuple[int, int]] = []
    for lo, hi in ranges:
        pieces = [(lo, hi)]
        for mlo, mhi in minus:
            nxt = []
            for a, b in pieces:
                if mhi < a or mlo > b:
                    nxt.append((a, b))
                    continue
                if a < mlo:
                    nxt.append((a, mlo - 1))
                if mhi < b:
                    nxt.append((mhi + 1, b))
            pieces = nxt
        out.extend(pieces)
    return "".join(f"\\U{a:08x}" if a == b else f"\\U{a:08x}-\\U{b:08x}" for a, b in out)


# RFC 3987 ucschar and iprivate
_UCSCHAR = [(0xA0, 0xD7FF), (0xF900, 0xFDCF), (0xFDF0, 0xFFEF)] + [
    (plane << 16, (plane << 16) + 0xFFFD) for plane in range(1, 14)] + [(0xE1000, 0xEFFFD)]
_IPRIVATE = [(0xE000, 0xF8FF), (0xF0000, 0xFFFFD), (0x100000, 0x10FFFD)]
# invisible, blank or direction-changing characters refused although RFC 3987 lets most of them through
_INVISIBLE = [
    (0x00A0, 0x00A0), (0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160),
    (0x1680, 0x1680), (0x17B4, 0x17B5), (0x180B, 0x180F), (0x2000, 0x200F), (0x2028, 0x202F),
    (0x205F, 0x206F), (0x2800, 0x2800), (0x3000, 0x3000), (0x3164, 0x3164), (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A),
]
_UCS = _class(_UCSCHAR, _INVISIBLE)
_PRIV = _class(_IPRIVATE, _INVISIBLE)
_ASCII_PATH = r"A-Za-z0-9\-._~!$&'()*+,;=:@/\[\]"  # RFC 3986 unreserved + reserved, minus ? # (and %)
_PCT = r"%[0-9A-Fa-f]{2}"
_SCHEME = r"[A-Za-z][A-Za-z0-9+.\-]*:"
_URI_RE = re.compile(
    rf"{_SCHEME}(?:[{_ASCII_PATH}{_UCS}]++|{_PCT})*+"
    rf"(?:\?(?:[{_ASCII_PATH}?{_UCS}{_PRIV}]++|{_PCT})*+)?"
    rf"(?:#(?:[{_ASCII_PATH}?{_UCS}]++|{_PCT})*+)?")
_SCHEME_RE = re.compile(_SCHEME)
_BAD_URI_CHAR_RE = re.compile(rf"[^{_ASCII_PATH}?#%{_UCS}{_PRIV}]")
_BAD_PCT_RE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def _uri_problem(value: str) -> str:
    """Why ``value`` (a string that failed ``_URI_RE``) is not a URI."""
    if not value:
        return "empty string is not a URI"
    if len(value) > URI_MAX_LENGTH:
        return f"URI is {len(value)} characters long, the limit is {URI_MAX_LENGTH}"
    if _SCHEME_RE.match(value) is None:
        return (f"{_short(value)} is not an absolute URI: it has no scheme "
                "(expected e.g. 'urn:ngsi-ld:Vehicle:A123' or 'https://example.org/x')")
    m = _BAD_URI_CHAR_RE.search(value)
    if m is not None:
        return (f"{_short(value)} is not a valid URI: character {_char(m.group())} at position {m.start()} "
                "is not allowed")
    m = _BAD_PCT_RE.search(value)
    if m is not None:
        return f"{_short(value)} is not a valid URI: '%' at position {m.start()} is not followed by two hex digits"
    if value.count("#") > 1:
        return f"{_short(value)} is not a valid URI: more than one '#'"
    return f"{_short(value)} is not a valid URI: private-use characters are only allowed in the query part"


# the common case, checked first (a strict subset of _URI_RE: plain ASCII, no '%' escapes, no fragment)
_PLAIN_URI_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[A-Za-z0-9\-._~:/?\[\]@!$&'()*+,;=]*")


def check_uri(value: Any, where: str, *, allow_null: bool = False) -> str:
    """Return ``value`` if it is an absolute URI/IRI acceptable as an id, Relationship object or datasetId.

    ``allow_null`` admits the NGSI-LD Null ``urn:ngsi-ld:null`` (partial update / merge deletions only).
    """
    if is_plain_uri(value):
        return value
    if type(value) is _str and _URI_RE.fullmatch(value) is not None and len(value) <= URI_MAX_LENGTH:
        if value == NGSI_LD_NULL and not allow_null:
            raise bad_request(f"{where}: the NGSI-LD Null 'urn:ngsi-ld:null' is not allowed here")
        return value
    if not isinstance(value, str):
        raise bad_request(f"{where}: must be a URI string, got {_json_type(value)}")
    raise bad_request(f"{where}: {_uri_problem(value)}")


def is_plain_uri(value: Any) -> bool:
    """Whether ``value`` is, cheaply provable, a URI ``check_uri`` accepts (plain ASCII, no escapes, not the
    NGSI-LD Null); False means "not proven": ``check_uri`` then decides, and explains a refusal."""
    return (type(value) is _str and _PLAIN_URI_RE.fullmatch(value) is not None and len(value) <= URI_MAX_LENGTH
            and value != NGSI_LD_NULL)


def check_text(value: Any, where: str) -> str:
    """A string with something besides white space in it (a name, a description)."""
    if not isinstance(value, str) or not value.strip():
        raise bad_request(f"{where} must be a non-empty string")
    return value


def text_member(name: str) -> Callable[[Any, Any], str]:
    """``check_text`` of the member ``name``, as a (value, @context) member check of the subscription and
    registration models."""
    def check(raw: Any, ctx: Any) -> str:
        return check_text(raw, name)
    return check


def check_regex(value: Any, where: str) -> str:
    """A non-empty regular expression that compiles (an idPattern)."""
    if not isinstance(value, str) or not value:
        raise bad_request(f"{where} must be a non-empty regular expression")
    try:
        re.compile(value)
    except re.error as exc:
        raise bad_request(f"{where} is not a valid regular expression: {exc}") from None
    return value


def check_key_values(value: Any, where: str) -> list[dict[str, str]]:
    """5.2.22 KeyValuePair array: ``[{"key": string, "value": string}, ...]``, not empty."""
    if not isinstance(value, list) or not value:
        raise bad_request(f"{where} must be a non-empty array of key-value pairs")
    for pair in value:
        if not isinstance(pair, dict) or set(pair) != {"key", "value"} or not isinstance(pair["key"], str) \
                or not isinstance(pair["value"], str) or not pair["key"]:
            raise bad_request(f"{where}: every entry must be {{\"key\": string, \"value\": string}}")
    return value


def check_dataset_id(value: Any, where: str) -> str | None:
    """``datasetId``: a URI, or ``"@none"`` for the default instance (4.5.5.1) -- returned as None."""
    if value == "@none" and type(value) is _str:
        return None
    return check_uri(value, where)


# ============================================================================================ DateTimes

_DT_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?Z")
_DT_LOOSE_RE = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})(?P<t>[Tt ])(?P<time>[0-9]{2}:[0-9]{2}(?::[0-9]{2})?)"
    r"(?:[.,](?P<frac>[0-9]+))?(?P<zone>.*)", re.S)
_OFFSET_RE = re.compile(r"[+\-][0-9]{2}(?::?[0-9]{2})?")
_fromiso = datetime.fromisoformat
_UTC = timezone.utc
_DT_FORMAT = "YYYY-MM-DDThh:mm:ss[.fraction]Z"


_VALID_DATETIMES: set[str] = set()  # recently validated canonical DateTimes (a batch repeats its timestamps)


def parse_datetime(value: Any, where: str) -> str:
    """Validate an NGSI-LD DateTime (clause 4.6.3, UTC only); return its canonical string (see module doc)."""
    if type(value) is _str and value in _VALID_DATETIMES:
        return value
    if type(value) is _str and _DT_RE.fullmatch(value) is not None:
        try:
            _fromiso(value)
        except ValueError as exc:
            raise bad_request(f"{where}: {value!r} is not a valid DateTime: {exc}") from None
        if len(_VALID_DATETIMES) > 4096:
            _VALID_DATETIMES.clear()
        _VALID_DATETIMES.add(value)
        return value
    return _parse_datetime_slow(value, where)


def is_canonical_datetime(value: Any) -> bool:
    """Whether ``value`` is a valid DateTime already in its canonical form (``parse_datetime`` returns it as
    it is); False means "not proven": ``parse_datetime`` then decides, and explains a refusal."""
    try:
        return parse_datetime(value, "") == value
    except NgsiError:
        return False


def _parse_datetime_slow(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise bad_request(f"{where}: must be a DateTime string ({_DT_FORMAT}), got {_json_type(value)}")
    if value == NGSI_LD_NULL:
        raise bad_request(f"{where}: the NGSI-LD Null 'urn:ngsi-ld:null' is not allowed here")
    m = _DT_LOOSE_RE.fullmatch(value)
    if m is None:
        raise bad_request(f"{where}: {_short(value)} is not an ISO 8601 DateTime ({_DT_FORMAT})")
    if m["t"] != "T":
        raise bad_request(f"{where}: {_short(value)} is not an NGSI-LD DateTime: "
                          f"date and time must be separated by an upper-case 'T' ({_DT_FORMAT})")
    if m["time"].count(":") != 2:
        raise bad_request(f"{where}: {_short(value)} is not a valid DateTime: seconds are required ({_DT_FORMAT})")
    zone = m["zone"]
    if zone != "Z":
        if zone == "z":
            raise bad_request(f"{where}: {_short(value)} is not an NGSI-LD DateTime: the UTC designator must be "
                              f"an upper-case 'Z' ({_DT_FORMAT}, GS CIM 009 4.6.3)")
        if _OFFSET_RE.fullmatch(zone):
            raise bad_request(f"{where}: {_short(value)} carries a UTC offset; NGSI-LD DateTimes shall be UTC "
                              f"with the 'Z' designator ({_DT_FORMAT}, GS CIM 009 4.6.3)")
        if not zone:
            raise bad_request(f"{where}: {_short(value)} has no 'Z' (UTC) designator; local times are not "
                              f"allowed ({_DT_FORMAT}, GS CIM 009 4.6.3)")
        raise bad_request(f"{where}: {_short(value)} is not an ISO 8601 DateTime ({_DT_FORMAT})")
    frac = m["frac"]
    if frac is not None and len(frac) > 9:
        raise bad_request(f"{where}: {_short(value)} has more than 9 fractional second digits")
    canonical = f"{m['date']}T{m['time']}" + (f".{frac}Z" if frac is not None else "Z")
    try:
        _fromiso(canonical)
    except ValueError as exc:
        raise bad_request(f"{where}: {value!r} is not a valid DateTime: {exc}") from None
    return canonical


_now_cache: tuple[int, str] = (-1, "")


def now_iso() -> str:
    """The current UTC time as ``YYYY-MM-DDThh:mm:ss.ffffffZ`` (always microseconds, always ``Z``)."""
    global _now_cache
    sec, ns = divmod(time.time_ns(), 1_000_000_000)
    cached = _now_cache
    if cached[0] != sec:
        cached = (sec, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)))
        _now_cache = cached
    return f"{cached[1]}.{ns // 1000:06d}Z"


def to_datetime(s: str) -> datetime:
    """An aware UTC ``datetime`` for a DateTime string from ``parse_datetime``/``now_iso`` (for SQL parameters).

    Fractions beyond microseconds are truncated. A string without a zone is taken as UTC.
    """
    dt = _fromiso(s)
    if dt.tzinfo is None:
        return dt.replace(tzinfo=_UTC)
    return dt


def from_datetime(dt: datetime) -> str:
    """Render a ``datetime`` (e.g. a timestamptz read back from the database) like ``now_iso`` does.

    A naive ``datetime`` is taken as UTC.
    """
    if dt.tzinfo is not None:
        dt = dt.astimezone(_UTC)
    return (f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}"
            f".{dt.microsecond:06d}Z")


# ============================================================================================ small members

def check_unit_code(value: Any, where: str) -> str:
    """``unitCode``: a non-empty string (UN/CEFACT Common Code by convention; the spec only types it String)."""
    if type(value) is _str and value and value != NGSI_LD_NULL:
        return value
    if not isinstance(value, str):
        raise bad_request(f"{where}: unitCode must be a string, got {_json_type(value)}")
    if not value:
        raise bad_request(f"{where}: unitCode must not be empty")
    raise bad_request(f"{where}: the NGSI-LD Null 'urn:ngsi-ld:null' is not allowed here")


def check_json_value(value: Any, where: str) -> None:
    """JsonProperty ``json`` (4.5.24.2): a raw JSON object, or an array of JSON objects (4524_01_04)."""
    if type(value) is _dict:
        return
    if isinstance(value, list):
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                raise bad_request(f"{where}: json[{i}] must be a JSON object, got {_json_type(item)}")
        return
    if isinstance(value, dict):
        return
    raise bad_request(f"{where}: json must be a JSON object or an array of objects, got {_json_type(value)}")


def check_vocab(value: Any, where: str) -> None:
    """VocabProperty ``vocab`` (4.5.20): a non-empty string or a non-empty array of non-empty strings."""
    if type(value) is _str:
        if value and value != NGSI_LD_NULL:
            return
    elif isinstance(value, list):
        if not value:
            raise bad_request(f"{where}: vocab must not be an empty array")
        for i, item in enumerate(value):
            if type(item) is not _str or not item or item == NGSI_LD_NULL:
                raise bad_request(f"{where}: vocab[{i}] must be a non-empty string, got "
                                  f"{_json_type(item) if type(item) is not _str else _short(item)}")
        return
    else:
        raise bad_request(f"{where}: vocab must be a string or an array of strings, got {_json_type(value)}")
    if not value:
        raise bad_request(f"{where}: vocab must not be empty")
    raise bad_request(f"{where}: the NGSI-LD Null 'urn:ngsi-ld:null' is not allowed here")


def check_not_null(value: Any, where: str) -> None:
    """Refuse the NGSI-LD Null ``"urn:ngsi-ld:null"`` anywhere in a (Property) value, at any depth.

    Clause 5.2.1 / 5.5.4 (tests 521_01, 554_01_02/03): outside a partial update or merge the Null is
    BadRequestData, also as the value of a key inside a JSON object value. The message gives the path.
    """
    t = type(value)
    if t is _str:
        if value == NGSI_LD_NULL:
            raise bad_request(f"{where}: the NGSI-LD Null 'urn:ngsi-ld:null' is not allowed here")
        return
    if t is _dict or t is _list:
        path = _find_null(value)
        if path is not None:
            raise bad_request(f"{where}: the NGSI-LD Null 'urn:ngsi-ld:null' is not allowed here (at {path})")


def _find_null(v: Any, depth: int = 0) -> str | None:
    if depth > 256:
        return None
    if isinstance(v, dict):
        for k, x in v.items():
            if type(x) is _str:
                if x == NGSI_LD_NULL:
                    return f"[{k!r}]"
            elif isinstance(x, (dict, list)):
                sub = _find_null(x, depth + 1)
                if sub is not None:
                    return f"[{k!r}]{sub}"
    elif isinstance(v, list):
        for i, x in enumerate(v):
            if type(x) is _str:
                if x == NGSI_LD_NULL:
                    return f"[{i}]"
            elif isinstance(x, (dict, list)):
                sub = _find_null(x, depth + 1)
                if sub is not None:
                    return f"[{i}]{sub}"
    return None


_PREVIOUS = ("previousValue", "previousObject", "previousObjectList", "previousLanguageMap", "previousJson",
             "previousVocab", "previousValueList")
_SEALED = ("entityIdSealed", "entityTypeSealed")
_VALUE_MEMBERS = ("value", "object", "objectList", "languageMap", "json", "vocab", "valueList")


def _prohibited(own: str, *extra: str) -> frozenset[str]:
    return frozenset(m for m in _VALUE_MEMBERS if m != own) | frozenset(_PREVIOUS) | frozenset(_SEALED) | set(extra)


#: members that "shall never be present" in an input attribute of each type (4.5.x.2; tests 452_01, 453_01,
#: 4522_01, 4524_01): the value members of the other types, the output-only ``previous*`` members, the
#: ngsildproof-only sealed members; unitCode where the type is unitless; objectType outside Relationships.
PROHIBITED_MEMBERS: dict[str, frozenset[str]] = {
    "Property": _prohibited("value", "objectType", "entity", "entityList"),
    "GeoProperty": _prohibited("value", "objectType", "entity", "entityList"),
    "Relationship": _prohibited("object", "unitCode"),
    "ListRelationship": _prohibited("objectList", "unitCode"),
    "LanguageProperty": _prohibited("languageMap", "objectType"),
    "VocabProperty": _prohibited("vocab", "objectType"),
    "JsonProperty": _prohibited("json", "objectType", "unitCode"),
    "ListProperty": _prohibited("valueList", "objectType"),
}
_PROOF_OK = PROHIBITED_MEMBERS["Property"] - frozenset(_SEALED)


def check_prohibited_members(attr_type: str, attr: Mapping[str, Any], where: str, *,
                             attr_name: str | None = None) -> None:
    """Refuse members an attribute of ``attr_type`` shall never carry on input (see ``PROHIBITED_MEMBERS``).

    ``entityIdSealed`` / ``entityTypeSealed`` are allowed on the Property named ``ngsildproof`` (4.5.2.2).
    Unknown ``attr_type``: nothing is checked (the caller rejects the type itself).
    """
    banned = PROHIBITED_MEMBERS.get(attr_type)
    if banned is None:
        return
    if attr_name == "ngsildproof" and attr_type == "Property":
        banned = _PROOF_OK
    for k in attr:
        if k in banned:
            why = (" (a unitless attribute type)" if k == "unitCode"
                   else " (output only)" if k.startswith("previous")
                   else " (only on the ngsildproof Property)" if k in _SEALED
                   else "")
            raise bad_request(f"{where}: a {attr_type} shall not have the member {k!r}{why}")
