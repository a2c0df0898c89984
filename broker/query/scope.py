"""The NGSI-LD Scope Query Language ``scopeQ`` (GS CIM 009 V1.8/V1.9 clause 4.19): parser and SQL.

Grammar (4.19 ABNF; extensions marked ``*``)::

    ScopesQ   = And *(("|" / ",") And)          ; "," is an alternative OR
    And       = Item *(";" Item)                ; * ";" binds tighter than "|", as in q (ETSI 019_01_06)
    Item      = "(" Scope *(";" Scope) ")"
              / Scope
    Scope     = ["/"] Level *("/" Level) ["/#"] ; * the leading "/" is optional, as in 4.18 Scope (and in
              / "/#"                            ;   4.19 EXAMPLE 5); * "/#" suffix also inside parentheses
    Level     = unicodeLetter *(unicodeLetter / unicodeNumber / "_") / "+"

Semantics (4.19): an entity matches a Scope if one of its scopes equals it, where ``+`` matches exactly one
level; ``/a/#`` matches ``/a`` and every scope below it; ``/#`` alone matches any entity that has a scope.
``(s1;s2)`` needs a matching scope for each of s1 and s2. Since 4.18 makes the leading ``/`` of an entity's
scope optional, ``/a/b`` and ``a/b`` are the same scope here, on both sides.

SQL: over the ``scopes text[]`` column. A plain scope is ``scopes && $n`` (both spellings; a GIN index on
``scopes`` can serve it); wildcards become an anchored regex, built only from validated levels, passed as a
bind parameter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

from broker.errors import NgsiError, bad_request

from .q import is_letter, is_name_char


@dataclass(frozen=True)
class ScopePattern:
    """``levels`` (each a name or ``+``), ``descendants``: the ``/#`` suffix; no levels: ``/#`` alone."""
    levels: tuple[str, ...]
    descendants: bool = False


@dataclass(frozen=True)
class ScopeAnd:
    items: tuple[ScopePattern, ...]


@dataclass(frozen=True)
class ScopeOr:
    items: tuple[Union[ScopePattern, ScopeAnd], ...]


ScopeExpr = Union[ScopeOr, ScopeAnd, ScopePattern]


def parse_scope_q(text: str) -> ScopeExpr:
    """Parse a ``scopeQ`` string; BadRequestData naming the position on any error."""
    return _ScopeParser(text).parse()


class _ScopeParser:
    def __init__(self, text: str) -> None:
        self.s = text
        self.n = len(text)
        self.i = 0

    def peek(self) -> str:
        return self.s[self.i] if self.i < self.n else ""

    def error(self, expected: str) -> NgsiError:
        found = "end of query" if self.i >= self.n else repr(self.s[self.i])
        return bad_request(f"scopeQ: unexpected {found} at position {self.i}: {expected}")

    def parse(self) -> ScopeExpr:
        if not self.s:
            raise bad_request("scopeQ: empty query")
        items = [self.conjunction()]
        while self.peek() in ("|", ","):
            self.i += 1
            items.append(self.conjunction())
        if self.i < self.n:
            raise self.error("expected '|', ',' or the end")
        return items[0] if len(items) == 1 else ScopeOr(tuple(items))

    def conjunction(self) -> ScopePattern | ScopeAnd:
        items = [self.item()]
        while self.peek() == ";":
            self.i += 1
            items.append(self.item())
        if len(items) == 1:
            return items[0]
        return ScopeAnd(tuple(p for item in items for p in (item.items if isinstance(item, ScopeAnd) else (item,))))

    def item(self) -> ScopePattern | ScopeAnd:
        if self.peek() != "(":
            return self.scope()
        self.i += 1
        items = [self.scope()]
        while self.peek() == ";":
            self.i += 1
            items.append(self.scope())
        if self.peek() != ")":
            raise self.error("expected ';' or ')'")
        self.i += 1
        return items[0] if len(items) == 1 else ScopeAnd(tuple(items))

    def scope(self) -> ScopePattern:
        if self.s.startswith("/#", self.i):
            self.i += 2
            return ScopePattern(())
        self.i += self.peek() == "/"
        levels = [self.level()]
        while self.peek() == "/":
            self.i += 1
            if self.peek() == "#":
                self.i += 1
                return ScopePattern(tuple(levels), True)
            levels.append(self.level())
        return ScopePattern(tuple(levels))

    def level(self) -> str:
        if self.peek() == "+":
            self.i += 1
            return "+"
        start = self.i
        if not is_letter(self.peek()):
            raise self.error("expected a scope level (a letter, then letters, digits or '_'), or '+'")
        while is_name_char(self.peek()):
            self.i += 1
        return self.s[start:self.i]


def scope_to_text(expr: ScopeExpr) -> str:
    """The canonical text of a scopeQ AST."""
    if isinstance(expr, ScopeOr):
        return "|".join(scope_to_text(item) for item in expr.items)
    if isinstance(expr, ScopeAnd):
        return "(" + ";".join(scope_to_text(item) for item in expr.items) + ")"
    if not expr.levels:
        return "/#"
    return "/" + "/".join(expr.levels) + ("/#" if expr.descendants else "")


# ================================================================================================== SQL

def compile_scope_q(expr: ScopeExpr, args: list[Any], column: str = "scopes") -> str:
    """SQL boolean (never NULL) over the ``scopes text[]`` column; values are appended to ``args``."""
    if isinstance(expr, ScopeOr):
        return "(" + " OR ".join(compile_scope_q(item, args, column) for item in expr.items) + ")"
    if isinstance(expr, ScopeAnd):
        return "(" + " AND ".join(compile_scope_q(item, args, column) for item in expr.items) + ")"
    return _pattern_sql(expr, args, column)


def _param(args: list[Any], value: Any) -> str:
    args.append(value)
    return f"${len(args)}"


def _pattern_sql(pattern: ScopePattern, args: list[Any], column: str) -> str:
    if not pattern.levels:
        return f"coalesce(cardinality({column}) > 0, false)"
    if "+" not in pattern.levels and not pattern.descendants:
        plain = "/".join(pattern.levels)
        return f"({column} IS NOT NULL AND {column} && {_param(args, ['/' + plain, plain])}::text[])"
    # levels are letters, digits and '_' only (checked by the parser): literal in a PostgreSQL ARE
    body = "/".join("[^/]+" if level == "+" else level for level in pattern.levels)
    regex = f"^/?{body}{'(/.*)?' if pattern.descendants else ''}$"
    return (f"({column} IS NOT NULL AND EXISTS (SELECT 1 FROM unnest({column}) AS s(scope) "
            f"WHERE s.scope ~ {_param(args, regex)}::text))")
