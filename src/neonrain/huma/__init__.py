"""HUMA client library and agent runtime (``docs/huma.md``, ``huma-protocol.md``).

Typical use (Discord worker or web chat)::

    config = ServerConfig(bot_name="Nova", server_name="Rust Lovers", rules="Be kind")
    session = AgentSession(
        api_url=settings.huma_api_url,
        api_key=settings.huma_api_key,
        name=discord_agent_name(config.server_name),
        metadata=build_agent_metadata(config, "discord"),
        host=my_tool_host,             # implements ToolHost
        typing_wpm=settings.typing_wpm,
    )
    await session.start()
    await session.send_context(context, describe_new_message("alice", "general", text))
    ...
    await session.close()
"""

from neonrain.contract import ServerConfig, Website
from neonrain.huma.client import (
    AgentConnection,
    AgentInfo,
    Backoff,
    ConnectionState,
    HumaAgentGoneError,
    HumaAPIError,
    HumaAuthError,
    HumaConnectionError,
    HumaError,
    HumaNotConnectedError,
    HumaRestClient,
    HumaSocket,
    HumaTimeoutError,
)
from neonrain.huma.prompt import (
    ChannelRef,
    agent_identity,
    build_agent_metadata,
    build_context,
    build_webchat_context,
    config_context_fields,
    describe_new_message,
    discord_agent_name,
    format_history_line,
    join_history,
    tool_definitions,
    webchat_agent_name,
)
from neonrain.huma.runtime import (
    AgentSession,
    Clock,
    FetchedMessages,
    SessionListener,
    SystemClock,
    ToolError,
    ToolHost,
    split_message,
    typing_delay,
)

__all__ = [
    "AgentConnection",
    "AgentInfo",
    "AgentSession",
    "Backoff",
    "ChannelRef",
    "Clock",
    "ConnectionState",
    "FetchedMessages",
    "HumaAPIError",
    "HumaAgentGoneError",
    "HumaAuthError",
    "HumaConnectionError",
    "HumaError",
    "HumaNotConnectedError",
    "HumaRestClient",
    "HumaSocket",
    "HumaTimeoutError",
    "ServerConfig",
    "SessionListener",
    "SystemClock",
    "ToolError",
    "ToolHost",
    "Website",
    "agent_identity",
    "build_agent_metadata",
    "build_context",
    "build_webchat_context",
    "config_context_fields",
    "describe_new_message",
    "discord_agent_name",
    "format_history_line",
    "join_history",
    "split_message",
    "tool_definitions",
    "typing_delay",
    "webchat_agent_name",
]
