"""Multi-tenancy: the NGSILD-Tenant header.

Clauses of ETSI GS CIM 009 v1.8: 4.14 (multi-tenancy), 5.5.10 (multi-tenant behaviour: creations create
the tenant implicitly, other operations on a non-existing tenant raise NonexistentTenant), 6.3.14
(NGSILD-Tenant request/response header), 6.3.2 (NonexistentTenant -> 404).
"""

from __future__ import annotations

from .ngsi import Ngsi, entity, problem, prop, unique_name


def new_tenant() -> str:
    return unique_name("t")


async def test_write_creates_tenant_and_echoes_header(ngsi: Ngsi) -> None:
    """5.5.10 / 6.3.14: a create in a tenant that does not exist yet creates it (no restart or admin step);
    the response carries the NGSILD-Tenant header of the request (ETSI TPs 414_01_01, 5510_01_01)."""
    tenant = new_tenant()
    ent = entity("Vehicle", speed=prop(1))
    reply = await ngsi.create(ent, tenant=tenant)
    assert reply.status == 201, reply
    assert reply.headers.get("NGSILD-Tenant") == tenant
    got = await ngsi.get(ent["id"], tenant=tenant)
    assert got.status == 200, got
    assert got.headers.get("NGSILD-Tenant") == tenant
    assert got.json["speed"] == prop(1)


async def test_tenant_is_isolated(ngsi: Ngsi) -> None:
    """4.14: information of a tenant is only visible in that tenant: neither the default tenant nor another
    (existing) tenant sees the entity, and deleting it elsewhere does not touch it (ETSI TPs 414_01_01,
    414_01_02)."""
    tenant, other = new_tenant(), new_tenant()
    ent = entity("Vehicle", speed=prop(1))
    await ngsi.create_ok(ent, tenant=tenant)
    await ngsi.create_ok(entity("Vehicle"), tenant=other)
    problem(await ngsi.get(ent["id"]), 404, "ResourceNotFound")
    problem(await ngsi.get(ent["id"], tenant=other), 404, "ResourceNotFound")
    problem(await ngsi.delete(ent["id"]), 404, "ResourceNotFound")
    problem(await ngsi.delete(ent["id"], tenant=other), 404, "ResourceNotFound")
    assert (await ngsi.fetch(ent["id"], tenant=tenant))["speed"] == prop(1)


async def test_same_id_in_two_tenants(ngsi: Ngsi) -> None:
    """4.14: tenants are separate information spaces: the same entity id exists independently in two tenants
    and in the default tenant; updating one leaves the others alone."""
    first, second = new_tenant(), new_tenant()
    ent = entity("Vehicle")
    for tenant, value in ((first, 1), (second, 2), (None, 3)):
        await ngsi.create_ok({**ent, "speed": prop(value)}, tenant=tenant)
    reply = await ngsi.request("PATCH", ngsi.entity_path(ent["id"]) + "/attrs", body={"speed": prop(10)},
                               tenant=first)
    assert reply.status == 204, reply
    assert (await ngsi.fetch(ent["id"], tenant=first))["speed"] == prop(10)
    assert (await ngsi.fetch(ent["id"], tenant=second))["speed"] == prop(2)
    assert (await ngsi.fetch(ent["id"]))["speed"] == prop(3)
    assert (await ngsi.delete(ent["id"], tenant=second)).status == 204
    assert (await ngsi.fetch(ent["id"], tenant=first))["speed"] == prop(10)


async def test_urn_tenant(ngsi: Ngsi) -> None:
    """4.14 / 6.3.14: a tenant identifier can be a URI, e.g. urn:ngsi-ld:tenant:ds_open_data."""
    tenant = f"urn:ngsi-ld:tenant:ds_open_data_{unique_name('x')}"
    ent = entity("Dataset", title=prop("open data"))
    reply = await ngsi.create(ent, tenant=tenant)
    assert reply.status == 201, reply
    assert reply.headers.get("NGSILD-Tenant") == tenant
    assert (await ngsi.fetch(ent["id"], tenant=tenant))["title"] == prop("open data")
    problem(await ngsi.get(ent["id"]), 404, "ResourceNotFound")


async def test_nonexistent_tenant_is_404(ngsi: Ngsi) -> None:
    """5.5.10 / 6.3.2: an operation other than a creation on a tenant that does not exist raises
    NonexistentTenant (404); the header is still echoed (ETSI TP 5510_01_01)."""
    tenant = new_tenant()
    ent = entity("Vehicle")
    reply = await ngsi.get(ent["id"], tenant=tenant)
    problem(reply, 404, "NonexistentTenant")
    assert reply.headers.get("NGSILD-Tenant") == tenant
    problem(await ngsi.delete(ent["id"], tenant=tenant), 404, "NonexistentTenant")
    reply = await ngsi.request("PATCH", ngsi.entity_path(ent["id"]) + "/attrs", body={"speed": prop(1)},
                               tenant=tenant)
    problem(reply, 404, "NonexistentTenant")
    # reading did not create it: still unknown
    problem(await ngsi.get(ent["id"], tenant=tenant), 404, "NonexistentTenant")


async def test_batch_create_creates_tenant(ngsi: Ngsi) -> None:
    """5.5.10: batch creation and upsert are creations too: they create the tenant implicitly; the created
    entities live in that tenant only."""
    tenant, upsert_tenant = new_tenant(), new_tenant()
    ents = [entity("Vehicle"), entity("Vehicle")]
    reply = await ngsi.batch("create", ents, tenant=tenant)
    assert reply.status == 201, reply
    assert reply.headers.get("NGSILD-Tenant") == tenant
    upserted = entity("Vehicle")
    reply = await ngsi.batch("upsert", [upserted], tenant=upsert_tenant)
    assert reply.status == 201, reply
    for ent in ents:
        await ngsi.fetch(ent["id"], tenant=tenant)
        problem(await ngsi.get(ent["id"]), 404, "ResourceNotFound")
    await ngsi.fetch(upserted["id"], tenant=upsert_tenant)


async def test_default_tenant_always_exists(ngsi: Ngsi) -> None:
    """5.5.10: without NGSILD-Tenant the operation applies to the implicitly existing default tenant: a read
    there is never NonexistentTenant (ETSI TP 5510_01_02)."""
    problem(await ngsi.get(entity("Vehicle")["id"]), 404, "ResourceNotFound")


async def test_hosted_context_is_per_tenant(ngsi: Ngsi) -> None:
    """5.13 / 4.14: a hosted @context added in one tenant is neither served, listed nor deletable in another
    tenant (ETSI TP 5134_01)."""
    owner, other = new_tenant(), new_tenant()
    await ngsi.create_ok(entity("Vehicle"), tenant=owner)
    await ngsi.create_ok(entity("Vehicle"), tenant=other)
    term = unique_name("term")
    reply = await ngsi.request("POST", "/jsonldContexts", body={"@context": {term: f"urn:example:{term}"}},
                               tenant=owner)
    assert reply.status == 201, reply
    local_id = reply.headers["Location"].rstrip("/").rsplit("/", 1)[-1]
    path = f"/jsonldContexts/{local_id}"
    served = await ngsi.request("GET", path, tenant=other)
    assert served.status == 404 and term not in served.body.decode(), served
    listed = await ngsi.request("GET", "/jsonldContexts", params={"details": "true"}, tenant=other)
    assert listed.status == 200 and local_id not in listed.body.decode(), listed
    assert (await ngsi.request("DELETE", path, tenant=other)).status == 404
    served = await ngsi.request("GET", path, tenant=owner)
    assert served.status == 200 and term in served.body.decode(), served
    assert (await ngsi.request("DELETE", path, tenant=owner)).status == 204
