"""The NGSI-LD Query Language ``q`` (GS CIM 009 V1.8/V1.9 clause 4.9): text -> AST, and AST -> text.

A hand-written recursive-descent parser: the grammar is small, its tokens depend on where they appear (a
``:`` is part of a URI value but not of an attribute; ``|`` ends a term but may sit inside a regex), and the
errors have to name the offending character's 0-based position. No parsing library fits that better than
~250 lines of plain code.

Grammar (the 4.9 ABNF; extensions marked ``*``)::

    Query      = OrExpr                      ; ";" (AND) binds tighter than "|" (OR), 4.9
    OrExpr     = AndExpr *("|" AndExpr)
    AndExpr    = Primary *(";" Primary)
    Primary    = "(" OrExpr ")" / Term        ; * parentheses nest (the ABNF allows one level, 4.9 EXAMPLE 6 two)
    Term       = Path [Operator ValuePart]    ; no operator: existence of the target element
    Term       =/ "!" Path                    ; * non-existence (as Orion-LD and Stellio)
    Path       = Name *("." Name) ["[" Trail "]"]   ; dots: sub-attributes or members (observedAt, ...),
    Trail      = "*" / Seg *("." Seg)               ;   brackets: the compound-value path ("TrailingPath"),
                                                    ;   or the language of a LanguageProperty ("[*]": any)
    Name       = AttrName [":" AttrName]      ; * a compact IRI (4.6.2 ``prefix:name``)
    Seg        = 1*(letter / digit / "_" / "-" / ":")   ; * "-" and ":" so language tags / prefixed keys fit
    ValuePart  = after == / !=: Value ".." Value (Range) / Value *("," Value) (ValueList)
               = after > >= < <=: one ComparableValue
               = after ~= / !~=: a regex, unquoted or as a JSON string (*)

Values: JSON numbers (RFC 8259), JSON strings (with JSON escapes), ``true``/``false``, DateTime
``YYYY-MM-DDThh:mm:ss[.f]Z``, Date ``YYYY-MM-DD``, Time ``hh:mm:ss[.f][Z]`` (4.6.3; the decimal comma is not
accepted here, the comma separates list values), and -- only after == / != -- unquoted URIs
(``scheme:...`` up to ``; | , ( )``) and bare names (* ``gender==Male``, 4.9 EXAMPLE 12); both are strings.
A URI or a regex that contains those characters must be quoted. Linked-entity paths (``a{b}``) are refused.
Whitespace is not part of the grammar and is refused outside strings.

An unquoted regex ends at the first ``;`` or ``|`` outside its own parentheses and brackets, or at a ``)``
that closes a query group. Patterns are checked here (length <= 256, Python ``re`` syntax, no
back-references); they run in the database as PostgreSQL ARE (``~``, a search, not a full match).
"""

from __future__ import annotations

import json
import re
import unicodedata
import warnings
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Iterator, Union

from broker.errors import NgsiError, bad_request

MAX_DEPTH = 32
MAX_PATTERN = 256
MAX_NUMBER = 100
OPERATORS = ("==", "!=", "!~=", "~=", ">=", "<=", ">", "<")
ORDERING = (">", ">=", "<", "<=")

DATETIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?Z")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_TIME = re.compile(r"[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?Z?")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[^;|,()\"'<>\\{}^`\s\x00-\x1f\x7f]*")
_TEMPORAL = (("datetime", DATETIME), ("date", _DATE), ("time", _TIME))


@dataclass(frozen=True)
class Path:
    """``names``: attribute, then sub-attributes / members; ``trailing``: the ``[...]`` path, or None."""
    names: tuple[str, ...]
    trailing: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Value:
    """A literal: kind is number | string | boolean | datetime | date | time (temporal values keep their text)."""
    kind: str
    value: int | float | str | bool


@dataclass(frozen=True)
class Range:
    low: Value
    high: Value


@dataclass(frozen=True)
class Exists:
    path: Path
    negated: bool = False


@dataclass(frozen=True)
class Compare:
    """``path op values``: several values (a ValueList) or one Range only with == and !=."""
    path: Path
    op: str
    values: tuple[Value | Range, ...]


@dataclass(frozen=True)
class Match:
    path: Path
    pattern: str
    negated: bool = False


@dataclass(frozen=True)
class And:
    items: tuple["QExpr", ...]


@dataclass(frozen=True)
class Or:
    items: tuple["QExpr", ...]


Term = Union[Exists, Compare, Match]
QExpr = Union[And, Or, Exists, Compare, Match]


def parse_q(text: str) -> QExpr:
    """Parse a ``q`` string (already URL-decoded); BadRequestData naming the position on any error."""
    return _Parser(text).parse()


def terms(expr: QExpr) -> Iterator[Term]:
    """The terms of an expression, left to right."""
    if isinstance(expr, (And, Or)):
        for item in expr.items:
            yield from terms(item)
    else:
        yield expr


def is_letter(c: str) -> bool:
    return c != "" and unicodedata.category(c)[0] == "L"


def is_name_char(c: str) -> bool:
    return c != "" and (c == "_" or unicodedata.category(c)[0] in "LN")


def is_seg_char(c: str) -> bool:
    return is_name_char(c) or (c != "" and c in "-:")


def _flat(cls: type, items: list[QExpr]) -> QExpr:
    if len(items) == 1:
        return items[0]
    out: list[QExpr] = []
    for item in items:
        out.extend(item.items if isinstance(item, cls) else (item,))  # type: ignore[union-attr]
    return cls(tuple(out))


def check_pattern(pattern: str, where: str) -> None:
    """Refuse regexes we will not send to PostgreSQL: too long, no Python parse, back-references."""
    if not pattern:
        raise bad_request(f"{where}: empty regular expression")
    if len(pattern) > MAX_PATTERN:
        raise bad_request(f"{where}: regular expression longer than {MAX_PATTERN} characters")
    i = 0
    while i < len(pattern):
        if pattern[i] == "\\" and i + 1 < len(pattern) and pattern[i + 1] in "123456789":
            raise bad_request(f"{where}: back-references are not supported in regular expressions")
        i += 2 if pattern[i] == "\\" else 1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            re.compile(pattern)
    except re.error as exc:
        raise bad_request(f"{where}: invalid regular expression: {exc.msg} at pattern position {exc.pos}") from None
    except (RecursionError, OverflowError, ValueError) as exc:
        raise bad_request(f"{where}: invalid regular expression: {exc}") from None


def temporal_problem(kind: str, text: str) -> str | None:
    """None if the literal denotes a real date/time, else the problem."""
    try:
        if kind == "datetime":
            datetime.strptime(text[:19], "%Y-%m-%dT%H:%M:%S")
        elif kind == "date":
            date.fromisoformat(text)
        else:
            time.fromisoformat(text[:8])
    except ValueError as exc:
        return str(exc)
    return None


class _Parser:
    def __init__(self, text: str) -> None:
        self.s = text
        self.n = len(text)
        self.i = 0

    def peek(self, ahead: int = 0) -> str:
        j = self.i + ahead
        return self.s[j] if j < self.n else ""

    def error(self, expected: str, at: int | None = None) -> NgsiError:
        at = self.i if at is None else at
        found = "end of query" if at >= self.n else repr(self.s[at])
        return bad_request(f"q: unexpected {found} at position {at}: {expected}")

    def parse(self) -> QExpr:
        if not self.s:
            raise bad_request("q: empty query")
        for at, c in enumerate(self.s):
            if c == "\x00" or "\ud800" <= c <= "\udfff":
                raise bad_request(f"q: invalid character U+{ord(c):04X} at position {at}")
        expr = self.or_expr(0)
        if self.i < self.n:
            raise self.error("expected ';', '|' or the end")
        return expr

    def or_expr(self, depth: int) -> QExpr:
        items = [self.and_expr(depth)]
        while self.peek() == "|":
            self.i += 1
            items.append(self.and_expr(depth))
        return _flat(Or, items)

    def and_expr(self, depth: int) -> QExpr:
        items = [self.primary(depth)]
        while self.peek() == ";":
            self.i += 1
            items.append(self.primary(depth))
        return _flat(And, items)

    def primary(self, depth: int) -> QExpr:
        if self.peek() != "(":
            return self.term()
        if depth >= MAX_DEPTH:
            raise bad_request(f"q: parentheses nested deeper than {MAX_DEPTH} at position {self.i}")
        self.i += 1
        expr = self.or_expr(depth + 1)
        if self.peek() != ")":
            raise self.error("expected ')'")
        self.i += 1
        return expr

    def end_of_term(self, j: int | None = None) -> bool:
        j = self.i if j is None else j
        return j >= self.n or self.s[j] in ";|)"

    def term(self) -> Term:
        negated = self.peek() == "!"
        self.i += negated
        path = self.path()
        if negated:
            if not self.end_of_term():
                raise self.error("'!' only negates existence: expected ';', '|', ')' or the end")
            return Exists(path, True)
        op = next((o for o in OPERATORS if self.s.startswith(o, self.i)), None)
        if op is None:
            if not self.end_of_term():
                raise self.error("expected an operator, ';', '|', ')' or the end")
            return Exists(path)
        self.i += len(op)
        if op in ("~=", "!~="):
            return Match(path, self.regex(), op == "!~=")
        return Compare(path, op, self.values(op))

    # ------------------------------------------------------------------------------------------ paths
    def path(self) -> Path:
        names = [self.name()]
        while self.peek() == ".":
            self.i += 1
            names.append(self.name())
        trailing = None
        if self.peek() == "[":
            self.i += 1
            if self.peek() == "*":
                self.i += 1
                trailing = ("*",)
            else:
                segs = [self.segment()]
                while self.peek() == ".":
                    self.i += 1
                    segs.append(self.segment())
                trailing = tuple(segs)
            if self.peek() != "]":
                raise self.error("expected ']'")
            self.i += 1
        if self.peek() == "{":
            raise bad_request(f"q: linked-entity queries ('{{' at position {self.i}) are not supported")
        return Path(tuple(names), trailing)

    def name(self) -> str:
        start = self.i
        if not is_letter(self.peek()):
            raise self.error("expected an attribute name")
        while is_name_char(self.peek()):
            self.i += 1
        if self.peek() == ":" and is_letter(self.peek(1)):
            self.i += 1
            while is_name_char(self.peek()):
                self.i += 1
        return self.s[start:self.i]

    def segment(self) -> str:
        start = self.i
        while is_seg_char(self.peek()):
            self.i += 1
        if self.i == start:
            raise self.error("expected a name in the '[...]' path")
        return self.s[start:self.i]

    # ------------------------------------------------------------------------------------------ values
    def values(self, op: str) -> tuple[Value | Range, ...]:
        start = self.i
        first, comparable = self.value()
        if op in ORDERING:
            if not comparable:
                raise bad_request(f"q: {op} needs a number, a quoted string, a date or a time (position {start})")
            return (first,)
        if self.s.startswith("..", self.i):
            self.i += 2
            at = self.i
            high, high_comparable = self.value()
            if not (comparable and high_comparable):
                raise bad_request(f"q: range bounds must be numbers, quoted strings, dates or times (position "
                                  f"{start})")
            if first.kind != high.kind:
                raise bad_request(f"q: range bounds of different types ({first.kind}, {high.kind}) at position {at}")
            return (Range(first, high),)
        out: list[Value | Range] = [first]
        while self.peek() == ",":
            self.i += 1
            out.append(self.value()[0])
        if not self.end_of_term():
            raise self.error("expected ',', ';', '|', ')' or the end")
        return tuple(out)

    def value_end(self, j: int) -> bool:
        return self.end_of_term(j) or self.s[j] == "," or self.s.startswith("..", j)

    def value(self) -> tuple[Value, bool]:
        """One value and whether it is a ComparableValue (4.9)."""
        start = self.i
        if self.peek() == '"':
            return Value("string", self.string()), True
        furthest = start
        for kind, pattern in _TEMPORAL:
            m = pattern.match(self.s, start)
            if m and self.value_end(m.end()):
                problem = temporal_problem(kind, m.group())
                if problem:
                    raise bad_request(f"q: invalid {kind} {m.group()!r} at position {start}: {problem}")
                self.i = m.end()
                return Value(kind, m.group()), True
            furthest = max(furthest, m.end() if m else start)
        m = _NUMBER.match(self.s, start)
        if m and self.value_end(m.end()):
            self.i = m.end()
            return Value("number", self.number(m.group(), start)), True
        furthest = max(furthest, m.end() if m else start)
        for word, flag in (("true", True), ("false", False)):
            if self.s.startswith(word, start) and self.value_end(start + len(word)):
                self.i = start + len(word)
                return Value("boolean", flag), False
        m = _URI.match(self.s, start)
        if m and self.value_end(m.end()):
            self.i = m.end()
            return Value("string", m.group()), False
        if is_letter(self.peek()):
            j = start
            while is_name_char(self.s[j] if j < self.n else ""):
                j += 1
            if self.value_end(j):
                self.i = j
                return Value("string", self.s[start:j]), False
            furthest = max(furthest, j)
        raise self.error("expected a value", furthest)

    @staticmethod
    def number(text: str, at: int) -> int | float:
        if len(text) > MAX_NUMBER:
            raise bad_request(f"q: number too long at position {at}")
        if not any(c in text for c in ".eE"):
            return int(text)
        value = float(text)
        if value in (float("inf"), float("-inf")):
            raise bad_request(f"q: number out of range at position {at}")
        return value

    def string(self) -> str:
        start = j = self.i
        j += 1
        while j < self.n and self.s[j] != '"':
            j += 2 if self.s[j] == "\\" else 1
        if j >= self.n:
            raise bad_request(f"q: unterminated string starting at position {start}")
        try:
            value = json.loads(self.s[start:j + 1])
        except json.JSONDecodeError as exc:
            raise bad_request(f"q: invalid string at position {start + exc.pos}: {exc.msg}") from None
        for c in value:
            if c == "\x00" or "\ud800" <= c <= "\udfff":
                raise bad_request(f"q: invalid character U+{ord(c):04X} in the string at position {start}")
        self.i = j + 1
        return value

    def regex(self) -> str:
        start = self.i
        pattern = self.string() if self.peek() == '"' else self.scan_regex()
        check_pattern(pattern, f"q: the pattern at position {start}")
        if not self.end_of_term():
            raise self.error("expected ';', '|', ')' or the end after the pattern")
        return pattern

    def scan_regex(self) -> str:
        """An unquoted regex: up to ';' / '|' outside its groups and brackets, or an unmatched ')'."""
        s, j, depth = self.s, self.i, 0
        while j < self.n:
            c = s[j]
            if c == "\\":
                j += 2
                continue
            if c == "[":
                j += 1
                j += s.startswith("^", j)
                j += s.startswith("]", j)
                while j < self.n and s[j] != "]":
                    j += 2 if s[j] == "\\" else 1
                j += 1
                continue
            if c == "(":
                depth += 1
            elif c == ")":
                if depth == 0:
                    break
                depth -= 1
            elif c in ";|" and depth == 0:
                break
            j += 1
        j = min(j, self.n)
        pattern, self.i = s[self.i:j], j
        return pattern


# ============================================================================================== printing

def to_text(expr: QExpr) -> str:
    """The canonical text of an AST (``parse_q(to_text(e)) == e`` for every parsed ``e``)."""
    if isinstance(expr, Or):
        return "|".join(to_text(item) for item in expr.items)
    if isinstance(expr, And):
        return ";".join(f"({to_text(i)})" if isinstance(i, Or) else to_text(i) for i in expr.items)
    path = _path_text(expr.path)
    if isinstance(expr, Exists):
        return "!" + path if expr.negated else path
    if isinstance(expr, Match):
        return path + ("!~=" if expr.negated else "~=") + json.dumps(expr.pattern, ensure_ascii=False)
    return path + expr.op + ",".join(_value_text(v) for v in expr.values)


def _path_text(path: Path) -> str:
    text = ".".join(path.names)
    return text if path.trailing is None else f"{text}[{'.'.join(path.trailing)}]"


def _value_text(value: Value | Range) -> str:
    if isinstance(value, Range):
        return f"{_value_text(value.low)}..{_value_text(value.high)}"
    if value.kind == "string":
        return json.dumps(value.value, ensure_ascii=False)
    if value.kind == "boolean":
        return "true" if value.value else "false"
    if value.kind == "number":
        return repr(value.value)
    return str(value.value)
