"""``broker.query.evaluate``: the in-memory ``q`` / ``scopeQ`` matchers give exactly the database's answers.

The database (the SQL of ``broker.query.sql`` / ``scope`` run by PostgreSQL) is the truth: the hand-checked
cases and generated queries over the dataset of ``q_support``, generated JSON under every instance type (any
nesting, value objects, numbers at the edge of float precision), entity timestamps against DateTime literals
with nanoseconds, regexes over strings with newlines, and generated scope lists."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from broker.errors import NgsiError
from broker.model.values import from_datetime
from broker.query import compile_q, compile_scope_q, parse_q, parse_scope_q, to_text
from broker.query.evaluate import EntityView, _keys, q_matcher, scope_matcher
from broker.query.q import Compare, Exists, Match, Path, Range, Value
from broker.query.sql import jp_key
from q_support import (BASE_TIME, CASES, DEFAULT, ENTITIES, Db, created, datetimes, dates, db_expressions,
                       num, numbers, one_attribute_terms, open_db, query_values, s, scalars, stored, strings, times,
                       trees)
from test_query_scope import LEVELS, SCOPES
from test_query_scope import db_expressions as scope_expressions


def slow(examples: int) -> Any:
    return settings(max_examples=examples, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@pytest.fixture(scope="module")
def db(database_dsn: str) -> Iterator[Db]:
    with open_db(database_dsn) as db:
        yield db


VIEWS = [(entity_id, EntityView(attrs, from_datetime(created(i)), from_datetime(created(i) + timedelta(hours=1))))
         for i, (entity_id, attrs) in enumerate(ENTITIES)]


def matching(q: str, ctx: Any) -> set[str]:
    matcher = q_matcher(parse_q(q), ctx)
    return {entity_id for entity_id, view in VIEWS if matcher(view)}


def database_row(db: Db, expr: Any, attrs: dict[str, Any], at: datetime = BASE_TIME) -> bool:
    """The compiled SQL on one row (createdAt ``at``, modifiedAt an hour later)."""
    args: list[Any] = []
    where = compile_q(expr, db.ctx, args)
    n = len(args)
    args += [json.dumps(attrs), at, at + timedelta(hours=1)]
    return db.run(db.conn.fetchval(
        f"SELECT {where} FROM (SELECT ${n + 1}::text::jsonb AS attrs, ${n + 2}::timestamptz AS created_at, "
        f"${n + 3}::timestamptz AS modified_at) AS e", *args))


def memory_row(db: Db, expr: Any, attrs: dict[str, Any], at: datetime = BASE_TIME) -> bool:
    view = EntityView(attrs, from_datetime(at), from_datetime(at + timedelta(hours=1)))
    return q_matcher(expr, db.ctx)(view)


# ============================================================================================ the dataset

@pytest.mark.parametrize("q, expected", CASES)
def test_cases_equal_database(db: Db, q: str, expected: set[str]) -> None:
    assert matching(q, db.ctx) == expected == db.ids(q)


@pytest.mark.parametrize("q", ["evil", "evil==1", "evil!=1;evil>0", 'street[nl]=="x"', "street[nl]", "!evil"])
def test_hostile_names(db: Db, q: str) -> None:
    assert matching(q, db.evil_ctx) == db.ids(q, db.evil_ctx)


@given(db_expressions)
@slow(600)
def test_generated_queries_equal_database(db: Db, expr: Any) -> None:
    text = to_text(expr)
    assume(parse_q(text) == expr)
    found = matching(text, db.ctx)
    assert found == db.ids(text), text
    event("matches " + ("none" if not found else "all" if len(found) == len(ENTITIES) else "some"))


@given(st.lists(stored, min_size=1, max_size=2), one_attribute_terms(), st.booleans())
@slow(500)
def test_generated_values_equal_database(db: Db, values: list[Any], term: Any, relationship: bool) -> None:
    kind = {"type": "Relationship", "object": "urn:x:1"} if relationship else None
    attrs = {DEFAULT + "x": [kind or {"type": "Property", "value": v} for v in values]}
    assert memory_row(db, term, attrs) == database_row(db, term, attrs), to_text(term)


# ============================================================================ any JSON under any instance type

KEYS = ["@value", "@id", "k", DEFAULT + "k", "fr", "type", "@type"]
EDGE_NUMBERS = [10**23, 1e23, 2**53, 2**53 + 1, float(2**53), 9007199254740993, 1e16, 10**16, 0.1, -0.0, 0, 1,
                True, 5e-324, 123456789012345678901234567890, 1.2345678901234567e29, -1e300]
TEXTS = ["a", "a\n", "x\nb", "urn:x:1", "Big", DEFAULT + "Big", "2020-01-01T00:00:00Z", "2020-01-01T00:00:00,5Z",
         "2020-01-01T00:00:00.000000001Z", "2020-01-01", "10:00:00", "10:00:00.5Z", "É", "٣", ""]
leaves = st.one_of(scalars, st.sampled_from(EDGE_NUMBERS), st.sampled_from(TEXTS), st.none())
json_values = st.recursive(leaves, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                           st.dictionaries(st.sampled_from(KEYS), inner, max_size=3)),
                           max_leaves=8)
MEMBER_OF = {"Property": "value", "GeoProperty": "value", "ListProperty": "valueList", "JsonProperty": "json",
             "LanguageProperty": "languageMap", "VocabProperty": "vocab", "Relationship": "object",
             "ListRelationship": "objectList"}
STAMPS = ["2020-01-01T00:00:00Z", "2020-01-01T00:00:00.5Z", "2020-01-01T00:00:00,5Z", "2019-12-31T23:59:59.999999999Z"]


@st.composite
def instances(draw: Any, depth: int = 0) -> dict[str, Any]:
    kind = draw(st.sampled_from(sorted(MEMBER_OF)))
    if kind == "LanguageProperty" and draw(st.integers(0, 3)):
        value: Any = draw(st.dictionaries(st.sampled_from(["fr", "en", "k"]), json_values, max_size=2))
    else:
        value = draw(json_values)
    inst = {"type": kind, MEMBER_OF[kind]: value}
    for member, pool in (("observedAt", STAMPS), ("unitCode", ["KMH", 5]), ("datasetId", ["urn:ds:1"]),
                         ("createdAt", STAMPS), ("modifiedAt", STAMPS)):
        if draw(st.integers(0, 4)) == 0:
            inst[member] = draw(st.sampled_from(pool))
    if depth == 0 and draw(st.integers(0, 3)) == 0:
        inst[DEFAULT + "sub"] = draw(instances(1))
    return inst


PATHS = [Path(("x",)), Path(("x",), ("k",)), Path(("x",), ("k", "k")), Path(("x",), ("*",)), Path(("x",), ("fr",)),
         Path(("x",), ("type",)), Path(("x", "observedAt")), Path(("x", "unitCode")), Path(("x", "datasetId")),
         Path(("x", "createdAt")), Path(("x", "sub")), Path(("x", "sub"), ("k",)), Path(("x", "sub", "observedAt")),
         Path(("createdAt",)), Path(("y",))]
PATTERNS = ["^a", "a$", "^$", ".", "x.b", "\\d", "\\D", "[\\d]", "\\bx", "x\\B", "\\x41", "^urn:", "Big$",
            "(?i)^big", "[0-9]{4}-", "(?m)^b", "(?m)a$", "a|$", "[^a]$", "^.*$"]
EDGE_VALUES = [num(x) for x in EDGE_NUMBERS if type(x) is not bool] + [
    s(x) for x in TEXTS] + [Value("datetime", x) for x in ("2020-01-01T00:00:00.5Z", "2020-01-01T00:00:00Z",
                                                        "2020-01-01T00:00:00.000000001Z")] + [
    Value("date", "2020-01-01"), Value("time", "10:00:00.5"), Value("boolean", True)]
values = st.one_of(query_values, st.sampled_from(EDGE_VALUES), st.booleans().map(lambda b: Value("boolean", b)))
KINDS = {"number": numbers, "string": strings, "datetime": datetimes, "date": dates, "time": times}


@st.composite
def any_terms(draw: Any) -> Any:
    path = draw(st.sampled_from(PATHS))
    which = draw(st.integers(0, 7))
    if which == 0:
        return Exists(path, draw(st.booleans()))
    if which == 1:
        return Match(path, draw(st.sampled_from(PATTERNS)), draw(st.booleans()))
    op = draw(st.sampled_from(["==", "!=", ">", ">=", "<", "<="]))
    if op not in ("==", "!="):
        return Compare(path, op, (draw(values.filter(lambda v: v.kind != "boolean")),))
    if draw(st.integers(0, 3)) == 0:
        low = draw(values.filter(lambda v: v.kind != "boolean"))
        high = draw(st.one_of(KINDS[low.kind], st.sampled_from([v for v in EDGE_VALUES if v.kind == low.kind])))
        return Compare(path, op, (Range(low, high),))
    return Compare(path, op, tuple(draw(st.lists(values, min_size=1, max_size=3))))


@given(st.lists(instances(), min_size=1, max_size=2), st.recursive(any_terms(), trees, max_leaves=2))
@slow(1500)
def test_any_json_equals_database(db: Db, insts: list[dict[str, Any]], expr: Any) -> None:
    attrs = {DEFAULT + "x": insts}
    assert memory_row(db, expr, attrs) == database_row(db, expr, attrs), (to_text(expr), json.dumps(attrs))


@pytest.mark.parametrize("stored_value, q, expected", [
    (1e23, "x==100000000000000000000000", True),  # numeric: 1e23 is 10**23 (a float's repr, as json.dumps)
    (10**23, "x==1e23", True),
    (9007199254740993, "x>9007199254740992.0", True),
    ([[[{"@value": 5}]]], "x==5", True),  # third level: through @."@value" of the elements
    ([[[5]]], "x==5", False),
    ([[[{"@value": "y"}, {"@value": ["x"]}]]], 'x=="x"', True),  # lax: type of one element, value of another
    ({"@value": 1, "@id": "urn:a"}, 'x=="urn:a"', True),
    ([[[{"@value": "a"}]]], "x!~=zzz", True),  # has strings (the filter), but none to match (_STRING_OF)
    (True, "x==1", False),
    ({DEFAULT + "k": 1, "k": 2}, "x[k]!=2", True),  # "!=" on values: per place (expanded key, raw key) ...
    ({DEFAULT + "k": "2020-01-01", "k": "x"}, "x[k]!=2020-01-01", False),  # ... on temporal values: per instance
    ({"@value": "a", "@id": "b"}, "x~=b", False),  # a value object's string: its @value first
    ({"@value": 1, "@id": "b"}, "x~=b", True),
    ("a\n", "x~=a$", False),  # ARE: "$" only at the end
    ("a\nb", "x~=a.b", True),  # ARE: "." matches a newline
])
def test_edge_values(db: Db, stored_value: Any, q: str, expected: bool) -> None:
    attrs = {DEFAULT + "x": [{"type": "Property", "value": stored_value}]}
    expr = parse_q(q)
    assert database_row(db, expr, attrs) == expected, "database"
    assert memory_row(db, expr, attrs) == expected, "memory"


def test_an_attribute_without_instances_exists(db: Db) -> None:
    attrs: dict[str, Any] = {DEFAULT + "x": []}
    for q, expected in (("x", True), ("!x", False), ("x!=1", False)):
        assert database_row(db, parse_q(q), attrs) is expected is memory_row(db, parse_q(q), attrs), q


# ======================================================================================= entity timestamps

moments = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(timezone.utc))
EXTRA_DIGITS = ["", "0", "4", "5", "49", "5000", "50001", "999"]


@st.composite
def literal_near(draw: Any, at: datetime) -> str:
    """A DateTime literal at, or nanoseconds around, ``at`` (rounding edges of ``::timestamptz``)."""
    moment = draw(st.one_of(st.just(at), moments, st.just(at + timedelta(microseconds=draw(st.integers(-2, 2))))))
    digits = f"{moment.microsecond:06d}" + draw(st.sampled_from(EXTRA_DIGITS))
    digits = digits[:9].rstrip("0") if draw(st.booleans()) else digits[:9]
    return moment.strftime("%Y-%m-%dT%H:%M:%S").rjust(19, "0") + (f".{digits}" if digits else "") + "Z"


@given(moments, st.data())
@slow(400)
def test_entity_timestamps_equal_database(db: Db, at: datetime, data: Any) -> None:
    low, high = data.draw(literal_near(at)), data.draw(literal_near(at))
    name = data.draw(st.sampled_from(["createdAt", "modifiedAt"]))
    op = data.draw(st.sampled_from(["==", "!=", ">", ">=", "<", "<=", "range", "!range", "quoted"]))
    if op.endswith("range"):
        term = Compare(Path((name,)), "!=" if op[0] == "!" else "==",
                       (Range(Value("datetime", low), Value("datetime", high)),))
    elif op == "quoted":
        term = Compare(Path((name,)), "==", (s(low),))
    else:
        term = Compare(Path((name,)), op, (Value("datetime", low),))
    assert memory_row(db, term, {}, at) == database_row(db, term, {}, at), to_text(term)


# ================================================================================================== regex

REGEX_PATTERNS = PATTERNS + ["\\x41B", "[\\x41-\\x43]+", "\\B", "(?s)a.b", "\\Aa", "a\\Z", "[$]", "\\$", "(a|b)+\\n",
                             "a(?=b)", "(?<!a)b", "^\\s*$", "\\S+$", "[^\\n]+$", "(?i)ab", "a{2,3}", "Л"]


@given(st.sampled_from(REGEX_PATTERNS), st.text("ab\nxX\x08\\5AB٣Л ", max_size=6), st.booleans())
@slow(600)
def test_regex_equals_database(db: Db, pattern: str, text: str, negated: bool) -> None:
    attrs = {DEFAULT + "x": [{"type": "Property", "value": text}]}
    term = Match(Path(("x",)), pattern, negated)
    assert memory_row(db, term, attrs) == database_row(db, term, attrs), (pattern, text)


# ================================================================================================= scopeQ

scope_texts = st.one_of(
    st.builds(lambda lead, levels, tail: lead + "/".join(levels) + tail, st.sampled_from(["/", "", "//"]),
              st.lists(st.sampled_from([lv for lv in LEVELS if lv != "+"] + ["x\n"]), min_size=1, max_size=4),
              st.sampled_from(["", "", "/", "\n"])),
    st.sampled_from(["", "/", "#", "/Madrid/#"]))
scope_lists = st.one_of(st.none(), st.lists(scope_texts, max_size=3), st.sampled_from(SCOPES))


@given(scope_expressions, scope_lists)
@slow(600)
def test_scope_matcher_equals_database(db: Db, expr: Any, scopes: list[str] | None) -> None:
    args: list[Any] = []
    where = compile_scope_q(expr, args)
    args.append(scopes)
    expected = db.run(db.conn.fetchval(f"SELECT {where} FROM (SELECT ${len(args)}::text[] AS scopes) AS e", *args))
    assert scope_matcher(expr)(scopes) == expected


@pytest.mark.parametrize("text, scopes, expected", [
    ("/Madrid/#", ["Madrid"], True), ("/Madrid/#", ["/MadridX"], False), ("/+", ["/a/"], False),
    ("/a/#", ["/a//"], True), ("/#", [], False), ("/a", None, False), ("(/a;/b)|/c", ["/b", "a"], True),
])
def test_scope_matcher_cases(text: str, scopes: list[str] | None, expected: bool) -> None:
    assert scope_matcher(parse_scope_q(text))(scopes) is expected


# ======================================================================================== errors, helpers

@pytest.mark.parametrize("q", ["createdAt[x]==1", "speed.observedAt.x==1", "speed.unitCode[a]", "@id==1"])
def test_same_errors_as_sql(db: Db, q: str) -> None:
    with pytest.raises(NgsiError) as sql:
        compile_q(parse_q(q), db.ctx, [])
    with pytest.raises(NgsiError) as memory:
        q_matcher(parse_q(q), db.ctx)
    assert (memory.value.error_type, memory.value.detail) == (sql.value.error_type, sql.value.detail)


def test_too_many_terms() -> None:
    with pytest.raises(NgsiError) as info:
        q_matcher(parse_q(";".join(["a"] * 300)), None)  # type: ignore[arg-type]
    assert info.value.error_type == "TooComplexQuery"


@given(st.lists(st.one_of(st.none(), st.text(st.characters(exclude_categories=("Cc", "Cs")), min_size=1,
                                               max_size=20)), min_size=1, max_size=3))
def test_jsonpath_steps_decode(keys: list[str | None]) -> None:
    suffix = "".join(".*" if k is None else "." + jp_key(k) for k in keys)
    assert _keys(suffix) == tuple(keys)


def test_model_timestamps(db: Db) -> None:
    view = EntityView({DEFAULT + "speed": [{"type": "Property", "value": 3}]}, "2024-01-01T00:00:00.000001Z",
                      "2024-01-01T00:00:00Z")
    q = "speed==3;createdAt>2024-01-01T00:00:00Z;modifiedAt==2024-01-01T00:00:00.0000004Z"
    assert q_matcher(parse_q(q), db.ctx)(view)
