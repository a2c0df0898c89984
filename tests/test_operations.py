"""The write rules of broker.model.operations on the internal form (no database, no HTTP)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import given, strategies as st

from broker.errors import NgsiError
from broker.model import operations as ops
from broker.model.entity import NULL, EntityInput

T0, T1 = "2024-01-01T00:00:00.000000Z", "2024-01-02T00:00:00.000000Z"
SPEED, NAME = "https://ex.org/speed", "https://ex.org/name"
TYPE = "https://ex.org/Vehicle"


def prop(value, **extra):
    return {"type": "Property", "value": value, **extra}


def stored(value, **extra):
    return {**prop(value, **extra), "createdAt": T0, "modifiedAt": T0}


def current(**attrs):
    return {"id": "urn:v:1", "types": [TYPE], "scopes": None, "created_at": T0, "attrs": attrs}


def fragment(**attrs):
    return EntityInput("", [], None, {k: v for k, v in attrs.items()})


def test_append_adds_and_overwrites_keeping_created_at():
    cur = current(**{SPEED: [stored(10)]})
    write = ops.append(cur, fragment(**{SPEED: [prop(20)], NAME: [prop("a")]}), T1)
    assert write.set_attrs[SPEED] == [{**prop(20), "createdAt": T0, "modifiedAt": T1}]
    assert write.set_attrs[NAME] == [{**prop("a"), "modifiedAt": T1}]  # createdAt == modifiedAt: not stored
    assert sorted(write.updated) == sorted([SPEED, NAME]) and not write.not_updated


def test_append_no_overwrite_reports_existing():
    cur = current(**{SPEED: [stored(10)]})
    write = ops.append(cur, fragment(**{SPEED: [prop(20)], NAME: [prop("a")]}), T1, overwrite=False)
    assert SPEED not in write.set_attrs
    assert write.not_updated == [(SPEED, "the attribute exists and noOverwrite was requested")]
    assert write.updated == [NAME]


def test_append_new_dataset_instance_keeps_default_first():
    cur = current(**{SPEED: [stored(10)]})
    write = ops.append(cur, fragment(**{SPEED: [prop(30, datasetId="urn:ds:gps")]}), T1)
    assert [i.get("datasetId") for i in write.set_attrs[SPEED]] == [None, "urn:ds:gps"]
    write = ops.append(current(**{SPEED: [stored(30, datasetId="urn:ds:gps")]}), fragment(**{SPEED: [prop(1)]}),
                       T1)
    assert [i.get("datasetId") for i in write.set_attrs[SPEED]] == [None, "urn:ds:gps"]


def test_update_replaces_existing_and_appends_missing():
    """ETSI 011_01_03: Update Entity Attributes also appends attributes the entity does not have yet."""
    cur = current(**{SPEED: [stored(10)]})
    write = ops.update(cur, fragment(**{SPEED: [prop(11)], NAME: [prop("x")]}), T1)
    assert write.set_attrs == {SPEED: [{**prop(11), "createdAt": T0, "modifiedAt": T1}],
                               NAME: [{**prop("x"), "modifiedAt": T1}]}
    assert not write.not_updated


def test_update_scope_only_when_present():
    """ETSI 011_05: a scope replaces an existing scope; an entity without scope reports it not updated."""
    with_scope = {**current(), "scopes": ["/a"]}
    assert ops.update(with_scope, EntityInput("", [], ["/b"], {}), T1).scopes == ["/b"]
    write = ops.update(current(), EntityInput("", [], ["/b"], {}), T1)
    assert write.scopes is None and write.not_updated == [("scope", "the entity has no scope to update")]


def test_append_scope_replaces_or_adds():
    """ETSI 010_07: scope is replaced, or with noOverwrite added to."""
    cur = {**current(), "scopes": ["/a"]}
    assert ops.append(cur, EntityInput("", [], ["/b"], {}), T1).scopes == ["/b"]
    assert ops.append(cur, EntityInput("", [], ["/b"], {}), T1, overwrite=False).scopes == ["/a", "/b"]


def test_partial_update_merges_members_and_requires_instance():
    sub = "https://ex.org/source"
    cur = current(**{SPEED: [stored(10, unitCode="KMH", **{sub: prop("gps")})]})
    write = ops.partial_update(cur, SPEED, {"value": 12}, T1)
    inst = write.set_attrs[SPEED][0]
    assert inst["value"] == 12 and inst["unitCode"] == "KMH" and inst[sub] == prop("gps")
    assert inst["createdAt"] == T0 and inst["modifiedAt"] == T1
    with pytest.raises(NgsiError) as err:
        ops.partial_update(cur, SPEED, {"value": 1, "datasetId": "urn:ds:none"}, T1)
    assert err.value.status == 404
    assert ops.partial_update(cur, SPEED, {"value": NULL}, T1).removed == [SPEED]  # NGSI-LD Null deletes
    with pytest.raises(NgsiError) as err:
        ops.partial_update(cur, SPEED, {"type": "Relationship", "object": "urn:x:1"}, T1)
    assert err.value.error_type == "BadRequestData"


def test_update_null_deletes_instance_or_attribute():
    cur = current(**{SPEED: [stored(1), stored(2, datasetId="urn:ds:a")], NAME: [stored("a")]})
    write = ops.update(cur, fragment(**{SPEED: [{"type": "Property", "value": NULL, "datasetId": "urn:ds:a"}],
                                        NAME: []}), T1)
    assert [i.get("datasetId") for i in write.set_attrs[SPEED]] == [None]
    assert write.removed == [NAME] and not write.not_updated


def test_replace_attribute_replaces_whole_instance():
    cur = current(**{SPEED: [stored(10, unitCode="KMH")]})
    write = ops.replace_attribute(cur, SPEED, prop(5), T1)
    assert write.set_attrs[SPEED] == [{**prop(5), "createdAt": T0, "modifiedAt": T1}]
    with pytest.raises(NgsiError):
        ops.replace_attribute(current(), SPEED, prop(5), T1)


@pytest.mark.parametrize("dataset_id, delete_all, left", [
    (None, False, ["urn:ds:a"]), ("urn:ds:a", False, [None]), (None, True, []),
])
def test_delete_attribute(dataset_id, delete_all, left):
    cur = current(**{SPEED: [stored(1), stored(2, datasetId="urn:ds:a")]})
    write = ops.delete_attribute(cur, SPEED, dataset_id, delete_all)
    if left:
        assert [i.get("datasetId") for i in write.set_attrs[SPEED]] == left
    else:
        assert write.removed == [SPEED]


def test_delete_attribute_missing_instance_is_404():
    with pytest.raises(NgsiError) as err:
        ops.delete_attribute(current(**{SPEED: [stored(1)]}), SPEED, "urn:ds:x", False)
    assert err.value.status == 404


def test_merge_null_deletes_and_merges_sub_attributes():
    sub, sub2 = "https://ex.org/source", "https://ex.org/accuracy"
    cur = current(**{SPEED: [stored(10, **{sub: prop("gps"), sub2: prop(1)})], NAME: [stored("a")]})
    patch = fragment(**{SPEED: [{"type": "Property", "value": 11, sub2: None}], NAME: []})
    write = ops.merge(cur, patch, T1)
    assert write.removed == [NAME]
    inst = write.set_attrs[SPEED][0]
    assert inst["value"] == 11 and inst[sub] == prop("gps") and sub2 not in inst


def test_merge_null_value_deletes_one_instance():
    cur = current(**{SPEED: [stored(1), stored(2, datasetId="urn:ds:a")]})
    write = ops.merge(cur, fragment(**{SPEED: [{"type": "Property", "value": NULL, "datasetId": "urn:ds:a"}]}), T1)
    assert [i.get("datasetId") for i in write.set_attrs[SPEED]] == [None]


def test_replace_entity_removes_missing_attributes():
    cur = current(**{SPEED: [stored(1)], NAME: [stored("a")]})
    write = ops.replace(cur, EntityInput("urn:v:1", [TYPE], ["/a"], {SPEED: [prop(2)]}), T1)
    assert write.removed == [NAME] and write.scopes == ["/a"]
    assert "createdAt" not in write.set_attrs[SPEED][0]  # replaced attributes are new ones (created now)
    assert write.set_attrs[SPEED][0]["modifiedAt"] == T1


def test_instance_timestamps_are_stored_only_when_they_differ():
    """broker.model: an instance's modifiedAt is omitted while it equals the entity's createdAt, its
    createdAt while it equals modifiedAt; both survive later modifications."""
    born = "2023-12-31T00:00:00.000000Z"
    untouched = {"type": "Property", "value": 1}
    assert ops.instance_times(untouched, born) == (born, born)
    again = ops.stamp({"type": "Property", "value": 2}, untouched, T1, born)
    assert again == {"type": "Property", "value": 2, "createdAt": born, "modifiedAt": T1}
    third = ops.stamp({"type": "Property", "value": 3}, again, "2024-01-03T00:00:00.000000Z", born)
    assert ops.instance_times(third, born) == (born, "2024-01-03T00:00:00.000000Z")
    added = ops.stamp({"type": "Property", "value": 4}, None, T1, born)
    assert added == {"type": "Property", "value": 4, "modifiedAt": T1}  # created when last modified
    assert ops.instance_times(added, born) == (T1, T1)


def test_check_same_id():
    ops.check_same_id(EntityInput("", [], None, {}), "urn:a")
    with pytest.raises(NgsiError):
        ops.check_same_id(EntityInput("urn:b", [], None, {}), "urn:a")


@given(moment=st.datetimes(min_value=datetime(1000, 1, 1), timezones=st.just(timezone.utc)))
def test_iso_is_the_strftime_format(moment: datetime) -> None:
    assert ops.iso(moment) == moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert ops.iso("2024-01-01T00:00:00Z") == "2024-01-01T00:00:00Z"


def test_iso_years_have_four_digits() -> None:
    """ISO 8601 (glibc's strftime writes year 999 as '999')."""
    assert ops.iso(datetime(999, 1, 2, 3, 4, 5, 6, tzinfo=timezone.utc)) == "0999-01-02T03:04:05.000006Z"


def _rfc7396(target: Any, patch: Any) -> Any:
    """IETF RFC 7396 section 2, with the NGSI-LD Null in the role of JSON null."""
    if not isinstance(patch, dict):
        return patch
    target = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value == NULL:
            target.pop(key, None)
        else:
            target[key] = _rfc7396(target.get(key), value)
    return target


_JSON_KEYS = st.sampled_from(["a", "b", "c"])
_JSON = st.recursive(st.one_of(st.integers(0, 3), st.text(max_size=2), st.just(NULL)),
                     lambda inner: st.one_of(st.lists(inner, max_size=2),
                                             st.dictionaries(_JSON_KEYS, inner, max_size=3)), max_leaves=8)


@given(old=_JSON, patch=_JSON)
def test_merge_value_is_rfc7396(old: Any, patch: Any) -> None:
    """Merge Entity's JSON object values follow RFC 7396 (5.5.12), the NGSI-LD Null deleting keys."""
    assert ops.merge_value(old, patch) == _rfc7396(old, patch)
