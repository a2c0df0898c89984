"""Request bodies shared by the broker and the floor: a Smart Data Models ``Vehicle`` with six attributes.

The wrk Lua scripts (``benchmarks/wrk/*.lua``) build the same document for single creates; this module
builds it in Python for seeding and for the batch driver, where a batch is assembled from pre-serialised
pieces so that the load generator spends microseconds, not milliseconds, per 1,000-entity body.
"""

from __future__ import annotations

from typing import Any, Iterable

import orjson

CONTEXT_URL = "https://raw.githubusercontent.com/smart-data-models/dataModel.Transportation/master/context.jsonld"
LINK = f'<{CONTEXT_URL}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
HEADERS = {"Content-Type": "application/json", "Link": LINK}
ENTITIES_PATH = "/ngsi-ld/v1/entities"
UPSERT_PATH = "/ngsi-ld/v1/entityOperations/upsert"
OBSERVED_AT = "2024-05-01T10:00:00Z"


def seed_id(index: int) -> str:
    """The id of the ``index``-th pre-created entity (the wrk scripts use the same pattern)."""
    return f"urn:ngsi-ld:Vehicle:seed-{index}"


def vehicle(entity_id: str, n: int) -> dict[str, Any]:
    """A ~700-byte Vehicle: 4 Properties (2 with unitCode/observedAt), a GeoProperty and a Relationship."""
    return {
        "id": entity_id,
        "type": "Vehicle",
        "vehicleType": {"type": "Property", "value": "lorry"},
        "serviceStatus": {"type": "Property", "value": "onRoute", "observedAt": OBSERVED_AT},
        "speed": {"type": "Property", "value": 40.5 + n % 50, "unitCode": "KMH", "observedAt": OBSERVED_AT},
        "heading": {"type": "Property", "value": (n * 7) % 360, "unitCode": "DD", "observedAt": OBSERVED_AT},
        "location": {"type": "GeoProperty",
                     "value": {"type": "Point", "coordinates": [-3.7 + (n % 1000) / 10000, 40.4 + (n % 997) / 10000]},
                     "observedAt": OBSERVED_AT},
        "refVehicleModel": {"type": "Relationship", "object": f"urn:ngsi-ld:VehicleModel:model-{n % 10}"},
    }


def speed_patch(n: int) -> dict[str, Any]:
    """The body of a partial attribute update of ``speed``."""
    return {"value": 30.25 + n % 70, "observedAt": OBSERVED_AT}


class BatchBuilder:
    """Builds ``[entity, ...]`` JSON bodies for a list of ids from per-position pre-serialised tails."""

    def __init__(self, size: int, variant: int = 0) -> None:
        self.size = size
        marker = "X"
        self._tails: list[bytes] = []
        for n in range(size):
            doc = orjson.dumps(vehicle(marker, n + variant))
            head = b'{"id":"' + marker.encode()
            assert doc.startswith(head)
            self._tails.append(doc[len(head):])

    def body(self, ids: Iterable[str]) -> bytes:
        """One batch body; ``ids`` must be plain ASCII URNs (no JSON escaping is done)."""
        parts = [b'{"id":"' + i.encode() + tail for i, tail in zip(ids, self._tails)]
        return b"[" + b",".join(parts) + b"]"


def seed_bodies(count: int, batch: int = 1000) -> list[bytes]:
    """Upsert bodies that create ``seed_id(0 .. count-1)``."""
    builder = BatchBuilder(batch)
    return [builder.body(seed_id(i) for i in range(start, min(start + batch, count)))
            for start in range(0, count, batch)]
