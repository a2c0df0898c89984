"""Bare floors: a minimal Starlette app doing ONE asyncpg statement per request, on the broker's URLs.

``python -m benchmarks.floor --database-url DSN --port N [--scenario all|create|update|get|upsert]``
(or ``FLOOR_SCENARIO``). Same server stack as the broker (uvicorn, the same number of workers, uvloop/httptools), same pool
settings (``broker.store.db``: size, no reset query, statement cache, jit off, binary jsonb codec), so the
ratio broker/floor is what the broker's own Python work costs. Each handler parses the JSON body (as the
broker must) and runs one statement on ``bench_floor.docs (id text PRIMARY KEY, doc jsonb)``:

* create  ``POST   /ngsi-ld/v1/entities``                    INSERT one row (409 on duplicate id)
* update  ``PATCH  /ngsi-ld/v1/entities/{id}/attrs/{attr}``  UPDATE ... jsonb_set(doc, {attr}, doc->attr || body)
* get     ``GET    /ngsi-ld/v1/entities/{id}``               SELECT doc by primary key, returned as stored
* upsert  ``POST   /ngsi-ld/v1/entityOperations/upsert``     INSERT ... SELECT unnest($ids, $docs) ON CONFLICT
"""

from __future__ import annotations

import argparse
import contextlib
import os
from typing import Any, AsyncIterator

import asyncpg
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from broker.api.listeners import serve_workers
from broker.api.transport import http_protocol

SCHEMA = """
CREATE SCHEMA IF NOT EXISTS bench_floor;
CREATE TABLE IF NOT EXISTS bench_floor.docs (id text COLLATE "C" PRIMARY KEY, doc jsonb NOT NULL);
"""
INSERT = "INSERT INTO bench_floor.docs (id, doc) VALUES ($1, $2)"
UPDATE = ("UPDATE bench_floor.docs SET doc = jsonb_set(doc, ARRAY[$2::text], coalesce(doc -> $2, '{}') || $3)"
          " WHERE id = $1")
SELECT = "SELECT doc FROM bench_floor.docs WHERE id = $1"
UPSERT = ("INSERT INTO bench_floor.docs (id, doc) SELECT * FROM unnest($1::text[], $2::jsonb[])"
          " ON CONFLICT (id) DO UPDATE SET doc = EXCLUDED.doc RETURNING id, xmax = 0 AS inserted")
# options=update: the attributes given are merged into the stored document
UPSERT_MERGE = UPSERT.replace("SET doc = EXCLUDED.doc", "SET doc = docs.doc || EXCLUDED.doc")
SCENARIOS = ("all", "create", "update", "get", "upsert")
JSON = "application/json"


def _encode_jsonb(value: Any) -> bytes:
    return b"\x01" + (bytes(value) if isinstance(value, (bytes, bytearray)) else orjson.dumps(value))


def _decode_jsonb(data: bytes) -> bytes:
    """Keep the stored document as bytes: the floor returns it without a decode/encode round trip."""
    return data[1:]


async def _init(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=_encode_jsonb, decoder=_decode_jsonb,
                              schema="pg_catalog", format="binary")


async def _no_reset(conn: asyncpg.Connection) -> None:
    return None


async def create_pool(dsn: str, size: int) -> asyncpg.Pool:
    """The broker's pool settings (``broker.store.db.create_pool``) with a bytes-in/bytes-out jsonb codec."""
    return await asyncpg.create_pool(dsn, min_size=min(2, size), max_size=size, init=_init, reset=_no_reset,
                                     statement_cache_size=1024, max_inactive_connection_lifetime=300.0,
                                     server_settings={"application_name": "bench-floor", "jit": "off"})


def _pool(request: Request) -> asyncpg.Pool:
    return request.app.state.pool


def _error(status: int, title: str) -> Response:
    return Response(orjson.dumps({"type": "about:blank", "title": title}), status_code=status, media_type=JSON)


async def create(request: Request) -> Response:
    body = await request.body()
    doc = orjson.loads(body)
    if not isinstance(doc, dict) or not isinstance(doc.get("id"), str):
        return _error(400, "entity with an id expected")
    try:
        await _pool(request).execute(INSERT, doc["id"], body)
    except asyncpg.UniqueViolationError:
        return _error(409, "already exists")
    return Response(status_code=201, headers={"Location": f"/ngsi-ld/v1/entities/{doc['id']}"})


async def update(request: Request) -> Response:
    body = await request.body()
    if not isinstance(orjson.loads(body), dict):
        return _error(400, "attribute fragment expected")
    params = request.path_params
    status = await _pool(request).execute(UPDATE, params["entity_id"], params["attr"], body)
    return Response(status_code=204) if status == "UPDATE 1" else _error(404, "not found")


async def get(request: Request) -> Response:
    doc = await _pool(request).fetchval(SELECT, request.path_params["entity_id"])
    return Response(doc, media_type=JSON) if doc is not None else _error(404, "not found")


async def upsert(request: Request) -> Response:
    entities = orjson.loads(await request.body())
    if not isinstance(entities, list) or not all(isinstance(e, dict) and isinstance(e.get("id"), str)
                                                 for e in entities):
        return _error(400, "array of entities expected")
    statement = UPSERT_MERGE if request.query_params.get("options") == "update" else UPSERT
    rows = await _pool(request).fetch(statement, [e["id"] for e in entities], [orjson.dumps(e) for e in entities])
    created = [row[0] for row in rows if row[1]]
    return Response(orjson.dumps(created), status_code=201, media_type=JSON) if created else Response(status_code=204)


async def version(request: Request) -> Response:
    return Response(orjson.dumps({"floor": request.app.state.scenario}), media_type=JSON)


def build_app(dsn: str, scenario: str = "all", pool_size: int = 16) -> Starlette:
    """The floor app serving ``scenario`` (``all`` mounts every route; ``/version`` is always there)."""
    routes = {
        "create": Route("/ngsi-ld/v1/entities", create, methods=["POST"]),
        "update": Route("/ngsi-ld/v1/entities/{entity_id}/attrs/{attr}", update, methods=["PATCH"]),
        "get": Route("/ngsi-ld/v1/entities/{entity_id}", get, methods=["GET"]),
        "upsert": Route("/ngsi-ld/v1/entityOperations/upsert", upsert, methods=["POST"]),
    }
    chosen = list(routes.values()) if scenario == "all" else [routes[scenario]]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.pool = await create_pool(dsn, pool_size)
        async with app.state.pool.acquire() as conn:
            await conn.execute("SELECT pg_advisory_lock(4242)")
            await conn.execute(SCHEMA)
            await conn.execute("SELECT pg_advisory_unlock(4242)")
        app.state.scenario = scenario
        yield
        await app.state.pool.close()

    return Starlette(routes=[Route("/version", version), *chosen], lifespan=lifespan)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.floor", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", choices=SCENARIOS, default=os.environ.get("FLOOR_SCENARIO", "all"))
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"), required=not os.environ.get("DATABASE_URL"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1027)
    parser.add_argument("--pool-size", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (as the broker's)")
    args = parser.parse_args(argv)
    # the broker's server stack: one write per response (broker.api.transport), a listening socket per worker
    # (broker.api.listeners)
    options = dict(host=args.host, port=args.port, log_level="warning", access_log=False, lifespan="on",
                   server_header=False, http=http_protocol())
    if args.workers > 1:
        os.environ["FLOOR_ARGS"] = orjson.dumps([args.database_url, args.scenario, args.pool_size]).decode()
        serve_workers("benchmarks.floor:app_from_environment", args.workers, options)
    else:
        uvicorn.run(build_app(args.database_url, args.scenario, args.pool_size), **options)


def app_from_environment() -> Starlette:
    """One worker's app (``--workers N``)."""
    dsn, scenario, pool_size = orjson.loads(os.environ["FLOOR_ARGS"])
    return build_app(dsn, scenario, pool_size)


if __name__ == "__main__":
    main()
