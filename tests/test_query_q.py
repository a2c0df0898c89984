"""The ``q`` query language (GS CIM 009 clause 4.9): parser, printer, and the SQL translation checked against a
real PostgreSQL and a plain-Python reference evaluator of the semantics documented in ``broker.query.sql``
(the dataset, the reference and the shared strategies are in ``q_support``)."""

from __future__ import annotations

import json
import re
from typing import Any, Iterator

import asyncpg
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from broker.errors import NgsiError
from broker.query import compile_q, database_error, parse_q, to_text
from broker.query.q import And, Compare, Exists, Match, Or, Path, Range, Value
from broker.query.sql import jp_key
from q_support import (BASE_TIME, CASES, DEFAULT, ENTITIES, Db, P, datetimes, dates, db_expressions, e, num,
                       numbers, one_attribute_terms, open_db, ref_eval, ref_ids, s, stored, strings, times, trees)


# ============================================================================================ parser

@pytest.mark.parametrize("text, expected", [
    ("speed", Exists(P("speed"))),
    ("!speed", Exists(P("speed"), True)),
    ("speed==20", Compare(P("speed"), "==", (num(20),))),
    ("speed!=20", Compare(P("speed"), "!=", (num(20),))),
    ("speed>20", Compare(P("speed"), ">", (num(20),))),
    ("speed>=-2.5e3", Compare(P("speed"), ">=", (num(-2500.0),))),
    ("speed<0.5", Compare(P("speed"), "<", (num(0.5),))),
    ("speed<=1E2", Compare(P("speed"), "<=", (num(100.0),))),
    ('brandName!="Mercedes"', Compare(P("brandName"), "!=", (s("Mercedes"),))),
    ('a=="q\\"uo\\\\te\\u00e9\\n"', Compare(P("a"), "==", (s('q"uo\\teé\n'),))),
    ("isParked==urn:ngsi-ld:OffStreetParking:Downtown1",
     Compare(P("isParked"), "==", (s("urn:ngsi-ld:OffStreetParking:Downtown1"),))),
    ("gender==Male", Compare(P("gender"), "==", (s("Male"),))),
    ("flag==true", Compare(P("flag"), "==", (Value("boolean", True),))),
    ("flag!=false", Compare(P("flag"), "!=", (Value("boolean", False),))),
    ("t==1..5", Compare(P("t"), "==", (Range(num(1), num(5)),))),
    ("t!=1.5..2.5", Compare(P("t"), "!=", (Range(num(1.5), num(2.5)),))),
    ('c=="a".."c"', Compare(P("c"), "==", (Range(s("a"), s("c")),))),
    ("c==1,2,3", Compare(P("c"), "==", (num(1), num(2), num(3)))),
    ('c!="black","red",true,urn:x', Compare(P("c"), "!=", (s("black"), s("red"), Value("boolean", True), s("urn:x")))),
    ("temperature.observedAt>=2017-12-24T12:00:00Z",
     Compare(P("temperature", "observedAt"), ">=", (Value("datetime", "2017-12-24T12:00:00Z"),))),
    ("d>2017-12-24", Compare(P("d"), ">", (Value("date", "2017-12-24"),))),
    ("t<12:00:00.123Z", Compare(P("t"), "<", (Value("time", "12:00:00.123Z"),))),
    ("w==2020-01-01T00:00:00.123456789Z..2021-01-01T00:00:00Z",
     Compare(P("w"), "==", (Range(Value("datetime", "2020-01-01T00:00:00.123456789Z"),
                                  Value("datetime", "2021-01-01T00:00:00Z")),))),
    ('address[city]=="Berlin"', Compare(P("address", trailing=("city",)), "==", (s("Berlin"),))),
    ("sensor.rawdata[airquality.particulate]==40",
     Compare(P("sensor", "rawdata", trailing=("airquality", "particulate")), "==", (num(40),))),
    ('street[fr-BE]=="x"', Compare(P("street", trailing=("fr-BE",)), "==", (s("x"),))),
    ('street[*]=="x"', Compare(P("street", trailing=("*",)), "==", (s("x"),))),
    ("ex:speed>1", Compare(P("ex:speed"), ">", (num(1),))),
    ("größe>1", Compare(P("größe"), ">", (num(1),))),
    ("name~=^Ei.*r$", Match(P("name"), "^Ei.*r$")),
    ("name!~=(?i)tower", Match(P("name"), "(?i)tower", True)),
    ('name~="a;b|c"', Match(P("name"), "a;b|c")),
    ("name~=(a|b)[;|)]x", Match(P("name"), "(a|b)[;|)]x")),
])
def test_parse(text: str, expected: Any) -> None:
    assert parse_q(text) == expected
    assert parse_q(to_text(expected)) == expected


def test_precedence_and_grouping() -> None:
    a, b, c, d = (Exists(P(n)) for n in "abcd")
    assert parse_q("a;b|c;d") == Or((And((a, b)), And((c, d))))
    assert parse_q("a|b;c") == Or((a, And((b, c))))
    assert parse_q("(a|b);c") == And((Or((a, b)), c))
    assert parse_q("((a|b);c)|d") == Or((And((Or((a, b)), c)), d))
    assert parse_q("a;(b;c)") == And((a, b, c))  # flattened
    assert parse_q("(a)") == a
    assert to_text(parse_q("(a|b);c")) == "(a|b);c"
    # 4.9 examples 6 and 7
    assert parse_q('((speed>50|rpm>3000);brandName=="Mercedes")') == And((
        Or((Compare(P("speed"), ">", (num(50),)), Compare(P("rpm"), ">", (num(3000),)))),
        Compare(P("brandName"), "==", (s("Mercedes"),))))
    assert isinstance(parse_q("(temperature>=20;temperature<=25)|capacity<=10"), Or)
    # an unquoted regex ends at ';' / '|' outside its own groups, or at the ')' closing a query group
    assert parse_q("(n~=a|b)") == Or((Match(P("n"), "a"), Exists(P("b"))))
    assert parse_q("(n~=(a|b));c") == And((Match(P("n"), "(a|b)"), c))


@pytest.mark.parametrize("text, message", [
    ("", "empty query"),
    ("speed>5)", "unexpected ')' at position 7"),
    ("(speed>5", "unexpected end of query at position 8: expected ')'"),
    ("speed>>5", "unexpected '>' at position 6"),
    ("speed>", "unexpected end of query at position 6"),
    ("speed==5abc", "unexpected 'a' at position 8"),
    ("speed==2020-13-01", "invalid date"),
    ("speed==2020-02-30T00:00:00Z", "invalid datetime"),
    ("speed==1.", "unexpected '.' at position 8"),
    ("speed>true", ">"),
    ("speed>urn:x", ">"),
    ("speed==1..urn:x", "range bounds"),
    ('speed==1.."z"', "range bounds of different types"),
    ("speed==1..5,6", "unexpected ',' at position 11"),
    ("speed == 5", "unexpected ' ' at position 5"),
    ("1speed", "unexpected '1' at position 0: expected an attribute name"),
    ("a;", "unexpected end of query at position 2"),
    ("a|;b", "unexpected ';' at position 2"),
    ("a[b", "unexpected end of query at position 3: expected ']'"),
    ("a[]", "unexpected ']' at position 2"),
    ("a.", "position 2"),
    ("!a==1", "'!' only negates existence"),
    ("sensor{humidity}==40", "linked-entity queries"),
    ('a=="abc', "unterminated string starting at position 3"),
    ('a=="\\x"', "invalid string at position 4"),
    ('a=="\\u0000"', "U+0000"),
    ('a=="\\ud800"', "U+D800"),
    ("a==\x00", "U+0000"),
    ("a~=(x", "invalid regular expression"),
    ("a~=", "empty regular expression"),
    ("a~=" + "x" * 257, "longer than 256"),
    ("a~=(x)\\1", "back-references"),
    ('a~="x"y', "unexpected 'y' at position 6"),
    ("a==1e999", "number out of range"),
    ("a==" + "1" * 101, "number too long"),
    ("(" * 40 + "a" + ")" * 40, "nested deeper than 32"),
])
def test_syntax_errors(text: str, message: str) -> None:
    with pytest.raises(NgsiError) as info:
        parse_q(text)
    assert info.value.error_type == "BadRequestData"
    assert message in info.value.detail, info.value.detail
    assert info.value.detail.startswith("q: ")


# ---- generated ASTs: printed and parsed back -----------------------------------------------------------

names = st.one_of(st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,6}", fullmatch=True),
                  st.from_regex(r"[a-z]{1,3}:[a-z][a-z0-9]{0,3}", fullmatch=True),
                  st.sampled_from(["größe", "名前", "x_1", "a٣"]))
segments = st.from_regex(r"[A-Za-z0-9_:-]{1,6}", fullmatch=True)
paths = st.builds(lambda ns, tr: Path(tuple(ns), tr), st.lists(names, min_size=1, max_size=3),
                  st.one_of(st.none(), st.just(("*",)), st.lists(segments, min_size=1, max_size=3).map(tuple)))
comparable = st.one_of(numbers, strings, datetimes, dates, times)
patterns = st.sampled_from(["^a", "b$", "(?i)x|y", "[;|)]", "a.*b", "(a|b)+", "\\d{2}", "é", "\\\\", '"q"'])


@st.composite
def compare_terms(draw: Any) -> Compare:
    path, op = draw(paths), draw(st.sampled_from(["==", "!=", ">", ">=", "<", "<="]))
    if op in (">", ">=", "<", "<="):
        return Compare(path, op, (draw(comparable),))
    if draw(st.booleans()):
        low = draw(comparable)
        high = draw({"number": numbers, "string": strings, "datetime": datetimes, "date": dates,
                     "time": times}[low.kind])
        return Compare(path, op, (Range(low, high),))
    values = st.one_of(comparable, st.booleans().map(lambda b: Value("boolean", b)))
    return Compare(path, op, tuple(draw(st.lists(values, min_size=1, max_size=4))))


terms_ = st.one_of(st.builds(Exists, paths, st.booleans()), compare_terms(),
                   st.builds(Match, paths, patterns, st.booleans()))


expressions = st.recursive(terms_, trees, max_leaves=8)


@given(expressions)
@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
def test_printed_ast_parses_back(expr: Any) -> None:
    assert parse_q(to_text(expr)) == expr


Q_CHARS = 'abz:._[]*(){}!=<>~;|,"\\-+0159eETZ/#? é'


@given(st.one_of(st.text(max_size=40), st.text(Q_CHARS, max_size=40)))
@settings(max_examples=1500)
def test_garbage_raises_only_ngsi_errors(text: str) -> None:
    try:
        expr = parse_q(text)
    except NgsiError as exc:
        assert exc.error_type == "BadRequestData" and exc.detail.startswith("q: ")
        return
    assert parse_q(to_text(expr)) == expr


# ============================================================================================ the database

@pytest.fixture(scope="module")
def db(database_dsn: str) -> Iterator[Db]:
    with open_db(database_dsn) as db:
        yield db


@pytest.mark.parametrize("q, expected", CASES)
def test_cases_against_database_and_reference(db: Db, q: str, expected: set[str]) -> None:
    assert ref_ids(q, db.ctx) == expected, "reference"
    assert db.ids(q) == expected, "database"


def test_hostile_names_are_escaped(db: Db) -> None:
    assert db.ids("evil", db.evil_ctx) == e(20)
    assert db.ids("evil==1", db.evil_ctx) == e(20)
    assert db.ids("evil!=1;evil>0", db.evil_ctx) == set()
    assert db.ids('street[nl]=="x"', db.evil_ctx) == set()  # a key with an emoji and é
    assert db.ids("street[nl]", db.ctx) == e(5)


@given(st.text(st.characters(exclude_categories=("Cc", "Cs")), min_size=1, max_size=30))
@settings(max_examples=200, deadline=None)
def test_any_key_round_trips_through_jsonpath(db: Db, key: str) -> None:
    path = "$." + jp_key(key)
    got = db.run(db.conn.fetchval("SELECT jsonb_path_query_first(jsonb_build_object($1::text, 7), $2::text::jsonpath)",
                                  key, path))
    assert got == "7"


def test_invalid_postgresql_regex_maps_to_400(db: Db) -> None:
    args: list[Any] = []
    where = compile_q(parse_q("name~=a{1,300}"), db.ctx, args)  # fine for Python, not for PostgreSQL
    with pytest.raises(asyncpg.PostgresError) as info:
        db.run(db.conn.fetch(f"SELECT id FROM q_entities WHERE {where}", *args))
    mapped = database_error(info.value)
    assert mapped is not None and mapped.status == 400 and mapped.error_type == "BadRequestData"
    assert database_error(ValueError("x")) is None


def test_no_user_text_in_sql(db: Db) -> None:
    args: list[Any] = []
    where = compile_q(parse_q('evil=="drop table";evil[xy]~="zz\'--"|evil.observedAt>2020-01-01T00:00:00Z'),
                      db.evil_ctx, args)
    for fragment in ("drop", "zz", "xy", "x.org", "2020"):
        assert fragment not in where
    assert {int(n) for n in re.findall(r"\$([0-9]+)", where)} == set(range(1, len(args) + 1))


def test_too_many_terms() -> None:
    with pytest.raises(NgsiError) as info:
        compile_q(parse_q(";".join(["a"] * 300)), None, [])  # type: ignore[arg-type]
    assert info.value.error_type == "TooComplexQuery"


@given(db_expressions)
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.filter_too_much])
def test_generated_queries_database_equals_reference(db: Db, expr: Any) -> None:
    text = to_text(expr)
    assume(parse_q(text) == expr)
    found = db.ids(text)
    assert found == ref_ids(text, db.ctx), text
    event("matches " + ("none" if not found else "all" if len(found) == len(ENTITIES) else "some"))


# ---- generated values and queries on one attribute: database == reference --------------------------------

@given(st.lists(stored, min_size=1, max_size=2), one_attribute_terms())
@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_generated_values_database_equals_reference(db: Db, values: list[Any], term: Any) -> None:
    attrs = {DEFAULT + "x": [{"type": "Property", "value": v} for v in values]}
    args: list[Any] = []
    where = compile_q(term, db.ctx, args)
    args.append(json.dumps(attrs))
    got = db.run(db.conn.fetchval(f"SELECT {where} FROM (SELECT ${len(args)}::text::jsonb AS attrs) AS e", *args))
    assert got == ref_eval(term, attrs, BASE_TIME, db.ctx), to_text(term)


# ---- the index-backed forms (broker.query.fast) give exactly the same answers ------------------------------

@given(db_expressions)
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.filter_too_much])
def test_indexed_forms_equal_reference(db: Db, expr: Any) -> None:
    text = to_text(expr)
    assume(parse_q(text) == expr)
    assert db.ids(text, indexed=True) == ref_ids(text, db.ctx), text


@given(st.lists(stored, min_size=1, max_size=2), one_attribute_terms(), st.booleans())
@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_indexed_values_equal_reference(db: Db, values: list[Any], term: Any, relationship: bool) -> None:
    kind = {"type": "Relationship", "object": "urn:x:1"} if relationship else None
    attrs = {DEFAULT + "x": [kind or {"type": "Property", "value": v} for v in values]}
    args: list[Any] = []
    specs: list[Any] = []
    where = compile_q(term, db.ctx, args, specs)
    args.append(json.dumps(attrs))
    got = db.run(db.conn.fetchval(f"SELECT {where} FROM (SELECT ${len(args)}::text::jsonb AS attrs) AS e", *args))
    assert got == ref_eval(term, attrs, BASE_TIME, db.ctx), to_text(term)


@st.composite
def bounded_pairs(draw: Any) -> Any:
    """``x > / >= a ; x < / <= b`` (merged into one index range), sometimes with a third term."""
    low = Compare(P("x"), draw(st.sampled_from([">", ">="])), (draw(numbers),))
    high = Compare(P("x"), draw(st.sampled_from(["<", "<="])), (draw(numbers),))
    items = [low, high] + draw(st.lists(one_attribute_terms(), max_size=1))
    return And(tuple(draw(st.permutations(items))))


@given(st.lists(stored, min_size=1, max_size=2), bounded_pairs(), st.booleans())
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_merged_ranges_equal_reference(db: Db, values: list[Any], expr: Any, relationship: bool) -> None:
    kind = {"type": "Relationship", "object": "urn:x:1"} if relationship else None
    attrs = {DEFAULT + "x": [kind or {"type": "Property", "value": v} for v in values]}
    args: list[Any] = []
    specs: list[Any] = []
    where = compile_q(expr, db.ctx, args, specs)
    assert specs
    args.append(json.dumps(attrs))
    got = db.run(db.conn.fetchval(f"SELECT {where} FROM (SELECT ${len(args)}::text::jsonb AS attrs) AS e", *args))
    assert got == ref_eval(expr, attrs, BASE_TIME, db.ctx), to_text(expr)


def test_bounds_on_one_attribute_are_one_index_range(db: Db) -> None:
    args: list[Any] = []
    where = compile_q(parse_q("speed<=99;name==\"a\";speed>50"), db.ctx, args, [])
    e = "COALESCE(attrs -> 'https://uri.etsi.org/ngsi-ld/default-context/speed' -> 0 -> 'value', 'null'::jsonb)"
    assert f"({e} > $" in where and where.count(f"{e} <= $") == 1 and f"jsonb_typeof({e})" not in where, where


@pytest.mark.parametrize("text, branches", [
    ("speed>50;speed<=99", 1), ('speed>50;name~="a"', 1), ("speed>1|speed<0", 1),
    ('speed>1;(name~="a"|x==1)', 1), ('name~="a"', 2), ('speed>1|name~="a"', 2), ("!speed", 2),
])
def test_index_served_q_is_one_branch(db: Db, text: str, branches: int) -> None:
    """A one-type query whose q its (built) indexes decide is planned as one branch (where_branches), others
    as two."""
    from broker.query.types import TypeName
    from broker.store.query import EntityQuery, Selector, where_branches

    query = EntityQuery(selectors=[Selector(types=TypeName("T"))], q=parse_q(text))
    assert len(where_branches(query, db.ctx, [], [], ready=lambda specs: True)) == branches, text
    assert len(where_branches(query, db.ctx, [], [], ready=lambda specs: False)) == 2  # indexes not built yet
    assert len(where_branches(query, db.ctx, [])) == 2  # no index specs asked for: the plain form


def test_indexed_form_uses_the_indexes(db: Db) -> None:
    """With the advisor's indexes in place, PostgreSQL answers a range and an equality from them."""
    from broker.store.indexes import index_name

    args: list[Any] = []
    specs: list[Any] = []
    where = compile_q(parse_q("speed>50;speed<=99"), db.ctx, args, specs)
    assert specs and all(sp.key.endswith(DEFAULT + "speed") for sp in specs)
    for spec in {sp.key: sp for sp in specs}.values():
        clause = f" WHERE {spec.where}" if spec.where else ""
        db.run(db.conn.execute(f"CREATE INDEX IF NOT EXISTS {index_name(spec)} ON q_entities "
                               f"USING {spec.method} ({spec.expression}){clause}"))
    db.run(db.conn.execute("ANALYZE q_entities; SET enable_seqscan = off"))
    try:
        plan = "\n".join(r[0] for r in db.run(db.conn.fetch(f"EXPLAIN SELECT id FROM q_entities WHERE {where}",
                                                           *args)))
    finally:
        db.run(db.conn.execute("RESET enable_seqscan"))
    for spec in specs:
        assert index_name(spec) in plan, plan
    assert "BitmapOr" in plan, plan  # fast rows from the value index, rare rows from the partial index
