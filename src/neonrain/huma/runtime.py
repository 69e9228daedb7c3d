"""The agent runtime shared by the Discord worker and the web chat.

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

The surface plugs in through :class:`ToolHost` (send text, show typing, read a channel, record a
sent message) and optionally :class:`SessionListener` (state and errors for a dashboard or chat).
Time comes from a :class:`Clock`, so tests run the typing delay without sleeping.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

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
    join_history,
    new_message_update,
)

logger = logging.getLogger(__name__)

DISCORD_MESSAGE_LIMIT: Final = 2000
TYPING_MIN_SECONDS: Final = 0.5
TYPING_MAX_SECONDS: Final = 30.0
TYPING_REFRESH_SECONDS: Final = 8.0
DEFAULT_TYPING_WPM: Final = 90.0
FETCH_DEFAULT_LIMIT: Final = 50
FETCH_MAX_LIMIT: Final = 100

SENT_OK: Final = "Message sent successfully"
REASON_SUPERSEDED: Final = "Superseded by newer message"
REASON_STOPPED: Final = "Stopped by user"
REASON_CANCELED: Final = "Canceled by HUMA"
REASON_DISCONNECTED: Final = "Connection to HUMA lost"
REASON_SHUTDOWN: Final = "Agent shutting down"


# ------------------------------------------------------------------------------ pure helpers


def typing_delay(text: str, wpm: float = DEFAULT_TYPING_WPM) -> float:
    """Seconds a person would take to type ``text``: words / WPM × 60, clamped to [0.5, 30]."""
    words = len(text.split())
    seconds = words / wpm * 60.0 if wpm > 0 else TYPING_MIN_SECONDS
    return max(TYPING_MIN_SECONDS, min(TYPING_MAX_SECONDS, seconds))


_SENTENCE_END = re.compile(r"[.!?…][\"'”’)\]]*(?=\s)")


def _cut_point(text: str, limit: int) -> int:
    """Where to cut ``text`` (longer than ``limit``) so the first part fits and reads well."""
    window = text[: limit + 1]  # a boundary right after the limit still leaves a fitting head
    floor = limit // 4  # do not produce tiny chunks just to honour a boundary
    paragraph = window.rfind("\n\n", 0, limit + 1)
    if paragraph > floor:
        return paragraph
    line = window.rfind("\n", 0, limit + 1)
    if line > floor:
        return line
    best = -1
    for match in _SENTENCE_END.finditer(window):
        if match.end() <= limit:
            best = match.end()
    if best > floor:
        return best
    space = max(window.rfind(" ", 0, limit + 1), window.rfind("\t", 0, limit + 1))
    if space > 0:
        return space
    return limit


def split_message(text: str, limit: int = DISCORD_MESSAGE_LIMIT) -> list[str]:
    """Split ``text`` into chunks of at most ``limit`` characters at paragraph, line, sentence or
    word boundaries (in that order of preference); a single over-long word is cut hard."""
    if limit <= 0:
        raise ValueError("limit must be positive")
    text = text.strip()
    chunks: list[str] = []
    while len(text) > limit:
        cut = _cut_point(text, limit)
        head = text[:cut].rstrip()
        if not head:  # only whitespace before the boundary: cut hard instead
            head, cut = text[:limit], limit
        chunks.append(head)
        text = text[cut:].lstrip()
    if text:
        chunks.append(text)
    return chunks


# ---------------------------------------------------------------------------- plug-in points


class ToolError(Exception):
    """A tool call cannot be carried out; the message is what HUMA is told (``error``)."""


@dataclass(frozen=True)
class FetchedMessages:
    """A channel's recent messages for ``fetch_channel_messages``: lines in history format."""

    channel_name: str
    lines: Sequence[str]


class ToolHost(Protocol):
    """What a chat surface (Discord worker, web chat) provides to run the agent's tools.

    Every method may raise :class:`ToolError` with a message meant for the agent (e.g. "Discord
    refused the message: missing permission"); other exceptions are logged and reported to HUMA
    as a generic failure.
    """

    async def check_channel(self, channel_id: str) -> None:
        """Raise :class:`ToolError` unless the agent may act in ``channel_id`` (its own guild)."""

    async def show_typing(self, channel_id: str) -> None:
        """Show the typing indicator in ``channel_id`` (called at once and every 8 s)."""

    async def send_text(self, channel_id: str, text: str) -> None:
        """Deliver one chunk (≤ 2,000 characters) of a message to ``channel_id``."""

    async def message_sent(self, channel_id: str, text: str) -> Mapping[str, Any] | None:
        """Record the whole message the agent just sent (history, stats, agent actions) and return
        the context for the tool result: at least ``currentChannel`` with the updated
        ``conversationHistory`` (the agent's message appended). ``None`` sends no context."""

    async def fetch_channel_messages(self, channel_id: str, limit: int) -> FetchedMessages:
        """The last ``limit`` messages of ``channel_id`` (Discord only; web chat raises
        :class:`ToolError`, and does not declare the tool anyway)."""


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


class Clock(Protocol):
    """Time as the runtime sees it; tests inject a manual clock."""

    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


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


# -------------------------------------------------------------------------- argument parsing


def _required_string(arguments: Mapping[str, Any], name: str) -> str:
    value = arguments.get(name)
    if isinstance(value, int) and not isinstance(value, bool) and name.endswith("_id"):
        value = str(value)  # snowflakes sometimes arrive as numbers
    if not isinstance(value, str) or not value.strip():
        raise ToolError(f"Missing or invalid {name}")
    return value.strip() if name.endswith("_id") else value


def _limit(arguments: Mapping[str, Any]) -> int:
    value = arguments.get("limit")
    if value is None:
        return FETCH_DEFAULT_LIMIT
    number: float
    if isinstance(value, bool):
        raise ToolError("Invalid limit: expected a number from 1 to 100")
    if isinstance(value, int | float):
        number = value
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise ToolError("Invalid limit: expected a number from 1 to 100") from None
    else:
        raise ToolError("Invalid limit: expected a number from 1 to 100")
    if number != number or not 1 <= number <= FETCH_MAX_LIMIT or number != int(number):
        raise ToolError("Invalid limit: expected a number from 1 to 100")
    return int(number)


def _arguments(raw: object) -> Mapping[str, Any]:
    if raw is None:
        return {}
    if isinstance(raw, str):  # some agents send the arguments as a JSON string
        try:
            raw = json.loads(raw) if raw.strip() else {}
        except ValueError:
            raise ToolError("Invalid arguments: expected an object") from None
    if not isinstance(raw, Mapping):
        raise ToolError("Invalid arguments: expected an object")
    return raw


# ----------------------------------------------------------------------------- AgentSession


@dataclass
class _Pending:
    tool_call_id: Any
    channel_id: str
    task: asyncio.Task[None]
    seq: int
    committed: bool = False  # typing is over and sending has begun: too late to cancel


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
    ) -> None:
        if typing_wpm <= 0:
            raise ValueError("typing_wpm must be positive")
        self._host = host
        self._listener = listener or SessionListener()
        self._clock: Clock = clock or SystemClock()
        self._owns_rest = rest is None
        self._rest = rest or HumaRestClient(api_url, api_key, timeout=rest_timeout)
        self._typing_wpm = typing_wpm
        self._max_length = max_message_length
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
        self._pending: _Pending | None = None
        self._tool_tasks: dict[str, asyncio.Task[None]] = {}
        self._answered: set[str] = set()
        self._undelivered: JSONDict | None = None
        self._current_channel: tuple[str, str] | None = None
        self._send_lock = asyncio.Lock()
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
    def pending_tool_call_id(self) -> Any:
        """The id of the message being typed, if any."""
        return self._pending.tool_call_id if self._pending is not None else None

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
        sending = self._pending.task if self._pending is not None else None
        for key, task in list(self._tool_tasks.items()):
            if task is not sending and not task.done():
                task.cancel()
                self._answered.add(key)
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

    async def _try_emit(self, content: Mapping[str, Any]) -> bool:
        try:
            await self.connection.emit(content)
        except HumaNotConnectedError:
            return False
        return True

    async def _answer(self, tool_call_id: Any, content: JSONDict) -> None:
        """Send the one answer a tool call gets; later answers for the same id are dropped."""
        key = str(tool_call_id)
        if key in self._answered:
            return
        self._answered.add(key)
        if len(self._answered) > 10_000:  # bounded memory for long-lived agents
            self._answered = {key}
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
        if key in self._tool_tasks or key in self._answered:
            logger.info("huma duplicate tool call ignored agent_id=%s id=%s", self.agent_id, key)
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
            arguments = _arguments(raw_arguments)
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
        channel_id = _required_string(arguments, "channel_id")
        message = _required_string(arguments, "message").strip()
        await self._host.check_channel(channel_id)
        task = asyncio.current_task()
        assert task is not None
        if self._pending is not None:
            if self._pending.seq > seq:  # a newer call overtook this one during the check
                return tool_canceled(call_id, REASON_SUPERSEDED)
            await self._cancel_pending(REASON_SUPERSEDED, notify_huma=True)
        pending = _Pending(call_id, channel_id, task, seq)
        self._pending = pending
        try:
            await self._type(channel_id, message)
            pending.committed = True
            async with self._send_lock:
                for chunk in split_message(message, self._max_length):
                    await self._host.send_text(channel_id, chunk)
        finally:
            if self._pending is pending:
                self._pending = None
        logger.info(
            "huma message sent agent_id=%s id=%s channel_id=%s chars=%d",
            self.agent_id,
            call_id,
            channel_id,
            len(message),
        )
        context = await self._host.message_sent(channel_id, message)
        return tool_success(call_id, SENT_OK, skip_immediate_processing=True, context=context)

    async def _type(self, channel_id: str, text: str) -> None:
        """Typing indicator at once and every 8 s until the typing delay has passed."""
        remaining = typing_delay(text, self._typing_wpm)
        await self._show_typing(channel_id)
        while remaining > 0:
            step = min(TYPING_REFRESH_SECONDS, remaining)
            await self._clock.sleep(step)
            remaining -= step
            if remaining > 1e-9:
                await self._show_typing(channel_id)

    async def _show_typing(self, channel_id: str) -> None:
        try:
            await self._host.show_typing(channel_id)
        except Exception as exc:  # the indicator is cosmetic; never lose the message for it
            logger.info(
                "typing indicator failed agent_id=%s channel_id=%s error=%s",
                self.agent_id,
                channel_id,
                exc,
            )

    async def _fetch_channel_messages(self, call_id: Any, arguments: Mapping[str, Any]) -> JSONDict:
        channel_id = _required_string(arguments, "channel_id")
        limit = _limit(arguments)
        await self._host.check_channel(channel_id)
        fetched = await self._host.fetch_channel_messages(channel_id, limit)
        return tool_success(call_id, self._format_fetched(channel_id, fetched))

    def _format_fetched(self, channel_id: str, fetched: FetchedMessages) -> str:
        name = fetched.channel_name or channel_id
        lines = join_history(fetched.lines, limit=len(fetched.lines))
        header = (
            f"Recent messages from #{name} (channel {channel_id}), for reference only. "
            "Do not answer them there and do not repeat their content elsewhere."
        )
        if self._current_channel is not None:
            current_id, current_name = self._current_channel
            footer = (
                f"End of #{name}. If you answer, answer in the current channel "
                f"#{current_name} (channel_id {current_id})."
            )
        else:
            footer = f"End of #{name}. If you answer, answer in the current channel."
        body = lines if lines else "(no messages)\n"
        return f"{header}\n{body}{footer}"

    async def _cancel_call(self, call_id: Any, reason: str) -> None:
        key = str(call_id)
        pending = self._pending
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
        pending = self._pending
        if pending is None or pending.committed:
            return False
        self._pending = None
        pending.task.cancel()
        logger.info(
            "huma pending message canceled agent_id=%s id=%s reason=%s",
            self.agent_id,
            pending.tool_call_id,
            reason,
        )
        if notify_huma:
            await self._answer(pending.tool_call_id, tool_canceled(pending.tool_call_id, reason))
        else:
            self._answered.add(str(pending.tool_call_id))
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
