"""Query parameters: each handler declares the ones it supports; anything else is 400 InvalidRequest.

Also the request's JSON-LD context (Link header or body) and the representation parameters that shape
entity responses (``format`` / ``options``, ``attrs``, ``pick`` / ``omit``, ``lang``, ``datasetId``, ``join`` /
``joinLevel`` / ``containedBy``): ``make_view`` validates them whether they come from the URL (``view_of``)
or from a Query body.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, TypeVar

from starlette.requests import Request

from ..errors import NgsiError, bad_request, not_found
from ..jsonld import Context
from ..model import projection, values
from ..model.language import parse_lang
from ..model.operations import iso
from ..model.render import CONCISE, NORMALIZED, SIMPLIFIED, View
from ..query.types import parse_types, type_holds
from .http import GEO_JSON, link_context_url

T = TypeVar("T")

FORMATS = {"normalized": NORMALIZED, "concise": CONCISE, "simplified": SIMPLIFIED, "keyValues": SIMPLIFIED}
REPRESENTATION_OPTIONS = frozenset(("normalized", "concise", "simplified", "keyValues", "sysAttrs"))
JOINS = ("flat", "inline", "@none")
MAX_JOIN_LEVEL = 10
# Entity members that are no attributes: a q testing only these is no sufficient query filter (5.7.2.4 c)
SYSTEM_MEMBERS = frozenset(("id", "@id", "type", "@type", "scope", "createdAt", "modifiedAt", "deletedAt",
                            "observedAt", "@context"))


def check_params(request: Request, allowed: Iterable[str]) -> None:
    if not request.scope.get("query_string"):
        return
    allowed = set(allowed)
    for name in request.query_params.keys():
        if name not in allowed:
            raise NgsiError("InvalidRequest", f"unknown query parameter '{name}' (supported here: "
                                              f"{', '.join(sorted(allowed)) or 'none'})")


def options_of(request: Request, allowed: Iterable[str]) -> set[str]:
    if not request.scope.get("query_string"):
        return set()
    allowed = set(allowed)
    found: set[str] = set()
    for raw in request.query_params.getlist("options"):
        for option in raw.split(","):
            option = option.strip()
            if not option:
                continue
            if option not in allowed:  # 6.3.6 / ETSI 018_16, 021_20: a malformed request
                raise NgsiError("InvalidRequest", f"unknown option '{option}' (supported here: "
                                                  f"{', '.join(sorted(allowed))})")
            found.add(option)
    return found


def list_param(request: Request, name: str) -> list[str] | None:
    raw = request.query_params.getlist(name)
    if not raw:
        return None
    items = [item.strip() for value in raw for item in value.split(",")]
    if any(not item for item in items):
        raise NgsiError("BadRequestData", f"empty item in '{name}'")
    return items


def bool_param(request: Request, name: str) -> bool:
    raw = request.query_params.get(name)
    if raw is None:
        return False
    if raw in ("true", "false"):
        return raw == "true"
    raise NgsiError("BadRequestData", f"'{name}' must be true or false")


_DEFAULT_VIEW = View()


def view_of(request: Request, ctx: Context, options: set[str]) -> View:
    """The View of a request's URL parameters (format, options, attrs, pick, omit, lang, datasetId)."""
    if not request.scope.get("query_string"):
        return _DEFAULT_VIEW
    params = request.query_params
    return make_view(ctx, options, fmt=params.get("format"), attrs=list_param(request, "attrs"),
                     pick=params.get("pick"), omit=params.get("omit"), lang=params.get("lang"),
                     datasets=list_param(request, "datasetId"))


def make_view(ctx: Context, options: set[str], *, fmt: str | None = None, attrs: list[str] | None = None,
              pick: Any = None, omit: Any = None, lang: Any = None, datasets: list[Any] | None = None) -> View:
    """A View from raw parameter values: ``pick`` / ``omit`` are ProjectionList strings or (Query body) arrays
    of them. Errors: an unknown format is InvalidRequest; conflicting options, pick or omit with attrs, a
    member both picked and omitted, a malformed projection, lang or datasetId are BadRequestData."""
    chosen = [o for o in options if o in FORMATS]
    if len(set(FORMATS[o] for o in chosen)) > 1:
        raise NgsiError("BadRequestData", f"conflicting representation options: {', '.join(sorted(chosen))}")
    form = FORMATS[chosen[0]] if chosen else NORMALIZED
    if fmt is not None:
        if fmt not in FORMATS:
            raise NgsiError("InvalidRequest", f"unknown format '{fmt}' (one of {', '.join(FORMATS)})")
        form = FORMATS[fmt]
    picked = _projection(pick, "pick", ctx)
    omitted = _projection(omit, "omit", ctx)
    if attrs and (picked is not None or omitted is not None):
        raise bad_request("attrs cannot be combined with pick or omit (GS CIM 009 4.21)")
    projection.check_conflicts(picked, omitted)
    if lang is not None:
        if not isinstance(lang, str) or not lang.strip():
            raise bad_request("lang must be a non-empty string")
        parse_lang(lang)
    return View(format=form, sys_attrs="sysAttrs" in options,
                attrs=frozenset(ctx.expand_term(a) for a in attrs) if attrs else None,
                lang=lang or None, pick=picked, omit=omitted, datasets=dataset_ids(datasets))


def _projection(raw: Any, what: str, ctx: Context) -> projection.Projection | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        tree = projection.parse_projection(raw, what)
    else:
        tree = projection.from_list(raw, what)
    return projection.expand(tree, ctx, what)


def dataset_ids(raw: list[Any] | None) -> frozenset[str] | None:
    """The datasetId selection (4.5.5): URIs, ``@none`` for the default instance."""
    if raw is None:
        return None
    if not isinstance(raw, list) or not raw:
        raise bad_request("datasetId must be a non-empty list of URIs or @none")
    return frozenset(values.check_dataset_id(d, "datasetId") or "@none" for d in raw)


@dataclass(frozen=True)
class Join:
    """Linked Entity retrieval (4.5.23): ``mode`` flat / inline (None: none), how many levels, and the ids
    already retrieved by the requester (``containedBy``: never fetched again)."""

    mode: str | None = None
    level: int = 1
    contained_by: frozenset[str] = frozenset()


NO_JOIN = Join()


def make_join(view: View, join: Any = None, level: Any = None, contained_by: list[Any] | None = None) -> Join:
    """Validate join / joinLevel / containedBy against the projection: a pick / omit selecting Linked Entity
    members needs a join reaching as deep (5.7.1.4 / 5.7.2.4: BadRequestData)."""
    if join is not None and join not in JOINS:
        raise bad_request(f"join must be one of {', '.join(JOINS)}")
    depth = max(projection.depth(view.pick), projection.depth(view.omit))
    if level is None:
        level_n = 1
    else:
        if isinstance(level, str) and level.isdigit():
            level_n = int(level)
        elif type(level) is int:
            level_n = level
        else:
            raise bad_request("joinLevel must be a positive integer")
        if not 1 <= level_n <= MAX_JOIN_LEVEL:
            raise bad_request(f"joinLevel must be between 1 and {MAX_JOIN_LEVEL}")
    mode = join if join in ("flat", "inline") else None
    if depth and mode is None:
        raise bad_request("pick / omit select Linked Entity members ({...}): that needs join=flat or join=inline")
    if depth > level_n:
        raise bad_request(f"pick / omit reach {depth} Linked Entity levels, more than joinLevel={level_n}")
    contained = frozenset()
    if contained_by:
        contained = frozenset(values.check_uri(c, "containedBy") for c in contained_by)
    if mode is None:
        return NO_JOIN
    return Join(mode, level_n, contained)


def join_of(request: Request, view: View) -> Join:
    if not request.scope.get("query_string"):
        return NO_JOIN
    params = request.query_params
    return make_join(view, params.get("join"), params.get("joinLevel"), list_param(request, "containedBy"))


def geometry_property(ctx: Context, raw: Any, media: str) -> str | None:
    """The expanded ``geometryProperty`` (6.3.15); given without a GeoJSON Accept it is BadRequestData
    (5.7.1.4 / 5.7.2.4). None: the default, ``location``."""
    if raw is None:
        return None
    if media != GEO_JSON:
        raise bad_request("geometryProperty is only allowed with Accept: application/geo+json")
    if not isinstance(raw, str) or not raw:
        raise bad_request("geometryProperty must be an attribute name")
    return ctx.expand_term(raw)


async def link_context(request: Request) -> Context:
    """The context of a request without body: its Link header, or the core context."""
    broker = request.app.state.broker
    from .http import tenant_of

    return await broker.contexts.resolve(link_context_url(request), tenant_of(request))


def now() -> tuple[str, datetime]:
    """The request's timestamp, as stored in documents (ISO 8601 UTC) and as a column value."""
    moment = datetime.now(timezone.utc)
    return iso(moment), moment


def member_path_id(request: Request, what: str) -> str:
    """The id in ``/{collection}/{id}`` (path parameter ``id``): a URI; empty (``/{collection}/``, the
    collection itself, which has no PATCH / DELETE) is 405."""
    raw = request.path_params["id"]
    if not raw:
        raise NgsiError("MethodNotAllowed", f"a {what} id is required here", status=405,
                        title="Method not allowed", headers={"Allow": "GET, POST"})
    return values.check_uri(raw, f"{what} id")


def entity_path_id(request: Request) -> str:
    from ..model.entity import check_entity_id

    return check_entity_id(request.path_params["entity_id"])


def body_object(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise NgsiError("BadRequestData", f"{what} must be a JSON object")
    return body


def type_selector(request: Request, ctx: Context) -> Callable[[list[str]], bool] | None:
    """The ``type`` selector of an entity write (4.17; 5.6.2.4, 5.6.3.4, 5.6.4.4, 5.6.5.4, 5.6.6.4 ...) as a
    test of the stored entity's (expanded) types; None when the request has none."""
    raw = request.query_params.get("type")
    if not raw:
        return None
    selector = parse_types(raw)
    return lambda types: type_holds(selector, set(types), ctx.expand_term)


def gated(request: Request, ctx: Context, compute: Callable[[Any], T]) -> Callable[[Any], T]:
    """``compute(row)`` behind the request's ``type`` selector: an entity of other types is ResourceNotFound
    (as if there were no entity with this id and type), and nothing is written."""
    matches = type_selector(request, ctx)
    if matches is None:
        return compute

    def run(row: Any) -> T:
        if not matches(row["types"]):
            raise not_found(f"entity {row['id']} is not of type {request.query_params['type']}")
        return compute(row)
    return run
