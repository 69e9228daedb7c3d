"""The OpenAPI document's error answers: the ones the API really gives, in its one error shape.

FastAPI lists a 422 for every route with parameters (never sent: validation errors are 400 here)
and nothing else. :func:`install_openapi` replaces that, for every route, with what follows from
its shape — 400 for a body or query parameters (413 for a body too large), 401 when it needs a
sign-in and 403 (CSRF) when it also changes state, 404 when its path names an object, 503 when it
uses the database — plus the answers particular to a route (:data:`ROUTE_ERRORS`: conflicts, rate
limits, Discord failures), all with the ``Error`` schema ``{error, code, details?}``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from neonrain.accounts.deps import require_identity, require_reading_identity
from neonrain.state import get_db, get_read_db

ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "required": ["error", "code"],
    "properties": {
        "error": {"type": "string", "description": "What went wrong, for a person."},
        "code": {"type": "string", "pattern": "^[A-Z][A-Z0-9_]*$"},
        "details": {
            "type": "array",
            "description": "For VALIDATION_ERROR: each problem with the request.",
            "items": {
                "type": "object",
                "required": ["field", "message", "type"],
                "properties": {
                    "field": {"type": "string"},
                    "message": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
    # Some errors carry a field to act on (websiteId, serverId, retryAfter).
    "additionalProperties": True,
}

HEALTH_SCHEMA: dict[str, Any] = {
    "title": "Health",
    "type": "object",
    "required": ["status", "database"],
    "properties": {
        "status": {"type": "string", "enum": ["ok", "degraded"]},
        "database": {"type": "string", "enum": ["ok", "unavailable"]},
    },
}

DESCRIPTIONS = {
    400: "Bad input: VALIDATION_ERROR (with details) or a specific code",
    401: "Not signed in (UNAUTHENTICATED), or wrong credentials",
    403: "CSRF token missing or wrong (cookie sign-in), or not allowed",
    404: "Not found — also another account's object",
    409: "Conflict with the current state",
    413: "Request body over 1 MiB",
    429: "Rate limited; Retry-After says when to try again",
    502: "Discord failed or could not be reached",
    503: "The database is unavailable (DB_UNAVAILABLE); try again shortly",
}

#: Answers of particular routes that their shape does not tell.
ROUTE_ERRORS: dict[tuple[str, str], tuple[int, ...]] = {
    ("POST", "/api/auth/register"): (403, 409, 429),  # closed, EMAIL_TAKEN, per-address limit
    ("POST", "/api/auth/login"): (401, 429),  # INVALID_CREDENTIALS, RATE_LIMITED
    ("POST", "/api/discord/connect"): (502,),
    ("GET", "/api/discord/guilds"): (409, 502),  # DISCORD_NOT_CONNECTED
    ("POST", "/api/servers"): (404, 409, 502),  # GUILD_NOT_FOUND, not connected, configured
    ("PUT", "/api/servers/{server_id}"): (409,),  # DISCORD_NOT_CONNECTED when switching on
    ("POST", "/api/servers/{server_id}/websites"): (409,),  # already added, limit
    ("POST", "/api/servers/{server_id}/websites/{website_id}/scrape"): (429,),
    ("POST", "/api/chat/personas"): (409,),  # PERSONA_EXISTS, PERSONA_LIMIT
    ("POST", "/api/chat/groups"): (404,),  # serverId of no configured server
    ("POST", "/api/engine/openai/test"): (409, 502),  # ENGINE_NOT_CONFIGURED, ENGINE_UNAVAILABLE
    # The dashboard's polled reads sign in and read without dependencies (``dashboard_reads``).
    ("GET", "/api/servers"): (401, 503),
    ("GET", "/api/discord/status"): (401, 503),
}

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for dependency in dependant.dependencies:
        if dependency.call is not None:
            yield dependency.call
        yield from _calls(dependency)


def _query_params(dependant: Dependant) -> bool:
    return bool(dependant.query_params) or any(_query_params(d) for d in dependant.dependencies)


def _path_params(dependant: Dependant) -> bool:
    """Path parameters of the route or of a dependency (``servers.deps.OwnedConfig`` reads
    ``:serverId`` for the routes below it)."""
    return bool(dependant.path_params) or any(_path_params(d) for d in dependant.dependencies)


def error_statuses(route: APIRoute, method: str, path: str) -> set[int]:
    """The error statuses ``method`` on ``route`` (published at ``path``) can answer with."""
    calls = set(_calls(route.dependant))
    statuses = set(ROUTE_ERRORS.get((method, path), ()))
    if route.body_field is not None:
        statuses |= {400, 413}
    if _query_params(route.dependant):
        statuses.add(400)
    if calls & {require_identity, require_reading_identity}:
        statuses.add(401)
        if method not in _SAFE_METHODS:
            statuses.add(403)
    if _path_params(route.dependant):
        statuses.add(404)
    if calls & {get_db, get_read_db}:
        statuses.add(503)
    return statuses


def _api_routes(routes: Sequence[BaseRoute]) -> Iterator[tuple[str, APIRoute]]:
    """Every API route with the path it is published under, however FastAPI keeps included
    routers (recent versions wrap them instead of copying their routes)."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # pragma: no cover - FastAPI before route contexts
        for route in routes:
            if isinstance(route, APIRoute):
                yield route.path_format, route
        return
    for context in iter_route_contexts(routes):
        route = context.original_route
        if isinstance(route, APIRoute):
            yield str(context.path_format or route.path_format), route


def describe_errors(schema: dict[str, Any], routes: Sequence[BaseRoute]) -> None:
    """Rewrite the generated ``schema``'s responses in place (see the module's docstring)."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Error"] = ERROR_SCHEMA
    components["Health"] = HEALTH_SCHEMA
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path, route in _api_routes(routes):
        for method in route.methods or ():
            operation = schema["paths"].get(path, {}).get(method.lower())
            if operation is None:
                continue
            responses = operation["responses"]
            responses.pop("422", None)
            for status in sorted(error_statuses(route, method, path)):
                answer: dict[str, Any] = {"description": DESCRIPTIONS[status], "content": error}
                if status == 429:
                    answer["headers"] = {
                        "Retry-After": {
                            "description": "Seconds to wait",
                            "required": True,
                            "schema": {"type": "integer", "minimum": 1},
                        }
                    }
                responses[str(status)] = answer
    _describe_health(schema)
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)


def _describe_health(schema: dict[str, Any]) -> None:
    operation = schema["paths"].get("/healthz", {}).get("get")
    if operation is None:
        return
    health = {"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}}
    operation["responses"] = {
        "200": {"description": "Up, and the database answers", "content": health},
        "503": {"description": "Up, but the database does not answer", "content": health},
    }


def install_openapi(app: FastAPI) -> None:
    """Make ``app``'s OpenAPI document describe its real error answers (generated once)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            describe_errors(schema, app.routes)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
