"""The query-benchmark dataset: a city of Smart Data Models entities, generated fast and deterministically.

Each entity is the model's ``example-normalized.jsonld`` (``/work/shared/data/smart-data-models`` or
``$SDM_DATA_DIR``) with its own ``@context`` (so one upsert batch mixes domains, as
``application/ld+json``), minus the attributes with problems (date-times without ``Z``: non-UTC
``observedAt``/``@value``, or no time zone at all), a Point ``location`` and a few varied attributes (the
ones the query scenarios filter on, plus some realistic noise). Ids are ``urn:ngsi-ld:<Type>:<7 digits>``
numbered per type from 0, so ``idPattern=^urn:ngsi-ld:Vehicle:00123`` selects exactly 100 ids whatever the
dataset size. Batches interleave the types (a seeded shuffle), as a real deployment's writes would.

Scaling (so that a 1M dataset makes the database find the *same number* of matches as a 100k one, and the
ratio between sizes measures index efficiency, not result sizes): the city box grows with sqrt(N) (20 km
at 100k: Madrid; 63 km at 1M: the Madrid region) so the density of entities stays the same; Streetlight
circuits number N/100-ish (~100 lights each); the numeric values are uniform, and the scenarios narrow
their ranges in proportion to 1/N.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import orjson

SDM_DIR = Path(os.environ.get("SDM_DATA_DIR", "/work/shared/data/smart-data-models"))
MADRID = (-3.7038, 40.4168)  # lon, lat
BASE_ENTITIES, BASE_SIDE_KM = 100_000, 20.0
KM_PER_DEG_LAT = 111.32
CENTRE_SHARE = 0.4  # share of entities in the dense centre (a Gaussian of sigma side/8); the rest uniform

# (type, share of the entities, example path under SDM_DIR)
MIX: list[tuple[str, float, str]] = [
    ("ParkingSpot", 0.52, "dataModel.Parking/ParkingSpot"),
    ("Streetlight", 0.18, "dataModel.Streetlighting/Streetlight"),
    ("Vehicle", 0.10, "dataModel.Transportation/Vehicle"),
    ("WeatherObserved", 0.05, "dataModel.Weather/WeatherObserved"),
    ("TrafficFlowObserved", 0.05, "dataModel.Transportation/TrafficFlowObserved"),
    ("AirQualityObserved", 0.04, "dataModel.Environment/AirQualityObserved"),
    ("NoiseLevelObserved", 0.04, "dataModel.Environment/NoiseLevelObserved"),
    ("OffStreetParking", 0.02, "dataModel.Parking/OffStreetParking"),
]
# the @context of each domain as the scenarios send it in the Link header
DOMAIN_CONTEXT = {
    "Parking": "https://raw.githubusercontent.com/smart-data-models/dataModel.Parking/master/context.jsonld",
    "Streetlighting": "https://raw.githubusercontent.com/smart-data-models/dataModel.Streetlighting/master/context.jsonld",
    "Transportation": "https://raw.githubusercontent.com/smart-data-models/dataModel.Transportation/master/context.jsonld",
    "Weather": "https://raw.githubusercontent.com/smart-data-models/dataModel.Weather/master/context.jsonld",
    "Environment": "https://raw.githubusercontent.com/smart-data-models/dataModel.Environment/master/context.jsonld",
}
TYPE_DOMAIN = {name: path.split("/")[0].removeprefix("dataModel.") for name, _, path in MIX}

# value ranges the scenarios rely on (uniform distributions)
TEMPERATURE = (-5.0, 40.0)  # WeatherObserved.temperature, 3 decimals
SPEED = (0.0, 120.0)  # Vehicle.speed, 3 decimals, plus 20 % parked at exactly 0
LIGHTS_PER_CIRCUIT = 100  # Streetlight.circuit "C-00042"

_NO_ZONE = re.compile(rb'"\d{4}-\d{2}-\d{2}T[0-9:.]+(?:[+-]\d{2}:?\d{2})?"')


def _weighted(rng: random.Random, choices: list[tuple[Any, float]]) -> Any:
    x = rng.random() * sum(w for _, w in choices)
    for value, weight in choices:
        x -= weight
        if x < 0:
            return value
    return choices[-1][0]


@dataclass(frozen=True)
class City:
    """Where the entities are: a square box centred on Madrid whose side grows with sqrt(N)."""

    entities: int

    @property
    def side_km(self) -> float:
        return BASE_SIDE_KM * math.sqrt(self.entities / BASE_ENTITIES)

    def km_to_deg(self, dx_km: float, dy_km: float) -> tuple[float, float]:
        return (dx_km / (KM_PER_DEG_LAT * math.cos(math.radians(MADRID[1]))), dy_km / KM_PER_DEG_LAT)

    def point(self, rng: random.Random) -> tuple[float, float]:
        """A random (lon, lat): CENTRE_SHARE in the Gaussian centre, the rest uniform over the box."""
        half = self.side_km / 2
        if rng.random() < CENTRE_SHARE:
            dx, dy = (max(-half, min(half, rng.gauss(0, self.side_km / 8))) for _ in range(2))
        else:
            dx, dy = rng.uniform(-half, half), rng.uniform(-half, half)
        ddx, ddy = self.km_to_deg(dx, dy)
        return MADRID[0] + ddx, MADRID[1] + ddy


def type_counts(entities: int) -> dict[str, int]:
    """Entities per type: the MIX shares, ParkingSpot taking the rounding remainder."""
    counts = {name: int(entities * share) for name, share, _ in MIX}
    counts[MIX[0][0]] += entities - sum(counts.values())
    return counts


def entity_id(type_name: str, n: int) -> str:
    return f"urn:ngsi-ld:{type_name}:{n:07d}"


# --- templates ----------------------------------------------------------------------------------------------

def _clean_example(path: str) -> dict[str, Any]:
    doc = json.loads((SDM_DIR / path / "example-normalized.jsonld").read_text())
    out: dict[str, Any] = {"id": None, "type": doc["type"]}
    for key, attr in doc.items():
        if key in ("id", "type", "@context"):
            continue
        raw = orjson.dumps(attr)
        if any(not m.group().endswith(b'Z"') for m in _NO_ZONE.finditer(raw)):
            continue  # a date-time without Z: non-UTC observedAt / @value, or no zone at all
        out[key] = attr
    out["@context"] = doc["@context"]
    return out


class Template:
    """One entity type as pre-serialised pieces: ``render(values)`` splices the slot values in.

    ``slots`` are (attribute, member) pairs replaced by the generator's values (already JSON-encoded).
    """

    def __init__(self, doc: dict[str, Any], slots: list[tuple[str, str]]) -> None:
        doc = json.loads(json.dumps(doc))
        doc["id"] = "@@slot-id@@"
        for k, (attr, member) in enumerate(slots):
            if attr not in doc:
                doc[attr] = {"type": "Property"}
            doc[attr][member] = f"@@slot-{k}@@"
        text = orjson.dumps(doc)
        self.pieces: list[bytes] = []
        self.order: list[int] = []  # slot index per gap; -1 is the id
        pattern = re.compile(rb'"@@slot-(id|\d+)@@"')
        pos = 0
        for m in pattern.finditer(text):
            self.pieces.append(text[pos:m.start()])
            self.order.append(-1 if m.group(1) == b"id" else int(m.group(1)))
            pos = m.end()
        self.pieces.append(text[pos:])

    def render(self, entity_id: bytes, values: list[bytes]) -> bytes:
        parts = [self.pieces[0]]
        for gap, slot in enumerate(self.order):
            parts.append(b'"' + entity_id + b'"' if slot < 0 else values[slot])
            parts.append(self.pieces[gap + 1])
        return b"".join(parts)


def _num(x: float, digits: int = 3) -> bytes:
    return f"{x:.{digits}f}".encode()


def _str(s: str) -> bytes:
    return orjson.dumps(s)


def _point(lon: float, lat: float) -> bytes:
    return b'{"type":"Point","coordinates":[%.6f,%.6f]}' % (lon, lat)


def _when(rng: random.Random) -> bytes:
    """An observedAt / DateTime value in 2024 (UTC)."""
    day, sec = rng.randrange(366), rng.randrange(86_400)
    month_days = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    month = 0
    while day >= month_days[month]:
        day -= month_days[month]
        month += 1
    return b'"2024-%02d-%02dT%02d:%02d:%02dZ"' % (month + 1, day + 1, sec // 3600, sec // 60 % 60, sec % 60)


Generator = Callable[[random.Random, int, "Dataset"], list[bytes]]

# per type: the slots (attribute, member) and a generator of their values, in slot order
_SPECS: dict[str, tuple[list[tuple[str, str]], Generator]] = {
    "ParkingSpot": ([("location", "value"), ("status", "value"), ("status", "observedAt"), ("name", "value"),
                     ("category", "value"), ("refParkingSite", "object")],
                    lambda r, n, d: [_point(*d.city.point(r)),
                                     _str(_weighted(r, [("free", 45), ("occupied", 50), ("closed", 3), ("unknown", 2)])),
                                     _when(r), _str(f"P-{n % 150}"),
                                     b'["onStreet"]' if r.random() < 0.9 else b'["offStreet"]',
                                     _str(f"urn:ngsi-ld:ParkingSite:{n // 150:06d}")]),
    "Streetlight": ([("location", "value"), ("powerState", "value"), ("circuit", "value"), ("status", "value"),
                     ("powerConsumption", "value"), ("lanternHeight", "value")],
                    lambda r, n, d: [_point(*d.city.point(r)),
                                     _str(_weighted(r, [("on", 60), ("off", 30), ("low", 8), ("bootingUp", 2)])),
                                     _str(f"C-{r.randrange(d.circuits):05d}"),
                                     _str(_weighted(r, [("ok", 85), ("defectiveLamp", 8), ("columnIssue", 4),
                                                        ("brokenLantern", 3)])),
                                     _num(r.uniform(0, 250), 1), _num(r.choice((6, 8, 10, 12)), 0)]),
    "Vehicle": ([("location", "value"), ("location", "observedAt"), ("speed", "value"), ("speed", "observedAt"),
                 ("bearing", "value"), ("vehicleType", "value"), ("serviceStatus", "value"),
                 ("vehiclePlateIdentifier", "value")],
                lambda r, n, d: [_point(*d.city.point(r)), w := _when(r),
                                 b"0" if r.random() < 0.2 else _num(r.uniform(*SPEED)), w,
                                 _num(r.uniform(0, 360), 1),
                                 _str(_weighted(r, [("car", 50), ("van", 20), ("lorry", 15), ("bus", 10),
                                                    ("motorcycle", 5)])),
                                 _str(_weighted(r, [("onRoute", 55), ("parked", 35), ("broken", 5),
                                                    ("outOfService", 5)])),
                                 _str(f"{n % 10000:04d}{'BCDFGHJKLMNPRSTVWXYZ'[n // 10000 % 20]}KM")]),
    "WeatherObserved": ([("location", "value"), ("temperature", "value"), ("relativeHumidity", "value"),
                         ("atmosphericPressure", "value"), ("windSpeed", "value"), ("windDirection", "value"),
                         ("dateObserved", "value")],
                        lambda r, n, d: [_point(*d.city.point(r)), _num(r.uniform(*TEMPERATURE)),
                                         _num(r.random(), 2), _num(r.uniform(950, 1050), 1), _num(r.uniform(0, 25), 1),
                                         _num(r.randrange(360), 0),
                                         b'{"@type":"DateTime","@value":' + _when(r) + b"}"]),
    "TrafficFlowObserved": ([("location", "value"), ("intensity", "value"), ("occupancy", "value"),
                             ("averageVehicleSpeed", "value"), ("laneDirection", "value")],
                            lambda r, n, d: [_point(*d.city.point(r)), _num(r.randrange(2000), 0),
                                             _num(r.random(), 2), _num(r.uniform(0, 120), 1),
                                             _str(r.choice(("forward", "backward")))]),
    "AirQualityObserved": ([("location", "value"), ("no2", "value"), ("temperature", "value"),
                            ("airQualityLevel", "value")],
                           lambda r, n, d: [_point(*d.city.point(r)), _num(r.uniform(0, 200), 1),
                                            _num(r.uniform(*TEMPERATURE), 1),
                                            _str(_weighted(r, [("good", 50), ("moderate", 35), ("unhealthy", 12),
                                                               ("veryUnhealthy", 3)]))]),
    "NoiseLevelObserved": ([("location", "value"), ("LAeq", "value"), ("LAmax", "value")],
                           lambda r, n, d: [_point(*d.city.point(r)), _num(r.uniform(35, 95), 1),
                                            _num(r.uniform(60, 110), 1)]),
    "OffStreetParking": ([("location", "value"), ("availableSpotNumber", "value"), ("occupancy", "value")],
                         lambda r, n, d: [_point(*d.city.point(r)), _num(r.randrange(400), 0),
                                          _num(r.random(), 2)]),
}


class Dataset:
    """``entities`` entities of the MIX, generated from ``seed``; ``batches()`` yields upsert bodies."""

    def __init__(self, entities: int, seed: int = 1) -> None:
        self.entities = entities
        self.seed = seed
        self.city = City(entities)
        self.counts = type_counts(entities)
        self.circuits = max(1, self.counts["Streetlight"] // LIGHTS_PER_CIRCUIT)
        self.templates: dict[str, Template] = {}
        for name, _, path in MIX:
            doc = _clean_example(path)
            if name == "TrafficFlowObserved":
                doc["location"] = {"type": "GeoProperty", "value": None}  # a LineString in the example
            self.templates[name] = Template(doc, _SPECS[name][0])

    def order(self) -> list[int]:
        """The type index of each entity in load order: every type interleaved (seeded shuffle)."""
        order = [k for k, (name, _, _) in enumerate(MIX) for _ in range(self.counts[name])]
        random.Random(self.seed).shuffle(order)
        return order

    def batches(self, size: int = 1000) -> Iterator[bytes]:
        """JSON array bodies of ``size`` entities (application/ld+json, an @context in every entity)."""
        rng = random.Random(self.seed + 1)
        names = [name for name, _, _ in MIX]
        gens = [_SPECS[name][1] for name in names]
        templates = [self.templates[name] for name in names]
        next_n = [0] * len(names)
        chunk: list[bytes] = []
        for k in self.order():
            n = next_n[k]
            next_n[k] = n + 1
            chunk.append(templates[k].render(entity_id(names[k], n).encode(), gens[k](rng, n, self)))
            if len(chunk) == size:
                yield b"[" + b",".join(chunk) + b"]"
                chunk = []
        if chunk:
            yield b"[" + b",".join(chunk) + b"]"

    def sample(self, type_name: str) -> dict[str, Any]:
        """One entity of ``type_name`` as a dict (for checks and documentation)."""
        body = self.templates[type_name].render(entity_id(type_name, 0).encode(),
                                                _SPECS[type_name][1](random.Random(0), 0, self))
        return orjson.loads(body)
