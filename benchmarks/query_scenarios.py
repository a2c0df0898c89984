"""The query scenarios of ``python -m benchmarks.queries``: each a generator of varied GET /entities paths.

Every scenario draws fresh parameters per request (wrk picks at random among ``PATHS_PER_SCENARIO``
pre-generated paths), so PostgreSQL cannot answer from one cached page. The filters are sized from the
dataset (``benchmarks.dataset``) so that one query *matches* a bounded number of entities (~50-100) at any
dataset size: at 1M the database has to find the same number of rows among 10x more, which is what the
1M/100k latency ratio is meant to measure (index efficiency, not bigger results).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Callable
from urllib.parse import quote

from .dataset import DOMAIN_CONTEXT, SPEED, TEMPERATURE, Dataset

ENTITIES_PATH = "/ngsi-ld/v1/entities"
PATHS_PER_SCENARIO = 5000
TARGET_MATCHES = 75  # what the range filters aim at
P95_MS, OFFSET_P95_MS, MIN_Q_RATE, MAX_RATIO_1M = 20.0, 100.0, 1500.0, 2.0
NEAR_M, SQUARE_M = 500.0, 500.0
DEEP_OFFSET = 50_000


def link_header(domain: str) -> str:
    return f'<{DOMAIN_CONTEXT[domain]}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'


def encode(params: dict[str, str]) -> str:
    """The query string, every reserved character percent-encoded (the broker decodes it as a form)."""
    return "&".join(f"{k}={quote(v, safe='')}" for k, v in params.items())


def path_of(params: dict[str, str]) -> str:
    return f"{ENTITIES_PATH}?{encode(params)}"


def _range(rng: random.Random, span: tuple[float, float], width: float) -> tuple[float, float]:
    low = rng.uniform(span[0], span[1] - width)
    return round(low, 3), round(low + width, 3)


def q_range(rng: random.Random, ds: Dataset) -> dict[str, str]:
    # uniform temperatures: a range of width span * 75 / count matches ~75 WeatherObserved
    span = TEMPERATURE[1] - TEMPERATURE[0]
    low, high = _range(rng, TEMPERATURE, span * TARGET_MATCHES / ds.counts["WeatherObserved"])
    return {"type": "WeatherObserved", "q": f"temperature>={low};temperature<={high}"}


def q_string(rng: random.Random, ds: Dataset) -> dict[str, str]:
    # ~100 lights per circuit (circuits scale with N), 60 % of them "on": ~60 matches
    return {"type": "Streetlight", "q": f'circuit=="C-{rng.randrange(ds.circuits):05d}";powerState=="on"'}


def id_pattern(rng: random.Random, ds: Dataset) -> dict[str, str]:
    # 7-digit ids: a 5-digit prefix names exactly 100 existing Vehicles
    return {"idPattern": f"^urn:ngsi-ld:Vehicle:{rng.randrange(ds.counts['Vehicle'] // 100):05d}"}


def _lonlat(ds: Dataset, rng: random.Random) -> tuple[float, float]:
    return ds.city.point(rng)  # where the entities are (dense centre + uniform rest)


def geo_near(rng: random.Random, ds: Dataset) -> dict[str, str]:
    lon, lat = _lonlat(ds, rng)
    return {"type": "ParkingSpot", "georel": f"near;maxDistance=={NEAR_M:g}", "geometry": "Point",
            "coordinates": f"[{lon:.6f},{lat:.6f}]"}


def geo_within(rng: random.Random, ds: Dataset) -> dict[str, str]:
    lon, lat = _lonlat(ds, rng)
    dlon, dlat = ds.city.km_to_deg(SQUARE_M / 2000, SQUARE_M / 2000)
    ring = [(lon - dlon, lat - dlat), (lon + dlon, lat - dlat), (lon + dlon, lat + dlat), (lon - dlon, lat + dlat),
            (lon - dlon, lat - dlat)]
    coords = "[[" + ",".join(f"[{x:.6f},{y:.6f}]" for x, y in ring) + "]]"
    return {"georel": "within", "geometry": "Polygon", "coordinates": coords}


def type_attrs(rng: random.Random, ds: Dataset) -> dict[str, str]:
    return {"type": "Streetlight", "attrs": "powerState", "limit": "100", "offset": str(rng.randrange(1000))}


def deep_offset(rng: random.Random, ds: Dataset) -> dict[str, str]:
    top = ds.counts["ParkingSpot"] - DEEP_OFFSET - 100
    return {"type": "ParkingSpot", "limit": "100", "offset": str(DEEP_OFFSET + rng.randrange(max(1, min(1000, top))))}


def count_only(rng: random.Random, ds: Dataset) -> dict[str, str]:
    # 80 % of the Vehicles drive at a uniform speed in (0, 120): a range of width 120 * 75 / (0.8 V) matches ~75
    width = (SPEED[1] - SPEED[0]) * TARGET_MATCHES / (0.8 * ds.counts["Vehicle"])
    low, high = _range(rng, (max(SPEED[0], 1.0), SPEED[1]), width)
    return {"type": "Vehicle", "q": f"speed>={low};speed<={high}", "count": "true", "limit": "0"}


@dataclass(frozen=True)
class QueryScenario:
    name: str
    shape: str  # the request, for the table and the README
    domain: str  # the Smart Data Models @context sent in the Link header
    build: Callable[[random.Random, Dataset], dict[str, str]]
    p95_ms: float = P95_MS
    min_rate: float | None = None  # queries/s

    def paths(self, ds: Dataset, count: int, seed: int) -> list[str]:
        rng = random.Random(f"{self.name}-{seed}")
        return [path_of(self.build(rng, ds)) for _ in range(count)]

    def target(self) -> str:
        return f"p95<{self.p95_ms:g}ms" + (f" & ≥{self.min_rate:,.0f}/s" if self.min_rate else "")


SCENARIOS: list[QueryScenario] = [
    QueryScenario("q-range", "type=WeatherObserved&q=temperature>=X;temperature<=Y (~75 match, 20 returned)",
                  "Weather", q_range, min_rate=MIN_Q_RATE),
    QueryScenario("q-string", 'type=Streetlight&q=circuit=="C-nnnnn";powerState=="on" (~60 match, 20 returned)',
                  "Streetlighting", q_string, min_rate=MIN_Q_RATE),
    QueryScenario("idpattern", "idPattern=^urn:ngsi-ld:Vehicle:nnnnn (100 match, 20 returned)",
                  "Transportation", id_pattern),
    QueryScenario("geo-near", "type=ParkingSpot&georel=near;maxDistance==500&geometry=Point&coordinates=[lon,lat]",
                  "Parking", geo_near),
    QueryScenario("geo-within", "georel=within&geometry=Polygon&coordinates=<500 m square> (all types)",
                  "Parking", geo_within),
    QueryScenario("attrs", "type=Streetlight&attrs=powerState&limit=100&offset=0..999", "Streetlighting", type_attrs),
    QueryScenario("offset", f"type=ParkingSpot&limit=100&offset={DEEP_OFFSET:,}..+999", "Parking", deep_offset,
                  p95_ms=OFFSET_P95_MS),
    QueryScenario("count", "type=Vehicle&q=speed>=X;speed<=Y&count=true&limit=0 (counts ~75)",
                  "Transportation", count_only),
]
BY_NAME = {s.name: s for s in SCENARIOS}


def expected_matches(ds: Dataset) -> dict[str, str]:
    """What each scenario should match on average (the selectivity check prints the measured counts)."""
    area_km2 = ds.city.side_km ** 2
    density = ds.entities / area_km2  # mean per km2; the centre is ~5x denser, the edge ~0.6x
    return {
        "q-range": f"~{TARGET_MATCHES}", "q-string": f"~{0.6 * ds.counts['Streetlight'] / ds.circuits:.0f}",
        "idpattern": "100", "geo-near": f"~{0.52 * density * math.pi * (NEAR_M / 1000) ** 2:.0f} (mean density)",
        "geo-within": f"~{density * (SQUARE_M / 1000) ** 2:.0f} (mean density)",
        "attrs": f"{ds.counts['Streetlight']:,} (100 returned)", "offset": f"{ds.counts['ParkingSpot']:,} (100 returned)",
        "count": f"~{TARGET_MATCHES}",
    }
