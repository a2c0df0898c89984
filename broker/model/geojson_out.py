"""The GeoJSON representation of entities (GS CIM 009 clauses 4.5.16 / 4.5.17, 6.3.15).

An entity becomes a Feature: ``id`` the entity id, ``type`` ``"Feature"``, ``geometry`` the value of the
GeoProperty chosen by ``geometryProperty`` (default ``location``; its default instance when it has several
datasetIds; ``null`` when the entity lacks it or it is no GeoProperty), ``properties`` the entity in the
requested representation (normalized or simplified) without its ``id``. A query answers a FeatureCollection
of such Features; the ``@context`` goes once at the top of the document (6.3.6), never in each Feature.
"""

from __future__ import annotations

from typing import Any

DEFAULT_GEOMETRY = "https://uri.etsi.org/ngsi-ld/location"


def geometry_of(row: Any, geometry_iri: str) -> Any:
    """The geometry ``geometry_iri`` names in the entity ``row``: its default instance, else the first."""
    instances = row["attrs"].get(geometry_iri) or []
    chosen = next((i for i in instances if "datasetId" not in i), instances[0] if instances else None)
    if chosen is None or chosen.get("type") != "GeoProperty":
        return None
    return chosen.get("value")


def feature(entity: dict[str, Any], row: Any, geometry_iri: str) -> dict[str, Any]:
    """The Feature of a rendered entity (``row`` is its internal form, for the geometry)."""
    out: dict[str, Any] = {}
    if "id" in entity:
        out["id"] = entity["id"]
    out["type"] = "Feature"
    out["geometry"] = geometry_of(row, geometry_iri)
    out["properties"] = {k: v for k, v in entity.items() if k not in ("id", "@context")}
    return out


def feature_collection(features: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": features}
