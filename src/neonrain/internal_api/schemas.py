"""Bodies of the internal API (worker ↔ web app). The worker is the only client."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field

from neonrain.api_types import ApiModel, RequestBody, Snowflake, Storable

UserId = Annotated[str, Field(min_length=1, max_length=64), Storable]
ShortText = Annotated[str, Field(max_length=200), Storable]
MessageText = Annotated[str, Field(max_length=8000), Storable]

MAX_BATCH = 5000


class StatEvent(RequestBody):
    user_id: UserId
    guild_id: Snowflake
    event: Literal["message_received", "message_sent"]
    count: Annotated[int, Field(ge=1, le=1_000_000)]
    at: datetime


class StatsBody(RequestBody):
    events: Annotated[list[StatEvent], Field(max_length=MAX_BATCH)]


class StatsResult(ApiModel):
    applied: int
    ignored: int


class HistoryMessage(RequestBody):
    author: ShortText
    author_id: Annotated[str, Field(max_length=64), Storable]
    content: MessageText
    timestamp: Annotated[str, Field(max_length=64), Storable]


class MessageHistory(RequestBody):
    preceding: Annotated[list[HistoryMessage], Field(max_length=50)] = Field(default_factory=list)
    agent_response: dict[str, Any] = Field(default_factory=dict)


class AgentActionBody(RequestBody):
    user_id: UserId
    guild_id: Snowflake
    channel_id: Snowflake
    channel_name: ShortText
    agent_message: MessageText
    trigger_description: Annotated[str, Field(max_length=1000), Storable]
    message_history: MessageHistory


class AgentActionCreated(ApiModel):
    id: str


class WorkerTokenState(RequestBody):
    user_id: UserId
    state: Literal["online", "connecting", "token_invalid", "offline"]
    detail: Annotated[str, Field(max_length=1000), Storable] = ""
    guild_ids: Annotated[list[Snowflake], Field(max_length=10_000)] = Field(default_factory=list)


class WorkerStatusBody(RequestBody):
    tokens: Annotated[list[WorkerTokenState], Field(max_length=MAX_BATCH)]
