"""Shared by the ``q`` tests (``test_query_q``, ``test_query_evaluate``): a dataset of tricky entities in a table,
a plain-Python reference evaluator of the semantics documented in ``broker.query.sql``, the hand-checked cases,
and hypothesis strategies of values and queries over the dataset."""

from __future__ import annotations

import asyncio
import json
import re
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

import asyncpg
from hypothesis import strategies as st

from broker.config import Settings
from broker.jsonld import ContextResolver
from broker.query import compile_q, parse_q
from broker.query.q import And, Compare, Exists, Match, Or, Path, Range, Value


DEFAULT = "https://uri.etsi.org/ngsi-ld/default-context/"
NGSI = "https://uri.etsi.org/ngsi-ld/"
EVIL = 'https://x.org/a"||$?(@==1)||"\\b$v0\\u{41}'


def P(*names: str, trailing: tuple[str, ...] | None = None) -> Path:
    return Path(names, trailing)


def num(v: Any) -> Value:
    return Value("number", v)


def s(v: str) -> Value:
    return Value("string", v)


# ============================================================================================ strategies

moments = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31))
fractions = st.one_of(st.just(""), st.from_regex(r"\.[0-9]{1,9}", fullmatch=True))
datetimes = st.builds(lambda m, f: Value("datetime", m.strftime("%Y-%m-%dT%H:%M:%S").rjust(19, "0") + f + "Z"),
                      moments, fractions)
dates = st.builds(lambda m: Value("date", m.date().isoformat()), moments)
times = st.builds(lambda m, f, z: Value("time", m.strftime("%H:%M:%S") + f + z), moments, fractions,
                  st.sampled_from(["", "Z"]))
numbers = st.one_of(st.integers(-10**30, 10**30), st.floats(allow_nan=False, allow_infinity=False)).map(num)
strings = st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), max_size=12).map(s)


def trees(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children.filter(lambda c: not isinstance(c, And)), min_size=2, max_size=3).map(lambda i: And(tuple(i))),
        st.lists(children.filter(lambda c: not isinstance(c, Or)), min_size=2, max_size=3).map(lambda i: Or(tuple(i))))


# ============================================================================================ the database

DT = NGSI + "DateTime"
ENTITIES: list[tuple[str, dict[str, Any]]] = [
    ("urn:e:01", {
        DEFAULT + "speed": [
            {"type": "Property", "value": 55, "observedAt": "2020-01-01T00:00:00Z", "unitCode": "KMH",
             "createdAt": "2024-01-01T00:00:00.000000Z", "modifiedAt": "2024-01-02T00:00:00.000000Z",
             DEFAULT + "source": {"type": "Property", "value": "gps"}},
            {"type": "Property", "value": 99, "datasetId": "urn:ds:1", "observedAt": "2021-06-01T12:00:00.5Z"}],
        DEFAULT + "name": [{"type": "Property", "value": "Grand Place"}]}),
    ("urn:e:02", {DEFAULT + "speed": [{"type": "Property", "value": "55"}],
                  DEFAULT + "name": [{"type": "Property", "value": "grand place"}]}),
    ("urn:e:03", {DEFAULT + "speed": [{"type": "Property", "value": 10.5, "observedAt": "2019-12-31T23:59:59.999999999Z",
                                       DEFAULT + "accuracy": {"type": "Property", "value": 0.5,
                                                              "observedAt": "2020-01-01T00:00:00.25Z"}}],
                  DEFAULT + "owner": [{"type": "Relationship", "object": "urn:x:1"}],
                  DEFAULT + "tags": [{"type": "ListProperty", "valueList": [1, 2]}]}),
    ("urn:e:04", {DEFAULT + "speed": [{"type": "Property", "value": [1, 5, 70]}],
                  DEFAULT + "owner": [{"type": "Relationship", "object": ["urn:x:1", "urn:x:2"]},
                                      {"type": "Relationship", "object": "urn:x:9", "datasetId": "urn:ds:2"}]}),
    ("urn:e:05", {DEFAULT + "street": [{"type": "LanguageProperty",
                                        "languageMap": {"fr": "Grand Place", "nl": "Grote Markt"}}],
                  DEFAULT + "category": [{"type": "VocabProperty", "vocab": DEFAULT + "Big"}]}),
    ("urn:e:06", {DEFAULT + "street": [{"type": "LanguageProperty", "languageMap": {"en": ["red", "cat"], "fr": "rouge"}}],
                  DEFAULT + "category": [{"type": "VocabProperty", "vocab": [DEFAULT + "Small", DEFAULT + "Big"]}]}),
    ("urn:e:07", {DEFAULT + "cfg": [{"type": "JsonProperty", "json": {"a": 1, "b": {"c": "x"}, "value": "Overstay"}}],
                  DEFAULT + "address": [{"type": "Property", "value": {
                      DEFAULT + "city": "Berlin", DEFAULT + "street": "Ulrich", DEFAULT + "number": 3}}]}),
    ("urn:e:08", {DEFAULT + "address": [{"type": "Property", "value": [{DEFAULT + "city": "Paris"},
                                                                         {DEFAULT + "city": "Berlin"}]}],
                  DEFAULT + "when": [{"type": "Property", "value": {"@type": DT, "@value": "2022-03-01T10:00:00Z"}}]}),
    ("urn:e:09", {DEFAULT + "when": [{"type": "Property", "value": "2022-03-01T10:00:00.000Z"}],
                  DEFAULT + "day": [{"type": "Property", "value": {"@type": NGSI + "Date", "@value": "2022-03-01"}}],
                  DEFAULT + "at": [{"type": "Property", "value": {"@type": NGSI + "Time", "@value": "10:00:00Z"}}]}),
    ("urn:e:10", {DEFAULT + "flag": [{"type": "Property", "value": True}],
                  DEFAULT + "speed": [{"type": "Property", "value": -300.0}]}),
    ("urn:e:11", {DEFAULT + "flag": [{"type": "Property", "value": False}],
                  DEFAULT + "speed": [{"type": "Property", "value": 0}],
                  DEFAULT + "at": [{"type": "Property", "value": "09:30:00.5"}]}),
    ("urn:e:12", {NGSI + "location": [{"type": "GeoProperty", "value": {"type": "Point", "coordinates": [1, 2]}}],
                  DEFAULT + "owner": [{"type": "ListRelationship", "objectList": ["urn:x:1", "urn:x:3"]}]}),
    ("urn:e:13", {DEFAULT + "name": [{"type": "Property", "value": {"@value": "Grand Hotel", "@language": "en"}}],
                  DEFAULT + "tags": [{"type": "ListProperty", "valueList": ["a", "b", {"@value": 5}]}]}),
    ("urn:e:14", {DEFAULT + "speed": [{"type": "Property", "value": [[5], 6]}],
                  DEFAULT + "address": [{"type": "Property", "value": {}}]}),
    ("urn:e:15", {DEFAULT + "speed": [{"type": "Property", "value": 55.0, "unitCode": "MTS",
                                       DEFAULT + "source": {"type": "Relationship", "object": "urn:x:1"}}],
                  DEFAULT + "name": [{"type": "Property", "value": "55"}]}),
    ("urn:e:16", {}),
    ("urn:e:17", {DEFAULT + "name": [{"type": "Property", "value": "Ünïcödé Straße"}],
                  DEFAULT + "speed": [{"type": "Property", "value": 1e20}]}),
    ("urn:e:18", {DEFAULT + "when": [{"type": "Property", "value": ["2020-05-05T00:00:00Z", "not a date"]}],
                  DEFAULT + "name": [{"type": "Property", "value": "2020-01-01"}],
                  DEFAULT + "day": [{"type": "Property", "value": "2020-01-01"}]}),
    ("urn:e:19", {DEFAULT + "tags": [{"type": "ListProperty", "valueList": [{DEFAULT + "city": "Berlin"}, 7]}],
                  DEFAULT + "cfg": [{"type": "JsonProperty", "json": [1, {"a": 2}]}],
                  DEFAULT + "speed": [{"type": "Property", "value": 70, "observedAt": "2020-01-01T00:00:00.000Z"}]}),
    ("urn:e:20", {EVIL: [{"type": "Property", "value": 1}],
                  DEFAULT + "name": [{"type": "Property", "value": '" || true || "'}]}),
]
BASE_TIME = datetime(2024, 1, 1, tzinfo=timezone.utc)


def created(i: int) -> datetime:
    return BASE_TIME + timedelta(days=i)


class Db:
    """One connection on a private event loop (sync tests can then use hypothesis)."""

    def __init__(self, dsn: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.conn: asyncpg.Connection = self.run(asyncpg.connect(dsn))
        self.resolver = ContextResolver(Settings(context_fetch_remote=False), None)
        self.run(self.resolver.start())
        self.ctx = self.resolver.core
        self.evil_ctx = self.run(self.resolver.resolve({"evil": EVIL, "nl": "https://x.org/nl\U0001F600\u00e9"}))

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def ids(self, q: str, ctx: Any = None, *, indexed: bool = False) -> set[str]:
        args: list[Any] = []
        where = compile_q(parse_q(q), ctx or self.ctx, args, [] if indexed else None)
        rows = self.run(self.conn.fetch(f"SELECT id FROM q_entities WHERE {where}", *args))
        return {r["id"] for r in rows}

    def close(self) -> None:
        self.run(self.conn.close())
        self.run(self.resolver.close())
        self.loop.close()


@contextmanager
def open_db(dsn: str) -> Iterator[Db]:
    """A ``Db`` with the table ``q_entities`` holding ENTITIES (entity i created at ``created(i)``, modified an
    hour later)."""
    db = Db(dsn)
    db.run(db.conn.execute("""
        DROP TABLE IF EXISTS q_entities;
        CREATE TABLE q_entities (pk bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, id text COLLATE "C" NOT NULL,
            types text[] NOT NULL, scopes text[], created_at timestamptz NOT NULL, modified_at timestamptz NOT NULL,
            version integer NOT NULL DEFAULT 1, attrs jsonb NOT NULL)"""))
    for i, (entity_id, attrs) in enumerate(ENTITIES):
        db.run(db.conn.execute(
            "INSERT INTO q_entities (id, types, created_at, modified_at, attrs) VALUES ($1, $2, $3, $4, $5::text::jsonb)",
            entity_id, [DEFAULT + "T"], created(i), created(i) + timedelta(hours=1), json.dumps(attrs)))
    try:
        yield db
    finally:
        db.close()


# ---- the reference evaluator ---------------------------------------------------------------------------

SHAPES = {"datetime": re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}([.,][0-9]{1,9})?Z"),
          "date": re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}"),
          "time": re.compile(r"[0-9]{2}:[0-9]{2}:[0-9]{2}([.,][0-9]{1,9})?Z?")}
MEMBERS = {NGSI + m: m for m in ("observedAt", "unitCode", "datasetId", "createdAt", "modifiedAt")}
OPS = {"==": lambda a, b: a == b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
       "<": lambda a, b: a < b, "<=": lambda a, b: a <= b}


def instant(text: str) -> tuple[str, str]:
    """(seconds part, fraction as 9 digits): ordered like the instants (4-digit years, UTC)."""
    width = 19 if "T" in text else 8
    return text[:width], text[width:].lstrip(".,").rstrip("Z").ljust(9, "0")


def as_kind(c: Any, kind: str) -> Any:
    """The comparable form of a candidate for a query value kind, or None if the types differ."""
    if kind == "number":
        return c if type(c) in (int, float) else None
    if kind == "boolean":
        return c if type(c) is bool else None
    if type(c) is not str:
        return None
    if kind == "string":
        return c
    if not SHAPES[kind].fullmatch(c):
        return None
    return c if kind == "date" else instant(c)


def query_form(v: Value) -> Any:
    return instant(str(v.value)) if v.kind in ("datetime", "time") else v.value


def matches(c: Any, value: Value | Range, op: str) -> bool:
    if isinstance(value, Range):
        x = as_kind(c, value.low.kind)
        return x is not None and query_form(value.low) <= x <= query_form(value.high)
    x = as_kind(c, value.kind)
    return x is not None and OPS[op](x, query_form(value))


def member_access(items: list[Any], key: str) -> list[Any]:
    out = []
    for item in items:
        for d in (item if isinstance(item, list) else [item]):
            if isinstance(d, dict) and key in d:
                out.append(d[key])
    return out


def expand_key(ctx: Any, key: str) -> str:
    iri = ctx.expand_term(key)
    return iri if isinstance(iri, str) and not iri.startswith("@") else key


def target_items(inst: dict[str, Any], trailing: tuple[str, ...] | None, op: str | None, ctx: Any) -> list[Any]:
    """4.9: the target value(s) of an instance, by its type (unwrapped later)."""
    kind = inst.get("type")
    if kind in ("Relationship", "ListRelationship"):
        ok = trailing is None and op in (None, "==", "!=")
        return [inst["object" if kind == "Relationship" else "objectList"]] if ok else []
    if kind == "VocabProperty":
        return [inst["vocab"]] if trailing is None else []
    if kind == "LanguageProperty":
        lm = inst["languageMap"]
        if trailing is None or trailing == ("*",):
            return list(lm.values())
        return [lm[trailing[0]]] if len(trailing) == 1 and trailing[0] in lm else []
    if trailing == ("*",):
        return []
    raw = kind in ("GeoProperty", "JsonProperty")
    items = [inst[{"ListProperty": "valueList", "JsonProperty": "json"}.get(kind, "value")]]  # type: ignore
    for seg in trailing or ():
        items = member_access(items, seg if raw else expand_key(ctx, seg))
    return items


def flat(items: list[Any]) -> Iterator[Any]:
    """Arrays in a target value are unwrapped two levels deep (jsonpath lax mode: ``[*]`` then the filter)."""
    for item in items:
        for x in (item if isinstance(item, list) else [item]):
            yield from (x if isinstance(x, list) else [x])


def candidates(items: list[Any]) -> list[Any]:
    out = []
    for e in flat(items):
        if isinstance(e, dict):
            if "@value" in e:
                out.append(e["@value"])
            elif isinstance(e.get("@id"), str):
                out.append(e["@id"])
        elif not isinstance(e, list):
            out.append(e)
    return out


def vocab(ctx: Any, v: Value) -> Value:
    """4.9: a VocabProperty's target value is compared with the query string expanded like a vocab IRI."""
    if v.kind != "string":
        return v
    iri = ctx.expand_vocab(v.value)
    return Value("string", iri if isinstance(iri, str) else v.value)


def as_datetime(v: Any) -> Any:
    if isinstance(v, Range):
        low, high = as_datetime(v.low), as_datetime(v.high)
        return Range(low, high) if low.kind == high.kind else v
    if v.kind == "string" and SHAPES["datetime"].fullmatch(v.value) and "," not in v.value:
        try:
            datetime.strptime(v.value[:19], "%Y-%m-%dT%H:%M:%S")
        except ValueError:
            return v
        return Value("datetime", v.value)
    return v


def ref_column(term: Any, at: datetime) -> bool:
    if isinstance(term, Exists):
        return not term.negated
    if isinstance(term, Match):
        return False

    def dt(v: Value) -> datetime | None:
        text = str(v.value)
        if v.kind not in ("datetime", "string") or not SHAPES["datetime"].fullmatch(text):
            return None
        try:
            base = datetime.strptime(text[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
        except ValueError:
            return None
        return base + timedelta(microseconds=int(text[20:-1].ljust(6, "0")[:6] or 0))

    hit = False
    for v in term.values:
        if isinstance(v, Range):
            lo, hi = dt(v.low), dt(v.high)
            hit |= lo is not None and hi is not None and lo <= at <= hi
        elif dt(v) is not None:
            hit |= OPS["==" if term.op == "!=" else term.op](at, dt(v))
    return not hit if term.op == "!=" else hit


def ref_term(term: Any, attrs: dict[str, Any], created_at: datetime, ctx: Any) -> bool:
    iris = [ctx.expand_term(n) for n in term.path.names]
    if len(iris) == 1 and iris[0] in (NGSI + "createdAt", NGSI + "modifiedAt"):
        at = created_at + (timedelta(hours=1) if iris[0].endswith("modifiedAt") else timedelta())
        return ref_column(term, at)
    member = MEMBERS[iris.pop()] if len(iris) > 1 and iris[-1] in MEMBERS else None
    insts = list(attrs.get(iris[0], []))
    for iri in iris[1:]:
        insts = [i[iri] for i in insts if isinstance(i.get(iri), dict)]
    trailing = term.path.trailing
    op = None if isinstance(term, Exists) else "~=" if isinstance(term, Match) else term.op

    def items_of(inst: dict[str, Any]) -> list[Any]:
        if member:
            return [inst[member]] if member in inst else []
        return target_items(inst, trailing, op, ctx)

    if isinstance(term, Exists):
        found = any(items_of(i) for i in insts) if (member or trailing is not None) else bool(insts)
        return found != term.negated
    values = term.values if isinstance(term, Compare) else ()
    if member in ("observedAt", "createdAt", "modifiedAt"):  # quoted DateTimes count as DateTimes there
        values = tuple(as_datetime(v) for v in values)
    for inst in insts:
        items = items_of(inst)
        cands = candidates(items)
        if isinstance(term, Match):
            texts = [c for c in cands if type(c) is str]
            hit = any(re.search(term.pattern, t) for t in texts)
            if (bool(texts) and not hit) if term.negated else hit:
                return True
            continue
        vals = values
        if not member and inst.get("type") == "VocabProperty":
            vals = tuple(Range(vocab(ctx, v.low), vocab(ctx, v.high)) if isinstance(v, Range) else vocab(ctx, v)
                         for v in values)
        cmp = "==" if term.op == "!=" else term.op
        hit = any(matches(c, v, cmp) for c in cands for v in vals)
        if (bool(items) and not hit) if term.op == "!=" else hit:
            return True
    return False


def ref_eval(expr: Any, attrs: dict[str, Any], created_at: datetime, ctx: Any) -> bool:
    """Does an entity (attrs, createdAt; modifiedAt is an hour later) match?"""
    if isinstance(expr, And):
        return all(ref_eval(item, attrs, created_at, ctx) for item in expr.items)
    if isinstance(expr, Or):
        return any(ref_eval(item, attrs, created_at, ctx) for item in expr.items)
    return ref_term(expr, attrs, created_at, ctx)


def ref_ids(q: str, ctx: Any) -> set[str]:
    expr = parse_q(q)
    return {entity_id for i, (entity_id, attrs) in enumerate(ENTITIES) if ref_eval(expr, attrs, created(i), ctx)}


# ---- hand-checked cases (they check the reference too) ---------------------------------------------------

def e(*numbers: int) -> set[str]:
    return {f"urn:e:{n:02d}" for n in numbers}


CASES = [
    ("speed", e(1, 2, 3, 4, 10, 11, 14, 15, 17, 19)),
    ("!speed", e(5, 6, 7, 8, 9, 12, 13, 16, 18, 20)),
    ("speed==55", e(1, 15)),  # not the string "55"; 55.0 == 55
    ('speed=="55"', e(2)),
    ("speed==99", e(1)),  # any instance (datasetId urn:ds:1)
    ("speed==5", e(4, 14)),  # included in an array, also one level deeper ([[5], 6])
    ("speed!=55", e(1, 2, 3, 4, 10, 11, 14, 17, 19)),  # e1's other instance is 99; e2's "55" is another type
    ("speed>50", e(1, 4, 15, 17, 19)),
    ("speed<0", e(10)),
    ("speed==0..10.5", e(3, 4, 11, 14)),
    ("speed!=0..100", e(2, 10, 17)),  # [1,5,70] and [[5],6] have their elements in range
    ("speed==1,99", e(1, 4)),
    ("speed!=5,6,70", e(1, 2, 3, 10, 11, 15, 17)),
    ("speed.observedAt>2020-01-01T00:00:00Z", e(1)),
    ("speed.observedAt==2020-01-01T00:00:00Z", e(1, 19)),  # .000Z is the same instant
    ("speed.observedAt<2020-01-01T00:00:00.000000001Z", e(1, 3, 19)),
    ("speed.observedAt!=2020-01-01T00:00:00Z", e(1, 3)),
    ('speed.observedAt<"2020-01-01T00:00:00.000000001Z"', e(1, 3, 19)),  # quoted: still a DateTime here
    ('speed.observedAt=="2020-01-01T00:00:00.000Z"', e(1, 19)),
    ("speed.observedAt==2019-01-01T00:00:00Z..2020-12-31T00:00:00Z", e(1, 3, 19)),
    ("speed.unitCode==\"KMH\"", e(1)),
    ("speed.unitCode", e(1, 15)),
    ("speed.datasetId==urn:ds:1", e(1)),
    ("speed.createdAt>2023-01-01T00:00:00Z", e(1)),
    ("speed.source", e(1, 15)),
    ('speed.source=="gps"', e(1)),
    ("speed.source==urn:x:1", e(15)),
    ("speed.accuracy.observedAt>2020-01-01T00:00:00.1Z", e(3)),
    ("speed.accuracy<1", e(3)),
    ('owner=="urn:x:1"', e(3, 4, 12)),
    ("owner==urn:x:2,urn:x:3", e(4, 12)),
    ("owner!=urn:x:1", e(4)),  # e4's second instance (urn:x:9)
    ('owner>"urn:a"', set()),  # relationships only match == and !=
    ("owner~=x", set()),
    ('street=="Grand Place"', e(5)),
    ('street[fr]=="Grand Place"', e(5)),
    ('street[nl]=="Grand Place"', set()),
    ('street[*]=="red"', e(6)),
    ('street[en]=="red"', e(6)),
    ('street[en]!="red"', set()),
    ('street[fr]!="red"', e(5, 6)),
    ("street[nl]", e(5)),
    ("street[de]", set()),
    ("category==Big", e(5, 6)),
    ("category!=Small", e(5)),
    ('category=="https://uri.etsi.org/ngsi-ld/default-context/Small"', e(6)),
    ("tags==2", e(3)),
    ("tags==5", e(13)),
    ('tags=="a","z"', e(13)),
    ('tags[city]=="Berlin"', e(19)),
    ("cfg[a]==1", e(7)),
    ("cfg[a]==2", e(19)),
    ('cfg[b.c]=="x"', e(7)),
    ('cfg[value]=="Overstay"', e(7)),
    ("cfg[b]", e(7)),
    ("cfg[zzz]", set()),
    ('address[city]=="Berlin"', e(7, 8)),
    ('address[city]!="Berlin"', set()),  # [Paris, Berlin] includes Berlin
    ("address[number]>=3", e(7)),
    ("address[city]", e(7, 8)),
    ('location[type]=="Point"', e(12)),
    ("location[coordinates]==2", e(12)),
    ("when==2022-03-01T10:00:00Z", e(8, 9)),
    ("when>2021-01-01T00:00:00Z", e(8, 9)),
    ("when<2021-01-01T00:00:00Z", e(18)),
    ("when!=2020-05-05T00:00:00Z", e(8, 9)),
    ('when=="not a date"', e(18)),
    ("day==2022-03-01", e(9)),
    ("day<2021-01-01", e(18)),
    ("at>09:59:59Z", e(9)),
    ("at==09:30:00.500", e(11)),
    ("name==2020-01-01", e(18)),
    ('name=="Grand Hotel"', e(13)),
    ("name~=^Grand", e(1, 13)),
    ("name~=(?i)^grand", e(1, 2, 13)),
    ("name!~=^Grand", e(2, 15, 17, 18, 20)),
    ("name~=Straße$", e(17)),
    ("speed~=5", e(2)),
    ("flag==true", e(10)),
    ("flag!=true", e(11)),
    ("flag==false,true", e(10, 11)),
    ("createdAt>2024-01-05T00:00:00Z;createdAt<2024-01-07T00:00:00Z", e(6)),
    ('createdAt=="2024-01-01T00:00:00Z"', e(1)),
    ("modifiedAt==2024-01-01T01:00:00Z", e(1)),
    ("createdAt!=2024-01-01T00:00:00Z;!speed;!name", e(5, 6, 7, 8, 9, 12, 16)),
    ("createdAt==5", set()),
    ("!createdAt", set()),
    ('name=="\\" || true || \\""', e(20)),
    ("(speed>50|speed<0);name", e(1, 15, 17)),
    ("speed>50|speed<0;name", e(1, 4, 15, 17, 19)),
    ("missing", set()),
    ("missing!=1", set()),
]


# ---- generated queries and values over the dataset -------------------------------------------------------

ATTRS = ["speed", "name", "owner", "street", "category", "cfg", "address", "when", "day", "at", "flag", "tags",
         "location", "missing"]
SUBS = ["source", "accuracy", "observedAt", "unitCode", "datasetId", "createdAt", "modifiedAt"]
TRAILS = [None, ("city",), ("number",), ("a",), ("b", "c"), ("value",), ("fr",), ("en",), ("*",), ("type",),
          ("coordinates",)]
TRAILS_FOR = {"address": [("city",), ("number",), ("street",)], "cfg": [("a",), ("b", "c"), ("value",), ("b",)],
              "tags": [("city",)], "street": [("fr",), ("en",), ("nl",), ("*",)],
              "location": [("type",), ("coordinates",)]}
POOL = {
    "number": [0, 1, 2, 3, 5, 6, 7, 10.5, 55, 55.0, 70, 99, -300, 1e20, 0.5],
    "string": ["55", "gps", "Grand Place", "grand place", "Berlin", "urn:x:1", "urn:x:2", "Big", "red", "x",
               "Overstay", "2020-01-01", "KMH", "", "Point", "a", "Ünïcödé Straße", "2022-03-01T10:00:00.000Z"],
    "datetime": ["2020-01-01T00:00:00Z", "2020-01-01T00:00:00.5Z", "2021-06-01T12:00:00.5Z", "2022-03-01T10:00:00Z",
                 "2019-12-31T23:59:59.999999Z", "2024-01-03T00:00:00Z", "2024-01-03T01:00:00Z"],
    "date": ["2020-01-01", "2022-03-01", "2021-06-30"],
    "time": ["10:00:00Z", "09:30:00.5", "12:00:00"],
}
REGEXES = ["^G", "(?i)^grand", "place$", "a", "5", "^urn:", "x.*1", "[0-9]+", "ü", "^$", "(?i)BIG$", "Markt"]


def _v(x: Any) -> Value:
    if isinstance(x, Value):
        return x
    return Value("boolean" if type(x) is bool else "number" if type(x) in (int, float) else "string", x)


D, DAY, TIME = (lambda t: Value("datetime", t)), (lambda t: Value("date", t)), (lambda t: Value("time", t))
RELEVANT = {  # values that occur under each attribute (members: under any attribute), to get non-empty results
    "speed": [55, 99, "55", 10.5, 5, 70, 0, -300, 1e20, 6, 1],
    "name": ["Grand Place", "grand place", "55", "Grand Hotel", DAY("2020-01-01"), "Ünïcödé Straße"],
    "owner": ["urn:x:1", "urn:x:2", "urn:x:3", "urn:x:9"],
    "street": ["Grand Place", "red", "rouge", "cat", "Grote Markt"],
    "category": ["Big", "Small"],
    "cfg": [1, 2, "x", "Overstay"],
    "address": ["Berlin", "Paris", 3, "Ulrich"],
    "a": [1, 2], "c": ["x"], "value": ["Overstay"], "city": ["Berlin", "Paris"], "number": [3], "fr": ["rouge"],
    "type": ["Point"], "coordinates": [1, 2], "*": ["red", "Grote Markt"], "en": ["red", "cat"],
    "when": [D("2022-03-01T10:00:00Z"), D("2020-05-05T00:00:00Z"), "not a date", D("2021-01-01T00:00:00Z")],
    "day": [DAY("2022-03-01"), DAY("2020-01-01"), DAY("2021-01-01")],
    "at": [TIME("10:00:00Z"), TIME("09:30:00.5"), TIME("10:00:00")],
    "flag": [True, False],
    "tags": [1, 2, 5, 7, "a", "b", "Berlin"],
    "location": ["Point", 1, 2],
    "source": ["gps", "urn:x:1"],
    "accuracy": [0.5, 1],
    "observedAt": [D("2020-01-01T00:00:00Z"), D("2021-06-01T12:00:00.5Z"), D("2019-12-31T23:59:59.999999Z"),
                   D("2020-01-01T00:00:00.25Z")],
    "unitCode": ["KMH", "MTS"],
    "datasetId": ["urn:ds:1", "urn:ds:2"],
    "createdAt": [D("2024-01-01T00:00:00Z"), D("2024-01-05T00:00:00Z"), D("2024-01-10T00:00:00Z")],
    "modifiedAt": [D("2024-01-02T00:00:00Z"), D("2024-01-05T01:00:00Z"), D("2024-01-10T00:00:00Z")],
}


@st.composite
def db_values(draw: Any, name: str, kinds: tuple[str, ...] = tuple(POOL)) -> Value:
    relevant = [_v(x) for x in RELEVANT.get(name, []) if _v(x).kind in kinds]  # name: the last of the path
    if relevant and draw(st.integers(0, 3)):
        return draw(st.sampled_from(relevant))
    kind = draw(st.sampled_from(kinds))
    return Value(kind, draw(st.sampled_from(POOL[kind])))


@st.composite
def db_terms(draw: Any) -> Any:
    names = [draw(st.sampled_from(ATTRS + ["createdAt", "modifiedAt"]))]
    if draw(st.integers(0, 3)) == 0:
        names.append(draw(st.sampled_from(SUBS)))
        if names[-1] == "accuracy" and draw(st.booleans()):
            names.append("observedAt")
    member = names[-1] in SUBS[2:] or names[0] in ("createdAt", "modifiedAt")
    trailing = None
    if not member and len(names) == 1 and draw(st.integers(0, 2)) == 0:
        trailing = draw(st.sampled_from(TRAILS_FOR.get(names[0], TRAILS) if draw(st.integers(0, 3)) else TRAILS))
    path = Path(tuple(names), trailing)
    last = trailing[-1] if trailing else names[-1]
    which = draw(st.integers(0, 9))
    if which == 0:
        return Exists(path, draw(st.booleans()))
    if which == 1:
        return Match(path, draw(st.sampled_from(REGEXES)), draw(st.booleans()))
    op = draw(st.sampled_from(["==", "!=", ">", ">=", "<", "<="]))
    comparable = ("number", "string", "datetime", "date", "time")
    if op in (">", ">=", "<", "<="):
        return Compare(path, op, (draw(db_values(last, comparable)),))
    if draw(st.integers(0, 3)) == 0:
        low = draw(db_values(last, comparable))
        return Compare(path, op, (Range(low, draw(db_values(last, (low.kind,)))),))
    values = st.one_of(db_values(last), st.booleans().map(lambda b: Value("boolean", b)))
    return Compare(path, op, tuple(draw(st.lists(values, min_size=1, max_size=3))))


db_expressions = st.recursive(db_terms(), trees, max_leaves=3)


scalars = st.one_of(
    st.integers(-10**20, 10**20), st.floats(allow_nan=False, allow_infinity=False), st.booleans(),
    st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), max_size=6),
    st.sampled_from(["a", "B", "é", "Z", "10", "2020-01-01", "10:00:00Z"]),
    datetimes.map(lambda v: v.value), dates.map(lambda v: v.value), times.map(lambda v: v.value))
stored = st.one_of(scalars, st.lists(st.one_of(scalars, st.builds(lambda x: {"@value": x}, scalars)), max_size=3),
                   st.builds(lambda x: {"@type": NGSI + "DateTime", "@value": x}, datetimes.map(lambda v: v.value)))
query_values = st.one_of(numbers, strings, datetimes, dates, times, st.sampled_from([s("a"), s("é"), num(10)]))


@st.composite
def one_attribute_terms(draw: Any) -> Any:
    op = draw(st.sampled_from(["==", "!=", ">", ">=", "<", "<=", "range", "!range"]))
    if op.endswith("range"):
        low = draw(query_values)
        high = draw({"number": numbers, "string": strings, "datetime": datetimes, "date": dates,
                     "time": times}[low.kind])
        return Compare(P("x"), "!=" if op[0] == "!" else "==", (Range(low, high),))
    return Compare(P("x"), op, (draw(query_values),))
