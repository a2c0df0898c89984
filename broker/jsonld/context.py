"""``Context``: one processed JSON-LD active context and memoised term/value operations on it.

A Context is built once per distinct @context (by ``ContextResolver``) from pyld's processed active context
and shared by every request using that @context. Every operation is a dict lookup once it has been asked
once; a miss asks pyld's own IRI functions (``_expand_iri``/``_compact_iri``) on the processed context, so
the answers are exactly pyld's. See ``broker.jsonld.values`` for Property values.
"""

from __future__ import annotations

from typing import Any, Callable

from pyld import jsonld

from ..errors import NgsiError
from .core import PROPERTY
from .values import Unsupported, ValueCodec

# an attribute's value in expanded form is a node object (Property, Relationship, ...): the term chosen for
# its name depends only on that (no @id, @index or @graph in NGSI-LD attribute nodes)
_ATTRIBUTE_NODE = {"@type": [PROPERTY]}
_MEMO_LIMIT = 50_000
_MISSING = object()


class Processor(jsonld.JsonLdProcessor):
    """pyld's processor with memoised IRI functions and the inverse context kept per processor.

    ``_expand_iri``/``_compact_iri`` are pure functions of a processed active context (pyld gives each one a
    new ``_uuid`` once its term definitions are complete), so their answers are memoised by that id --
    except during context processing (``local_ctx`` given) and for value-dependent term selection.
    pyld's global inverse-context LRU holds only 20 contexts; here each processor keeps its own.
    """

    def __init__(self) -> None:
        super().__init__()
        self._inverse: dict[str, Any] = {}
        self._expanded: dict[tuple[Any, ...], Any] = {}
        self._compacted: dict[tuple[Any, ...], Any] = {}

    def _expand_iri(self, active_ctx: Any, value: Any, base: Any = None, vocab: bool = False,
                    local_ctx: Any = None, defined: Any = None) -> Any:
        uuid = active_ctx.get("_uuid")
        if local_ctx is not None or uuid is None or not isinstance(value, str):
            return super()._expand_iri(active_ctx, value, base, vocab, local_ctx, defined)
        key = (uuid, value, base, vocab)
        found = self._expanded.get(key, _MISSING)
        if found is _MISSING:
            found = super()._expand_iri(active_ctx, value, base, vocab)
            _remember(self._expanded, key, found)  # type: ignore[arg-type]
        return found

    def _compact_iri(self, active_ctx: Any, iri: Any, value: Any = None, vocab: bool = False, base: Any = None,
                     reverse: bool = False) -> Any:
        uuid = active_ctx.get("_uuid")
        if value is not None or uuid is None or not isinstance(iri, str):
            return super()._compact_iri(active_ctx, iri, value, vocab, base, reverse)
        key = (uuid, iri, vocab, base, reverse)
        found = self._compacted.get(key, _MISSING)
        if found is _MISSING:
            found = super()._compact_iri(active_ctx, iri, None, vocab, base, reverse)
            _remember(self._compacted, key, found)  # type: ignore[arg-type]
        return found

    def _get_inverse_context(self, active_ctx: dict[str, Any]) -> Any:
        key = active_ctx["_uuid"]
        inverse = self._inverse.get(key)
        if inverse is None:
            if len(self._inverse) > 64:  # scoped contexts met in fallbacks; the main one is recomputed once
                self._inverse.clear()
            inverse = self._inverse[key] = super()._get_inverse_context(active_ctx)
        return inverse


def pyld_options(loader: Callable[..., Any]) -> dict[str, Any]:
    """The option set pyld's expand()/compact() would build (the internal functions expect all of them)."""
    return {
        "base": "",
        "compactArrays": True,
        "graph": False,
        "skipExpansion": True,
        "activeCtx": False,
        "documentLoader": loader,
        "contextResolver": jsonld.ContextResolver({}, loader),
        "extractAllScripts": False,
        "processingMode": "json-ld-1.1",
        "link": False,
        "isFrame": False,
        "keepFreeFloatingNodes": False,
    }


def json_ld_error(exc: jsonld.JsonLdError, what: str) -> NgsiError:
    """pyld's error chain as a 400 (the innermost causes say what is wrong)."""
    messages = []
    cause: BaseException | None = exc
    while cause is not None and len(messages) < 4:
        if isinstance(cause, jsonld.JsonLdError):
            code = f" ({cause.code})" if cause.code else ""
            messages.append(f"{cause.args[0] if cause.args else cause.type}{code}")
        cause = cause.__cause__
    return NgsiError("BadRequestData", f"{what}: " + "; ".join(messages))


class Context:
    """An immutable processed @context; every method is memoised (shared by all requests using it).

    ``raw`` is the @context value as the user gave it (echoed in ld+json responses); for the core-only context
    it is the core context URL.
    """

    def __init__(self, raw: Any, active: dict[str, Any], loader: Callable[..., Any], *,
                 depends_on: frozenset[str] = frozenset(), stored: tuple[str, ...] = ()) -> None:
        self.raw = raw
        # context documents it was built from (URLs / hosted paths): a change to one of them invalidates it
        self.depends_on = depends_on
        # stored contexts (Cached / Hosted / ImplicitlyCreated URLs) whose usage counters a use increments
        self.stored = stored
        self._active = active
        self._proc = Processor()
        self._options = pyld_options(loader)
        self._terms: dict[str, Any] = {}
        self._attrs: dict[str, str] = {}
        self._types: dict[str, str] = {}
        self._values = ValueCodec(self._proc, active, self._options)
        # True when a JSON scalar under "value" is its own expansion (no default @language in the context):
        # callers may then skip expand_value() for scalars
        self.scalars_plain: bool = self._values.scalars_plain
        # attribute IRI -> the context document(s) its scoped context needs but that could not be loaded
        self.unavailable: dict[str, str] = {}
        # broker.model's memo: attribute name as written -> its validated IRI (a dict hit per attribute)
        self.attribute_names: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"Context({self.raw!r})"

    def expand_term(self, term: str) -> str:
        """Attribute / sub-attribute / entity type name -> IRI (pyld ``_expand_iri``, vocab-relative).

        Keywords and their aliases come back as keywords (``"id"`` -> ``"@id"``); a term mapped to null or a
        keyword-like ``"@xyz"`` comes back as None (JSON-LD drops such keys).
        """
        found = self._terms.get(term, _MISSING)
        if found is _MISSING:
            found = self._proc._expand_iri(self._active, term, vocab=True)
            _remember(self._terms, term, found)
        return found  # type: ignore[return-value]

    def expand_vocab(self, value: str) -> str:
        """A value under a ``"@type": "@vocab"`` term (VocabProperty ``vocab``, Relationship ``objectType``).

        With the core @vocab always in effect this is vocab-relative IRI expansion, the same as expand_term.
        """
        return self.expand_term(value)

    def compact_attr(self, iri: str) -> str:
        """IRI -> the term JSON-LD compaction picks for an attribute name (its value is a node object)."""
        found = self._attrs.get(iri)
        if found is None:
            found = self._compact(iri, _ATTRIBUTE_NODE)
            _remember(self._attrs, iri, found)
        return found

    def compact_type(self, iri: str) -> str:
        """IRI -> term for an ``@type`` value (entity types), as JSON-LD compaction would."""
        found = self._types.get(iri)
        if found is None:
            found = self._compact(iri, None)
            _remember(self._types, iri, found)
        return found

    def compact_vocab(self, iri: str) -> str:
        """The inverse of expand_vocab (pyld compacts @vocab-coerced values like @type values)."""
        return self.compact_type(iri)

    def expand_value(self, value: Any) -> Any:
        """The ``value`` of a Property (or an item of a ``valueList``) -> the internal value form."""
        try:
            return self._values.expand(value)
        except jsonld.JsonLdError as exc:
            raise json_ld_error(exc, "invalid JSON-LD value") from None
        except RecursionError:
            raise NgsiError("BadRequestData", "the value is nested too deeply") from None

    def compact_value(self, value: Any) -> Any:
        """The internal value form -> the compacted ``value`` member for output."""
        try:
            try:
                return self._values.compact(value)
            except Unsupported:
                return self._values.compact_with_pyld(value)
        except jsonld.JsonLdError as exc:
            raise json_ld_error(exc, "value cannot be compacted with this @context") from None
        except RecursionError:
            raise NgsiError("BadRequestData", "the value is nested too deeply") from None

    def _compact(self, iri: str, value: Any) -> str:
        try:
            return self._proc._compact_iri(self._active, iri, value, vocab=True)
        except jsonld.JsonLdError:
            # "IRI confused with prefix": JSON-LD compaction would fail; a response keeps the full IRI
            return iri


def _remember(memo: dict[Any, Any], key: Any, value: Any) -> None:
    # keys come from request data: bound what a client can make us hold
    if len(memo) >= _MEMO_LIMIT:
        memo.clear()
    memo[key] = value
