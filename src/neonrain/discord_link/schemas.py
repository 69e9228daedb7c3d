"""Request and response bodies of ``/api/discord/*`` (connection, guilds, status)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from neonrain.api_types import ApiModel, ReadinessOut, RequestBody
from neonrain.contract import WorkerState
from neonrain.engines.schemas import EnginesStatus


class ConnectBody(RequestBody):
    # Discord tokens are ~70 printable ASCII characters; the client refuses anything else.
    token: Annotated[str, Field(min_length=1, max_length=512)]


class BotOut(ApiModel):
    id: str
    username: str
    avatar_url: str


class ConnectOut(ApiModel):
    connected: Literal[True]
    bot: BotOut
    invite_url: str


class DisconnectOut(ApiModel):
    connected: Literal[False]


class GuildOut(ApiModel):
    guild_id: str
    guild_name: str
    icon_url: str | None
    configured: bool
    server_id: str | None


class GuildList(ApiModel):
    guilds: list[GuildOut]


class WorkerOut(ApiModel):
    state: WorkerState
    detail: str
    updated_at: str | None


class StatusOut(ApiModel):
    connected: bool
    server_count: int
    #: Servers switched on, whether or not the bot can answer there.
    active_server_count: int
    #: Servers switched on whose bot can answer (every readiness check ok).
    ready_server_count: int
    total_messages_sent: int
    total_messages_received: int
    bot: BotOut | None
    invite_url: str | None
    worker: WorkerOut
    #: The account-level checks: token, gateway, intent, engine.
    readiness: ReadinessOut
    #: The agent engines available to the account and the model engine's last known state.
    engines: EnginesStatus
