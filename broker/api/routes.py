"""The route table of the NGSI-LD API (mounted under ``/ngsi-ld/v1``) and the broker's own ``/version``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from .. import __version__
from . import (attributes, batch, contexts, discovery, entities, info, query, registrations, subscriptions,
               temporal, temporal_write)
from .http import json_response
from .resource import Handler, resource
from ..services import broker_of

async def version(request: Request) -> Response:
    return json_response({"broker": "ngsild-broker", "version": __version__})


async def metrics(request: Request) -> Response:
    """Prometheus text format: this process's notification figures (a dead receiver's drops show here)."""
    figures = request.app.state.broker.dispatcher.metrics()
    text = "".join(f"{name} {value}\n" for name, value in figures.items())
    return Response(text, media_type="text/plain; version=0.0.4")


def _caught_up(handler: Handler) -> Handler:
    """A temporal API handler, run once the history holds every write answered before it (the history is
    recorded after the writes: broker.temporal.recorder)."""
    async def run(request: Request) -> Response:
        recorder = broker_of(request).recorder  # None with the history off
        if recorder is not None:
            await recorder.catch_up()
        return await handler(request)
    return run


def temporal_resource(path: str, **handlers: Handler) -> Route:
    return resource(path, **{method: _caught_up(handler) for method, handler in handlers.items()})


def routes() -> list[Route | Mount]:
    api = [
        resource("/entities", GET=query.query_entities, POST=entities.create_entity,
                 DELETE=batch.purge_entities),
        resource("/entities/{entity_id:path}/attrs/{attr_id}", PATCH=attributes.partial_update,
                 PUT=attributes.replace_attribute, DELETE=attributes.delete_attribute),
        resource("/entities/{entity_id:path}/attrs", POST=attributes.append_attributes,
                 PATCH=attributes.update_attributes),
        resource("/entities/{entity_id:path}", GET=entities.retrieve_entity, PUT=entities.replace_entity,
                 PATCH=entities.merge_entity, DELETE=entities.delete_entity),
        resource("/entityOperations/create", POST=batch.batch_create),
        resource("/entityOperations/upsert", POST=batch.batch_upsert),
        resource("/entityOperations/update", POST=batch.batch_update),
        resource("/entityOperations/merge", POST=batch.batch_merge),
        resource("/entityOperations/delete", POST=batch.batch_delete),
        resource("/entityOperations/query", POST=query.query_entities_post),
        temporal_resource("/temporal/entities", GET=temporal.query_temporal, POST=temporal_write.create_temporal),
        # an empty attribute name: DELETE is a bad request (ETSI 017_02_05); PATCH stays 405 (016_02_06)
        temporal_resource("/temporal/entities/{entity_id:path}/attrs//{instance_id:path}",
                          DELETE=temporal_write.missing_attribute),
        temporal_resource("/temporal/entities/{entity_id:path}/attrs/{attr_id}/{instance_id:path}",
                          PATCH=temporal_write.modify_instance, DELETE=temporal_write.delete_instance),
        temporal_resource("/temporal/entities/{entity_id:path}/attrs/{attr_id}", DELETE=temporal_write.delete_temporal_attr),
        temporal_resource("/temporal/entities/{entity_id:path}/attrs", POST=temporal_write.append_temporal_attrs),
        temporal_resource("/temporal/entities/{entity_id:path}", GET=temporal.retrieve_temporal,
                          DELETE=temporal_write.delete_temporal),
        temporal_resource("/temporal/entityOperations/query", POST=temporal.query_temporal_post),
        *subscriptions.routes,
        *registrations.routes,
        *info.routes,
        *contexts.routes,
        *discovery.routes,
    ]
    return [Route("/version", version, methods=["GET"]), Route("/metrics", metrics, methods=["GET"]),
            Mount("/ngsi-ld/v1", routes=api)]
