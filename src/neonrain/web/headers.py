"""Security headers on every HTTP answer: pages, static files and the JSON API.

Pages run no inline script and carry no ``style`` attribute or ``on*=`` handler (everything is in
``static/``), so their Content-Security-Policy allows scripts and styles from the app itself only.
Images may also come from Discord's CDN (bot avatars, guild icons); the chat's WebSockets are
same-origin (``connect-src 'self'`` covers ``ws:``/``wss:`` to the page's own host). No page may be
framed. The Swagger UI at ``/api/docs`` is FastAPI's own page (a CDN script and an inline
script), so it only gets the framing rule.
"""

from __future__ import annotations

from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

PAGE_POLICY: Final = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' https://cdn.discordapp.com",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
#: JSON answers are never rendered as documents; if one were, it could load nothing.
API_POLICY: Final = "default-src 'none'; frame-ancestors 'none'"
DOCS_POLICY: Final = "frame-ancestors 'none'"
DOCS_PATH: Final = "/api/docs"

_COMMON: Final = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("X-Frame-Options", "DENY"),
)


def policy_for(path: str) -> str:
    if path == DOCS_PATH or path.startswith(DOCS_PATH + "/"):
        return DOCS_POLICY
    if path.startswith("/api/") or path == "/healthz":
        return API_POLICY
    return PAGE_POLICY


def _raw(policy: str) -> tuple[tuple[bytes, bytes], ...]:
    """The headers of an answer under ``policy``, as ASGI sends them (lower-case names)."""
    return tuple(
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in (*_COMMON, ("Content-Security-Policy", policy))
    )


#: Encoded once: every answer carries them.
_RAW: Final = {policy: _raw(policy) for policy in (PAGE_POLICY, API_POLICY, DOCS_POLICY)}


class SecurityHeaders:
    """Adds the headers above to every HTTP response that does not set them itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = _RAW[policy_for(scope.get("path", ""))]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _value in headers}
                headers += [header for header in extra if header[0] not in present]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
