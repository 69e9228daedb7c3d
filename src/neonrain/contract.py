"""The configuration contract between the web app and the Discord worker.

One module both sides import — standard library and pydantic only, so the worker can run on a host
that has neither the database layer nor the web app. It holds:

* the **limits** of every configuration field and report body (the API's validation, the pages'
  counters and the worker's cuts all read them from here);
* the **tokens answer** (``GET /api/discord/tokens``): :class:`TokensAnswer`, :class:`TokenEntry`,
  :class:`ServerEntry`, :class:`WebsiteEntry`. The web app writes their wire names (it streams the
  answer); the worker parses an answer with :meth:`TokensAnswer.parse` and fails loudly when it does
  not match;
* the **report bodies** the worker sends back: :class:`StatsBody`, :class:`AgentActionBody`,
  :class:`WorkerStatusBody`;
* the **agent's configuration** (:class:`ServerConfig`, :class:`Website`) and the one function that
  builds it from a server entry, :func:`agent_config`, used by the worker and the web chat alike.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Annotated, Any, Final, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    ValidationError,
)
from pydantic.alias_generators import to_camel
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

# ------------------------------------------------------------------------------------ limits

BOT_NAME_MAX: Final = 32
PERSONALITY_MAX: Final = 4_000
RULES_MAX: Final = 4_000
INFORMATION_MAX: Final = 20_000
DEFAULT_BOT_NAME: Final = "Assistant"

#: Where and when the bot speaks (behaviour.md).
ChannelMode = Literal["all", "only", "except"]
ReplyMode = Literal["auto", "mentioned", "silent"]
HeldBack = Literal["silent", "rate_limited"]
CHANNEL_IDS_MAX: Final = 200
MAX_REPLIES_PER_HOUR_MAX: Final = 1_000
MIN_SECONDS_BETWEEN_REPLIES_MAX: Final = 3_600

#: The agent engines (engines.md).
Engine = Literal["huma", "openai"]
ENGINE_BASE_URL_MAX: Final = 2_048
ENGINE_MODEL_MAX: Final = 200
ENGINE_API_KEY_MAX: Final = 500

#: Ids of ours (UUID strings) and Discord snowflakes fit in this many characters.
MAX_ID_LENGTH: Final = 64
CHANNEL_NAME_MAX: Final = 200
AUTHOR_NAME_MAX: Final = 200
#: A message as reported (an agent's reply may be several Discord messages long).
MESSAGE_TEXT_MAX: Final = 8_000
TRIGGER_MAX: Final = 1_000
STATUS_DETAIL_MAX: Final = 1_000
#: Preceding messages accepted in an agent action, and kept of them.
ACTION_PRECEDING_ACCEPTED: Final = 50
ACTION_PRECEDING_KEPT: Final = 10
#: Entries of one stats or status report.
REPORT_BATCH_MAX: Final = 5_000
GUILDS_PER_STATUS_MAX: Final = 10_000

EVENT_RECEIVED: Final = "message_received"
EVENT_SENT: Final = "message_sent"
EVENT_HELD_BACK: Final = "message_held_back"
StatEventName = Literal["message_received", "message_sent", "message_held_back"]

#: The worker's states of one account's connection, as the dashboard shows them.
WorkerState = Literal["online", "connecting", "token_invalid", "offline"]
WORKER_STATES: Final = frozenset({"online", "connecting", "token_invalid", "offline"})


# --------------------------------------------------------------------------------- text rules


def storable(value: str) -> str:
    """``value`` unchanged, if both databases can store it: PostgreSQL refuses NUL characters and
    neither driver can encode lone surrogates (which JSON's ``\\ud800`` escapes produce)."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    return value


def clean_text(value: str) -> str:
    """``value`` made storable: NUL characters removed, lone surrogates replaced by U+FFFD. For
    text that comes from elsewhere (Discord messages, names) and must not be refused."""
    if "\x00" in value:
        value = value.replace("\x00", "")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = _SURROGATE.sub("\ufffd", value)
    return value


_SURROGATE = re.compile("[\ud800-\udfff]")


class _Storable:
    """Runs :func:`storable`, and says in the JSON schema that NUL is not allowed (so that a
    client, or a fuzzer, generating "valid" strings from the OpenAPI document does not send it)."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(storable, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        no_nul = {"pattern": "\\u0000"}  # "not" rather than a pattern for the whole string:
        if "not" in json_schema:  # generators filter on it instead of building from a regex
            return {"allOf": [json_schema, {"not": no_nul}]}
        json_schema["not"] = no_nul
        return json_schema


#: Add to ``Annotated[str, ...]`` for every string that is stored.
Storable = _Storable()

Snowflake = Annotated[str, Field(pattern=r"^[0-9]{1,20}$", examples=["1200000000000000001"])]
UserId = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH), Storable]


class WireModel(BaseModel):
    """A body on the internal wire: snake_case in Python, camelCase on the wire, immutable.
    Unknown fields are ignored, so a newer web app can add fields before its workers know them."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, frozen=True, extra="ignore"
    )

    @classmethod
    def wire_names(cls) -> dict[str, str]:
        """Python field name → wire name."""
        return {name: info.alias or name for name, info in cls.model_fields.items()}

    def wire(self) -> dict[str, Any]:
        """The JSON-ready body, with wire names."""
        return self.model_dump(mode="json", by_alias=True)


class ReportModel(WireModel):
    """A report the web app accepts from the worker: unknown fields are refused."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, frozen=True, extra="forbid"
    )


# ------------------------------------------------------------------------------ tokens answer


class WebsiteEntry(WireModel):
    """An important website of a configuration, with the Markdown of its newest successful
    scrape."""

    url: str
    name: str | None = None
    markdown: str
    scraped_at: str | None = None


class ServerEntry(WireModel):
    """One account's configuration of one guild (the seed's ``ServerConfig``)."""

    server_id: str
    guild_id: str
    guild_name: str
    bot_active: bool
    bot_name: str
    personality: str
    rules: str
    information: str
    channel_mode: ChannelMode = "all"
    channel_ids: tuple[str, ...] = ()
    reply_mode: ReplyMode = "auto"
    max_replies_per_hour: int = 0
    min_seconds_between_replies: int = 0
    engine: Engine = "huma"
    websites: tuple[WebsiteEntry, ...] = ()

    @cached_property
    def agent(self) -> ServerConfig:
        """The agent's configuration, built once per entry: every message of the guild reads it."""
        return agent_config(self)


#: The server entry's wire names in field order, for the web app's streaming encoder, which
#: writes entries from database rows without building models.
SERVER_ENTRY_KEYS: Final = tuple(
    name for field_name, name in ServerEntry.wire_names().items() if field_name != "websites"
)
WEBSITE_ENTRY_KEYS: Final = tuple(WebsiteEntry.wire_names().values())


class OpenAIEndpoint(WireModel):
    """An OpenAI-compatible Chat Completions endpoint (the account's own, or the install's)."""

    base_url: str
    model: str
    api_key: str | None = Field(default=None, repr=False)


class TokenEntry(WireModel):
    """One account's bot token, its OpenAI-compatible engine if it has one, and its servers."""

    discord_token: str = Field(repr=False)
    user_id: str
    openai: OpenAIEndpoint | None = None
    servers: tuple[ServerEntry, ...] = ()

    @cached_property
    def active_guilds(self) -> dict[str, ServerEntry]:
        """The seed's monitored guilds: the servers whose bot is switched on (looked up for every
        message, so built once per entry; do not modify it)."""
        return {s.guild_id: s for s in self.servers if s.bot_active}


TOKEN_ENTRY_KEYS: Final = tuple(
    name
    for field_name, name in TokenEntry.wire_names().items()
    if field_name not in ("servers", "openai")
)


class ContractError(ValueError):
    """A body does not match this contract (a web app and worker of different versions?)."""


class TokensAnswer(WireModel):
    """``GET /api/discord/tokens``: every account with a connected token (or, with ``since``,
    those changed since then, plus ``removedUserIds``), and the generation it describes."""

    generation: int
    removed_user_ids: tuple[str, ...] = ()
    tokens: tuple[TokenEntry, ...]

    @classmethod
    def parse(cls, raw: bytes | str) -> Self:
        """The answer, or :class:`ContractError` saying what does not match."""
        try:
            return cls.model_validate_json(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first.get("loc", ())) or "body"
            raise ContractError(
                f"tokens answer does not match the contract ({exc.error_count()} problem(s); "
                f"first: {where}: {first.get('msg', 'invalid')})"
            ) from None


# ----------------------------------------------------------------------------- report bodies

ShortText = Annotated[str, Field(max_length=CHANNEL_NAME_MAX), Storable]
MessageText = Annotated[str, Field(max_length=MESSAGE_TEXT_MAX), Storable]


class StatEvent(ReportModel):
    user_id: UserId
    guild_id: Snowflake
    event: StatEventName
    count: Annotated[int, Field(ge=1, le=1_000_000)]
    at: datetime


class StatsBody(ReportModel):
    """``POST /api/discord/stats``: message counts, batched."""

    events: Annotated[tuple[StatEvent, ...], Field(max_length=REPORT_BATCH_MAX)]


class HistoryMessage(ReportModel):
    author: Annotated[str, Field(max_length=AUTHOR_NAME_MAX), Storable]
    author_id: Annotated[str, Field(max_length=MAX_ID_LENGTH), Storable]
    content: MessageText
    timestamp: Annotated[str, Field(max_length=MAX_ID_LENGTH), Storable]


class MessageHistory(ReportModel):
    preceding: Annotated[
        tuple[HistoryMessage, ...], Field(max_length=ACTION_PRECEDING_ACCEPTED)
    ] = ()
    agent_response: dict[str, Any] = Field(default_factory=dict)


class AgentActionBody(ReportModel):
    """``POST /api/discord/agent-actions``: a message the agent sent, with what prompted it."""

    user_id: UserId
    guild_id: Snowflake
    channel_id: Snowflake
    channel_name: ShortText
    agent_message: MessageText
    trigger_description: Annotated[str, Field(max_length=TRIGGER_MAX), Storable]
    message_history: MessageHistory
    #: False for a draft the server's behaviour held back (``held_back`` says why).
    delivered: bool = True
    held_back: HeldBack | None = None


#: Why a connected bot cannot work, as the worker knows it (a reason stays until it is resolved;
#: reconnect attempts do not overwrite it).
WorkerReason = Literal["token_rejected", "intent_missing", "crashed"]
EngineState = Literal["ok", "error"]
Detail = Annotated[str, Field(max_length=STATUS_DETAIL_MAX), Storable]


class GuildReport(ReportModel):
    """What the worker sees of one active guild: is the bot there, and where may it read and
    write among the channels the server's configuration watches (gateway permissions)."""

    guild_id: Snowflake
    present: bool
    channels_watched: Annotated[int, Field(ge=0)] = 0
    channels_readable: Annotated[int, Field(ge=0)] = 0
    channels_sendable: Annotated[int, Field(ge=0)] = 0
    #: Discord's newest refusal in this guild (e.g. a 403 on sending), with the channel's name.
    problem: Detail = ""


class WorkerTokenState(ReportModel):
    user_id: UserId
    state: WorkerState
    detail: Detail = ""
    guild_ids: Annotated[tuple[Snowflake, ...], Field(max_length=GUILDS_PER_STATUS_MAX)] = ()
    reason: WorkerReason | None = None
    guilds: Annotated[tuple[GuildReport, ...], Field(max_length=GUILDS_PER_STATUS_MAX)] = ()
    #: The account's OpenAI-compatible engine as the worker last used it (None: not used yet).
    engine_state: EngineState | None = None
    engine_detail: Detail = ""


class ChannelCursor(ReportModel):
    """The newest message the worker saw in a watched channel, so that a restarted worker can
    catch up on what was posted while it was away."""

    user_id: UserId
    guild_id: Snowflake
    channel_id: Snowflake
    message_id: Snowflake


class CursorsBody(ReportModel):
    """``POST /api/discord/cursors``; ``GET`` answers the same shape for the asked accounts."""

    cursors: Annotated[tuple[ChannelCursor, ...], Field(max_length=REPORT_BATCH_MAX)]


class WorkerStatusBody(ReportModel):
    """``POST /api/discord/worker-status``: the state of each account's connection."""

    tokens: Annotated[tuple[WorkerTokenState, ...], Field(max_length=REPORT_BATCH_MAX)]


# ------------------------------------------------------------------------ agent configuration


@dataclass(frozen=True)
class Website:
    """The newest successful scrape of one important website, as the agent reads it."""

    name: str
    url: str
    content: str
    scraped_at: datetime | str | None = None


@dataclass(frozen=True)
class ServerConfig:
    """What the owner configured for one server (bot name, texts, websites), as the agent gets
    it — from the worker's tokens answer or, in the web chat, from the database."""

    bot_name: str
    server_name: str
    personality: str = ""
    rules: str = ""
    information: str = ""
    websites: tuple[Website, ...] = field(default_factory=tuple)


def agent_config(server: ServerEntry) -> ServerConfig:
    """The agent's configuration of a server entry; websites without content are left out."""
    return ServerConfig(
        bot_name=server.bot_name,
        server_name=server.guild_name,
        personality=server.personality,
        rules=server.rules,
        information=server.information,
        websites=agent_websites(server.websites),
    )


def agent_websites(websites: Iterable[WebsiteEntry]) -> tuple[Website, ...]:
    return tuple(
        Website(name=site.name or site.url, url=site.url, content=site.markdown,
                scraped_at=site.scraped_at)
        for site in websites
        if site.markdown
    )  # fmt: skip
