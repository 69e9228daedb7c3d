"""The OpenAI-compatible agent engine (``engines.md``): any model server speaking the Chat
Completions API with tool calling (OpenAI, OpenRouter, Groq, Ollama, vLLM, llama.cpp, LM Studio)
behind the same tools, typing and limits as a HUMA agent. See ``docs/engines.md``.

Typical use (Discord worker or web chat)::

    agent = OpenAIAgent(
        endpoint=OpenAIEndpoint(base_url="http://127.0.0.1:11434/v1", model="llama3.1"),
        host=my_tool_host,        # a ToolHost, as for HUMA
        source=my_source,         # a ConversationSource: configuration, channel names, history
        listener=my_listener,     # optional EngineListener: state, canceled messages, failures
        platform="discord",       # or "webchat" (send_message only)
        typing_wpm=settings.typing_wpm,
        http_client=shared_http,  # optional: new_http_client(), one per process
    )
    agent.message(channel_id)     # wherever a HUMA agent would get a new-message update
    await agent.cancel_pending()  # the web chat's Stop button
    agent.state, agent.error      # "ok" | "error" (+ the provider's message) for the dashboard
    await agent.close()
"""

from neonrain.agents.history import ChatLine
from neonrain.openai_engine.client import (
    NO_API_KEY,
    EngineAuthError,
    EngineError,
    EngineTimeoutError,
    EngineUnavailableError,
    ModelClient,
    ModelReply,
    ModelToolCall,
    OpenAIEndpoint,
    new_http_client,
)
from neonrain.openai_engine.prompt import (
    WEBSITES_BUDGET,
    build_messages,
    build_system_message,
    fit_websites,
    function_tools,
    history_messages,
)
from neonrain.openai_engine.runtime import (
    ConversationSource,
    EngineListener,
    EngineState,
    OpenAIAgent,
    TurnResult,
)

__all__ = [
    "NO_API_KEY",
    "WEBSITES_BUDGET",
    "ChatLine",
    "ConversationSource",
    "EngineAuthError",
    "EngineError",
    "EngineListener",
    "EngineState",
    "EngineTimeoutError",
    "EngineUnavailableError",
    "ModelClient",
    "ModelReply",
    "ModelToolCall",
    "OpenAIAgent",
    "OpenAIEndpoint",
    "TurnResult",
    "build_messages",
    "build_system_message",
    "fit_websites",
    "function_tools",
    "history_messages",
    "new_http_client",
]
