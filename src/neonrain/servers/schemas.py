"""Request and response bodies of ``/api/servers`` and ``/api/discord/status``."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StrictBool, StringConstraints

from neonrain.api_types import ApiModel, PatchBody, RequestBody, Snowflake, Storable
from neonrain.contract import BOT_NAME_MAX, INFORMATION_MAX, PERSONALITY_MAX, RULES_MAX, Engine
from neonrain.websites.schemas import WebsiteOut

BotName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=BOT_NAME_MAX), Storable
]
Personality = Annotated[str, Field(max_length=PERSONALITY_MAX), Storable]
Rules = Annotated[str, Field(max_length=RULES_MAX), Storable]
Information = Annotated[str, Field(max_length=INFORMATION_MAX), Storable]


class AddServerBody(RequestBody):
    guild_id: Snowflake
    # Accepted for the seed's clients and ignored: the name comes from Discord.
    guild_name: Annotated[str, Field(max_length=100), Storable] | None = None


class UpdateServerBody(PatchBody):
    bot_name: BotName | None = None
    personality: Personality | None = None
    rules: Rules | None = None
    information: Information | None = None
    bot_active: StrictBool | None = None
    #: Which agent engine answers here; it must be available to the account (409 otherwise).
    engine: Engine | None = None


class ServerConfigOut(ApiModel):
    id: str
    server_id: str
    guild_id: str
    guild_name: str
    guild_icon_url: str | None
    bot_name: str
    bot_active: bool
    personality: str
    rules: str
    information: str
    engine: Engine
    messages_sent_count: int
    messages_received_count: int
    last_message_sent_at: str | None
    last_message_received_at: str | None
    website_count: int
    created_at: str
    updated_at: str


class ServerList(ApiModel):
    servers: list[ServerConfigOut]


class ServerDetail(ServerConfigOut):
    websites: list[WebsiteOut]


class DayStat(ApiModel):
    date: str
    messages_received: int
    messages_sent: int


class StatsOut(ApiModel):
    days: list[DayStat]


class ActionOut(ApiModel):
    id: str
    channel_id: str
    channel_name: str
    agent_message: str
    trigger_description: str
    message_history: dict[str, Any]
    created_at: str


class ActionPage(ApiModel):
    actions: list[ActionOut]
    next_cursor: str | None


class StatsResult(ApiModel):
    """The answer to the worker's stats report."""

    applied: int
    ignored: int


class AgentActionCreated(ApiModel):
    id: str
