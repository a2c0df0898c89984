"""The NGSI-LD query languages: q, scopeQ (and later type expressions, geo-queries).

Each language is parsed into a small immutable AST (``q.parse_q``, ``scope.parse_scope_q``), which a compiler
turns into one parameterised PostgreSQL boolean expression over a row of ``{schema}.entities``
(``sql.compile_q``, ``scope.compile_scope_q``). Every user value reaches the database as a bind parameter;
the SQL text depends only on the shape of the query.

A statement that runs a compiled ``q`` can still fail in the database on a regular expression PostgreSQL
rejects (its dialect differs from Python's): pass such errors through ``sql.database_error`` to answer 400.
"""

from .q import And, Compare, Exists, Match, Or, QExpr, Range, Value, parse_q, to_text
from .scope import ScopeExpr, compile_scope_q, parse_scope_q, scope_to_text
from .sql import compile_q, database_error

__all__ = [
    "QExpr", "And", "Or", "Exists", "Compare", "Match", "Range", "Value", "parse_q", "to_text", "compile_q",
    "database_error", "ScopeExpr", "parse_scope_q", "compile_scope_q", "scope_to_text",
]
