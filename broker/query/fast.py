"""Index-backed forms of the commonest ``q`` terms (``broker.store.indexes`` builds the indexes on demand).

A term ``attr OP value`` on a top-level attribute, with a number (any comparison, ranges, lists) or a string
or boolean (equality, lists), is decided on most rows by the first instance's scalar ``value``:

    (attrs -> 'IRI' -> 0 -> 'value') OP $v        -- a B-tree on that expression serves it

That is exact for "simple" rows (one instance whose ``value`` is a number, string or boolean: its only
candidate, see ``broker.query.sql``). Every other row having the attribute (several instances, a compound or
value-object value, another attribute type) is decided by the exact jsonpath form, behind a predicate that a
small partial index lists. So::

    fast OR (rare AND exact)

equals ``exact`` on every row, and PostgreSQL answers it with a BitmapOr of two index scans. jsonb orders
values by type first (strings < numbers < booleans), so a one-sided comparison with a number carries a type
test; a two-sided one needs none (what lies between two numbers is a number), which spares PostgreSQL a
decompression of the document per candidate row. String comparisons other than equality stay on the exact
form (jsonb orders strings by the database collation, jsonpath by code point). A conjunction of a lower and
an upper bound on one attribute (``t>=1;t<=5``) becomes one index range (``bounded_range``), not two
half-table scans intersected. The IRI is spliced as a SQL literal (the index expression must be a constant)
only when it passes a strict character check; other IRIs use the exact form alone.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

from .indexspec import IndexSpec
from .q import Compare, Range, Term, Value

_SAFE_IRI = re.compile(r"[A-Za-z0-9:/?#\[\]@!$&()*+,;=._~%-]{1,512}")
_ORDER_OPS = {">": ">", ">=": ">=", "<": "<", "<=": "<="}
_JSON_TYPE = {"number": "number", "string": "string", "boolean": "boolean"}


def json_text(value: Any) -> str:
    """``value`` as JSON text: orjson's, or the json module's for integers beyond 64 bits (q allows them)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value)


def _json(param: Any, value: Any) -> str:
    """A bind value travelling as JSON text (whatever jsonb codec the connection has)."""
    return param(json_text(value), "text::jsonb")


def literal(iri: str) -> str | None:
    """``iri`` as a SQL string literal, or None if it is not plainly safe to splice."""
    return f"'{iri}'" if _SAFE_IRI.fullmatch(iri) else None


def value_expression(lit: str) -> str:
    """The first instance's value, JSON null when the entity lacks the attribute: comparisons on it are never
    NULL (so ``fast OR (rare AND exact)`` is exact), and its statistics count the entities without the
    attribute as one value instead of a null fraction (an ``IS NOT NULL`` guard made PostgreSQL count the
    attribute's frequency twice: at 1M, powerState=="on" estimated at 1.9% of rows instead of 10.8%, so it
    ANDed that index with a selective one)."""
    return f"COALESCE(attrs -> {lit} -> 0 -> 'value', 'null'::jsonb)"


def rare_predicate(lit: str) -> str:
    """Rows having the attribute that the fast form cannot decide."""
    return (f"(attrs ? {lit} AND NOT (jsonb_array_length(attrs -> {lit}) = 1 AND "
            f"COALESCE(jsonb_typeof(attrs -> {lit} -> 0 -> 'value') IN ('number', 'string', 'boolean'), false)))")


def index_specs(iri: str, lit: str) -> list[IndexSpec]:
    return [IndexSpec(f"value:{iri}", "btree", value_expression(lit)),
            IndexSpec(f"rare:{iri}", "btree", "pk", rare_predicate(lit))]


def fast_condition(term: Term, iri: str, param: Any) -> tuple[str, list[IndexSpec]] | None:
    """``(fast, specs)`` for a term the fast form decides on simple rows, else None.

    ``param(value, cast)`` appends a bind value and returns its placeholder.
    """
    if not isinstance(term, Compare) or term.op not in ("==", *_ORDER_OPS):
        return None
    lit = literal(iri)
    if lit is None:
        return None
    flat = [b for v in term.values for b in ((v.low, v.high) if isinstance(v, Range) else (v,))]
    kinds = {v.kind for v in flat if isinstance(v, Value)}
    if len(kinds) != 1 or len(flat) != sum(isinstance(v, Value) for v in flat):
        return None
    kind = kinds.pop()
    if kind not in _JSON_TYPE or (kind != "number" and (term.op != "==" or
                                                         any(isinstance(v, Range) for v in term.values))):
        return None
    e = value_expression(lit)
    if term.op in _ORDER_OPS:
        if len(term.values) != 1 or isinstance(term.values[0], Range):
            return None
        # e is never NULL (value_expression); JSON null and the other types sort on one side of every number:
        # a one-sided comparison excludes them with the type test
        typed = f"jsonb_typeof({e}) = '{_JSON_TYPE[kind]}'"
        cond = f"({e} {_ORDER_OPS[term.op]} {_json(param, term.values[0].value)} AND {typed})"
    elif len(term.values) == 1 and isinstance(term.values[0], Range):
        rng = term.values[0]  # numbers (kind): no type test (module doc)
        cond = f"({e} >= {_json(param, rng.low.value)} AND {e} <= {_json(param, rng.high.value)})"
    elif any(isinstance(v, Range) for v in term.values):
        return None
    elif len(term.values) == 1:
        cond = f"({e} = {_json(param, term.values[0].value)})"
    else:
        values = param([json_text(v.value) for v in term.values], "text[]::jsonb[]")
        cond = f"({e} = ANY({values}))"
    return cond, index_specs(iri, lit)


def _bound(term: Any, lows: tuple[str, ...]) -> tuple[str, Any] | None:
    """``(op, number)`` if ``term`` is ``attr OP number`` with OP one of ``lows`` (or of the upper ops)."""
    if not isinstance(term, Compare) or term.op not in lows or len(term.values) != 1:
        return None
    value = term.values[0]
    if not isinstance(value, Value) or value.kind != "number":
        return None
    return term.op, value.value


def lower_bound(term: Any) -> tuple[str, Any] | None:
    return _bound(term, (">", ">="))


def upper_bound(term: Any) -> tuple[str, Any] | None:
    return _bound(term, ("<", "<="))


def bounded_range(iri: str, low: tuple[str, Any], high: tuple[str, Any], param: Any
                  ) -> tuple[str, list[IndexSpec]] | None:
    """``(fast, specs)`` deciding ``attr > / >= low AND attr < / <= high`` on simple rows (see module doc)."""
    lit = literal(iri)
    if lit is None:
        return None
    e = value_expression(lit)
    cond = f"({e} {low[0]} {_json(param, low[1])} AND {e} {high[0]} {_json(param, high[1])})"  # no type test
    return cond, index_specs(iri, lit)
