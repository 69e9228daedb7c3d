"""The API's one error shape: ``{"error": "<sentence>", "code": "<UPPER_SNAKE>"}``.

Services raise :class:`ApiError` (or a subclass); the handlers here turn it, validation failures,
unknown routes and anything unexpected into that shape, so ``/api`` never answers with HTML.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DBAPIError, InterfaceError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error a person can act on, with its HTTP status and machine-readable code."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"error": self.message, "code": self.code, **self.extra}


class Unauthenticated(ApiError):
    def __init__(self, message: str = "Sign in to continue.") -> None:
        super().__init__(401, "UNAUTHENTICATED", message)


def validation_error(message: str, details: list[dict[str, Any]] | None = None) -> ApiError:
    return ApiError(400, "VALIDATION_ERROR", message, details=details or [])


#: The code and sentence of each HTTP error the framework itself raises.
STATUS_CODES = {
    400: ("BAD_REQUEST", "The request could not be understood."),
    401: ("UNAUTHENTICATED", "Sign in to continue."),
    403: ("FORBIDDEN", "You are not allowed to do that."),
    404: ("NOT_FOUND", "There is nothing at this address."),
    405: ("METHOD_NOT_ALLOWED", "This address does not accept that method."),
    413: ("PAYLOAD_TOO_LARGE", "The request body is larger than 1 MiB."),
    415: ("UNSUPPORTED_MEDIA_TYPE", "Send the request body as JSON."),
    429: ("RATE_LIMITED", "Too many requests; try again shortly."),
}


def _describe(errors: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    details: list[dict[str, Any]] = []
    for error in errors:
        location = [str(part) for part in error.get("loc", ()) if part not in ("body",)]
        details.append(
            {
                "field": ".".join(location[1:] if location[:1] == ["query"] else location)
                or "body",
                "message": str(error.get("msg", "invalid")),
                "type": str(error.get("type", "invalid")),
            }
        )
    if any(error.get("type") == "json_invalid" for error in errors):
        return "The request body is not valid JSON.", [
            {"field": "body", "message": "not valid JSON", "type": "json_invalid"}
        ]
    first = details[0] if details else {"field": "body", "message": "invalid"}
    message = f"{first['field']}: {first['message']}"
    if len(details) > 1:
        message += f" (and {len(details) - 1} more problem{'s' if len(details) > 2 else ''})"
    return message, details


def error_response(error: ApiError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers)


def install_error_handlers(
    app: FastAPI, not_found_page: Callable[[Request], Awaitable[Response]] | None = None
) -> None:
    """``not_found_page`` answers unknown addresses outside ``/api`` (the app passes the page's
    renderer, so this module knows nothing of pages)."""

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> Response:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> Response:
        message, details = _describe(list(exc.errors()))
        return error_response(validation_error(message, details))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if (
            not_found_page is not None
            and exc.status_code == 404
            and not request.url.path.startswith("/api")
        ):
            return await not_found_page(request)
        code, message = STATUS_CODES.get(exc.status_code, ("ERROR", str(exc.detail)))
        if isinstance(exc.detail, str) and exc.detail and exc.status_code not in STATUS_CODES:
            message = exc.detail
        return JSONResponse(
            {"error": message, "code": code},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    async def _database_down(request: Request, exc: Exception) -> Response:
        if isinstance(exc, ConnectionError | TimeoutError | PoolTimeout | InterfaceError) or (
            isinstance(exc, DBAPIError) and _is_connection_problem(exc)
        ):
            log.error(
                "database unavailable during %s %s: %s", request.method, request.url.path, exc
            )
            return JSONResponse(
                {
                    "error": "The database is unavailable; try again shortly.",
                    "code": "DB_UNAVAILABLE",
                },
                status_code=503,
                headers={"Retry-After": "5"},
            )
        log.exception("unexpected error during %s %s", request.method, request.url.path)
        return JSONResponse(
            {"error": "Something went wrong on our side; it has been logged.", "code": "INTERNAL"},
            status_code=500,
        )

    # Registered per class (not for Exception) so they are handled, not re-raised, by Starlette.
    for exception_class in (OSError, DBAPIError, PoolTimeout):
        app.add_exception_handler(exception_class, _database_down)


#: SQLSTATEs that mean "no usable connection": class 08 (connection exception), class 53
#: (insufficient resources: too many clients, out of memory, disk full), and the server shutting
#: down or still starting (57P01-57P03).
_UNAVAILABLE_SQLSTATE_CLASSES = ("08", "53")
_UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03"})


def _sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a database error (SQLAlchemy's wrapper, the driver's error or its cause)."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return None
        code = getattr(seen, "sqlstate", None) or getattr(seen, "pgcode", None)
        if isinstance(code, str) and len(code) == 5:
            return code
        orig = getattr(seen, "orig", None)
        seen = orig if isinstance(orig, BaseException) else seen.__cause__
    return None


def _is_connection_problem(exc: DBAPIError) -> bool:
    if exc.connection_invalidated or isinstance(exc.orig, ConnectionError | OSError):
        return True
    sqlstate = _sqlstate(exc)
    if sqlstate is not None and (
        sqlstate[:2] in _UNAVAILABLE_SQLSTATE_CLASSES or sqlstate in _UNAVAILABLE_SQLSTATES
    ):
        return True
    text = str(exc).lower()
    return any(
        marker in text
        for marker in ("connection refused", "connection was closed", "could not connect",
                       "cannot connect", "terminating connection", "connection is closed")
    )  # fmt: skip
