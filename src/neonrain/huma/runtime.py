"""The HUMA agent runtime shared by the Discord worker and the web chat.

An :class:`AgentSession` owns one HUMA agent connection (``client.AgentConnection``) and everything
that happens between HUMA and a chat surface:

* context updates (:meth:`AgentSession.send_context`); while disconnected the newest one is kept
  and delivered on reconnect;
* tool calls, each answered exactly once: a result, an error (unknown tool, bad arguments,
  failure) or a canceled result;
* ``send_message`` typed like a person: the indicator at once and every 8 s, a delay of
  ``words / WPM × 60 s`` clamped to [0.5 s, 30 s], then the text, split at 2,000 characters;
* one pending message per agent: a newer ``send_message``, a ``cancel-tool-call`` or a local Stop
  (:meth:`AgentSession.cancel_pending`) cancels it before it is sent.

Typing, splitting and the pending message are :class:`~neonrain.agents.sending.MessageSender`'s
work, shared with the OpenAI-compatible engine; this module adds what HUMA makes of them (tool
results, canceled results). The surface plugs in through :class:`ToolHost` (send text, show
typing, read a channel, record a sent message) and optionally :class:`SessionListener` (state and
errors for a dashboard or chat). Time comes from a :class:`Clock`, so tests run the typing delay
without sleeping.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Final

from neonrain.agents.sending import (
    DEFAULT_TYPING_WPM,
    DISCORD_MESSAGE_LIMIT,
    Clock,
    FetchedMessages,
    MessageSender,
    SendGate,
    SystemClock,
    ToolError,
    ToolHost,
    split_message,
    typing_delay,
)
from neonrain.agents.tools import (
    REASON_SHUTDOWN,
    REASON_STOPPED,
    REASON_SUPERSEDED,
    SENT_OK,
    fetch_limit,
    format_fetched,
    parse_arguments,
    required_string,
)
from neonrain.huma.client import (
    AgentConnection,
    Backoff,
    ConnectionState,
    HumaAuthError,
    HumaConnectionError,
    HumaError,
    HumaNotConnectedError,
    HumaRestClient,
    JSONDict,
)
from neonrain.huma.prompt import (
    TOOL_FETCH_CHANNEL_MESSAGES,
    TOOL_SEND_MESSAGE,
    new_message_update,
)

logger = logging.getLogger(__name__)

REASON_CANCELED: Final = "Canceled by HUMA"
MAX_REMEMBERED_ANSWERS: Final = 10_000
REASON_DISCONNECTED: Final = "Connection to HUMA lost"


class SessionListener:
    """Optional notifications for a dashboard or a chat UI; override what you need."""

    async def agent_created(self, agent_id: str, previous_id: str | None) -> None:
        """A new remote agent exists (store the id to reuse it; ``previous_id`` is gone)."""

    async def state_changed(self, state: ConnectionState) -> None:
        """The HUMA connection changed state (``connected``, ``reconnecting``, ``failed`` …)."""

    async def agent_error(self, code: str | None, message: str) -> None:
        """HUMA reported an error, or the connection failed for good (e.g. ``UNAUTHORIZED``)."""

    async def pending_canceled(self, tool_call_id: str, channel_id: str, reason: str) -> None:
        """A message being typed will not be sent (hide the typing indicator)."""


# ----------------------------------------------------------------------------- result shapes


def tool_success(
    tool_call_id: Any,
    result: Any,
    *,
    skip_immediate_processing: bool | None = None,
    context: Mapping[str, Any] | None = None,
) -> JSONDict:
    content: JSONDict = {
        "type": "tool-result",
        "toolCallId": tool_call_id,
        "success": True,
        "result": result,
    }
    if skip_immediate_processing is not None:
        content["skipImmediateProcessing"] = skip_immediate_processing
    if context is not None:
        content["context"] = dict(context)
    return content


def tool_failure(tool_call_id: Any, error: str) -> JSONDict:
    return {"type": "tool-result", "toolCallId": tool_call_id, "success": False, "error": error}


def tool_canceled(tool_call_id: Any, reason: str) -> JSONDict:
    return {
        "type": "tool-result",
        "toolCallId": tool_call_id,
        "status": "canceled",
        "success": False,
        "error": reason,
        "skipImmediateProcessing": True,
    }


# ----------------------------------------------------------------------------- AgentSession


class AgentSession:
    """One HUMA agent at work for one chat surface (a Discord guild, a web-chat conversation).

    ``metadata`` is what :func:`~neonrain.huma.prompt.build_agent_metadata` returns; the tools it
    declares are the tools this session accepts. Pass ``agent_id`` to reuse a live agent (it is
    only recreated when HUMA says it is gone) and ``rest`` to share one HTTP client between
    sessions. ``typing_wpm`` comes from the settings; ``clock`` is for tests.
    """

    def __init__(
        self,
        *,
        api_url: str,
        api_key: str,
        name: str,
        metadata: Mapping[str, Any],
        host: ToolHost,
        listener: SessionListener | None = None,
        rest: HumaRestClient | None = None,
        agent_id: str | None = None,
        ttl_seconds: int | None = None,
        typing_wpm: float = DEFAULT_TYPING_WPM,
        max_message_length: int = DISCORD_MESSAGE_LIMIT,
        clock: Clock | None = None,
        backoff: Backoff | None = None,
        rest_timeout: float = 15.0,
        connect_timeout: float = 15.0,
        send_gate: SendGate | None = None,
    ) -> None:
        self._host = host
        self._listener = listener or SessionListener()
        self._clock: Clock = clock or SystemClock()
        self._sender = MessageSender(
            host,
            supersede=lambda: self._cancel_pending(REASON_SUPERSEDED, notify_huma=True),
            clock=self._clock,
            typing_wpm=typing_wpm,
            max_message_length=max_message_length,
            log_prefix="huma",
            log_fields=lambda: f"agent_id={self.agent_id}",
            send_gate=send_gate,
        )
        self._owns_rest = rest is None
        self._rest = rest or HumaRestClient(api_url, api_key, timeout=rest_timeout)
        tools = metadata.get("tools") or []
        self._tools = frozenset(str(t.get("name")) for t in tools if isinstance(t, Mapping))
        self.connection = AgentConnection(
            self._rest,
            api_url=api_url,
            api_key=api_key,
            name=name,
            metadata=metadata,
            listener=self,
            agent_id=agent_id,
            ttl_seconds=ttl_seconds,
            backoff=backoff,
            sleep=self._clock.sleep,
            connect_timeout=connect_timeout,
        )
        self._tool_tasks: dict[str, asyncio.Task[None]] = {}
        # Answers given, by agent and tool-call id (ids are only unique within one agent: a
        # recreated agent starts counting again), so a repeated call gets the same answer.
        self._answered: OrderedDict[str, JSONDict] = OrderedDict()
        self._undelivered: JSONDict | None = None
        self._background: set[asyncio.Task[bool]] = set()
        self._current_channel: tuple[str, str] | None = None
        self._send_seq = 0
        self._closed = False

    # -- public API

    @property
    def agent_id(self) -> str | None:
        return self.connection.agent_id

    @property
    def state(self) -> ConnectionState:
        return self.connection.state

    @property
    def error(self) -> HumaError | None:
        """Why the connection failed for good (``state == "failed"``), else ``None``."""
        return self.connection.error

    @property
    def waiting_context(self) -> bool:
        """Whether a context update waits for the connection (only the newest one is kept)."""
        return self._undelivered is not None

    @property
    def pending_tool_call_id(self) -> Any:
        """The id of the message being typed, if any."""
        pending = self._sender.pending
        return pending.tool_call_id if pending is not None else None

    async def start(self) -> None:
        """Create the agent if needed and connect (see :meth:`AgentConnection.start`)."""
        await self.connection.start()

    async def wait_connected(self) -> bool:
        """Wait until connected (bound it with ``asyncio.timeout``); ``False`` if it never will."""
        return await self.connection.wait_connected()

    async def send_context(self, context: Mapping[str, Any], description: str) -> bool:
        """Send a ``new-message`` context update; start the session first if needed.

        Returns ``True`` when HUMA received it now. When the connection is down the update is
        kept (only the newest one) and delivered on reconnect; ``False`` is returned.
        """
        if self._closed:
            raise HumaError("session closed")
        content = new_message_update(context, description)
        channel = context.get("currentChannel")
        if isinstance(channel, Mapping) and channel.get("id") is not None:
            self._current_channel = (str(channel["id"]), str(channel.get("name") or ""))
        if self.connection.state == "idle":
            self._undelivered = content
            await self.start()
            return self._undelivered is None
        if await self._try_emit(content):
            return True
        self._undelivered = content
        logger.info("huma context kept for reconnect agent_id=%s", self.agent_id)
        return False

    async def cancel_pending(self, reason: str = REASON_STOPPED) -> bool:
        """Cancel the message being typed (the web chat's Stop button). ``True`` if one was."""
        return await self._cancel_pending(reason, notify_huma=True)

    async def close(self, *, delete_agent: bool = False, reason: str = REASON_SHUTDOWN) -> None:
        """Cancel what is pending (telling HUMA), disconnect, optionally delete the agent."""
        if self._closed:
            return
        self._closed = True
        await self._cancel_pending(reason, notify_huma=True)
        await self._sender.settle()  # a message already being sent goes out and is recorded
        for call_id, task in list(self._tool_tasks.items()):
            if not task.done():
                task.cancel()
                await self._answer(call_id, tool_canceled(call_id, reason))
        await asyncio.gather(*self._tool_tasks.values(), return_exceptions=True)
        await self.connection.close(delete_agent=delete_agent)
        if self._owns_rest:
            await self._rest.aclose()

    # -- ConnectionListener

    async def on_huma_event(self, data: JSONDict) -> None:
        kind = data.get("type")
        if kind == "tool-call":
            self._start_tool_call(data)
        elif kind == "cancel-tool-call":
            call_id = data.get("toolCallId")
            reason = data.get("reason")
            await self._cancel_call(
                call_id, reason if isinstance(reason, str) and reason else REASON_CANCELED
            )
        elif kind == "status":
            logger.debug("huma status agent_id=%s status=%s", self.agent_id, data.get("status"))
        elif kind == "error":
            code = data.get("code")
            message = str(data.get("message") or "unknown error")
            logger.warning(
                "huma error agent_id=%s code=%s message=%s", self.agent_id, code, message
            )
            await self._notify(self._listener.agent_error(str(code) if code else None, message))
        else:
            logger.debug("huma event ignored agent_id=%s type=%s", self.agent_id, kind)

    async def on_connected(self, agent_id: str) -> None:
        await self._notify(self._listener.state_changed("connected"))
        content, self._undelivered = self._undelivered, None
        if content is not None and not await self._try_emit(content):
            self._undelivered = content

    async def on_disconnected(self, reason: str) -> None:
        # The tool calls of a dead connection cannot be answered: cancel them locally.
        await self._cancel_pending(REASON_DISCONNECTED, notify_huma=False)
        pending = self._sender.pending
        sending = pending.task if pending is not None else None
        for task in list(self._tool_tasks.values()):
            if task is not sending and not task.done():
                task.cancel()  # unanswered: if HUMA sends the call again, it runs again
        await self._notify(self._listener.state_changed("reconnecting"))

    async def on_agent_created(self, agent_id: str, previous_id: str | None) -> None:
        await self._notify(self._listener.agent_created(agent_id, previous_id))

    async def on_failed(self, error: HumaError) -> None:
        code = error.code if isinstance(error, HumaConnectionError) else None
        if isinstance(error, HumaAuthError):
            code = "UNAUTHORIZED"
        await self._notify(self._listener.state_changed("failed"))
        await self._notify(self._listener.agent_error(code, str(error)))

    # -- internals

    async def _notify(self, awaitable: Any) -> None:
        """Run a listener callback; its failure must not break the session."""
        try:
            await awaitable
        except Exception:
            logger.exception("huma session listener failed agent_id=%s", self.agent_id)

    def _spawn_emit(self, content: JSONDict) -> None:
        task = asyncio.create_task(self._try_emit(content), name="huma-repeat-answer")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _try_emit(self, content: Mapping[str, Any]) -> bool:
        try:
            await self.connection.emit(content)
        except HumaNotConnectedError:
            return False
        return True

    def _answer_key(self, tool_call_id: Any) -> str:
        return f"{self.agent_id}/{tool_call_id}"

    async def _answer(self, tool_call_id: Any, content: JSONDict) -> None:
        """Send the one answer a tool call gets; later answers for the same id are dropped."""
        key = self._answer_key(tool_call_id)
        if key in self._answered:
            return
        self._answered[key] = content
        if len(self._answered) > MAX_REMEMBERED_ANSWERS:  # bounded memory for long-lived agents
            self._answered.popitem(last=False)
        if not await self._try_emit(content):
            logger.warning(
                "huma tool result lost, not connected agent_id=%s tool_call_id=%s",
                self.agent_id,
                key,
            )

    def _start_tool_call(self, data: JSONDict) -> None:
        call_id = data.get("toolCallId")
        if not isinstance(call_id, str | int) or isinstance(call_id, bool) or call_id == "":
            logger.warning("huma tool call without id ignored agent_id=%s", self.agent_id)
            return
        key = str(call_id)
        if key in self._tool_tasks:
            logger.info(
                "huma duplicate tool call, still running agent_id=%s id=%s", self.agent_id, key
            )
            return
        answered = self._answered.get(self._answer_key(call_id))
        if answered is not None:
            logger.info(
                "huma duplicate tool call answered again agent_id=%s id=%s", self.agent_id, key
            )
            self._spawn_emit(answered)
            return
        self._send_seq += 1  # arrival order decides which send_message is the newest
        task = asyncio.create_task(
            self._run_tool(call_id, data.get("toolName"), data.get("arguments"), self._send_seq),
            name=f"huma-tool-{key}",
        )
        self._tool_tasks[key] = task
        task.add_done_callback(lambda _t: self._tool_tasks.pop(key, None))

    async def _run_tool(
        self, call_id: Any, tool_name: object, raw_arguments: object, seq: int
    ) -> None:
        logger.info("huma tool call agent_id=%s id=%s tool=%s", self.agent_id, call_id, tool_name)
        try:
            if not isinstance(tool_name, str) or tool_name not in self._tools:
                raise ToolError(f"Unknown tool: {tool_name}")
            arguments = parse_arguments(raw_arguments)
            if tool_name == TOOL_SEND_MESSAGE:
                content = await self._send_message(call_id, arguments, seq)
            elif tool_name == TOOL_FETCH_CHANNEL_MESSAGES:
                content = await self._fetch_channel_messages(call_id, arguments)
            else:
                raise ToolError(f"Unknown tool: {tool_name}")
        except asyncio.CancelledError:
            return  # whoever canceled it has answered (or could not: connection lost)
        except ToolError as exc:
            logger.info(
                "huma tool call refused agent_id=%s id=%s error=%s", self.agent_id, call_id, exc
            )
            content = tool_failure(call_id, str(exc))
        except Exception as exc:
            logger.exception("huma tool call failed agent_id=%s id=%s", self.agent_id, call_id)
            content = tool_failure(call_id, f"{tool_name} failed: {type(exc).__name__}")
        await self._answer(call_id, content)

    async def _send_message(self, call_id: Any, arguments: Mapping[str, Any], seq: int) -> JSONDict:
        channel_id = required_string(arguments, "channel_id")
        message = required_string(arguments, "message").strip()
        sent = await self._sender.send(call_id, channel_id, message, seq)
        if sent is None:
            return tool_canceled(call_id, REASON_SUPERSEDED)
        return tool_success(call_id, SENT_OK, skip_immediate_processing=True, context=sent.context)

    async def _fetch_channel_messages(self, call_id: Any, arguments: Mapping[str, Any]) -> JSONDict:
        channel_id = required_string(arguments, "channel_id")
        limit = fetch_limit(arguments)
        await self._host.check_channel(channel_id)
        fetched = await self._host.fetch_channel_messages(channel_id, limit)
        return tool_success(call_id, format_fetched(channel_id, fetched, self._current_channel))

    async def _cancel_call(self, call_id: Any, reason: str) -> None:
        key = str(call_id)
        pending = self._sender.pending
        if pending is not None and str(pending.tool_call_id) == key:
            if not await self._cancel_pending(reason, notify_huma=True):
                logger.info(
                    "huma cancel too late, message already sending agent_id=%s id=%s",
                    self.agent_id,
                    key,
                )
            return
        task = self._tool_tasks.get(key)
        if task is not None and not task.done():
            task.cancel()
            await self._answer(call_id, tool_canceled(call_id, reason))
            return
        logger.debug(
            "huma cancel for a finished or unknown call agent_id=%s id=%s", self.agent_id, key
        )

    async def _cancel_pending(self, reason: str, *, notify_huma: bool) -> bool:
        pending = self._sender.take_pending()
        if pending is None:
            return False
        logger.info(
            "huma pending message canceled agent_id=%s id=%s reason=%s",
            self.agent_id,
            pending.tool_call_id,
            reason,
        )
        if notify_huma:
            await self._answer(pending.tool_call_id, tool_canceled(pending.tool_call_id, reason))
        await self._notify(
            self._listener.pending_canceled(str(pending.tool_call_id), pending.channel_id, reason)
        )
        return True


__all__ = [
    "DISCORD_MESSAGE_LIMIT",
    "REASON_SUPERSEDED",
    "SENT_OK",
    "AgentSession",
    "Clock",
    "FetchedMessages",
    "SessionListener",
    "SystemClock",
    "ToolError",
    "ToolHost",
    "split_message",
    "tool_canceled",
    "tool_failure",
    "tool_success",
    "typing_delay",
]
