"""``Context`` and ``ContextResolver`` without a database (MemoryContextStore) and without network."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, AsyncIterator

import pytest

from broker.config import Settings
from broker.errors import NgsiError
from broker.jsonld import CORE_CONTEXT_URL, ContextResolver, is_core_context_url, to_expanded
from broker.jsonld import context as context_module
from broker.jsonld import resolver as resolver_module
from broker.jsonld.core import CORE_CONTEXT_URLS, hosted_id

DATA = Path(os.environ.get("NGSILD_TEST_DATA", "/work/shared/data"))
SUITE = "https://raw.githubusercontent.com/marek-mraz/ngsi-ld-test-suite/main/resources/jsonld-contexts/"
SUITE_FILES = DATA / "etsi-ngsi-ld-test-suite/resources/jsonld-contexts"
DEFAULT = "https://uri.etsi.org/ngsi-ld/default-context/"
PARKING = "https://smart-data-models.github.io/dataModel.Parking/context.jsonld"
needs_data = pytest.mark.skipif(not SUITE_FILES.is_dir(), reason="shared test data not available")


def suite_files() -> dict[str, str]:
    if not SUITE_FILES.is_dir():
        return {}
    return {SUITE + name: str(SUITE_FILES / name)
            for name in ("ngsi-ld-test-suite.jsonld", "ngsi-ld-test-suite-compound.jsonld")}


async def make_resolver(tmp_path: Path | None = None, files: dict[str, Any] | None = None,
                        **kwargs: Any) -> ContextResolver:
    table = suite_files()
    for url, doc in (files or {}).items():
        assert tmp_path is not None
        path = tmp_path / (str(abs(hash(url))) + ".jsonld")
        path.write_text(json.dumps(doc))
        table[url] = str(path)
    kwargs.setdefault("context_fetch_remote", False)
    resolver = ContextResolver(Settings(context_files=table, **kwargs), None)
    await resolver.start()
    return resolver


@pytest.fixture
async def resolver() -> AsyncIterator[ContextResolver]:
    r = await make_resolver()
    yield r
    await r.close()


# ---- the core context ----------------------------------------------------------------------------------

async def test_core_terms(resolver: ContextResolver) -> None:
    core = await resolver.resolve(None)
    assert core is resolver.core
    assert core.raw == CORE_CONTEXT_URL
    assert core.expand_term("foo") == DEFAULT + "foo"
    assert core.expand_term("type") == "@type"
    assert core.expand_term("id") == "@id"
    assert core.expand_term("observedAt") == "https://uri.etsi.org/ngsi-ld/observedAt"
    assert core.expand_term("@foo") is None  # keyword-like: JSON-LD drops it
    assert core.compact_attr(DEFAULT + "foo") == "foo"
    assert core.compact_attr("http://example.org/x") == "http://example.org/x"
    assert core.compact_type("https://uri.etsi.org/ngsi-ld/DateTime") == "DateTime"
    assert core.scalars_plain


async def test_every_core_url_is_the_shipped_core(resolver: ContextResolver) -> None:
    assert len(CORE_CONTEXT_URLS) == 8 and all(is_core_context_url(u) for u in CORE_CONTEXT_URLS)
    assert not is_core_context_url("https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-non-existing.jsonld")
    for url in CORE_CONTEXT_URLS:
        ctx = await resolver.resolve(url)
        assert ctx.raw == url
        assert ctx.expand_term("foo") == DEFAULT + "foo"
        assert ctx.stored == ()  # the core is not a stored (counted) context


async def test_non_core_etsi_url_is_an_ordinary_remote_context(resolver: ContextResolver) -> None:
    with pytest.raises(NgsiError) as info:
        await resolver.resolve("https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-non-existing.jsonld")
    assert info.value.error_type == "LdContextNotAvailable"


@needs_data
async def test_suite_context(resolver: ContextResolver) -> None:
    for url in (SUITE + "ngsi-ld-test-suite.jsonld", SUITE + "ngsi-ld-test-suite-compound.jsonld"):
        ctx = await resolver.resolve(url)
        assert ctx.expand_term("name") == "https://ngsi-ld-test-suite/context#name"
        assert ctx.expand_term("Vehicle") == "https://ngsi-ld-test-suite/context#Vehicle"
        assert ctx.compact_attr("https://ngsi-ld-test-suite/context#speed") == "speed"
        assert ctx.expand_term("unknown") == DEFAULT + "unknown"


async def test_smart_data_models_examples(resolver: ContextResolver) -> None:
    examples = sorted((DATA / "smart-data-models").glob("*/*/example-normalized.jsonld"))
    if not examples:
        pytest.skip("shared test data not available")
    for path in examples:
        entity = json.loads(path.read_text())
        ctx = await resolver.resolve(entity["@context"])
        for name, attr in entity.items():
            if name in ("@context", "id", "type") or not isinstance(attr, dict):
                continue
            iri = ctx.expand_term(name)
            assert iri and iri.startswith("http")
            assert ctx.compact_attr(iri) == name
            if "value" in attr:
                assert to_expanded(ctx.expand_value(attr["value"])) is not None


# ---- caching -------------------------------------------------------------------------------------------

async def test_repeated_context_is_a_dict_lookup(resolver: ContextResolver, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = [{"temperature": "http://example.org/temperature"}, PARKING]
    first = await resolver.resolve(raw)
    parking = await resolver.resolve(PARKING)
    reordered = await resolver.resolve([{"b": "http://b/", "a": "http://a/"}, PARKING])

    def no_pyld(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("pyld must not run for a cached @context")

    monkeypatch.setattr(context_module.Processor, "process_context", no_pyld)
    again = await resolver.resolve([{"temperature": "http://example.org/temperature"}, PARKING])
    assert again is first
    assert await resolver.resolve(PARKING) is parking
    # member order does not make another context
    assert await resolver.resolve([{"a": "http://a/", "b": "http://b/"}, PARKING]) is reordered
    monkeypatch.undo()


async def test_terms_are_memoised(resolver: ContextResolver, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = await resolver.resolve({"speed": "http://example.org/speed"})
    assert ctx.expand_term("speed") == "http://example.org/speed"
    assert ctx.compact_attr("http://example.org/speed") == "speed"
    assert ctx.compact_type("http://example.org/speed") == "speed"

    def no_pyld(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a memoised term must not reach pyld")

    monkeypatch.setattr(ctx._proc, "_expand_iri", no_pyld)
    monkeypatch.setattr(ctx._proc, "_compact_iri", no_pyld)
    assert ctx.expand_term("speed") == "http://example.org/speed"
    assert ctx.compact_attr("http://example.org/speed") == "speed"
    assert ctx.compact_vocab("http://example.org/speed") == "speed"


# ---- errors --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("raw", [42, True, ["https://example.org/ctx.jsonld", 7], "", [[]], {"a": 5},
                                 {"@version": 2.0}, "iudx:EVChargingStation", "relative/context.jsonld"])
async def test_invalid_context_is_400(resolver: ContextResolver, raw: Any) -> None:
    with pytest.raises(NgsiError) as info:
        await resolver.resolve(raw)
    assert info.value.status == 400 and info.value.error_type == "BadRequestData"


async def test_protected_core_terms(resolver: ContextResolver) -> None:
    # the core is applied last: a user redefinition of a core term is simply overridden
    ctx = await resolver.resolve({"type": "http://example.org/type", "location": "http://example.org/loc"})
    assert ctx.expand_term("type") == "@type"
    assert ctx.expand_term("location") == "https://uri.etsi.org/ngsi-ld/location"
    # after the core, redefining a protected term is a JSON-LD error: 400, never 500
    with pytest.raises(NgsiError) as info:
        await resolver.resolve([CORE_CONTEXT_URL, {"location": "http://example.org/loc"}])
    assert info.value.status == 400 and "protected" in info.value.detail
    # ... unless the definition is the same
    same = await resolver.resolve([CORE_CONTEXT_URL, {"location": "ngsi-ld:location"}])
    assert same.expand_term("location") == "https://uri.etsi.org/ngsi-ld/location"


async def test_cyclic_and_deep_documents(tmp_path: Path) -> None:
    a, b = "http://ctx.example/a.jsonld", "http://ctx.example/b.jsonld"
    r = await make_resolver(tmp_path, {a: {"@context": [b, {"x": "http://x/"}]}, b: {"@context": a}})
    with pytest.raises(NgsiError) as info:
        await r.resolve(a)
    assert info.value.status == 400
    chain = {f"http://ctx.example/{i}.jsonld": {"@context": f"http://ctx.example/{i + 1}.jsonld"} for i in range(40)}
    r2 = await make_resolver(tmp_path, chain)
    with pytest.raises(NgsiError) as info:
        await r2.resolve("http://ctx.example/0.jsonld")
    assert info.value.status == 400
    await r.close()
    await r2.close()


async def test_nested_documents_and_scoped_contexts(tmp_path: Path) -> None:
    outer, inner = "http://ctx.example/outer.jsonld", "http://ctx.example/inner.jsonld"
    r = await make_resolver(tmp_path, {
        outer: {"@context": ["inner.jsonld", {"box": {"@id": "http://x/box", "@context": inner}}]},
        inner: {"@context": {"size": "http://x/size"}}})
    ctx = await r.resolve(outer)
    assert ctx.expand_term("size") == "http://x/size"  # relative URL resolved against the document
    value = {"box": {"size": 3}}
    assert to_expanded(ctx.expand_value(value)) == [{"http://x/box": [{"http://x/size": [{"@value": 3}]}]}]
    assert ctx.compact_value(ctx.expand_value(value)) == value
    assert set(ctx.stored) == {outer, inner}
    await r.close()


# ---- values --------------------------------------------------------------------------------------------

async def test_value_forms(resolver: ContextResolver) -> None:
    core = resolver.core
    assert core.expand_value("x") == "x"
    assert core.expand_value(["a"]) == ["a"]  # the user's array shape is kept
    assert core.compact_value(["a"]) == ["a"]
    dt = core.expand_value({"@type": "DateTime", "@value": "2020-01-01T00:00:00Z"})
    assert dt == {"@type": "https://uri.etsi.org/ngsi-ld/DateTime", "@value": "2020-01-01T00:00:00Z"}
    assert core.compact_value(dt) == {"type": "DateTime", "@value": "2020-01-01T00:00:00Z"}
    node = core.expand_value({"id": "urn:a", "type": "Car", "color": "red", "gone": None, "n": [1, [2]]})
    assert node == {"@id": "urn:a", "@type": DEFAULT + "Car", DEFAULT + "color": "red", DEFAULT + "n": [1, [2]]}
    assert core.compact_value(node) == {"id": "urn:a", "type": "Car", "color": "red", "n": [1, [2]]}
    assert core.expand_value(None) is None
    assert core.expand_value({"j": {"@type": "@json", "@value": {"a": [1]}}}) == {
        DEFAULT + "j": {"@type": "@json", "@value": {"a": [1]}}}


async def test_value_with_coercions(resolver: ContextResolver) -> None:
    ctx = await resolver.resolve({
        "ex": "http://example.org/",
        "when": {"@id": "ex:when", "@type": "http://www.w3.org/2001/XMLSchema#dateTime"},
        "ref": {"@id": "ex:ref", "@type": "@id"},
        "kind": {"@id": "ex:kind", "@type": "@vocab"},
        "path": {"@id": "ex:path", "@container": "@list"},
        "label": {"@id": "ex:label", "@container": "@language"},
    })
    value = {"when": "2020", "ref": "ex:r1", "kind": "Car", "path": [1, 2], "label": {"en": "x", "fr": "y"}}
    internal = ctx.expand_value(value)
    assert internal == {
        "http://example.org/when": {"@type": "http://www.w3.org/2001/XMLSchema#dateTime", "@value": "2020"},
        "http://example.org/ref": {"@id": "http://example.org/r1"},
        "http://example.org/kind": {"@id": DEFAULT + "Car"},
        "http://example.org/path": {"@list": [1, 2]},
        "http://example.org/label": [{"@value": "x", "@language": "en"}, {"@value": "y", "@language": "fr"}],
    }
    assert ctx.compact_value(internal) == value
    assert ctx.expand_vocab("Car") == DEFAULT + "Car"
    assert ctx.compact_vocab(DEFAULT + "Car") == "Car"


async def test_default_language_tags_scalars(resolver: ContextResolver) -> None:
    ctx = await resolver.resolve({"@language": "de"})
    assert not ctx.scalars_plain
    assert ctx.expand_value("Hallo") == {"@value": "Hallo", "@language": "de"}
    assert ctx.expand_value(3) == 3
    assert ctx.compact_value({"@value": "Hallo", "@language": "de"}) == "Hallo"


async def test_invalid_value_is_400(resolver: ContextResolver) -> None:
    for value in ({"@value": {"a": 1}}, {"@id": 5}, {"@value": 1, "@language": "en"}, {"type": None}):
        with pytest.raises(NgsiError) as info:
            resolver.core.expand_value(value)
        assert info.value.status == 400


# ---- hosted contexts, Link URLs, usage -----------------------------------------------------------------

async def test_hosted_contexts_resolve_on_any_host(resolver: ContextResolver) -> None:
    local_id = await resolver.admin.create_hosted({"A1": "urn:ngsi-ld:attributes:A1"}, "")
    assert hosted_id(f"/ngsi-ld/v1/jsonldContexts/{local_id}") == local_id
    for url in (f"/ngsi-ld/v1/jsonldContexts/{local_id}",
                f"http://localhost:9090/ngsi-ld/v1/jsonldContexts/{local_id}",
                f"https://broker.example.com/ngsi-ld/v1/jsonldContexts/{local_id}"):
        ctx = await resolver.resolve(url)
        assert ctx.expand_term("A1") == "urn:ngsi-ld:attributes:A1"
    with pytest.raises(NgsiError) as info:
        await resolver.resolve("http://localhost/ngsi-ld/v1/jsonldContexts/nope")
    assert info.value.error_type == "LdContextNotAvailable"
    # another tenant does not see it
    with pytest.raises(NgsiError):
        await resolver.resolve(f"/ngsi-ld/v1/jsonldContexts/{local_id}", "other")
    infos = {i.local_id: i for i in await resolver.admin.list("", "Hosted")}
    assert infos[local_id].hits == 3


async def test_link_url(resolver: ContextResolver) -> None:
    base = "http://broker:1026/ngsi-ld/v1"
    assert await resolver.link_url(resolver.core, base) == CORE_CONTEXT_URL
    ctx = await resolver.resolve(PARKING)
    assert await resolver.link_url(ctx, base) == PARKING
    ctx = await resolver.resolve([PARKING, CORE_CONTEXT_URL])
    assert await resolver.link_url(ctx, base) == PARKING
    inline = await resolver.resolve([PARKING, {"x": "http://x/"}])
    url = await resolver.link_url(inline, base)
    assert url.startswith("http://broker:1026/ngsi-ld/v1/jsonldContexts/")
    assert await resolver.link_url(inline, "http://broker:1026/") == url  # created once
    implicit = [i for i in await resolver.admin.list("", "ImplicitlyCreated")]
    assert len(implicit) == 1 and implicit[0].hits == 1
    # the implicit context resolves to the same terms
    again = await resolver.resolve(url)
    assert again.expand_term("x") == "http://x/"
    assert again.expand_term("OffStreetParking") == inline.expand_term("OffStreetParking")


async def test_delete_cached_invalidates(resolver: ContextResolver) -> None:
    ctx = await resolver.resolve(PARKING)
    infos = [i for i in await resolver.admin.list("", "Cached") if i.url == PARKING]
    assert len(infos) == 1 and infos[0].hits == 1
    await resolver.admin.delete(PARKING, "", reload=False)
    assert not [i for i in await resolver.admin.list("", "Cached") if i.url == PARKING]
    again = await resolver.resolve(PARKING)
    assert again is not ctx  # rebuilt, and stored again
    assert [i.hits for i in await resolver.admin.list("", "Cached") if i.url == PARKING] == [1]


async def test_core_cannot_be_deleted(resolver: ContextResolver) -> None:
    for url in (CORE_CONTEXT_URL, "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.6.jsonld"):
        with pytest.raises(NgsiError) as info:
            await resolver.admin.delete(url, "", reload=False)
        assert info.value.status == 400
        await resolver.admin.delete(url, "", reload=True)  # reloads the shipped copy
    assert resolver.core.expand_term("foo") == DEFAULT + "foo"


async def test_resolver_order_file_table_before_remote(monkeypatch: pytest.MonkeyPatch) -> None:
    r = await make_resolver(context_fetch_remote=True)

    async def no_fetch(url: str) -> Any:
        raise AssertionError(f"{url} must not be fetched")

    monkeypatch.setattr(r._fetcher, "fetch", no_fetch)
    await r.resolve(PARKING)
    for url in CORE_CONTEXT_URLS:
        await r.resolve(url)
    assert resolver_module.NEGATIVE_TTL > 0
    await r.close()
