"""``q`` and ``scopeQ`` evaluated in memory on ONE entity, with exactly the answers of the SQL compilers.

Owns: ``q_matcher`` and ``scope_matcher``, which compile an AST once into a closure over one entity in the
internal form (``broker.model``) -- what the subscription dispatcher runs on every change. Plain Python: no
database, no JSON-LD processing at match time, compiled regexes cached.

It owns no semantics of its own: ``broker.query.sql`` (``resolve``, ``alternatives``) says where a term looks
-- decoded here from the jsonpath text of each place -- and its module doc says what a term means. What the
SQL gets from PostgreSQL's jsonpath (lax mode) is reproduced, for any JSON under the value members:

* a member step (``."k"``, ``.*``) on an array applies to its elements, one level; the candidates of a place
  are its values unwrapped twice (``[*]`` then the filter); a candidate that is still an array only matches
  through ``@."@value"`` / ``@."@id"`` on its elements (``_deep``).
* numbers compare as ``numeric``: a float is the decimal of its ``repr`` (as ``json.dumps`` sends it), so
  ``1e23 == 10**23``; booleans are not numbers; strings compare by code point.
* ``!=`` on numbers / strings / booleans fails a place that has values none of which is equal (per place, as
  the SQL's jsonpath); with a temporal value it is per instance over all places (as the SQL's EXISTS).
* the entity's createdAt / modifiedAt: a literal is read as ``timestamptz`` reads it (the fraction rounded
  half-even to microseconds).

Regex ``~=``: PostgreSQL ARE (a search), by Python ``re`` after ``_pg_pattern`` maps ARE's differences that
``q.check_pattern`` lets through: ``.`` also matches a newline and ``$`` only ends the string (unless the
pattern starts with ``(?m)``, ARE's newline-sensitive mode), ``\\b`` is a backspace and ``\\B`` a backslash,
``\\d`` is ``[0-9]``, ``\\xhhh`` takes every hex digit. Known divergences: ``\\w``, ``\\s`` and ``(?i)``
beyond ASCII follow Python's Unicode tables, PostgreSQL the database's LC_CTYPE (C.UTF-8: ``ſ`` is not
``(?i)s`` there, U+00A0 is not ``\\s``); ``[[:alpha:]]`` is a POSIX class there, a plain set here; in
newline-sensitive mode ``[^a]`` also excludes a newline there; and a pattern PostgreSQL rejects (a bound over
255, ``(?P<n>...)``, ``(?i:...)``, ...) fails the SQL query with 400 but is evaluated with Python's meaning here.

Assumed of the internal form: ``attrs`` maps IRIs to lists of instance dicts, sub-attributes are dicts.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache, partial
from typing import Any, Callable, Iterable, Sequence

from broker.errors import NgsiError
from broker.jsonld.context import Context

from .q import And, Exists, Match, Or, QExpr, Range, Term, Value, terms
from .scope import ScopeAnd, ScopeExpr, ScopeOr
from .sql import (MAX_TERMS, TEMPORAL, TIMESTAMPS, Target, _as_datetime, _as_datetime_value, alternatives,
                  normalise, resolve)

Test = Callable[[Any], bool]
Getter = Callable[[Any], Sequence[Any]]


@dataclass(frozen=True)
class EntityView:
    """What a matcher reads of an entity."""
    attrs: dict[str, list[dict]]  # {expanded attribute IRI: [instances]}, the internal form
    created_at: str  # ISO 8601 UTC text, as broker.model writes timestamps
    modified_at: str


Matcher = Callable[[EntityView], bool]


def q_matcher(expr: QExpr, ctx: Context) -> Matcher:
    """``expr`` compiled once (names expanded with ``ctx``); NgsiError as ``compile_q`` raises them."""
    if sum(1 for _ in terms(expr)) > MAX_TERMS:
        raise NgsiError("TooComplexQuery", f"q: more than {MAX_TERMS} query terms")
    return _logic(expr, ctx)


def scope_matcher(expr: ScopeExpr) -> Callable[[list[str] | None], bool]:
    """``expr`` as a test of an entity's scopes (None: no scope), as ``compile_scope_q``."""
    if isinstance(expr, (ScopeAnd, ScopeOr)):
        parts = [scope_matcher(item) for item in expr.items]
        combine = all if isinstance(expr, ScopeAnd) else any
        return lambda scopes: combine(part(scopes) for part in parts)
    if not expr.levels:  # "/#": any scope
        return lambda scopes: bool(scopes)
    if "+" not in expr.levels and not expr.descendants:
        plain = "/".join(expr.levels)
        wanted = frozenset(("/" + plain, plain))
        return lambda scopes: scopes is not None and not wanted.isdisjoint(scopes)
    # the SQL's regex ^/?levels(/.*)?$ (ARE: "." matches a newline, "$" only ends the string)
    body = "/".join("[^/]+" if level == "+" else re.escape(level) for level in expr.levels)
    full = re.compile(f"/?{body}{'(?:/.*)?' if expr.descendants else ''}", re.DOTALL).fullmatch
    return lambda scopes: scopes is not None and any(full(scope) for scope in scopes)


# ================================================================================================ logic

def _logic(expr: QExpr, ctx: Context) -> Matcher:
    if not isinstance(expr, (And, Or)):
        return _term(expr, ctx)
    parts = tuple(_logic(item, ctx) for item in expr.items)
    want = isinstance(expr, Or)  # the answer that decides

    def combined(entity: EntityView) -> bool:
        for part in parts:
            if part(entity) is want:
                return want
        return not want
    return combined


def _term(term: Term, ctx: Context) -> Matcher:
    """One term, dispatched as ``JsonPathLeaves.term`` does."""
    target = resolve(term.path, ctx)
    if target.column:
        return _column(target.column, term)
    if isinstance(term, Exists):
        found = _exists(target, ctx)
        return (lambda entity: not found(entity)) if term.negated else found
    if isinstance(term, Match):
        search = _pg_pattern(term.pattern).search
        places = _places(target, ctx, "~=", ())
        return _by_strings(target.iris, places, [lambda s: search(s) is not None], term.negated, regex=True)
    values = term.values
    if target.member in TIMESTAMPS:  # quoted DateTimes are DateTimes here
        values = tuple(_as_datetime_value(v) for v in values)
    places = _places(target, ctx, term.op, values)
    if all(_bound(v).kind not in TEMPORAL for v in values):
        return _by_values(target.iris, places, term.op == "!=")
    return _by_strings(target.iris, places, _temporal_tests(term.op, values), term.op == "!=", regex=False)


def _bound(value: Value | Range) -> Value:
    return value.low if isinstance(value, Range) else value


# ============================================================================================= places

@dataclass(frozen=True)
class _Place:
    """One ``Alt`` of the SQL: its values in an instance, their candidates, and the test of one candidate."""
    key: str | None  # the one member step of the common place (``."value"``), else None
    get: Getter
    test: Test | None  # None: the term has no number / string / boolean value

    def candidates(self, inst: Any) -> Sequence[Any]:
        return _candidates(self.get(inst))


def _places(target: Target, ctx: Context, op: str | None, values: tuple[Value | Range, ...]) -> list[_Place]:
    plain = _value_test(op, values, None) if values else None
    vocab = None
    places = []
    for alt in alternatives(target, ctx, op):
        if alt.vocab and values and vocab is None:
            vocab = _value_test(op, values, ctx)
        keys = _keys(alt.suffix)
        places.append(_Place(keys[0] if len(keys) == 1 else None, _getter(keys), vocab if alt.vocab else plain))
    return places


_STEP = re.compile(r'\.(?:(\*)|"((?:[^"\\]|\\u\{[0-9A-F]+\})*)")')  # ``.*`` or ``."key"`` as ``sql.jp_key`` writes it
_STEPS = re.compile(f"(?:{_STEP.pattern})*")
_ESCAPED = re.compile(r"\\u\{([0-9A-F]+)\}")


def _keys(suffix: str) -> tuple[str | None, ...]:
    """The member steps of a jsonpath suffix made by ``sql.alternatives`` (``None``: ``.*``)."""
    if not _STEPS.fullmatch(suffix):
        raise ValueError(f"unexpected jsonpath suffix {suffix!r}")
    return tuple(None if star else _ESCAPED.sub(lambda u: chr(int(u.group(1), 16)), key)
                 for star, key in _STEP.findall(suffix))


def _getter(keys: tuple[str | None, ...]) -> Getter:
    if len(keys) == 1 and keys[0] is not None:
        key = keys[0]
        return lambda inst: (inst[key],) if type(inst) is dict and key in inst else ()
    return lambda inst: _walk((inst,), keys)


def _walk(items: Iterable[Any], keys: Iterable[str | None]) -> list[Any]:
    """jsonpath lax member steps: on an array a step applies to its elements (one level)."""
    for key in keys:
        out: list[Any] = []
        for x in items:
            for d in (x if type(x) is list else (x,)):
                if type(d) is dict:
                    if key is None:
                        out.extend(d.values())
                    elif key in d:
                        out.append(d[key])
        items = out
    return list(items)


def _instances(attrs: dict[str, Any], iris: tuple[str, ...]) -> list[Any]:
    """``$."a"[*]."b"[*]``: the instances of an attribute or sub-attribute."""
    items: list[Any] = [attrs]
    for iri in iris:
        items = [y for x in _walk(items, (iri,)) for y in (x if type(x) is list else (x,))]
    return items


def _candidates(items: Sequence[Any]) -> Sequence[Any]:
    """``[*]`` then the filter's unwrap: arrays opened two levels deep."""
    if len(items) == 1 and type(items[0]) is not list:
        return items
    out: list[Any] = []
    for x in items:
        if type(x) is list:
            for y in x:
                out.extend(y) if type(y) is list else out.append(y)
        else:
            out.append(x)
    return out


def _any_instance(iris: tuple[str, ...], hit: Test) -> Matcher:
    if len(iris) > 1:
        return lambda entity: any(hit(inst) for inst in _instances(entity.attrs, iris))
    iri = iris[0]

    def match(entity: EntityView) -> bool:
        insts = entity.attrs.get(iri)
        if type(insts) is not list:
            return insts is not None and hit(insts)
        for inst in insts:
            if hit(inst):
                return True
        return False
    return match


# ============================================================================================== terms

def _exists(target: Target, ctx: Context) -> Matcher:
    if target.member is None and target.trailing is None:
        if len(target.iris) == 1:
            iri = target.iris[0]
            return lambda entity: iri in entity.attrs
        return lambda entity: bool(_instances(entity.attrs, target.iris))
    getters = [place.get for place in _places(target, ctx, None, ())]
    return _any_instance(target.iris, lambda inst: any(get(inst) for get in getters))


def _by_values(iris: tuple[str, ...], places: list[_Place], unequal: bool) -> Matcher:
    """Number / string / boolean values: ``JsonPathLeaves.native``."""
    members = [(place.key, place.test) for place in places if place.key is not None and place.test is not None]
    others = [(place.candidates, place.test) for place in places if place.key is None and place.test is not None]

    def hit(inst: Any) -> bool:
        if type(inst) is dict:
            for key, test in members:  # the common places inline: most instances lack most of them
                if key in inst:
                    value = inst[key]
                    for c in _candidates((value,)) if type(value) is list else (value,):
                        if test(c):
                            return True
        for candidates, test in others:
            for c in candidates(inst):
                if test(c):
                    return True
        return False

    def differs(inst: Any) -> bool:  # a place with values (maybe []), none equal
        for place in places:
            if place.get(inst) and not any(place.test(c) for c in place.candidates(inst)):  # type: ignore[misc]
                return True
        return False
    return _any_instance(iris, differs if unequal else hit)


def _by_strings(iris: tuple[str, ...], places: list[_Place], tests: list[Callable[[str], bool]], negated: bool, *,
                regex: bool) -> Matcher:
    """Candidate strings tested in Python (temporal values, regex) or a value: ``JsonPathLeaves.candidates``."""
    def found(inst: Any) -> bool:
        for place in places:
            for c in place.candidates(inst):
                s = _string_of(c)
                if s is not None and any(test(s) for test in tests):
                    return True
                if place.test is not None and place.test(c):
                    return True
        return False

    def has(inst: Any) -> bool:
        if regex:
            return any(_stringish(c) for place in places for c in place.candidates(inst))
        return any(place.get(inst) for place in places)
    return _any_instance(iris, (lambda inst: has(inst) and not found(inst)) if negated else found)


def _string_of(c: Any) -> str | None:
    """The string a candidate stands for (the SQL's ``_STRING_OF``)."""
    if type(c) is str:
        return c
    if type(c) is dict:
        for key in ("@value", "@id"):
            if type(c.get(key)) is str:
                return c[key]
    return None


def _stringish(c: Any) -> bool:
    """The SQL's ``_STRINGS`` filter: a string, or a string ``@value`` / ``@id`` (of array elements too)."""
    if type(c) is str:
        return True
    return any(type(d) is dict and (type(d.get("@value")) is str or type(d.get("@id")) is str)
               for d in (c if type(c) is list else (c,)))


# ========================================================================== numbers, strings, booleans

_KIND = {bool: "boolean", int: "number", float: "number", str: "string"}
_BIG = float(2 ** 53)  # below it a float and an int compare the same as their decimals do
_FLIPPED = {"==": operator.eq, ">": operator.lt, ">=": operator.le, "<": operator.gt, "<=": operator.ge}


def _numeric(x: Any) -> Any:
    """A JSON number as PostgreSQL ``numeric`` has it: a large float becomes the decimal of its repr."""
    return Decimal(repr(x)) if type(x) is float and not -_BIG < x < _BIG else x


def _conditions(op: str | None, values: tuple[Value | Range, ...],
                ctx: Context | None) -> dict[str, list[tuple[Test, ...]]]:
    """``sql._filter`` as {kind: [conjunction of comparisons]} (ctx: the VocabProperty place)."""
    cmp = "==" if op == "!=" else op
    conds: dict[str, list[tuple[Test, ...]]] = {}
    equal: dict[str, set[Any]] = {}
    for value in values:
        kind = _bound(value).kind
        if kind in TEMPORAL:
            continue
        if isinstance(value, Range):
            low, high = _operand(value.low, ctx), _operand(value.high, ctx)
            conds.setdefault(kind, []).append((partial(operator.le, low), partial(operator.ge, high)))
        elif cmp == "==":
            equal.setdefault(kind, set()).add(_operand(value, ctx))
        else:
            conds.setdefault(kind, []).append((_compare(cmp or "==", _operand(value, ctx)),))
    for kind, group in equal.items():
        conds.setdefault(kind, []).append((frozenset(group).__contains__,))
    return conds


def _operand(value: Value, ctx: Context | None) -> Any:
    if value.kind == "number":
        return _numeric(value.value)
    if ctx is not None and value.kind == "string":  # 4.9: a VocabProperty is compared with expanded strings
        expanded = ctx.expand_vocab(value.value)  # type: ignore[arg-type]
        return expanded if isinstance(expanded, str) else value.value
    return value.value


def _compare(op: str, operand: Any) -> Test:
    """``x op operand`` as a C-level call: ``operand flipped-op x``."""
    return partial(_FLIPPED[op], operand)


def _value_test(op: str | None, values: tuple[Value | Range, ...], ctx: Context | None) -> Test | None:
    """Does one candidate match (``sql._filter``: ``@``, ``@."@value"``, strings also ``@."@id"``)?"""
    conds = _conditions(op, values, ctx)
    if not conds:
        return None
    by_type = {t: _any_conjunction(conds[kind]) for t, kind in _KIND.items() if kind in conds}
    string = by_type.get(str)

    def scalar(x: Any) -> bool:
        pred = by_type.get(type(x))
        if pred is None:
            return False
        return pred(Decimal(repr(x)) if type(x) is float and not -_BIG < x < _BIG else x)  # _numeric, inlined

    def test(c: Any) -> bool:
        if type(c) is dict:
            return ("@value" in c and scalar(c["@value"])) or (
                string is not None and type(c.get("@id")) is str and string(c["@id"]))
        if type(c) is list:
            return _deep(c, conds)
        return scalar(c)
    return test


def _any_conjunction(group: list[tuple[Test, ...]]) -> Test:
    if len(group) == 1 and len(group[0]) == 1:
        return group[0][0]
    return lambda x: any(all(cmp(x) for cmp in conj) for conj in group)


def _deep(c: list[Any], conds: dict[str, list[tuple[Test, ...]]]) -> bool:
    """A candidate that is an array: lax ``e.type() == kind && e op $v`` with ``e`` = ``@."@value"`` (or
    ``@."@id"``) on its elements; each test of the conjunction may hold for a different element."""
    for kind, group in conds.items():
        for key in ("@value", "@id") if kind == "string" else ("@value",):
            seq = [d[key] for d in c if type(d) is dict and key in d]
            if not any(_KIND.get(type(x)) == kind for x in seq):
                continue
            flat = [_numeric(y) for x in seq for y in (x if type(x) is list else (x,)) if _KIND.get(type(y)) == kind]
            if any(all(any(cmp(y) for y in flat) for cmp in conj) for conj in group):
                return True
    return False


# ============================================================================================ temporal

_SHAPES = {  # sql._SHAPES: PostgreSQL "$" ends the string, as fullmatch
    "datetime": re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:[.,][0-9]{1,9})?Z").fullmatch,
    "date": re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}").fullmatch,
    "time": re.compile(r"[0-9]{2}:[0-9]{2}:[0-9]{2}(?:[.,][0-9]{1,9})?Z?").fullmatch,
}


def _normal(kind: str, s: str) -> str:
    """sql._NORMAL: fixed-width text whose order is the time order (s has the kind's shape)."""
    if kind == "date":
        return s
    width = 19 if kind == "datetime" else 8
    return s[:width] + s[width + 1:].rstrip("Z").ljust(9, "0")


def _temporal_tests(op: str, values: tuple[Value | Range, ...]) -> list[Callable[[str], bool]]:
    """``JsonPathLeaves._temporal_preds``: tests of a candidate string against the temporal values."""
    tests = []
    equal: dict[str, set[str]] = {}
    for value in values:
        kind = _bound(value).kind
        if kind not in TEMPORAL:
            continue
        if isinstance(value, Range):
            tests.append(_temporal(kind, lambda n, lo=normalise(value.low), hi=normalise(value.high): lo <= n <= hi))
        elif op in ("==", "!="):
            equal.setdefault(kind, set()).add(normalise(value))
        else:
            tests.append(_temporal(kind, _compare(op, normalise(value))))
    for kind, texts in equal.items():
        tests.append(_temporal(kind, frozenset(texts).__contains__))
    return tests


def _temporal(kind: str, test: Callable[[str], bool]) -> Callable[[str], bool]:
    shape = _SHAPES[kind]
    return lambda s: shape(s) is not None and test(_normal(kind, s))


# ====================================================================================== entity columns

def _column(column: str, term: Term) -> Matcher:
    """createdAt / modifiedAt of the entity (``JsonPathLeaves.column``): always there, DateTime only."""
    if isinstance(term, (Exists, Match)):
        answer = isinstance(term, Exists) and not term.negated
        return lambda entity: answer
    read = operator.attrgetter(column)
    tests: list[Test] = []
    for value in term.values:
        if isinstance(value, Range):
            low, high = _as_datetime(value.low), _as_datetime(value.high)
            if low and high:
                lo, hi = _literal_instant(low), _literal_instant(high)
                tests.append(lambda at, lo=lo, hi=hi: lo <= at <= hi)
        elif text := _as_datetime(value):
            tests.append(_compare("==" if term.op == "!=" else term.op, _literal_instant(text)))
    negated = term.op == "!="
    return lambda entity: any(test(_stored_instant(read(entity))) for test in tests) != negated


def _seconds(text: str) -> int:
    day = date(int(text[0:4]), int(text[5:7]), int(text[8:10])).toordinal()
    return ((day * 24 + int(text[11:13])) * 60 + int(text[14:16])) * 60 + int(text[17:19])


def _literal_instant(text: str) -> int:
    """Microseconds of a DateTime literal as ``::timestamptz`` reads it."""
    fraction = text[20:-1]
    micros = round(float("0." + fraction) * 1_000_000) if fraction else 0  # rint(strtod(".f") * 1e6)
    return _seconds(text) * 1_000_000 + micros


@lru_cache(maxsize=4096)
def _stored_instant(text: str) -> int:
    """Microseconds of an entity timestamp (``YYYY-MM-DDThh:mm:ss[.f]Z``, truncated as ``model.to_datetime``)."""
    fraction = text[20:].rstrip("Z") if text[19:20] in (".", ",") else ""
    return _seconds(text) * 1_000_000 + int(fraction[:6].ljust(6, "0"))


# =============================================================================================== regex

_LEADING_FLAGS = re.compile(r"\(\?([a-zA-Z]+)\)")
_HEX = re.compile(r"[0-9A-Fa-f]+")
_OUTSIDE = {"b": "\\x08", "B": "\\\\", "d": "[0-9]", "D": "[^0-9]"}  # ARE escapes Python reads otherwise
_IN_SET = {"d": "0-9"}


@lru_cache(maxsize=1024)
def _pg_pattern(pattern: str) -> re.Pattern[str]:
    """A pattern accepted by ``q.check_pattern``, compiled to search as PostgreSQL's ARE does (module doc)."""
    flags = _LEADING_FLAGS.match(pattern)
    newline_sensitive = flags is not None and "m" in flags.group(1)  # ARE "m" = "n"; Python's MULTILINE is close
    out: list[str] = []
    i, set_end = 0, -1  # set_end: the "]" closing the bracket expression we are in (or were last in)
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            text, i = _escape(pattern, i + 1, _IN_SET if i < set_end else _OUTSIDE)
            out.append(text)
            continue
        if c == "[" and i > set_end:
            set_end = _set_end(pattern, i)
        out.append("\\Z" if c == "$" and i > set_end and not newline_sensitive else c)
        i += 1
    mode = 0 if newline_sensitive else re.DOTALL
    try:
        return re.compile("".join(out), mode)
    except re.error:  # a translation Python refuses: the pattern as written
        return re.compile(pattern, mode)


def _escape(pattern: str, at: int, table: dict[str, str]) -> tuple[str, int]:
    """The escape at ``pattern[at]`` (after its backslash) and where the pattern goes on."""
    c = pattern[at]
    if c == "x":  # ARE: every following hex digit
        digits = _HEX.match(pattern, at + 1)
        if digits and len(digits.group()) > 2 and int(digits.group(), 16) <= 0x10FFFF:
            return f"\\U{int(digits.group(), 16):08X}", digits.end()
    return table.get(c, "\\" + c), at + 1


def _set_end(pattern: str, start: int) -> int:
    """The index of the ``]`` closing the bracket expression at ``start`` (``q.scan_regex``'s rule)."""
    j = start + 1
    j += pattern.startswith("^", j)
    j += pattern.startswith("]", j)
    while j < len(pattern) and pattern[j] != "]":
        j += 2 if pattern[j] == "\\" else 1
    return j
