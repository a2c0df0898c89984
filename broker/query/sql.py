"""``q`` AST -> one parameterised PostgreSQL boolean over a row of ``{schema}.entities`` (GS CIM 009 4.9).

Structure: ``QCompiler`` does the logic (AND / OR / parentheses) and hands every term to a leaf strategy;
``JsonPathLeaves`` is the one used today. An index-aware strategy (expression indexes, a side table of typed
values) can replace it without touching the parser or the logic: it only has to implement ``term``.
``resolve`` (name expansion, members, entity columns) is shared by every strategy.

What a term means (4.9), as ``JsonPathLeaves`` compiles it:

* The first name is the attribute (expanded with the request's @context), further dotted names are
  sub-attributes -- or, last, a member: ``observedAt``, ``unitCode``, ``datasetId``, ``createdAt``,
  ``modifiedAt``. A lone ``createdAt`` / ``modifiedAt`` is the entity's own timestamp (columns).
* Target value, by instance type: Property/GeoProperty ``value``, ListProperty ``valueList``, JsonProperty
  ``json``, Relationship ``object``, ListRelationship ``objectList``, VocabProperty ``vocab`` (compared with
  the query strings expanded by ``ctx.expand_vocab``), LanguageProperty the values of ``languageMap`` (all
  languages, or the one named by ``[lang]``; ``[*]`` = all). A ``[a.b]`` trailing path goes into the value:
  keys expanded for Property/ListProperty (they are stored expanded), raw for JsonProperty/GeoProperty.
* An entity matches when ANY instance (any datasetId) matches. The candidates of an instance are the target
  value and, if it is an array, its elements, two levels deep (jsonpath lax mode unwraps once for ``[*]`` and
  once in the filter; JSON-LD itself flattens nested arrays entirely); a value object (``{"@value": ...}``,
  ``{"@id": ...}``) stands for its ``@value`` / ``@id``.
* ``==`` (value, list, range): some candidate equals some value / lies in the range, with equal JSON types
  (a number never equals a numeric string). ``!=``: the instance has the target value and no candidate is
  ``==`` -- so a different type is unequal. ``> >= < <=``: some candidate of the same type compares so;
  never on Relationship / ListRelationship. Strings compare by code point.
* DateTime / Date / Time values compare as instants: with a typed value's ``@value`` or a plain string of
  the same ISO 8601 shape (fractions of any length are normalised to 9 digits, so the text order is the
  time order).
* ``~=``: some string candidate contains a match of the pattern (PostgreSQL ARE ``~``: a search; anchor with
  ``^...$``); ``!~=``: the instance has string candidates and none matches. Not on relationships.

SQL: number / string / boolean terms are one ``jsonb_path_exists(attrs, path, vars)``; DateTime / Date /
Time and regex terms pull candidates with ``jsonb_path_query`` and compare them in SQL (jsonpath's
``.datetime()`` differs between PostgreSQL 15 and 18 and cannot take a regex from a variable). The jsonpath
text is itself a bind parameter: user values only ever travel in the ``vars`` jsonb or as SQL parameters;
names (IRIs, keys, language tags) are quoted as jsonpath strings with everything but printable ASCII
escaped. Nothing user-given is spliced into the SQL text, whose shape depends only on the query's shape.
Comparisons never raise at run time (type mismatches are just false), except an invalid regex in
PostgreSQL's dialect: map it with ``database_error``. The caller's statement_timeout bounds the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

from broker.errors import NgsiError, bad_request
from broker.jsonld.context import Context

from .fast import bounded_range, fast_condition, json_text, literal, lower_bound, rare_predicate, upper_bound
from .indexspec import IndexSpec
from .q import DATETIME, And, Exists, Match, Or, Path, QExpr, Range, Term, Value, temporal_problem, terms

NGSI_LD = "https://uri.etsi.org/ngsi-ld/"
MEMBERS = {NGSI_LD + m: m for m in ("observedAt", "unitCode", "datasetId", "createdAt", "modifiedAt")}
COLUMNS = {NGSI_LD + "createdAt": "created_at", NGSI_LD + "modifiedAt": "modified_at"}
MAX_TERMS = 256
MAX_KEY = 2048
TEMPORAL = ("datetime", "date", "time")
TIMESTAMPS = ("observedAt", "createdAt", "modifiedAt")

# candidate strings: shape checks and normalisation to fixed-width text ({s} is a text expression)
_SHAPES = {
    "datetime": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}([.,][0-9]{1,9})?Z$",
    "date": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
    "time": r"^[0-9]{2}:[0-9]{2}:[0-9]{2}([.,][0-9]{1,9})?Z?$",
}
_NORMAL = {
    "datetime": "(left({s}, 19) || rpad(substring({s}, '^.{{19}}[.,]?([0-9]*)Z$'), 9, '0'))",
    "date": "{s}",
    "time": "(left({s}, 8) || rpad(substring({s}, '^.{{8}}[.,]?([0-9]*)Z?$'), 9, '0'))",
}
_STRING_OF = ("CASE WHEN jsonb_typeof(c.v) = 'string' THEN c.v #>> '{}' "  # the string a candidate stands for
              "WHEN jsonb_typeof(c.v -> '@value') = 'string' THEN c.v ->> '@value' "
              "WHEN jsonb_typeof(c.v -> '@id') = 'string' THEN c.v ->> '@id' END")
_STRINGS = ' ? (@.type() == "string" || @."@value".type() == "string" || @."@id".type() == "string")'
_SQL_OP = {"==": "=", "!=": "=", ">": ">", ">=": ">=", "<": "<", "<=": "<="}


def compile_q(expr: QExpr, ctx: Context, args: list[Any], specs: list[IndexSpec] | None = None) -> str:
    """SQL boolean (never NULL) for ``expr``; bind values are appended to ``args`` and used as ``$len(args)``.

    With ``specs`` (a list to fill), the commonest terms take their index-backed form (``broker.query.fast``)
    and the indexes that form can use are appended to ``specs``.
    """
    if specs is not None:
        return compile_indexed_q(expr, ctx, args, specs)[0]
    _check_size(expr)
    return QCompiler(JsonPathLeaves(ctx, args)).compile(expr)


def compile_indexed_q(expr: QExpr, ctx: Context, args: list[Any], specs: list[IndexSpec]) -> tuple[str, bool]:
    """``compile_q`` with index-backed terms, and whether those decide the whole of ``expr``: every row it
    matches is found through some index (a conjunction with such a term, a disjunction of such terms), so the
    caller can let PostgreSQL start from the indexes rather than walk an entity type in id order."""
    _check_size(expr)
    leaves = IndexedLeaves(ctx, args, specs)
    sql = QCompiler(leaves).compile(expr)
    return sql, index_served(expr, leaves.served)


def _check_size(expr: QExpr) -> None:
    if sum(1 for _ in terms(expr)) > MAX_TERMS:
        raise NgsiError("TooComplexQuery", f"q: more than {MAX_TERMS} query terms")


def index_served(expr: QExpr, served: set[int]) -> bool:
    """Whether the terms in ``served`` (their ``id()``s) decide every match of ``expr`` (see above)."""
    if isinstance(expr, Or):
        return all(index_served(item, served) for item in expr.items)
    if isinstance(expr, And):
        return any(index_served(item, served) for item in expr.items)
    return id(expr) in served


def database_error(exc: BaseException) -> NgsiError | None:
    """The 400 answer for a database error a compiled ``q`` can cause (a regex PostgreSQL rejects), or None."""
    if getattr(exc, "sqlstate", None) == "2201B":
        return bad_request(f"q: invalid regular expression (PostgreSQL ARE syntax): {exc}")
    return None


class LeafStrategy(Protocol):
    def term(self, term: Term) -> str: ...


class QCompiler:
    """The logical structure; leaves come from the strategy."""

    def __init__(self, leaves: LeafStrategy) -> None:
        self.leaves = leaves

    def compile(self, expr: QExpr) -> str:
        if isinstance(expr, Or):
            return "(" + " OR ".join(self.compile(item) for item in expr.items) + ")"
        if isinstance(expr, And):
            ranges = getattr(self.leaves, "ranges", None)  # index-backed leaves merge a term pair into one
            merged, rest = ranges(expr.items) if ranges is not None else ([], expr.items)
            return "(" + " AND ".join(merged + [self.compile(item) for item in rest]) + ")"
        return self.leaves.term(expr)


# ============================================================================================ resolution

@dataclass(frozen=True)
class Target:
    """What a path names: an entity ``column``, or the instances at ``iris`` (attribute, sub-attributes),
    optionally their ``member`` (observedAt, ...), with the raw ``trailing`` path."""
    column: str | None = None
    iris: tuple[str, ...] = ()
    member: str | None = None
    trailing: tuple[str, ...] | None = None


def resolve(path: Path, ctx: Context) -> Target:
    """Expand the names of a path (clause 5.5.7) and find what it designates."""
    iris: list[str] = []
    last = len(path.names) - 1
    for k, name in enumerate(path.names):
        iri = ctx.expand_term(name)
        if not isinstance(iri, str) or iri.startswith("@"):
            raise bad_request(f"q: {name!r} cannot be queried")
        if k == 0 and k == last and iri in COLUMNS:
            if path.trailing is not None:
                raise bad_request(f"q: {name} has no '[...]' path")
            return Target(column=COLUMNS[iri])
        if k > 0 and iri in MEMBERS:
            if k != last or path.trailing is not None:
                raise bad_request(f"q: {name} is a member: it has no sub-attributes or '[...]' path")
            return Target(iris=tuple(iris), member=MEMBERS[iri])
        iris.append(iri)
    return Target(iris=tuple(iris), trailing=path.trailing)


@lru_cache(maxsize=4096)  # the same few names in every query; a bad one raises, which is not cached
def jp_key(key: str) -> str:
    """A name as a jsonpath string literal: printable ASCII but '"' and '\\' kept, all else \\u{...}."""
    if not key or len(key) > MAX_KEY:
        raise bad_request("q: a name in the query is empty or too long")
    out = []
    for ch in key:
        code = ord(ch)
        if code < 0x20 or code == 0x7F or 0xD800 <= code <= 0xDFFF:
            raise bad_request(f"q: invalid character U+{code:04X} in the name {key!r}")
        out.append(ch if code < 0x7F and ch not in '"\\' else f"\\u{{{code:X}}}")
    return '"' + "".join(out) + '"'


@dataclass(frozen=True)
class Alt:
    """One place where target values live in an instance: ``@`` + ``suffix`` (e.g. ``."value"."k"``).

    Each instance type keeps its target value under its own member (4.9 / 5.2), so the member selects the
    type; Property and GeoProperty share ``value`` and differ only in how trailing keys are spelled
    (expanded vs raw), which the stored keys themselves tell apart.
    """
    suffix: str
    vocab: bool = False


def alternatives(target: Target, ctx: Context, op: str | None) -> list[Alt]:
    """Where an instance's target values may be, for op (None: existence)."""
    if target.member:
        return [Alt("." + jp_key(target.member))]
    tr = target.trailing
    alts: list[Alt] = []
    if tr != ("*",):
        expanded = "".join("." + jp_key(_expand_key(ctx, seg)) for seg in tr or ())
        raw = "".join("." + jp_key(seg) for seg in tr or ())
        alts += [Alt('."value"' + expanded), Alt('."valueList"' + expanded), Alt('."json"' + raw)]
        if raw != expanded:
            alts.append(Alt('."value"' + raw))  # GeoProperty (GeoJSON is stored as given)
    if tr is None or tr == ("*",):
        alts.append(Alt('."languageMap".*'))
    elif len(tr) == 1:
        alts.append(Alt('."languageMap".' + jp_key(tr[0])))
    if tr is None:
        alts.append(Alt('."vocab"', vocab=True))
        if op in (None, "==", "!="):  # 4.9: relationships only match == and !=
            alts += [Alt('."object"'), Alt('."objectList"')]
    return alts


def _expand_key(ctx: Context, key: str) -> str:
    iri = ctx.expand_term(key)
    return iri if isinstance(iri, str) and not iri.startswith("@") else key


def instances_path(iris: tuple[str, ...]) -> str:
    return "$" + "".join(f".{jp_key(iri)}[*]" for iri in iris)


class _Vars:
    """The jsonpath variables of one term: one jsonb parameter, allocated when first referenced."""

    def __init__(self, args: list[Any]) -> None:
        self.args = args
        self.values: dict[str, Any] = {}
        self.names: dict[str, str] = {}
        self.index: int | None = None

    def name(self, value: Any) -> str:
        key = json_text(value)  # 1 and 1.0 or true stay apart
        if key not in self.names:
            self.names[key] = f"v{len(self.values)}"
            self.values[self.names[key]] = value
        return "$" + self.names[key]

    def ref(self) -> str:
        if self.index is None:
            self.args.append(None)
            self.index = len(self.args) - 1
        return f"${self.index + 1}::text::jsonb"

    def close(self) -> None:
        if self.index is not None:
            self.args[self.index] = json_text(self.values)


# ============================================================================================== leaves

class JsonPathLeaves:
    """Terms as SQL/JSON path tests on the ``attrs`` column (see the module doc)."""

    def __init__(self, ctx: Context, args: list[Any]) -> None:
        self.ctx = ctx
        self.args = args

    def param(self, value: Any, cast: str = "text") -> str:
        self.args.append(value)
        return f"${len(self.args)}::{cast}"

    def path(self, text: str) -> str:
        return self.param(text) + "::jsonpath"

    def term(self, term: Term) -> str:
        target = resolve(term.path, self.ctx)
        if target.column:
            return self.column(target.column, term)
        if isinstance(term, Exists):
            sql = self.exists(target)
            return f"NOT {sql}" if term.negated else sql
        if isinstance(term, Match):
            return self.candidates(target, "~=", (), term.pattern, term.negated)
        values = term.values
        if target.member in TIMESTAMPS:  # quoted DateTimes are DateTimes here, as for the columns
            values = tuple(_as_datetime_value(v) for v in values)
        if all(isinstance(v, Value) and v.kind not in TEMPORAL for v in self._flat_values(values)):
            return self.native(target, term.op, values)
        return self.candidates(target, term.op, values, None, term.op == "!=")

    @staticmethod
    def _flat_values(values: tuple[Value | Range, ...]) -> list[Value]:
        return [b for v in values for b in ((v.low, v.high) if isinstance(v, Range) else (v,))]

    # ---------------------------------------------------------------------------------- existence
    def exists(self, target: Target) -> str:
        if target.member is None and target.trailing is None and len(target.iris) == 1:
            return f"(attrs ? {self.param(target.iris[0])})"
        path = instances_path(target.iris)
        if target.trailing is not None or target.member:
            alts = alternatives(target, self.ctx, None)
            path += " ? (" + " || ".join(f"exists(@{alt.suffix})" for alt in alts) + ")"
        return f"jsonb_path_exists(attrs, {self.path(path)})"

    # ---------------------------------------------------------------------------------- jsonpath-only
    def native(self, target: Target, op: str, values: tuple[Value | Range, ...]) -> str:
        variables = _Vars(self.args)
        tests = []
        for alt in alternatives(target, self.ctx, op):
            found = self._filter(alt, op, values, variables)
            if found:
                match = f"exists(@{found})"
                tests.append(f"(exists(@{alt.suffix}) && !{match})" if op == "!=" else match)
        if not tests:
            return "FALSE"
        path = instances_path(target.iris) + " ? (" + " || ".join(tests) + ")"
        sql = f"jsonb_path_exists(attrs, {self.path(path)}, {variables.ref()})"
        variables.close()
        return sql

    def _filter(self, alt: Alt, op: str, values: tuple[Value | Range, ...], variables: _Vars) -> str:
        """``<suffix>[*] ? (...)``: the candidates matching a non-temporal value ('' if there is none).

        The values of a list are grouped by kind into one array variable each: in lax mode ``@ == $v`` compares
        with every element of the array ``$v``, so the path does not grow with the list.
        """
        cmp = "==" if op == "!=" else op
        conds: list[str] = []
        by_kind: dict[str, list[Value]] = {}
        for value in values:
            low = value.low if isinstance(value, Range) else value
            if low.kind in TEMPORAL:
                continue
            if isinstance(value, Range):
                lo, hi = self._var(variables, value.low, alt), self._var(variables, value.high, alt)
                conds += [f'({e}.type() == "{low.kind}" && {e} >= {lo} && {e} <= {hi})' for e in _items(low.kind)]
            else:
                by_kind.setdefault(value.kind, []).append(value)
        for kind, group in by_kind.items():
            var = self._var(variables, group[0], alt) if len(group) == 1 else self._vars(variables, group, alt)
            conds += [f'({e}.type() == "{kind}" && {e} {cmp} {var})' for e in _items(kind)]
        return f"{alt.suffix}[*] ? ({' || '.join(conds)})" if conds else ""

    def _vars(self, variables: _Vars, group: list[Value], alt: Alt) -> str:
        return variables.name([self._item(v, alt) for v in group])

    def _var(self, variables: _Vars, value: Value, alt: Alt) -> str:
        return variables.name(self._item(value, alt))

    def _item(self, value: Value, alt: Alt) -> Any:
        """The JSON value compared with: VocabProperty targets get query strings expanded (4.9)."""
        if alt.vocab and value.kind == "string":
            expanded = self.ctx.expand_vocab(value.value)  # type: ignore[arg-type]
            return expanded if isinstance(expanded, str) else value.value
        return value.value

    # ---------------------------------------------------------------------------------- SQL candidates
    def candidates(self, target: Target, op: str, values: tuple[Value | Range, ...], pattern: str | None,
                   negated: bool) -> str:
        """Candidate strings compared in SQL (temporal values, regexes), OR the native rest; per instance when
        negated (``!=`` / ``!~=``: "has target values and none matches"), else over all instances at once."""
        alts = alternatives(target, self.ctx, op)
        if not alts:
            return "FALSE"
        source, root = ("i.x", "$") if negated else ("attrs", instances_path(target.iris))
        found = []
        preds = [self._pattern_pred(pattern)] if pattern is not None else self._temporal_preds(op, values)
        if preds:
            union = " UNION ALL ".join(
                f"SELECT jsonb_path_query({source}, {self.path(root + a.suffix + '[*]' + _STRINGS)})" for a in alts)
            found.append(f"EXISTS (SELECT 1 FROM ({union}) AS c(v), LATERAL (SELECT {_STRING_OF}) AS t(s) "
                         f"WHERE {' OR '.join(preds)})")
        variables = _Vars(self.args)
        filters = [f for a in alts if (f := self._filter(a, op, values, variables))]
        if filters:
            path = root + " ? (" + " || ".join(f"exists(@{f})" for f in filters) + ")"
            found.append(f"jsonb_path_exists({source}, {self.path(path)}, {variables.ref()})")
        variables.close()
        test = " OR ".join(found)
        if negated:
            strings = "[*]" + _STRINGS if pattern is not None else ""
            has = "$ ? (" + " || ".join(f"exists(@{a.suffix}{strings})" for a in alts) + ")"
            test = (f"EXISTS (SELECT 1 FROM jsonb_path_query(attrs, {self.path(instances_path(target.iris))}) "
                    f"AS i(x) WHERE jsonb_path_exists(i.x, {self.path(has)}) AND NOT ({test}))")
        # the key test first: it costs far less than the subqueries, and many rows lack the attribute
        return f"(attrs ? {self.param(target.iris[0])} AND ({test}))"

    def _pattern_pred(self, pattern: str) -> str:
        return f"t.s ~ {self.param(pattern)}"

    def _temporal_preds(self, op: str, values: tuple[Value | Range, ...]) -> list[str]:
        """SQL tests of the candidate string ``t.s`` against the temporal values."""
        preds: list[str] = []
        equal: dict[str, list[str]] = {}
        for value in values:
            low = value.low if isinstance(value, Range) else value
            if low.kind not in TEMPORAL:
                continue
            normal = _NORMAL[low.kind].format(s="t.s") + ' COLLATE "C"'
            if isinstance(value, Range):
                cmp = (f"{normal} >= {self.param(normalise(value.low))} AND "
                       f"{normal} <= {self.param(normalise(value.high))}")
            elif op in ("==", "!="):
                equal.setdefault(low.kind, []).append(normalise(value))
                continue
            else:
                cmp = f"{normal} {_SQL_OP[op]} {self.param(normalise(value))}"
            preds.append(f"(t.s ~ '{_SHAPES[low.kind]}' AND {cmp})")
        for kind, texts in equal.items():
            normal = _NORMAL[kind].format(s="t.s") + ' COLLATE "C"'
            preds.append(f"(t.s ~ '{_SHAPES[kind]}' AND {normal} = ANY({self.param(texts, 'text[]')}))")
        return preds

    # ---------------------------------------------------------------------------------- entity columns
    def column(self, column: str, term: Term) -> str:
        """createdAt / modifiedAt of the entity: always present, DateTime only."""
        if isinstance(term, Exists):
            return "FALSE" if term.negated else "TRUE"
        if isinstance(term, Match):
            return "FALSE"
        conds = []
        for value in term.values:
            if isinstance(value, Range):
                if _as_datetime(value.low) and _as_datetime(value.high):
                    conds.append(f"({column} >= {self.param(_as_datetime(value.low))}::timestamptz AND "
                                 f"{column} <= {self.param(_as_datetime(value.high))}::timestamptz)")
            elif _as_datetime(value):
                conds.append(f"{column} {_SQL_OP[term.op]} {self.param(_as_datetime(value))}::timestamptz")
        sql = "(" + " OR ".join(conds) + ")" if conds else "FALSE"
        return f"NOT {sql}" if term.op == "!=" else sql


def _items(kind: str) -> tuple[str, ...]:
    """Inside a candidate filter: the element, its @value, and (strings) its @id."""
    return ("@", '@."@value"', '@."@id"') if kind == "string" else ("@", '@."@value"')


def _as_datetime(value: Value) -> str | None:
    """A DateTime literal, or a quoted string that is one (columns only), as text PostgreSQL casts safely."""
    if value.kind == "datetime":
        return str(value.value)
    if value.kind == "string" and DATETIME.fullmatch(str(value.value)) and not temporal_problem(
            "datetime", str(value.value)):
        return str(value.value)
    return None


def _as_datetime_value(value: Value | Range) -> Value | Range:
    if isinstance(value, Range):
        low, high = _as_datetime_value(value.low), _as_datetime_value(value.high)
        return Range(low, high) if low.kind == high.kind else value  # type: ignore[arg-type]
    text = _as_datetime(value)
    return Value("datetime", text) if text is not None else value


def normalise(value: Value) -> str:
    """A temporal literal as the fixed-width text ``_NORMAL`` makes of stored strings."""
    text = str(value.value)
    if value.kind == "date":
        return text
    width = 19 if value.kind == "datetime" else 8
    fraction = text[width:].lstrip(".,").rstrip("Z")
    return text[:width] + fraction.ljust(9, "0")


class IndexedLeaves(JsonPathLeaves):
    """The index-backed form where ``broker.query.fast`` has one (exact: it falls back per row), else the
    jsonpath form."""

    def __init__(self, ctx: Context, args: list[Any], specs: list[IndexSpec]) -> None:
        super().__init__(ctx, args)
        self.specs = specs
        self.served: set[int] = set()  # id() of the terms given the index-backed form

    def term(self, term: Term) -> str:
        iri = self._simple_iri(term)
        found = fast_condition(term, iri, self.param) if iri is not None else None
        if found is None:
            return super().term(term)
        return self._with_fallback(iri, found, [term])  # type: ignore[arg-type]

    def ranges(self, items: tuple[QExpr, ...]) -> tuple[list[str], list[QExpr]]:
        """Merge each ``attr >/>= low`` with an ``attr </<= high`` of the same conjunction into one index range;
        (the merged conditions, the items left)."""
        rest = list(items)
        merged = []
        for low_term in items:
            low = lower_bound(low_term)
            iri = self._simple_iri(low_term) if low is not None else None
            if iri is None or low_term not in rest:
                continue
            high_term = next((t for t in rest if upper_bound(t) is not None and self._simple_iri(t) == iri), None)
            if high_term is None:
                continue
            found = bounded_range(iri, low, upper_bound(high_term), self.param)  # type: ignore[arg-type]
            if found is None:
                continue
            rest.remove(low_term)
            rest.remove(high_term)
            merged.append(self._with_fallback(iri, found, [low_term, high_term]))
        return merged, rest

    def _simple_iri(self, term: Any) -> str | None:
        """The attribute IRI of a term on a top-level attribute's value, else None."""
        target = resolve(term.path, self.ctx)
        if target.column or target.member or target.trailing is not None or len(target.iris) != 1:
            return None
        return target.iris[0]

    def _with_fallback(self, iri: str, found: tuple[str, list[IndexSpec]], terms: list[Term]) -> str:
        """``fast OR (rare AND exact...)``: exact on every row (broker.query.fast)."""
        condition, specs = found
        self.specs.extend(specs)
        self.served.update(id(t) for t in terms)
        lit = literal(iri)
        assert lit is not None
        exact = " AND ".join(super(IndexedLeaves, self).term(t) for t in terms)
        return f"({condition} OR ({rare_predicate(lit)} AND {exact}))"
