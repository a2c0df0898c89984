"""Property values: JSON-LD expansion into the broker's internal value form, and compaction back.

Values are in the internal value form (IF) of ``broker.jsonld.forms``: JSON-LD expanded form with the user's
array shape.

The walkers below do the *structure* (arrays, node objects, containers) themselves, to keep the user's
array shape, and use pyld's own functions for everything that decides a value: IRI expansion
(``_expand_iri``), value expansion/compaction (``_expand_value``/``_compact_value``), language maps and term
selection (``_compact_iri``, memoised by the part of the value it depends on). Anything outside the supported
subset -- embedded ``@context``, property- or type-scoped contexts, ``@reverse``, ``@nest``, ``@graph``,
``@included``, index/id/type/graph containers, explicit ``@value``/``@list``/``@set`` objects -- is handed to
pyld (``_expand``/``_compact``) with the already processed active context: exact, only slower, and the
array shape inside that part is pyld's.
"""

from __future__ import annotations

from typing import Any

from pyld import jsonld
from pyld.jsonld import JsonLdProcessor

from .core import HAS_VALUE
from .forms import expanded_item, from_expanded, is_list_object, kept_by_add_value, leaves, map_shape, \
    to_expanded

VALUE_TERM = "value"
_UNSUPPORTED_CONTAINERS = frozenset(["@index", "@id", "@type", "@graph"])
_EMPTY = ("empty",)
_PLAIN = ("v", False, False, None, False, None, None, 1)
_MEMO_LIMIT = 50_000
_SCALARS = (str, int, float, bool)
_GENERAL = ""  # _plain_term: the key needs the general path


class Unsupported(Exception):
    """The fast path does not handle this value; compaction falls back to pyld."""


class _Probe:
    """Stands for a literal's value while pyld compacts its typed value object (see ``_compact_typed``)."""


class _Key:
    """How a key of a node object expands (memoised per key string)."""

    __slots__ = ("iri", "container", "type", "walkable")

    def __init__(self, iri: str | None, container: frozenset[str], type_: Any, walkable: bool) -> None:
        self.iri = iri
        self.container = container
        self.type = type_
        self.walkable = walkable


class ValueCodec:
    """expand/compact of Property values for one processed active context (all lookups memoised)."""

    def __init__(self, proc: JsonLdProcessor, active: dict[str, Any], options: dict[str, Any]) -> None:
        self._proc = proc
        self._active = active
        self._options = options
        self._mappings: dict[str, Any] = active["mappings"]
        self._keys: dict[str, _Key] = {}
        self._ids: dict[str, Any] = {}
        self._types: dict[str, Any] = {}
        self._selected: dict[tuple[str, Any], str] = {}
        self._aliases: dict[str, str] = {}
        self._compacted_iris: dict[tuple[str, bool], str] = {}
        self._id_terms: dict[str, bool] = {}
        self._plain: dict[str, bool] = {}
        self._bare: dict[str, bool] = {}
        self._typed: dict[tuple[str, str], tuple[tuple[str, Any], ...]] = {}
        self._plain_terms: dict[str, str] = {}
        self.scalars_plain = self._scalars_plain(VALUE_TERM)
        self._value_term_only = self._only_value_term()

    # ---- expansion -------------------------------------------------------------------------------------

    def expand(self, value: Any) -> Any:
        if value is None:
            return None
        if self.scalars_plain and type(value) in (str, int, float, bool):
            return value
        return self._expand(value, VALUE_TERM, False)

    def _expand(self, element: Any, prop: str, inside_list: bool) -> Any:
        if isinstance(element, list):
            return self._expand_array(element, prop, inside_list)
        if isinstance(element, dict):
            return self._expand_object(element, prop, inside_list)
        if element is None:
            return None
        return self._expand_scalar(element, prop)

    def _expand_array(self, array: list[Any], prop: str, inside_list: bool) -> list[Any]:
        inside_list = inside_list or "@list" in self._container(prop)
        out = []
        for item in array:
            expanded = self._expand(item, prop, inside_list)
            if inside_list and isinstance(expanded, list):
                expanded = {"@list": expanded}  # JSON-LD 1.1 lists of lists
            if expanded is not None:
                out.append(expanded)
        return out

    def _expand_scalar(self, value: Any, prop: str) -> Any:
        plain = self._plain.get(prop)
        if plain is None:
            plain = self._scalars_plain(prop)
            self._remember(self._plain, prop, plain)
        if plain:
            return value
        expanded = self._proc._expand_value(self._active, prop, value, self._options)
        if isinstance(expanded, dict) and len(expanded) == 1 and "@value" in expanded:
            return expanded["@value"]
        return expanded

    def _expand_object(self, obj: dict[str, Any], prop: str, inside_list: bool) -> Any:
        if "@context" in obj:
            return self._delegate(obj, prop, inside_list)
        if len(obj) <= 2:
            found = self._expand_value_object(obj)
            if found is not self:
                return found
        result: dict[str, Any] = {}
        for key in sorted(obj):
            info = self._key(key)
            if info.iri is None:
                continue  # JSON-LD drops keys that do not expand to an absolute IRI
            if not info.walkable:
                return self._delegate(obj, prop, inside_list)
            value = obj[key]
            if info.iri == "@id":
                expanded_id = self._expand_id(value) if isinstance(value, str) else None
                if expanded_id is None or "@id" in result:
                    return self._delegate(obj, prop, inside_list)
                result["@id"] = expanded_id
            elif info.iri == "@type":
                types = self._expand_types(value)
                if types is None or "@type" in result:
                    return self._delegate(obj, prop, inside_list)
                if types != []:
                    result["@type"] = types
            else:
                expanded = self._expand_property(info, key, value)
                if expanded is None:
                    continue
                previous = result.get(info.iri)
                result[info.iri] = expanded if previous is None else [previous, expanded]
        return result

    def _expand_value_object(self, obj: dict[str, Any]) -> Any:
        """``{"@value": v}`` with a string ``@type`` or ``@language``, the common typed literal; ``self`` when
        it is something else (pyld then handles it, including every error case)."""
        found: dict[str, Any] = {}
        for key, item in obj.items():
            iri = self._key(key).iri
            if iri in found or iri not in ("@value", "@type", "@language"):
                return self
            found[iri] = item
        value = found.get("@value", self)
        if value is self or not isinstance(value, (str, int, float, bool)):
            return self
        if "@type" in found:
            datatype = found["@type"]
            expanded = self._expand_types(datatype) if isinstance(datatype, str) else None
            if not isinstance(expanded, str) or not jsonld._is_absolute_iri(expanded) or expanded[:2] == "_:":
                return self
            return {"@value": value, "@type": expanded}
        if "@language" in found:
            language = found["@language"]
            if not isinstance(language, str) or not isinstance(value, str):
                return self
            return {"@value": value, "@language": language.lower()}
        return value

    def _expand_property(self, info: _Key, key: str, value: Any) -> Any:
        if "@language" in info.container and isinstance(value, dict):
            direction = JsonLdProcessor.get_context_value(self._active, key, "@direction")
            expanded: Any = [from_expanded(v) for v in
                             self._proc._expand_language_map(self._active, value, direction)]
        elif info.type == "@json":
            expanded = {"@value": value, "@type": "@json"}
        else:
            expanded = self._expand(value, key, False)
        if expanded is None:
            return None
        if "@list" in info.container and not is_list_object(expanded):
            expanded = {"@list": expanded if isinstance(expanded, list) else [expanded]}
        return expanded

    def _expand_id(self, value: str) -> str | None:
        found = self._ids.get(value, self)
        if found is self:
            found = self._proc._expand_iri(self._active, value, base=self._options["base"])
            self._remember(self._ids, value, found)
        return found  # type: ignore[return-value]

    def _expand_types(self, value: Any) -> Any:
        """Expanded @type value(s) in the user's shape; None when pyld must handle it (scoped, invalid)."""
        items = value if isinstance(value, list) else [value]
        out = []
        for item in items:
            if not isinstance(item, str):
                return None
            mapping = self._mappings.get(item)
            if mapping and "@context" in mapping:
                return None  # a type-scoped context
            expanded = self._types.get(item)
            if expanded is None:
                expanded = self._proc._expand_iri(self._active, item, vocab=True, base=self._options["base"])
                if expanded is None or jsonld._is_keyword(expanded):
                    return None
                self._remember(self._types, item, expanded)
            out.append(expanded)
        return out if isinstance(value, list) else out[0]

    def _key(self, key: str) -> _Key:
        info = self._keys.get(key)
        if info is None:
            info = self._describe_key(key)
            self._remember(self._keys, key, info)
        return info

    def _describe_key(self, key: str) -> _Key:
        iri = self._proc._expand_iri(self._active, key, vocab=True)
        if iri is None or not (jsonld._is_absolute_iri(iri) or jsonld._is_keyword(iri)):
            return _Key(None, frozenset(), None, True)
        if jsonld._is_keyword(iri):
            return _Key(iri, frozenset(), None, iri in ("@id", "@type"))
        mapping = self._mappings.get(key) or {}
        container = frozenset(mapping.get("@container", ()))
        walkable = not ("@context" in mapping or mapping.get("reverse") or "@nest" in mapping
                        or container & _UNSUPPORTED_CONTAINERS)
        return _Key(iri, container, mapping.get("@type"), bool(walkable))

    def _container(self, term: str | None) -> frozenset[str]:
        mapping = self._mappings.get(term) if term is not None else None
        return frozenset(mapping.get("@container", ())) if mapping else frozenset()

    def _delegate(self, obj: dict[str, Any], prop: str, inside_list: bool) -> Any:
        expanded = self._proc._expand(self._active, prop, obj, self._options, inside_list=inside_list)
        return from_expanded(expanded)

    def _scalars_plain(self, term: str) -> bool:
        """True when every JSON scalar under ``term`` expands to a plain literal (no datatype, language)."""
        get = JsonLdProcessor.get_context_value
        return (get(self._active, term, "@type") in (None, "@none")
                and get(self._active, term, "@language") is None
                and get(self._active, term, "@direction") is None)

    # ---- compaction ------------------------------------------------------------------------------------

    def compact(self, value: Any) -> Any:
        if value is None:
            return None
        if not self._value_term_only:
            raise Unsupported("another term than 'value' maps to ngsi-ld:hasValue")
        if self.scalars_plain and type(value) in (str, int, float, bool):
            return value  # a plain literal under an uncoerced term compacts to itself
        return map_shape(value, lambda leaf: self._compact_item(leaf, VALUE_TERM))

    def compact_with_pyld(self, value: Any) -> Any:
        """The exact but slow path: pyld compacts ``{hasValue: to_expanded(value)}``."""
        node = {HAS_VALUE: to_expanded(value)}
        out = self._proc._compact(self._active, None, node, self._options)
        if VALUE_TERM in out:
            return out[VALUE_TERM]
        for key, item in out.items():
            if self._proc._expand_iri(self._active, key, vocab=True) == HAS_VALUE:
                return item
        return None

    def _compacts_bare(self, term: str) -> bool:
        """True when pyld's ``_compact_value`` gives a plain literal ``{"@value": x}`` back as ``x``."""
        mapping = self._mappings.get(term) or {}
        return (mapping.get("@type") != "@none" and "@language" not in self._active
                and "@index" not in self._container(term))

    def _only_value_term(self) -> bool:
        """True when only the core ``value`` term (no container/coercion) compacts ngsi-ld:hasValue."""
        entry = self._proc._get_inverse_context(self._active).get(HAS_VALUE, {})
        terms = {t for by_container in entry.values() for kind in by_container.values() for t in kind.values()}
        mapping = self._mappings.get(VALUE_TERM) or {}
        return (terms == {VALUE_TERM} and set(entry) == {"@none"} and "@context" not in mapping
                and "@nest" not in mapping)

    def _compact_item(self, item: Any, term: str) -> Any:
        """One expanded item under a container-less ``term`` (the caller keeps the array shape)."""
        if is_list_object(item):
            inner = self._compact_list(item["@list"], term)
            compacted = {self._alias("@list"): inner if isinstance(inner, list) else [inner]}
            if "@index" in item:
                compacted[self._alias("@index")] = item["@index"]
            return compacted
        return self._compact_element(item, term)

    def _compact_element(self, item: Any, term: str) -> Any:
        """pyld ``_compact`` of one non-array expanded element under ``term``."""
        if not isinstance(item, dict):
            bare = self._bare.get(term)
            if bare is None:
                bare = self._compacts_bare(term)
                self._remember(self._bare, term, bare)
            if bare:
                return item
            return self._proc._compact_value(self._active, term, {"@value": item}, self._options)
        if "@value" in item or (len(item) == 1 and "@id" in item):
            if len(item) == 2 and type(item.get("@type")) is str:
                return self._compact_typed(item, term)
            return self._proc._compact_value(self._active, term, item, self._options)
        if "@list" in item:
            if "@list" in self._container(term):
                return self._compact_list(item["@list"], term)
            raise Unsupported("a list object outside a list container")
        return self._compact_node(item, term)

    def _compact_typed(self, item: dict[str, Any], term: str) -> Any:
        """A typed literal ``{"@value": v, "@type": T}`` (a DateTime, in most entities): pyld's result depends on
        the term and ``T``, never on ``v``, so its shape is taken once per (term, T) and ``v`` put in it."""
        key = (term, item["@type"])
        shape = self._typed.get(key)
        if shape is None:
            probe = _Probe()  # pyld copies @value into its result as it is: the probe shows where
            out = self._proc._compact_value(self._active, term, {"@value": probe, "@type": item["@type"]},
                                            self._options)
            shape = tuple(out.items()) if isinstance(out, dict) else ()
            self._remember(self._typed, key, shape)
        if not shape:
            return item["@value"]
        value = item["@value"]
        return {k: value if type(v) is _Probe else v for k, v in shape}

    def _compact_list(self, items: list[Any], term: str) -> Any:
        # pyld's _compact of an array drops items that compact to None (a @json null in a list)
        out = [c for c in (self._compact_element(i, term) for i in leaves(items)) if c is not None]
        if len(out) == 1 and not self._container(term):
            return out[0]
        return out

    def _compact_node(self, node: dict[str, Any], term: str) -> dict[str, Any]:
        mapping = self._mappings.get(term) or {}
        if "@context" in mapping:
            raise Unsupported("a property-scoped context")
        types = node.get("@type")
        type_list = types if isinstance(types, list) else ([types] if types is not None else [])
        for t in type_list:
            if "@context" in (self._mappings.get(self._compact_iri(t, True)) or {}):
                raise Unsupported("a type-scoped context")
        out: dict[str, Any] = {}
        for key in sorted(node):
            value = node[key]
            if key == "@id":
                out[self._alias("@id")] = self._compact_iri(value, False)
            elif key == "@type":
                alias = self._alias("@type")
                compacted = map_shape(types, lambda t: self._compact_iri(t, True))
                if "@set" in self._container(alias) and not isinstance(compacted, list):
                    compacted = [compacted]
                out[alias] = compacted
            elif key == "@index":
                out[self._alias("@index")] = value
            elif key.startswith("@"):
                raise Unsupported(f"{key} in a node object")
            elif type(value) in _SCALARS and (plain := self._plain_term(key)) and plain not in out:
                out[plain] = self._compact_element(value, plain)  # what _compact_property does, memoised
            else:
                self._compact_property(out, key, value)
        return out

    def _plain_term(self, iri: str) -> str:
        """The term ``_compact_property`` gives ``iri`` holding one plain scalar when that term has no
        container (then the entry is the scalar's compacted element); else ``_GENERAL``. Compound values
        (addresses, device infos) are mostly such keys: ~15 µs each through the general path."""
        found = self._plain_terms.get(iri)
        if found is None:
            term = self._select(iri, "", _PLAIN)
            self._check_term(term)
            found = _GENERAL if self._container(term) else term
            self._remember(self._plain_terms, iri, found)
        return found

    def _compact_property(self, out: dict[str, Any], iri: str, value: Any) -> None:
        items = list(leaves(value))
        if not items:
            term = self._select(iri, None, _EMPTY)
            self._check_term(term)
            JsonLdProcessor.add_value(out, term, [], {"propertyIsArray": True})
            return
        terms = [self._select(iri, leaf, self._signature(leaf)) for leaf in items]
        first = terms[0]
        self._check_term(first)
        if not self._container(first) and all(t == first for t in terms) and first not in out:
            # one plain term for all: keep the user's array shape
            compacted = [self._compact_item(leaf, first) for leaf in items]
            if not kept_by_add_value(compacted):
                return  # pyld drops the entry (@json arrays of empty arrays, see kept_by_add_value)
            found = iter(compacted)
            out[first] = map_shape(value, lambda _: next(found))
            return
        for leaf, term in zip(items, terms):
            self._check_term(term)
            self._add_entry(out, term, leaf)

    def _add_entry(self, out: dict[str, Any], term: str, item: Any) -> None:
        """pyld's per-item compaction into ``out`` under a term with a container (or mixed terms)."""
        container = self._container(term)
        if is_list_object(item):
            inner = self._compact_list(item["@list"], term)
            inner = inner if isinstance(inner, list) else [inner]
            if "@list" in container:
                out[term] = inner
                return
            compacted: Any = {self._alias("@list"): inner}
            if "@index" in item:
                compacted[self._alias("@index")] = item["@index"]
        else:
            compacted = self._compact_element(item, term)
        if "@language" in container:
            by_language = out.setdefault(term, {})
            if isinstance(compacted, dict) and "@value" in compacted:
                compacted = compacted["@value"]
            key = item.get("@language") if isinstance(item, dict) else None
            JsonLdProcessor.add_value(by_language, key or self._alias("@none"), compacted,
                                      {"propertyIsArray": "@set" in container})
            return
        as_array = "@set" in container or "@list" in container or compacted == []
        JsonLdProcessor.add_value(out, term, compacted, {"propertyIsArray": as_array})

    def _check_term(self, term: str) -> None:
        mapping = self._mappings.get(term) or {}
        if "@nest" in mapping or mapping.get("reverse") or self._container(term) & _UNSUPPORTED_CONTAINERS:
            raise Unsupported(f"term {term!r} needs pyld")

    def _select(self, iri: str, leaf: Any, signature: Any) -> str:
        """The term pyld's compaction picks for ``iri`` holding ``leaf`` (memoised by what it looks at)."""
        key = (iri, signature)
        term = self._selected.get(key)
        if term is None:
            sample = [] if signature is _EMPTY else expanded_item(leaf)
            term = self._proc._compact_iri(self._active, iri, sample, vocab=True)
            self._remember(self._selected, key, term)
        return term

    def _signature(self, leaf: Any) -> Any:
        """Everything of an expanded item that pyld's ``_compact_iri``/``_select_term`` look at."""
        if not isinstance(leaf, dict):
            return _PLAIN
        if "@value" in leaf:
            return ("v", "@index" in leaf, "@language" in leaf, leaf.get("@language"), "@direction" in leaf,
                    leaf.get("@direction"), leaf.get("@type"), len(leaf))
        if "@list" in leaf:
            return ("l", "@index" in leaf, self._list_signature(leaf["@list"]))
        if "@graph" in leaf or "@preserve" in leaf:
            raise Unsupported("a graph object")
        if "@id" in leaf:
            return ("n", "@index" in leaf, True, self._id_is_term(leaf["@id"]))
        return ("n", "@index" in leaf, False, None)

    @staticmethod
    def _list_signature(items: list[Any]) -> Any:
        """pyld's common type / common language of a list's items (``_compact_iri``, the @list branch)."""
        items = list(leaves(items))
        if not items:
            return "@any"
        common_language = common_type = None
        for item in items:
            item_language = item_type = "@none"
            if not isinstance(item, dict) or "@value" in item:
                if isinstance(item, dict) and "@direction" in item:
                    item_language = f"{item.get('@language', '')}_{item.get('@direction', '')}"
                elif isinstance(item, dict) and "@language" in item:
                    item_language = item["@language"]
                elif isinstance(item, dict) and "@type" in item:
                    item_type = item["@type"]
                else:
                    item_language = "@null"
                is_value = True
            else:
                item_type = "@id"
                is_value = False
            if common_language is None:
                common_language = item_language
            elif item_language != common_language and is_value:
                common_language = "@none"
            if common_type is None:
                common_type = item_type
            elif item_type != common_type:
                common_type = "@none"
            if common_language == "@none" and common_type == "@none":
                break
        return (common_type or "@none", common_language or "@none")

    def _id_is_term(self, iri: str) -> bool:
        found = self._id_terms.get(iri)
        if found is None:
            term = self._proc._compact_iri(self._active, iri, None, vocab=True)
            mapping = self._mappings.get(term)
            found = bool(term is not None and mapping and mapping["@id"] == iri)
            self._remember(self._id_terms, iri, found)
        return found

    def _compact_iri(self, iri: str, vocab: bool) -> str:
        key = (iri, vocab)
        found = self._compacted_iris.get(key)
        if found is None:
            if vocab:
                found = self._proc._compact_iri(self._active, iri, vocab=True)
            else:
                found = self._proc._compact_iri(self._active, iri, vocab=False, base=self._options["base"])
            self._remember(self._compacted_iris, key, found)
        return found

    def _alias(self, keyword: str) -> str:
        found = self._aliases.get(keyword)
        if found is None:
            found = self._aliases[keyword] = self._proc._compact_iri(self._active, keyword)
        return found

    @staticmethod
    def _remember(memo: dict[Any, Any], key: Any, value: Any) -> None:
        # memo keys come from request data: bound the memory a client can make us hold
        if len(memo) >= _MEMO_LIMIT:
            memo.clear()
        memo[key] = value
