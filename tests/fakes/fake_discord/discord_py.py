"""Point the real discord.py at a fake Discord, the way the product's settings do.

discord.py keeps its REST base in the class attribute ``discord.http.Route.BASE`` (a str) and its
gateway in ``discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY`` (a ``yarl.URL``); a plain
``discord.Client`` connects to the latter without asking ``/gateway/bot``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import discord.gateway
import discord.http
import yarl


@contextlib.contextmanager
def discord_py_pointed_at(api_url: str, gateway_url: str) -> Iterator[None]:
    """Set discord.py's REST base and gateway for the ``with`` block, then restore them."""
    route = discord.http.Route
    websocket = discord.gateway.DiscordWebSocket
    old_base, old_gateway = route.BASE, websocket.DEFAULT_GATEWAY
    route.BASE = api_url.rstrip("/")
    websocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)
    try:
        yield
    finally:
        route.BASE = old_base
        websocket.DEFAULT_GATEWAY = old_gateway
