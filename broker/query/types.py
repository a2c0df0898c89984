"""Entity type selection (GS CIM 009 v1.8 clause 4.17): ``A``, ``A,B`` / ``A|B`` (or), ``A;B`` (and),
parentheses; ``;`` binds tighter than ``|`` and ``,``.

A type name compiles to ``types[1] = $t OR (cardinality(types) > 1 AND types[2:] @> ARRAY[$t])``: the
B-tree on (first type, id) serves the first part, the partial GIN index of the later types the second (tenant
migration 3). Types are kept without duplicates, so the two parts never match the same row and
``type_branches`` can run them as two ordered scans merged by id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Union

from ..errors import bad_request
from ..jsonld import Context


@dataclass(frozen=True)
class TypeName:
    name: str


@dataclass(frozen=True)
class TypeOp:
    op: str  # "and" | "or"
    items: tuple["TypeExpr", ...]


TypeExpr = Union[TypeName, TypeOp]
_SPECIAL = set(",|;()")


def parse_types(text: str) -> TypeExpr:
    parser = _Parser(text)
    expr = parser.disjunction()
    if parser.pos != len(text):
        raise bad_request(f"type: unexpected {text[parser.pos]!r} at position {parser.pos}")
    return expr


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def _peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def disjunction(self) -> TypeExpr:
        items = [self.conjunction()]
        while self._peek() in (",", "|"):
            self.pos += 1
            items.append(self.conjunction())
        return items[0] if len(items) == 1 else TypeOp("or", tuple(items))

    def conjunction(self) -> TypeExpr:
        items = [self.atom()]
        while self._peek() == ";":
            self.pos += 1
            items.append(self.atom())
        return items[0] if len(items) == 1 else TypeOp("and", tuple(items))

    def atom(self) -> TypeExpr:
        if self._peek() == "(":
            self.pos += 1
            expr = self.disjunction()
            if self._peek() != ")":
                raise bad_request(f"type: missing ')' at position {self.pos}")
            self.pos += 1
            return expr
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in _SPECIAL:
            self.pos += 1
        name = self.text[start:self.pos].strip()
        if not name:
            raise bad_request(f"type: a type name is expected at position {start}")
        return TypeName(name)


def compile_types(expr: TypeExpr, ctx: Context, args: list[Any]) -> str:
    if isinstance(expr, TypeName):
        args.append(ctx.expand_term(expr.name))
        return any_position(len(args))
    joiner = " AND " if expr.op == "and" else " OR "
    return "(" + joiner.join(compile_types(item, ctx, args) for item in expr.items) + ")"


def any_position(n: int) -> str:
    """The type bound to ``$n`` in any position: the first or a later one."""
    return f"({first_type(n)} OR {later_type(n)})"


def first_type(n: int) -> str:
    return f"types[1] = ${n}::text"


def later_type(n: int) -> str:
    return f"(cardinality(types) > 1 AND types[2:] @> ARRAY[${n}::text])"


def single_type(expr: TypeExpr | None) -> TypeName | None:
    return expr if isinstance(expr, TypeName) else None


def type_holds(expr: TypeExpr, types: set[str], name: Callable[[str], str] = lambda n: n) -> bool:
    """Whether an entity with ``types`` (expanded IRIs) matches ``expr``, evaluated in Python; ``name`` maps
    each name of the expression to an IRI (e.g. ``ctx.expand_term``; by default the names already are)."""
    if isinstance(expr, TypeName):
        return name(expr.name) in types
    results = (type_holds(item, types, name) for item in expr.items)
    return all(results) if expr.op == "and" else any(results)


def type_names(expr: TypeExpr) -> list[str]:
    if isinstance(expr, TypeName):
        return [expr.name]
    return [name for item in expr.items for name in type_names(item)]
