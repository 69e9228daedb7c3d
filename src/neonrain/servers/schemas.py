"""Request and response bodies of ``/api/servers`` and ``/api/discord/status``."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, Field, StrictBool, StrictInt, StringConstraints

from neonrain.api_types import ApiModel, PatchBody, ReadinessOut, RequestBody, Snowflake, Storable
from neonrain.contract import (
    BOT_NAME_MAX,
    CHANNEL_IDS_MAX,
    INFORMATION_MAX,
    MAX_REPLIES_PER_HOUR_MAX,
    MIN_SECONDS_BETWEEN_REPLIES_MAX,
    PERSONALITY_MAX,
    RULES_MAX,
    ChannelMode,
    Engine,
    HeldBack,
    ReplyMode,
)
from neonrain.discord_link.channels import ChannelType
from neonrain.websites.schemas import WebsiteOut

BotName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=BOT_NAME_MAX), Storable
]
Personality = Annotated[str, Field(max_length=PERSONALITY_MAX), Storable]
Rules = Annotated[str, Field(max_length=RULES_MAX), Storable]
Information = Annotated[str, Field(max_length=INFORMATION_MAX), Storable]


def _no_duplicates(ids: list[str]) -> list[str]:
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise ValueError(f"must not repeat a channel id ({', '.join(repeated)})")
    return ids


ChannelIds = Annotated[
    list[Snowflake], Field(max_length=CHANNEL_IDS_MAX), AfterValidator(_no_duplicates)
]
RepliesPerHour = Annotated[StrictInt, Field(ge=0, le=MAX_REPLIES_PER_HOUR_MAX)]
SecondsBetweenReplies = Annotated[StrictInt, Field(ge=0, le=MIN_SECONDS_BETWEEN_REPLIES_MAX)]


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
    channel_mode: ChannelMode | None = None
    channel_ids: ChannelIds | None = None
    reply_mode: ReplyMode | None = None
    max_replies_per_hour: RepliesPerHour | None = None
    min_seconds_between_replies: SecondsBetweenReplies | None = None
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
    channel_mode: ChannelMode
    channel_ids: list[str]
    reply_mode: ReplyMode
    max_replies_per_hour: int
    min_seconds_between_replies: int
    messages_sent_count: int
    messages_received_count: int
    last_message_sent_at: str | None
    last_message_received_at: str | None
    website_count: int
    engine: Engine
    created_at: str
    updated_at: str
    #: Whether the bot can answer there, and why not (``neonrain.readiness``); every API answer
    #: carrying a configuration fills it in.
    readiness: ReadinessOut | None = None


class ServerList(ApiModel):
    servers: list[ServerConfigOut]


class ServerDetail(ServerConfigOut):
    websites: list[WebsiteOut]


class DayStat(ApiModel):
    date: str
    messages_received: int
    messages_sent: int
    messages_held_back: int


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
    delivered: bool = True
    held_back: HeldBack | None = None


class ActionPage(ApiModel):
    actions: list[ActionOut]
    next_cursor: str | None


class ChannelOut(ApiModel):
    """A channel of the guild, with what the bot may do there."""

    id: str
    name: str
    type: ChannelType
    category_id: str | None
    category_name: str | None
    position: int
    bot_can_read: bool
    bot_can_send: bool


class ChannelList(ApiModel):
    channels: list[ChannelOut]


class StatsResult(ApiModel):
    """The answer to the worker's stats report."""

    applied: int
    ignored: int


class AgentActionCreated(ApiModel):
    id: str
