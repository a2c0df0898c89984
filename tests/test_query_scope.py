"""The scopeQ language (GS CIM 009 clause 4.19): parser, printer, and SQL over ``scopes text[]`` checked against
a real PostgreSQL and a plain-Python reference."""

from __future__ import annotations

import asyncio
from typing import Any, Iterator

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker.errors import NgsiError
from broker.query import compile_scope_q, parse_scope_q, scope_to_text
from broker.query.scope import ScopeAnd, ScopeOr, ScopePattern


def S(*levels: str, descendants: bool = False) -> ScopePattern:
    return ScopePattern(levels, descendants)


@pytest.mark.parametrize("text, expected", [
    ("/Madrid", S("Madrid")),                                                    # 4.19 EXAMPLE 1
    ("/Madrid/Gardens/#", S("Madrid", "Gardens", descendants=True)),            # EXAMPLE 2
    ("/Madrid/+/ParqueNorte", S("Madrid", "+", "ParqueNorte")),                 # EXAMPLE 3
    ("(/Madrid/Districts;/CompanyA)", ScopeAnd((S("Madrid", "Districts"), S("CompanyA")))),  # EXAMPLE 4
    ("(/Madrid/Districts;/CompanyA)|CompanyB",                                   # EXAMPLE 5 (as printed there)
     ScopeOr((ScopeAnd((S("Madrid", "Districts"), S("CompanyA"))), S("CompanyB")))),
    ("(/Madrid/Districts;/CompanyA),/CompanyB",
     ScopeOr((ScopeAnd((S("Madrid", "Districts"), S("CompanyA"))), S("CompanyB")))),
    ("/#", S()),
    ("/a|/b,/c", ScopeOr((S("a"), S("b"), S("c")))),
    ("(/a)", S("a")),
    ("(/a/#;/+/b)", ScopeAnd((S("a", descendants=True), S("+", "b")))),
    ("/Gärten_2/x1", S("Gärten_2", "x1")),
    ("/a;/b", ScopeAnd((S("a"), S("b")))),                                       # ETSI 019_01_06 AND
    ("/a;/b|/c", ScopeOr((ScopeAnd((S("a"), S("b"))), S("c")))),                # ";" binds tighter
    ("(/a;/b);/c/#", ScopeAnd((S("a"), S("b"), S("c", descendants=True)))),
])
def test_parse(text: str, expected: Any) -> None:
    assert parse_scope_q(text) == expected
    assert parse_scope_q(scope_to_text(expected)) == expected


@pytest.mark.parametrize("text, message", [
    ("", "empty query"),
    ("/", "unexpected end of query at position 1"),
    ("//a", "unexpected '/' at position 1"),
    ("/a/", "unexpected end of query at position 3"),
    ("/a b", "unexpected ' ' at position 2"),
    ("/1a", "unexpected '1' at position 1"),
    ("/a#", "unexpected '#' at position 2"),
    ("/a/#/b", "unexpected '/' at position 4"),
    ("(/a", "unexpected end of query at position 3: expected ';' or ')'"),
    ("((/a))", "unexpected '(' at position 1"),
    ("/a;", "unexpected end of query at position 3"),
    ("/a|", "unexpected end of query at position 3"),
    ("/a/++", "unexpected '+' at position 4"),
    ("/a.b", "unexpected '.' at position 2"),
])
def test_syntax_errors(text: str, message: str) -> None:
    with pytest.raises(NgsiError) as info:
        parse_scope_q(text)
    assert info.value.error_type == "BadRequestData"
    assert message in info.value.detail, info.value.detail


levels = st.one_of(st.just("+"), st.from_regex(r"[A-Za-zä][A-Za-z0-9_٣]{0,5}", fullmatch=True))
patterns = st.one_of(st.just(S()), st.builds(lambda ls, d: ScopePattern(tuple(ls), d),
                                              st.lists(levels, min_size=1, max_size=4), st.booleans()))
items = st.one_of(patterns, st.lists(patterns, min_size=2, max_size=3).map(lambda p: ScopeAnd(tuple(p))))
expressions = st.one_of(items, st.lists(items, min_size=2, max_size=4).map(lambda i: ScopeOr(tuple(i))))


@given(expressions)
def test_printed_ast_parses_back(expr: Any) -> None:
    assert parse_scope_q(scope_to_text(expr)) == expr


@given(st.one_of(st.text(max_size=30), st.text("/#+ab1_(;)|,ä ", max_size=30)))
@settings(max_examples=1000)
def test_garbage_raises_only_ngsi_errors(text: str) -> None:
    try:
        expr = parse_scope_q(text)
    except NgsiError as exc:
        assert exc.error_type == "BadRequestData" and exc.detail.startswith("scopeQ: ")
        return
    assert parse_scope_q(scope_to_text(expr)) == expr


# ============================================================================================ the database

SCOPES: list[list[str] | None] = [
    None, [], ["/Madrid"], ["/Madrid/Gardens"], ["Madrid/Gardens/ParqueNorte"], ["/Madrid/Sights/ParqueNorte"],
    ["/CompanyA", "/Madrid/Districts"], ["/CompanyB"], ["/Madrid/Gardens/ParqueNorte/Parterre1"], ["/MadridX"],
    ["/Madrid_1/Gärten"], ["/CompanyA"], ["/Madrid/Districts/CompanyA"],
]
LEVELS = ["Madrid", "Gardens", "ParqueNorte", "Sights", "CompanyA", "CompanyB", "Districts", "Parterre1", "MadridX",
          "Madrid_1", "Gärten", "+", "+"]


class Db:
    def __init__(self, dsn: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.conn: asyncpg.Connection = self.loop.run_until_complete(asyncpg.connect(dsn))

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def ids(self, expr: Any) -> set[int]:
        args: list[Any] = []
        where = compile_scope_q(expr, args)
        return {r["n"] for r in self.run(self.conn.fetch(f"SELECT n FROM scope_entities WHERE {where}", *args))}


@pytest.fixture(scope="module")
def db(database_dsn: str) -> Iterator[Db]:
    db = Db(database_dsn)
    db.run(db.conn.execute("DROP TABLE IF EXISTS scope_entities; CREATE TABLE scope_entities (n int, scopes text[])"))
    db.run(db.conn.executemany("INSERT INTO scope_entities VALUES ($1, $2)", list(enumerate(SCOPES))))
    yield db
    db.run(db.conn.close())
    db.loop.close()


def ref_pattern(p: ScopePattern, scopes: list[str] | None) -> bool:
    if not p.levels:
        return bool(scopes)
    for scope in scopes or []:
        have = scope.removeprefix("/").split("/")
        size_ok = len(have) == len(p.levels) or (p.descendants and len(have) > len(p.levels))
        if size_ok and all(want in ("+", got) for want, got in zip(p.levels, have)):
            return True
    return False


def ref(expr: Any, scopes: list[str] | None) -> bool:
    if isinstance(expr, ScopeOr):
        return any(ref(item, scopes) for item in expr.items)
    if isinstance(expr, ScopeAnd):
        return all(ref(item, scopes) for item in expr.items)
    return ref_pattern(expr, scopes)


@pytest.mark.parametrize("text, expected", [
    ("/Madrid", {2}),
    ("/Madrid/Gardens/#", {3, 4, 8}),
    ("/Madrid/+/ParqueNorte", {4, 5}),
    ("/Madrid/#", {2, 3, 4, 5, 6, 8, 12}),
    ("/+", {2, 7, 9, 11, 6}),
    ("/+/#", {2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}),
    ("(/Madrid/Districts;/CompanyA)", {6}),
    ("(/Madrid/Districts;/CompanyA)|/CompanyB", {6, 7}),
    ("/#", {2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}),
    ("Madrid/Gardens", {3}),
    ("/Madrid_1/Gärten", {10}),
    ("/Nowhere,/CompanyA", {6, 11}),
    ("/Madrid/Districts;/CompanyA", {6}),
])
def test_cases_against_database_and_reference(db: Db, text: str, expected: set[int]) -> None:
    expr = parse_scope_q(text)
    assert {n for n, scopes in enumerate(SCOPES) if ref(expr, scopes)} == expected, "reference"
    assert db.ids(expr) == expected, "database"


db_patterns = st.one_of(st.just(S()), st.builds(lambda ls, d: ScopePattern(tuple(ls), d),
                                                 st.lists(st.sampled_from(LEVELS), min_size=1, max_size=4),
                                                 st.booleans()))
db_items = st.one_of(db_patterns, st.lists(db_patterns, min_size=2, max_size=3).map(lambda p: ScopeAnd(tuple(p))))
db_expressions = st.one_of(db_items, st.lists(db_items, min_size=2, max_size=3).map(lambda i: ScopeOr(tuple(i))))


@given(db_expressions)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_generated_queries_database_equals_reference(db: Db, expr: Any) -> None:
    assert db.ids(expr) == {n for n, scopes in enumerate(SCOPES) if ref(expr, scopes)}, scope_to_text(expr)
