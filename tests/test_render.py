"""Output representations from the internal entity form (``broker.model.render`` and friends), no database.

Every representation of every attribute type (GS CIM 009 4.5.1 normalized, 4.5.2/4.5.3.3 concise, 4.5.4
simplified), sysAttrs, the language filter (4.15), pick / omit (4.21), datasetId selection (4.5.5), inline
Linked Entities (4.5.23) and the GeoJSON Feature (4.5.16 / 4.5.17); compaction never leaks an IRI the
context can compact (names, types, vocab / objectType / valueType, compound values).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker.errors import NgsiError
from broker.jsonld import Context, ContextResolver
from broker.model.entity import parse_entity
from broker.model.geojson_out import DEFAULT_GEOMETRY, feature, feature_collection, geometry_of
from broker.model.language import choose_tag, parse_lang
from broker.model.projection import check_conflicts, depth, expand, keeps, parse_projection
from broker.model.render import (
    _GENERAL,
    CONCISE,
    NORMALIZED,
    SIMPLIFIED,
    Inline,
    View,
    _bare_instance,
    _simplified,
    relationship_targets,
    render_entity,
    render_instance,
)

EX = "https://example.org/"
CREATED = "2024-01-01T00:00:00.000000Z"
MODIFIED = "2024-02-01T00:00:00.000000Z"
USER_CONTEXT = {"Vehicle": EX + "Vehicle", "speed": EX + "speed", "street": EX + "street",
                "category": EX + "category", "commercial": EX + "commercial",
                "isParked": EX + "isParked", "Parking": EX + "Parking", "brand": EX + "brand",
                "route": EX + "route", "City": EX + "City", "depths": EX + "depths", "info": EX + "info",
                "name": EX + "name", "address": EX + "address", "city": EX + "city", "unitName": EX + "unitName"}



@pytest.fixture
async def ctx(resolver: ContextResolver) -> Context:
    return await resolver.resolve(USER_CONTEXT)


def row_of(body: dict[str, Any], ctx: Context, **extra: Any) -> dict[str, Any]:
    """An entity row as the store returns it, from a user entity body."""
    ent = parse_entity(body, ctx)
    return {"id": ent.id, "types": ent.types, "scopes": ent.scopes, "created_at": CREATED,
            "modified_at": MODIFIED, "attrs": ent.attrs, **extra}


VEHICLE = {
    "id": "urn:ngsi-ld:Vehicle:1", "type": "Vehicle",
    "speed": [{"type": "Property", "value": 55, "unitCode": "KMH"},
              {"type": "Property", "value": 11, "datasetId": "urn:ngsi-ld:Dataset:gps"}],
    "brand": {"type": "Property", "value": {"name": "Mercedes", "address": {"city": "Berlin"}}},
    "street": {"type": "LanguageProperty", "languageMap": {"fr": "Grand Place", "nl": "Grote Markt"}},
    "category": {"type": "VocabProperty", "vocab": "commercial"},
    "info": {"type": "JsonProperty", "json": {"any": ["thing", 1]}},
    "depths": {"type": "ListProperty", "valueList": [1.2, 3.4]},
    "isParked": {"type": "Relationship", "object": "urn:ngsi-ld:Parking:1", "objectType": "Parking",
                 "observedAt": "2024-01-01T10:00:00Z"},
    "route": {"type": "ListRelationship", "objectList": [{"object": "urn:ngsi-ld:City:1"},
                                                         {"object": "urn:ngsi-ld:City:2"}]},
    "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [2.35, 48.85]}},
}


async def test_normalized_every_attribute_type(ctx: Context) -> None:
    got = render_entity(row_of(VEHICLE, ctx), ctx, View())
    assert got == {k: v for k, v in VEHICLE.items()}


async def test_normalized_compacts_names_types_and_values(ctx: Context, resolver: ContextResolver) -> None:
    got = render_entity(row_of(VEHICLE, ctx), ctx, View())
    assert got["type"] == "Vehicle" and got["category"]["vocab"] == "commercial"
    assert got["isParked"]["objectType"] == "Parking"
    assert got["brand"]["value"] == {"name": "Mercedes", "address": {"city": "Berlin"}}
    # the same entity read with the core context only: full IRIs, nothing lost
    core = await resolver.resolve(None)
    plain = render_entity(row_of(VEHICLE, ctx), core, View())
    assert plain["type"] == EX + "Vehicle" and EX + "speed" in plain
    assert plain[EX + "category"]["vocab"] == EX + "commercial"
    assert plain[EX + "brand"]["value"] == {EX + "name": "Mercedes", EX + "address": {EX + "city": "Berlin"}}


async def test_sys_attrs_default_to_the_entity_creation(ctx: Context) -> None:
    got = render_entity(row_of(VEHICLE, ctx), ctx, View(sys_attrs=True))
    assert got["createdAt"] == CREATED and got["modifiedAt"] == MODIFIED
    assert got["isParked"]["createdAt"] == got["isParked"]["modifiedAt"] == CREATED
    assert all(i["createdAt"] == CREATED for i in got["speed"])


async def test_concise(ctx: Context) -> None:
    got = render_entity(row_of(VEHICLE, ctx), ctx, View(format=CONCISE))
    assert got["speed"] == [{"value": 55, "unitCode": "KMH"}, {"value": 11, "datasetId": "urn:ngsi-ld:Dataset:gps"}]
    assert got["brand"] == {"value": {"name": "Mercedes", "address": {"city": "Berlin"}}}  # an object stays wrapped
    assert got["street"] == {"languageMap": {"fr": "Grand Place", "nl": "Grote Markt"}}
    assert got["category"] == {"vocab": "commercial"}
    assert got["isParked"] == {"object": "urn:ngsi-ld:Parking:1", "objectType": "Parking",
                               "observedAt": "2024-01-01T10:00:00Z"}
    assert got["location"] == {"type": "Point", "coordinates": [2.35, 48.85]}
    assert got["depths"] == {"valueList": [1.2, 3.4]}


async def test_simplified_per_attribute_type(ctx: Context) -> None:
    """4.5.4 / ETSI 454_01: bare values, objects and arrays; one-member objects for languageMap, vocab, json;
    a dataset map for several instances."""
    got = render_entity(row_of(VEHICLE, ctx), ctx, View(format=SIMPLIFIED))
    assert got == {
        "id": "urn:ngsi-ld:Vehicle:1", "type": "Vehicle",
        "speed": {"dataset": {"@none": 55, "urn:ngsi-ld:Dataset:gps": 11}},
        "brand": {"name": "Mercedes", "address": {"city": "Berlin"}},
        "street": {"languageMap": {"fr": "Grand Place", "nl": "Grote Markt"}},
        "category": {"vocab": "commercial"}, "info": {"json": {"any": ["thing", 1]}},
        "depths": [1.2, 3.4], "isParked": "urn:ngsi-ld:Parking:1",
        "route": ["urn:ngsi-ld:City:1", "urn:ngsi-ld:City:2"],
        "location": {"type": "Point", "coordinates": [2.35, 48.85]}}


# ---------------------------------------------------------------------------------------- language filter

@pytest.mark.parametrize("lang, tag", [
    ("fr", "fr"), ("fr-CH,fr", "fr"), ("fr-CH,fr;q=0.9,en;q=0.8,*;q=0.5", "fr"), ("*", "fr"),
    ("fr;q=0.2,nl;q=0.9", "nl"),  # weights outrank list order (4.15 EXAMPLE 4)
    ("FR", "fr"),  # case-insensitive tags
    ("nl-BE", "nl"),  # lookup truncates a longer range
    ("pt", "fr"),  # nothing matches: any supported language
    ("nl;q=0,fr;q=0.1", "fr"),  # q=0: not acceptable
])
def test_language_choice(lang: str, tag: str) -> None:
    assert choose_tag({"fr": "Grand Place", "nl": "Grote Markt"}, parse_lang(lang)) == tag


def test_language_choice_prefix_and_none() -> None:
    assert choose_tag({"de": "Hauptplatz", "en-US": "Main Square"}, parse_lang("en")) == "en-US"
    assert choose_tag({"de": "x", "@none": "y"}, parse_lang("pt")) == "@none"
    assert choose_tag({"de": "x", "@none": "y"}, parse_lang("*")) == "de"


@pytest.mark.parametrize("lang", ["fr;q=2", "fr;x=1", "f r", "fr,,nl", ""])
def test_invalid_language_filters(lang: str) -> None:
    with pytest.raises(NgsiError) as info:
        parse_lang(lang)
    assert info.value.error_type == "BadRequestData"


async def test_language_filter_in_every_representation(ctx: Context) -> None:
    row = row_of(VEHICLE, ctx)
    assert render_entity(row, ctx, View(lang="nl"))["street"] == \
        {"type": "Property", "value": "Grote Markt", "lang": "nl"}
    assert render_entity(row, ctx, View(lang="nl", format=CONCISE))["street"] == \
        {"value": "Grote Markt", "lang": "nl"}
    assert render_entity(row, ctx, View(lang="nl", format=SIMPLIFIED))["street"] == "Grote Markt"
    none_row = row_of({"id": "urn:x:2", "type": "Vehicle",
                       "street": {"type": "LanguageProperty", "languageMap": {"@none": "Platz"}}}, ctx)
    assert render_entity(none_row, ctx, View(lang="en"))["street"] == {"type": "Property", "value": "Platz"}


# --------------------------------------------------------------------------------------------- projection

@pytest.mark.parametrize("text, tree", [
    ("name", {"name": None}),
    ("id,name|speed", {"id": None, "name": None, "speed": None}),
    ("id,locatedAt{id,name,isInCountry{id,description}}",
     {"id": None, "locatedAt": {"id": None, "name": None, "isInCountry": {"id": None, "description": None}}}),
])
def test_projection_grammar(text: str, tree: dict[str, Any]) -> None:
    assert parse_projection(text, "pick") == tree


@pytest.mark.parametrize("text", ["id;name", "id,locatedAt{name", "id,locatedAt{{name}", "id,,name",
                                  "id,locatedAt{,name}", "id,locatedAt{}", "name||speed", "", "a}", "a b"])
def test_projection_grammar_errors(text: str) -> None:
    """ETSI 018_18_04..09, 421_01_02: BadRequestData."""
    with pytest.raises(NgsiError) as info:
        parse_projection(text, "pick")
    assert info.value.error_type == "BadRequestData"


async def test_projection_expansion_depth_and_conflicts(ctx: Context) -> None:
    pick = expand(parse_projection("id,isParked{name}", "pick"), ctx, "pick")
    assert pick == {"id": None, EX + "isParked": {EX + "name": None}}
    assert depth(pick) == 1 and depth({"a": None}) == 0 and depth(None) == 0
    with pytest.raises(NgsiError):
        expand(parse_projection("id{name}", "pick"), ctx, "pick")
    with pytest.raises(NgsiError):
        check_conflicts({"name": None}, {"name": None})
    check_conflicts({"rel": {"a": None}}, {"rel": {"b": None}})  # different linked members: fine
    assert keeps("rel", None, {"rel": {"b": None}}) and not keeps("rel", None, {"rel": None})


async def test_pick_and_omit(ctx: Context) -> None:
    row = row_of(VEHICLE, ctx)

    def view(pick: str | None = None, omit: str | None = None) -> View:
        return View(pick=expand(parse_projection(pick, "pick"), ctx, "pick") if pick else None,
                    omit=expand(parse_projection(omit, "omit"), ctx, "omit") if omit else None)

    assert render_entity(row, ctx, view(pick="id")) == {"id": "urn:ngsi-ld:Vehicle:1"}
    assert set(render_entity(row, ctx, view(pick="id,speed"))) == {"id", "speed"}
    assert set(render_entity(row, ctx, view(pick="category"))) == {"category"}
    omitted = render_entity(row, ctx, view(omit="type,speed"))
    assert "type" not in omitted and "speed" not in omitted and "brand" in omitted and "id" in omitted
    assert render_entity(row, ctx, view(pick="unknown")) == {}
    assert set(render_entity(row, ctx, View(sys_attrs=True, pick={"createdAt": None}))) == {"createdAt"}


async def test_dataset_selection(ctx: Context) -> None:
    row = row_of(VEHICLE, ctx)
    only_gps = render_entity(row, ctx, View(datasets=frozenset({"urn:ngsi-ld:Dataset:gps"})))
    assert set(only_gps) == {"id", "type", "speed"}
    assert only_gps["speed"] == {"type": "Property", "value": 11, "datasetId": "urn:ngsi-ld:Dataset:gps"}
    defaults = render_entity(row, ctx, View(datasets=frozenset({"@none"}), format=SIMPLIFIED))
    assert defaults["speed"] == 55 and "brand" in defaults


# ------------------------------------------------------------------------------------------ linked entities

async def test_inline_linked_entities(ctx: Context) -> None:
    building = row_of({"id": "urn:b:1", "type": "Vehicle", "isParked": {"type": "Relationship",
                                                                         "object": "urn:p:1"}}, ctx)
    parking = row_of({"id": "urn:p:1", "type": "Parking", "name": {"type": "Property", "value": "P1"},
                      "isParked": {"type": "Relationship", "object": "urn:b:1"}}, ctx)
    rows = {"urn:b:1": building, "urn:p:1": parking}
    got = render_entity(building, ctx, View(), Inline(rows, 1))
    assert got["isParked"]["entity"] == {"id": "urn:p:1", "type": "Parking", "name": {"type": "Property",
                                                                                     "value": "P1"},
                                         "isParked": {"type": "Relationship", "object": "urn:b:1"}}
    # two levels: the link back to the root is not followed again (no cycles)
    deep = render_entity(building, ctx, View(), Inline(rows, 2))
    assert "entity" not in deep["isParked"]["entity"]["isParked"]
    simple = render_entity(building, ctx, View(format=SIMPLIFIED), Inline(rows, 1))
    assert simple["isParked"] == {"id": "urn:p:1", "type": "Parking", "name": "P1", "isParked": "urn:b:1"}
    concise = render_entity(building, ctx, View(format=CONCISE), Inline(rows, 1))
    assert concise["isParked"]["entity"]["name"] == "P1"
    # a missing target leaves the Relationship as it is
    alone = render_entity(building, ctx, View(), Inline({}, 1))
    assert alone["isParked"] == {"type": "Relationship", "object": "urn:p:1"}
    # the linked entity's view: the sub-selection of pick
    picked = View(pick={EX + "isParked": {EX + "name": None}})
    assert render_entity(building, ctx, picked, Inline(rows, 1)) == \
        {"isParked": {"type": "Relationship", "object": "urn:p:1", "entity": {"name": {"type": "Property",
                                                                                       "value": "P1"}}}}


async def test_inline_list_relationship(ctx: Context) -> None:
    row = row_of(VEHICLE, ctx)
    city = row_of({"id": "urn:ngsi-ld:City:1", "type": "City"}, ctx)
    got = render_entity(row, ctx, View(), Inline({"urn:ngsi-ld:City:1": city}, 1))
    assert got["route"]["entityList"] == [{"id": "urn:ngsi-ld:City:1", "type": "City"}]
    simple = render_entity(row, ctx, View(format=SIMPLIFIED), Inline({"urn:ngsi-ld:City:1": city}, 1))
    assert simple["route"] == [{"id": "urn:ngsi-ld:City:1", "type": "City"}, "urn:ngsi-ld:City:2"]
    assert relationship_targets(row["attrs"][EX + "route"]) == ["urn:ngsi-ld:City:1", "urn:ngsi-ld:City:2"]


# ------------------------------------------------------------------------------------------------- GeoJSON

async def test_geojson_feature(ctx: Context) -> None:
    body = {"id": "urn:x:g", "type": "Vehicle", "speed": {"type": "Property", "value": 5},
            "location": [{"type": "GeoProperty", "value": {"type": "Point", "coordinates": [9.0, 9.0]},
                          "datasetId": "urn:ngsi-ld:Dataset:gps"},
                         {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [1.0, 2.0]}}]}
    row = row_of(body, ctx)
    entity = render_entity(row, ctx, View(format=SIMPLIFIED))
    got = feature(entity, row, DEFAULT_GEOMETRY)
    assert got["id"] == "urn:x:g" and got["type"] == "Feature"
    assert got["geometry"] == {"type": "Point", "coordinates": [1.0, 2.0]}  # the default instance
    assert "id" not in got["properties"] and got["properties"]["speed"] == 5
    assert set(got["properties"]["location"]["dataset"]) == {"@none", "urn:ngsi-ld:Dataset:gps"}
    assert geometry_of(row, EX + "speed") is None and geometry_of(row, EX + "nothing") is None
    assert feature_collection([got]) == {"type": "FeatureCollection", "features": [got]}


async def test_views_render_in_every_format(ctx: Context) -> None:
    """Every format x sysAttrs x lang renders every attribute type (no exception, JSON-compatible)."""
    import orjson

    row = row_of(VEHICLE, ctx)
    for fmt in (NORMALIZED, CONCISE, SIMPLIFIED):
        for sys_attrs in (False, True):
            for lang in (None, "nl"):
                orjson.dumps(render_entity(row, ctx, View(format=fmt, sys_attrs=sys_attrs, lang=lang)))


async def test_nested_values_are_compacted(ctx: Context) -> None:
    """List items, sub-attribute vocab / objectType and valueType compact like top-level values."""
    body = {"id": "urn:x:n", "type": "Vehicle",
            "depths": {"type": "ListProperty", "valueList": [{"city": "Paris"}, 2], "valueType": "City",
                       "info": {"type": "VocabProperty", "vocab": ["commercial", "Parking"]}},
            "route": {"type": "ListRelationship", "objectList": ["urn:x:c"], "objectType": "City"}}
    row = row_of(body, ctx)
    for fmt in (NORMALIZED, CONCISE, SIMPLIFIED):
        text = str(render_entity(row, ctx, View(format=fmt, sys_attrs=True)))
        assert EX not in text, text
    got = render_entity(row, ctx, View())
    assert got["depths"]["valueList"] == [{"city": "Paris"}, 2] and got["depths"]["valueType"] == "City"
    assert got["depths"]["info"]["vocab"] == ["commercial", "Parking"] and got["route"]["objectType"] == "City"



_BARE = st.one_of(
    st.builds(lambda v: {"type": "Property", "value": v},
              st.one_of(st.text(max_size=5), st.integers(), st.floats(allow_nan=False), st.booleans(), st.none(),
                        st.lists(st.integers(), max_size=2), st.fixed_dictionaries({EX + "a": st.just(1)}))),
    st.builds(lambda v: {"type": "GeoProperty", "value": v},
              st.one_of(st.just({"type": "Point", "coordinates": [1.0, 2.0]}), st.text(max_size=3), st.none())),
    st.builds(lambda v: {"type": "Relationship", "object": v},
              st.one_of(st.just("urn:x:1"), st.lists(st.just("urn:x:2"), max_size=2), st.none())),
    st.builds(lambda k: {"type": "Property", k: "x"}, st.sampled_from(["object", "valueList", EX + "sub"])),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(inst=_BARE, form=st.sampled_from([NORMALIZED, CONCISE, SIMPLIFIED]))
async def test_bare_instance_short_path_equals_the_general_one(ctx: Context, inst: dict[str, Any],
                                                               form: str) -> None:
    """render_entity's short path for "type + plain value" instances answers what the general walk
    (render_instance, _simplified) does, and leaves every other instance to it."""
    fast = _bare_instance(inst, ctx, form)
    if fast is _GENERAL:
        return
    view = View(format=form)
    assert fast == (_simplified(inst, ctx, view) if form == SIMPLIFIED else render_instance(inst, ctx, view))
