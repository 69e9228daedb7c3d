"""Every place where the worker relies on discord.py beyond its documented API, in one module.

discord.py keeps its REST base and gateway address in class attributes, leaves a start-up task
running when a client is closed early, and has no public call for a few REST endpoints we need.
When discord.py changes, this is the module to check.
"""

from __future__ import annotations

import asyncio
import logging

import discord
import discord.gateway
import discord.http
import yarl


def point_discord_py_at(api_url: str, gateway_url: str | None) -> None:
    """Process-wide: discord.py's REST base (``Route.BASE``) and gateway address
    (``DiscordWebSocket.DEFAULT_GATEWAY``; a plain ``Client`` connects there without asking
    ``/gateway/bot``)."""
    discord.http.Route.BASE = api_url.rstrip("/")
    if gateway_url:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)


def cancel_ready_task(client: discord.Client) -> None:
    """discord.py waits for guilds before READY in a task of its own that ``close()`` leaves
    running; a client stopped mid-start-up would dispatch into a closed client."""
    ready_task = getattr(client._connection, "_ready_task", None)
    if isinstance(ready_task, asyncio.Task):
        ready_task.cancel()


async def set_own_nickname(client: discord.Client, guild_id: int, nickname: str) -> None:
    """``PATCH /guilds/{id}/members/@me`` without needing the member cache we switched off."""
    await client.http.edit_my_member(guild_id, nick=nickname)


async def send_typing(client: discord.Client, channel_id: int) -> None:
    """``POST /channels/{id}/typing`` by id, without a channel object."""
    await client.http.send_typing(channel_id)


def _not_about_voice(record: logging.LogRecord) -> bool:
    """discord.py warns at every client start that voice needs PyNaCl; the bot never speaks."""
    return "voice will NOT be supported" not in record.getMessage()


def quiet_voice_warning() -> None:
    logger = logging.getLogger("discord.client")
    if _not_about_voice not in logger.filters:
        logger.addFilter(_not_about_voice)


def _reconnect_in_one_line(record: logging.LogRecord) -> bool:
    """discord.py logs every gateway reconnect as an ERROR with a traceback; an expected
    reconnect is one WARNING line with the cause."""
    if isinstance(record.msg, str) and record.msg.startswith("Attempting a reconnect"):
        cause = record.exc_info[1] if record.exc_info else None
        if cause is not None:
            record.msg = f"{record.msg} ({type(cause).__name__}: {cause})"
        record.exc_info = None
        record.exc_text = None
        record.levelno = logging.WARNING
        record.levelname = "WARNING"
    return True


def quiet_reconnect_tracebacks() -> None:
    logger = logging.getLogger("discord.client")
    if _reconnect_in_one_line not in logger.filters:
        logger.addFilter(_reconnect_in_one_line)
