"""Unit and property tests of broker.model.values (ids, DateTimes, scopes, names, languageMaps, members)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from broker.errors import NgsiError
from broker.model import names as n
from broker.model import values as v


def rejected(fn, value, where: str, *fragments: str, **kw) -> str:
    """Assert ``fn(value, where)`` raises BadRequestData whose detail starts with ``where`` and has fragments."""
    with pytest.raises(NgsiError) as info:
        fn(value, where, **kw)
    err = info.value
    assert err.error_type == "BadRequestData" and err.status == 400
    assert err.detail.startswith(where + ": "), err.detail
    for f in fragments:
        assert f in err.detail, (f, err.detail)
    return err.detail


# ============================================================================================ check_uri

@pytest.mark.parametrize("uri", [
    "urn:ngsi-ld:Vehicle:A123", "http://x/y", "did:example:1", "https://example.org/a/b?x=1&y=2#frag",
    "urn:ngsi-ld:Ciudad:Par\u00eds",  # 451_02_07: IRI characters stay accepted
    "urn:ngsi-ld:Ciudad:%C3%ADs", "mailto:someone@example.org", "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66",
    "tag:example.org,2024:x", "x:", "http://[::1]:8080/p", "urn:ngsi-ld:Vehicle:\u6771\u4eac",
    "http://x/p?q=\ue000",  # private-use characters: RFC 3987 iprivate, query only
])
def test_check_uri_accepts(uri):
    assert v.check_uri(uri, "entity id") is uri


@pytest.mark.parametrize("value, fragments", [
    ("Spain-WeatherForecast-46005_2016-12-01T18:00:00_...", ["is not an absolute URI", "no scheme"]),
    ("RandomUuidToBeReplaced", ["no scheme"]),
    ("some-id", ["no scheme"]),
    ("", ["empty string is not a URI"]),
    ("1urn:x", ["no scheme"]),
    ("urn:ngsi-ld:Vehicle:A 1", ["U+0020 SPACE"]),
    ("urn:ngsi-ld:Vehicle:A\t1", ["U+0009"]),
    ("urn:ngsi-ld:Vehicle:A\n", ["U+000A"]),
    ("urn:ngsi-ld:Vehicle:A\x7f", ["U+007F"]),
    ('urn:ngsi-ld:Vehicle:"A"', ["U+0022 QUOTATION MARK"]),
    ("urn:ngsi-ld:Vehicle:a\\b", ["U+005C REVERSE SOLIDUS"]),
    ("urn:ngsi-ld:Vehicle:{a}", ["U+007B"]),
    ("http://x/y%zz", ["'%' at position 10 is not followed by two hex digits"]),
    ("http://x/y#a#b", ["more than one '#'"]),
    ("http://x/\ue000", ["private-use characters are only allowed in the query"]),
    ("urn:" + "a" * 2100, ["2104 characters long, the limit is 2048"]),
    ("urn:ngsi-ld:null", ["NGSI-LD Null"]),  # 554_01_01: not creatable as an id
])
def test_check_uri_rejects(value, fragments):
    rejected(v.check_uri, value, "entity id", *fragments)


# ETSI 451_02: invisible / bidi / blank characters (plus '<') make an id invalid
@pytest.mark.parametrize("cp", [0x202E, 0x200B, 0xFEFF, 0x2028, 0x00A0, 0x003C, 0xFE0F, 0xE0100, 0xFDD0, 0xFFFE,
                                0x115F, 0x3164, 0xFFA0, 0x2800, 0x200D, 0x2066, 0x00AD, 0x3000, 0x180E, 0xD800])
def test_check_uri_rejects_invisible_characters(cp):
    value = "urn:ngsi-ld:Vehicle:A" + chr(cp) + "1"
    rejected(v.check_uri, value, "entity id", f"U+{cp:04X}", "position 21")


@pytest.mark.parametrize("value, kind", [(None, "null"), (5, "a number"), (True, "a boolean"), ([], "an array"),
                                         ({"@id": "urn:x:y"}, "an object")])
def test_check_uri_non_strings(value, kind):
    rejected(v.check_uri, value, "attribute 'isParked' object", "must be a URI string", kind)


def test_check_uri_null_allowed_for_deletions():
    assert v.check_uri("urn:ngsi-ld:null", "attribute 'isParked' object", allow_null=True) == "urn:ngsi-ld:null"


def test_check_dataset_id():  # 4.5.5.1, ETSI 455_01
    assert v.check_dataset_id("@none", "attribute 'speed' datasetId") is None
    assert v.check_dataset_id("urn:ngsi-ld:Dataset:gps", "d") == "urn:ngsi-ld:Dataset:gps"
    rejected(v.check_dataset_id, "gps", "attribute 'speed' datasetId", "no scheme")
    rejected(v.check_dataset_id, "@None", "attribute 'speed' datasetId", "no scheme")


SCHEME = st.from_regex(r"[A-Za-z][A-Za-z0-9+.\-]{0,12}", fullmatch=True)
IRI_CHAR = st.one_of(
    st.sampled_from(list("abcXYZ0189-._~!$&'()*+,;=:@/")),
    st.characters(categories=("Lu", "Ll", "Lo", "Nd"),
                  exclude_characters="\u115f\u1160\u3164\uffa0"),  # Hangul fillers are letters, but invisible
    st.from_regex(r"%[0-9A-Fa-f]{2}", fullmatch=True),
)
IRI_REST = st.lists(IRI_CHAR, max_size=40).map("".join)


@given(SCHEME, IRI_REST, st.none() | IRI_REST, st.none() | IRI_REST)
def test_check_uri_accepts_generated_iris(scheme, path, query, fragment):
    uri = f"{scheme}:{path}" + (f"?{query}" if query is not None else "")
    uri += f"#{fragment}" if fragment is not None else ""
    assume(uri != v.NGSI_LD_NULL)
    assert v.check_uri(uri, "entity id") == uri


@given(st.text(max_size=40).filter(lambda s: ":" not in s))
def test_check_uri_rejects_strings_without_a_colon(s):
    rejected(v.check_uri, s, "entity id")


@given(st.characters(categories=("Nd", "P", "S", "Zs")).filter(lambda c: c != ":"), IRI_REST)
def test_check_uri_rejects_schemes_not_starting_with_a_letter(first, rest):
    rejected(v.check_uri, f"{first}x:{rest}", "entity id")


@given(SCHEME, IRI_REST, st.sampled_from([" ", "\t", "\u200b", "\u202e", "\ufeff", "<", ">", '"', "\u00a0",
                                           "\u2028", "\u3164", "\u2800", "{", "|", "^", "`"]))
def test_check_uri_rejects_any_invisible_or_markup_character(scheme, rest, bad):
    rejected(v.check_uri, f"{scheme}:{rest}{bad}{rest}", "entity id", f"U+{ord(bad):04X}")


# ============================================================================================ DateTimes

@pytest.mark.parametrize("value, expected", [
    ("2020-09-09T16:40:00.000Z", "2020-09-09T16:40:00.000Z"),  # precision kept
    ("2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z"),  # 452_02 compares this string verbatim
    ("2020-09-09T16:40:00.1Z", "2020-09-09T16:40:00.1Z"),
    ("2020-09-09T16:40:00.123456789Z", "2020-09-09T16:40:00.123456789Z"),
    ("2020-09-09T16:40:00,5Z", "2020-09-09T16:40:00.5Z"),  # ISO 8601 decimal comma -> dot
    ("2024-02-29T23:59:59Z", "2024-02-29T23:59:59Z"),
    ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z"),
])
def test_parse_datetime_accepts(value, expected):
    assert v.parse_datetime(value, "attribute 'speed' observedAt") == expected


@pytest.mark.parametrize("value, fragments", [
    ("2026-08-10T12:00:00+02:00", ["carries a UTC offset", "'Z'", "4.6.3"]),  # 463_01_03, 408_01_02
    ("2026-08-10T12:00:00+00:00", ["carries a UTC offset"]),
    ("2026-08-10T12:00:00-0500", ["carries a UTC offset"]),
    ("2026-08-10T12:00:00", ["no 'Z' (UTC) designator"]),
    ("2026-08-10T12:00:00z", ["upper-case 'Z'"]),
    ("2026-08-10t12:00:00Z", ["upper-case 'T'"]),
    ("2026-08-10 12:00:00Z", ["upper-case 'T'"]),
    ("2026-08-10T12:00Z", ["seconds are required"]),
    ("not-a-date", ["is not an ISO 8601 DateTime"]),  # 408_01_01
    ("2026-08-10", ["is not an ISO 8601 DateTime"]),
    ("20260810T120000Z", ["is not an ISO 8601 DateTime"]),
    ("2026-02-30T12:00:00Z", ["day is out of range for month"]),
    ("2025-02-29T12:00:00Z", ["day is out of range for month"]),
    ("2026-13-01T12:00:00Z", ["month must be in 1..12"]),
    ("2026-01-01T24:00:00Z", ["hour must be in 0..23"]),
    ("2016-12-31T23:59:60Z", ["second must be in 0..59"]),
    ("0000-01-01T00:00:00Z", ["year 0 is out of range"]),
    ("2026-01-01T00:00:00.1234567890Z", ["more than 9 fractional second digits"]),
    ("2026-01-01T00:00:00.Z", ["is not an ISO 8601 DateTime"]),
    ("\u0662\u0660\u0662\u0666-01-01T00:00:00Z", ["is not an ISO 8601 DateTime"]),  # non-ASCII digits
    ("urn:ngsi-ld:null", ["NGSI-LD Null"]),
])
def test_parse_datetime_rejects(value, fragments):
    rejected(v.parse_datetime, value, "attribute 'speed' observedAt", *fragments)


@pytest.mark.parametrize("value, kind", [(1600000000, "a number"), (None, "null"),
                                         ({"type": "Property", "value": "2026-08-10T12:00:00Z"}, "an object")])
def test_parse_datetime_non_strings(value, kind):  # 408_01_03: a reified observedAt is invalid
    rejected(v.parse_datetime, value, "attribute 'name' observedAt", "must be a DateTime string", kind)


DATETIMES = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59))


@given(DATETIMES, st.integers(0, 9), st.sampled_from([".", ","]), st.data())
def test_generated_datetimes_round_trip(dt, ndigits, sep, data):
    frac = data.draw(st.from_regex(rf"[0-9]{{{ndigits}}}", fullmatch=True)) if ndigits else ""
    s = f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}"
    text = s + (sep + frac if frac else "") + "Z"
    out = v.parse_datetime(text, "observedAt")
    assert out == text.replace(",", ".")
    micro = int((frac + "000000")[:6]) if frac else 0
    assert v.to_datetime(out) == dt.replace(microsecond=micro, tzinfo=timezone.utc)
    assert v.parse_datetime(out, "observedAt") == out  # idempotent


@given(DATETIMES, st.integers(-14, 14), st.integers(0, 59))
def test_generated_offsets_are_rejected(dt, hours, minutes):
    text = f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}"
    text += f"{'+' if hours >= 0 else '-'}{abs(hours):02d}:{minutes:02d}"
    rejected(v.parse_datetime, text, "observedAt", "UTC offset")


def test_now_iso_format_and_value():
    before = datetime.now(timezone.utc)
    s = v.now_iso()
    after = datetime.now(timezone.utc)
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z", s), s
    assert before - timedelta(milliseconds=5) <= v.to_datetime(s) <= after + timedelta(milliseconds=5)
    assert v.parse_datetime(s, "createdAt") == s
    stamps = [v.now_iso() for _ in range(1000)]
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z", x) for x in stamps)


def test_to_and_from_datetime():
    dt = v.to_datetime("2020-09-09T16:40:00.123Z")
    assert dt == datetime(2020, 9, 9, 16, 40, 0, 123000, tzinfo=timezone.utc)
    assert v.to_datetime("2020-09-09T16:40:00.123456789Z").microsecond == 123456
    assert v.to_datetime("2020-09-09T16:40:00").tzinfo is timezone.utc
    assert v.from_datetime(dt) == "2020-09-09T16:40:00.123000Z"
    cet = timezone(timedelta(hours=2))
    assert v.from_datetime(datetime(2020, 9, 9, 18, 40, tzinfo=cet)) == "2020-09-09T16:40:00.000000Z"
    assert v.from_datetime(datetime(2020, 9, 9, 16, 40)) == "2020-09-09T16:40:00.000000Z"


@given(st.datetimes(timezones=st.just(timezone.utc)))
def test_from_datetime_round_trips(dt):
    assert v.to_datetime(v.parse_datetime(v.from_datetime(dt), "t")) == dt


# ============================================================================================ names

@pytest.mark.parametrize("name", [
    "speed", "brandName", "v\u00fd\u0161ka_1", "a", "A_1_b", "ex:speed", "Stra\u00dfe",
    "https://ngsi-ld-test-suite/context#speed", "urn:ngsi-ld:Dataset:german", "\u6e29\u5ea6", "x\u0661",
    "location", "description", "status", "name",  # common names that are core terms but not reserved
])
def test_attribute_names_accepted(name):
    assert n.check_attribute_name(name, f"attribute {name!r}") is None


@pytest.mark.parametrize("name, fragments", [
    ("my attr", ["attribute name 'my attr' contains character U+0020 SPACE", "4.6.2"]),  # 462_01_01
    ("1speed", ["must start with a letter"]),
    ("_speed", ["must start with a letter"]),
    ("speed-limit", ["U+002D HYPHEN-MINUS"]),
    ("speed.limit", ["U+002E"]),
    ("a<b", ["U+003C"]), ("a=b", ["U+003D"]), ("a;b", ["U+003B"]), ("a(b)", ["U+0028"]), ("a'b", ["U+0027"]),
    ('a"b', ["U+0022"]),
    ("ex:1 speed", ["must start with a letter after the prefix"]),  # not an IRI either (space)
    ("ex:", ["empty name part"]),
    ("", ["must not be empty"]),
    ("@context", ["must start with a letter"]),
    ("datasetId", ["core NGSI-LD member", "4.5.1"]),  # 451_01_01
    ("instanceId", ["core NGSI-LD member"]),  # 451_01_02
    ("observedAt", ["core NGSI-LD member"]),  # 451_01_03
    ("value", ["core NGSI-LD member"]), ("object", ["core NGSI-LD member"]),
    ("unitCode", ["core NGSI-LD member"]), ("previousValue", ["core NGSI-LD member"]),
])
def test_attribute_names_rejected(name, fragments):
    rejected(n.check_attribute_name, name, f"attribute {name!r}", *fragments)


def test_attribute_name_not_a_string():
    rejected(n.check_attribute_name, 5, "attribute", "must be a string")


@pytest.mark.parametrize("name", ["Vehicle", "\u0160kola", "ex:Vehicle", "https://ngsi-ld-test-suite/context#Vehicle",
                                  "Off_Street_Parking2", "value"])
def test_type_names_accepted(name):
    assert n.check_type_name(name, "entity type") is None


@pytest.mark.parametrize("name, fragment", [
    ("9Vehicle", "type name '9Vehicle' must start with a letter"),  # 462_01_02
    ("Vehicle Type", "U+0020"), ("", "must not be empty"), ("a:b c:d", "neither a name nor an absolute IRI"),
])
def test_type_names_rejected(name, fragment):
    rejected(n.check_type_name, name, "entity type", fragment)


LETTER = st.characters(categories=("Lu", "Ll", "Lt", "Lm", "Lo"))
NAME_CHAR = st.one_of(LETTER, st.characters(categories=("Nd", "Nl", "No")), st.just("_"))
NAME = st.builds(lambda a, b: a + "".join(b), LETTER, st.lists(NAME_CHAR, max_size=20))


@given(NAME, st.none() | NAME)
def test_generated_names_accepted(name, prefix):
    full = f"{prefix}:{name}" if prefix else name
    assume(full not in n.RESERVED_ATTRIBUTE_NAMES)
    n.check_attribute_name(full, "attribute")
    n.check_type_name(full, "entity type")


@given(NAME, st.sampled_from(list(" <>\"'=;()-.!?*&%$#@[]{}|\\^`~+,\t\n\u200b")), st.data())
def test_generated_names_with_a_forbidden_character_rejected(name, bad, data):
    i = data.draw(st.integers(1, len(name)))
    rejected(n.check_attribute_name, name[:i] + bad + name[i:], "attribute", f"U+{ord(bad):04X}")


# ============================================================================================ scopes

@pytest.mark.parametrize("value, expected", [
    ("/Madrid/Gardens/ParqueNorte", ["/Madrid/Gardens/ParqueNorte"]),
    ("Madrid", ["Madrid"]),
    ("/Company123/UnitA", ["/Company123/UnitA"]),
    (["/Madrid/Gardens/ParqueNorte", "/CompanyA/OrganizationB/UnitC"],
     ["/Madrid/Gardens/ParqueNorte", "/CompanyA/OrganizationB/UnitC"]),
    ("/\u0160kola/v\u00fd\u0161ka_1", ["/\u0160kola/v\u00fd\u0161ka_1"]),
    ([], []),
])
def test_check_scope_accepts(value, expected):
    assert n.check_scope(value, "scope") == expected


@pytest.mark.parametrize("value, fragments", [
    ("urn:ngsi-ld:null", ["NGSI-LD Null", "only allowed to delete scopes"]),  # 554_01_01
    (["/A", "urn:ngsi-ld:null"], ["NGSI-LD Null"]),
    ("", ["must not be empty"]),
    ("/", ["empty level"]),
    ("//Madrid", ["empty level"]),
    ("/Madrid/", ["empty level"]),
    ("/Madrid//Centro", ["empty level"]),
    ("/9Madrid", ["level '9Madrid' must start with a letter"]),
    ("/_x", ["must start with a letter"]),
    ("/Ma drid", ["U+0020 SPACE", "4.18"]),
    ("/Madrid-Centro", ["U+002D"]),
    ("#Madrid", ["must start with a letter"]),
    (5, ["must be a string or an array"]),
    ({"type": "Property", "value": "/A"}, ["must be a string or an array", "an object"]),
    (["/A", 5], ["a scope must be a string, got a number"]),
])
def test_check_scope_rejects(value, fragments):
    rejected(n.check_scope, value, "scope", *fragments)


def test_check_scope_null_for_deletion():
    assert n.check_scope("urn:ngsi-ld:null", "scope", allow_null=True) == ["urn:ngsi-ld:null"]
    rejected(n.check_scope, ["urn:ngsi-ld:null"], "scope", "NGSI-LD Null", allow_null=True)


@given(st.lists(st.tuples(st.booleans(), st.lists(NAME, min_size=1, max_size=4)), min_size=1, max_size=3))
def test_generated_scopes_accepted(items):
    scopes = [("/" if lead else "") + "/".join(levels) for lead, levels in items]
    assert n.check_scope(scopes, "scope") == scopes
    assert n.check_scope(scopes[0], "scope") == [scopes[0]]


# ============================================================================================ languageMaps

@pytest.mark.parametrize("lm", [
    {"en": "hello", "sk": ["ahoj", "servus"]},  # 5232_01_01
    {"sk": "\u0161kola", "en": ["school", "academy"], "@none": "default"},  # 465_01_01
    {"fr": "Grand Place", "nl": "Grote Markt"},
    {"zh-Hant-TW": "x", "en-US": "y", "de-CH-1996": "z", "sr-Latn-RS": "w", "es-419": "v", "x-private": "u",
     "i-klingon": "t", "EN": "s", "en-a-bbb-x-a-ccc": "r", "zh-yue": "q", "sgn-BE-FR": "p"},
    {"en": ""}, {"en": []},
])
def test_language_map_accepted(lm):
    assert n.check_language_map(lm, "attribute 'name'") is None


@pytest.mark.parametrize("lm, fragments", [
    ({"en": 5}, ["languageMap['en'] must be a string or an array of strings, got a number"]),  # 5232_01_03
    ({"en": ["a", 5]}, ["languageMap['en'][1] must be a string, got a number"]),  # 5232_01_04
    ({"": "x"}, ["empty language tag"]),  # 5232_01_05
    ({"@none": "urn:ngsi-ld:null"}, ["NGSI-LD Null"]),  # 465_01_02
    ({"en": "urn:ngsi-ld:null"}, ["NGSI-LD Null"]),
    ({"en": ["urn:ngsi-ld:null"]}, ["NGSI-LD Null"]),
    ({}, ["at least one language"]),
    ("hello", ["must be a JSON object, got a string"]),
    (None, ["must be a JSON object, got null"]),
    ({"en_US": "x"}, ["key 'en_US' is not a language tag"]),
    ({"e": "x"}, ["key 'e' is not a language tag"]),
    ({"toolonglanguage": "x"}, ["not a language tag"]),
    ({"en-": "x"}, ["not a language tag"]),
    ({"123": "x"}, ["not a language tag"]),
    ({"@None": "x"}, ["not a language tag"]),
    ({"en": {"@value": "x"}}, ["got an object"]),
    ({"en": None}, ["got null"]),
])
def test_language_map_rejected(lm, fragments):
    rejected(n.check_language_map, lm, "attribute 'name'", *fragments)


def test_language_map_null_encoding_for_deletions():
    assert n.check_language_map({"@none": "urn:ngsi-ld:null"}, "attribute 'name'", allow_null=True) is None
    rejected(n.check_language_map, {"@none": "urn:ngsi-ld:null", "en": "x"}, "attribute 'name'", "NGSI-LD Null",
             allow_null=True)
    rejected(n.check_language_map, {"en": "urn:ngsi-ld:null"}, "attribute 'name'", "NGSI-LD Null", allow_null=True)


LANGTAG = st.from_regex(r"[a-z]{2,3}(-[A-Z][a-z]{3})?(-([A-Z]{2}|[0-9]{3}))?(-x-[a-z0-9]{1,8})?", fullmatch=True)


@given(st.dictionaries(LANGTAG | st.just("@none"), st.text() | st.lists(st.text(), max_size=3), min_size=1))
def test_generated_language_maps_accepted(lm):
    assume("urn:ngsi-ld:null" not in str(lm))
    n.check_language_map(lm, "attribute 'name'")


# ============================================================================================ small members

def test_unit_code():
    assert v.check_unit_code("C62", "attribute 'speed' unitCode") == "C62"
    rejected(v.check_unit_code, 5, "attribute 'speed' unitCode", "must be a string, got a number")
    rejected(v.check_unit_code, "", "attribute 'speed' unitCode", "must not be empty")
    rejected(v.check_unit_code, "urn:ngsi-ld:null", "attribute 'speed' unitCode", "NGSI-LD Null")


def test_json_value():  # 4.5.24.2, ETSI 4524_01
    for ok in ({"speed": 3, "brandName": "x", "type": "raw"}, {}, [{"a": 1}, {}], []):
        assert v.check_json_value(ok, "attribute 'tickets' json") is None
    rejected(v.check_json_value, 5, "attribute 'tickets' json", "JSON object or an array of objects, got a number")
    rejected(v.check_json_value, "x", "attribute 'tickets' json", "got a string")
    rejected(v.check_json_value, [{"a": 1}, 2], "attribute 'tickets' json", "json[1] must be a JSON object")


def test_vocab():
    for ok in ("Vehicle", ["Car", "https://x/Bus"]):
        assert v.check_vocab(ok, "attribute 'category' vocab") is None
    for bad, fragment in [(5, "got a number"), ("", "must not be empty"), ([], "empty array"),
                          (["a", 1], "vocab[1] must be a non-empty string"), (["a", ""], "vocab[1]"),
                          ("urn:ngsi-ld:null", "NGSI-LD Null")]:
        rejected(v.check_vocab, bad, "attribute 'category' vocab", fragment)


def test_check_not_null():  # 5.2.1 / 5.5.4, ETSI 521_01, 554_01_02
    for ok in (1, "x", None, {"country": "Germany"}, [1, [2, {"a": "b"}]]):
        assert v.check_not_null(ok, "attribute 'address' value") is None
    rejected(v.check_not_null, "urn:ngsi-ld:null", "attribute 'probe' value", "NGSI-LD Null")
    rejected(v.check_not_null, {"country": "urn:ngsi-ld:null"}, "attribute 'address' value", "at ['country']")
    rejected(v.check_not_null, {"geo": {"country": "urn:ngsi-ld:null"}}, "attribute 'address' value",
             "at ['geo']['country']")
    rejected(v.check_not_null, [1, {"a": ["urn:ngsi-ld:null"]}], "v", "at [1]['a'][0]")


@pytest.mark.parametrize("attr_type, attr, fragment", [
    ("Property", {"value": 1, "object": "urn:ngsi-ld:Other:1"}, "'object'"),  # 452_01_01
    ("Property", {"value": 1, "languageMap": {"en": "hello"}}, "'languageMap'"),  # 452_01_02
    ("Property", {"value": 1, "valueList": [1, 2]}, "'valueList'"),  # 452_01_03
    ("Property", {"value": 1, "previousValue": 0}, "'previousValue' (output only)"),  # 452_01_04
    ("Property", {"value": 1, "entityIdSealed": True}, "only on the ngsildproof Property"),  # 452_01_05
    ("Relationship", {"object": "urn:x:y", "unitCode": "MTR"}, "'unitCode' (a unitless attribute type)"),  # 453_01_01
    ("Relationship", {"object": "urn:x:y", "value": 42}, "'value'"),  # 453_01_02
    ("Relationship", {"object": "urn:x:y", "languageMap": {"en": "x"}}, "'languageMap'"),  # 453_01_03
    ("Relationship", {"object": "urn:x:y", "previousObject": "urn:x:z"}, "'previousObject'"),  # 453_01_04
    ("ListRelationship", {"objectList": [], "object": "urn:x:y"}, "'object'"),
    ("ListProperty", {"valueList": [1.2], "value": 3}, "'value'"),  # 4522_01_03
    ("JsonProperty", {"json": {"a": 1}, "unitCode": "MTR"}, "'unitCode'"),  # 4524_01_02
    ("JsonProperty", {"json": {"a": 1}, "value": 1}, "'value'"),  # 4524_01_03
    ("LanguageProperty", {"languageMap": {"en": "x"}, "value": "x"}, "'value'"),
    ("VocabProperty", {"vocab": "x", "json": {}}, "'json'"),
    ("GeoProperty", {"value": {}, "object": "urn:x:y"}, "'object'"),
])
def test_prohibited_members_rejected(attr_type, attr, fragment):
    attr = {"type": attr_type, **attr}
    detail = rejected(lambda a, where: v.check_prohibited_members(attr_type, a, where), attr, "attribute 'probe'",
                      fragment)
    assert f"a {attr_type} shall not have the member" in detail


@pytest.mark.parametrize("attr_type, attr, name", [
    ("Property", {"value": 1, "valueType": "xsd:double", "unitCode": "C62", "observedAt": "x", "datasetId": "u:x",
                  "sub": {"type": "Property", "value": 1}}, "speed"),  # 452_01_06
    ("Relationship", {"object": "urn:x:y", "objectType": "OffStreetParking"}, "isParked"),  # 453_01_05
    ("Property", {"value": {"type": "DataIntegrityProof"}, "entityIdSealed": "urn:x:y",
                  "entityTypeSealed": "Vehicle"}, "ngsildproof"),  # 452_03_01
    ("ListProperty", {"valueList": [1], "unitCode": "MTR"}, "depths"),
    ("UnknownType", {"anything": 1}, "x"),
])
def test_allowed_members(attr_type, attr, name):
    assert v.check_prohibited_members(attr_type, {"type": attr_type, **attr}, "attribute", attr_name=name) is None
