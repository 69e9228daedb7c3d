"""The OpenAI-compatible agent: turns, the tool loop, cancellation and failures (``engines.md``).

An :class:`OpenAIAgent` serves one chat surface (a Discord guild, a web-chat conversation) like a
HUMA :class:`~neonrain.huma.AgentSession` does, with a model behind an OpenAI-compatible endpoint
instead of HUMA. The surface calls :meth:`OpenAIAgent.message` where it would send HUMA a
``new-message`` update; everything else happens in the background:

* **Turns, per channel.** A turn waits for ``quiet_seconds`` (1.5 s) without a new message in
  that channel, at most ``max_wait_seconds`` (5 s) after the first message of the burst, so a
  burst gets one answer. A new message while a turn runs cancels it (its HTTP request is
  abandoned, a message being typed is not sent) and starts a new burst. Channels are independent.
* **The tool loop.** The model gets the system message, the channel's history and the tools; its
  tool calls run through the surface's :class:`~neonrain.agents.sending.ToolHost` (typing like a
  person, one pending message per channel: :class:`~neonrain.agents.sending.MessageSender`); their
  results go back as ``tool`` messages and the model is called again until it answers without a
  tool call, at most ``max_model_calls`` (4) times per turn. Text without a tool call is never
  posted.
* **Failures** (:mod:`neonrain.openai_engine.client` retries 429/5xx): 401/403 put the agent in
  state ``error`` with the provider's message (the listener hears it) and nothing calls the model
  again: the caller makes a new agent when the credentials change. A timeout or an exhausted retry
  ends the turn. A failed turn is logged at INFO with why: ids, counts and lengths, never message
  texts, never the key. The surface keeps the history, so nothing the user wrote is lost.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final, Literal, Protocol

from neonrain.agents.history import HISTORY_LIMIT, ChatLine
from neonrain.agents.sending import (
    DEFAULT_TYPING_WPM,
    DISCORD_MESSAGE_LIMIT,
    Clock,
    MessageSender,
    PendingMessage,
    SendGate,
    SystemClock,
    ToolError,
    ToolHost,
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
from neonrain.contract import ServerConfig
from neonrain.huma.prompt import (
    TOOL_FETCH_CHANNEL_MESSAGES,
    TOOL_SEND_MESSAGE,
    ChannelRef,
    Platform,
)
from neonrain.openai_engine.client import (
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT,
    EngineAuthError,
    EngineError,
    ModelClient,
    ModelToolCall,
    OpenAIEndpoint,
)
from neonrain.openai_engine.prompt import build_messages, function_tools

if TYPE_CHECKING:
    import httpx2
    from openai.types.chat import ChatCompletionMessageParam

logger = logging.getLogger(__name__)

EngineState = Literal["ok", "error"]

DEFAULT_QUIET_SECONDS: Final = 1.5
DEFAULT_MAX_WAIT_SECONDS: Final = 5.0
DEFAULT_MAX_MODEL_CALLS: Final = 4
REASON_NEW_MESSAGE: Final = "A newer message arrived"


# ---------------------------------------------------------------------------- plug-in points


class ConversationSource(Protocol):
    """What the surface tells the engine at the start of every turn."""

    def agent_config(self) -> ServerConfig:
        """The server configuration now (read at every turn, so edits apply to the next one)."""
        ...

    def channel_name(self, channel_id: str) -> str:
        """The channel's name without ``#`` (web chat: ``general``)."""
        ...

    def channels(self) -> Sequence[ChannelRef]:
        """The server's channels the tools may name (Discord: its text channels; web chat:
        none, as it has no other channel to read)."""
        ...

    async def recent_lines(self, channel_id: str, limit: int) -> Sequence[ChatLine]:
        """The channel's last ``limit`` messages, oldest first, the newest (trigger) last, the
        bot's own marked ``from_agent``."""
        ...


class EngineListener:
    """Optional notifications for a dashboard or a chat UI; override what you need."""

    async def state_changed(self, state: EngineState, detail: str | None) -> None:
        """The engine's state changed: ``error`` with the provider's message (401/403)."""

    async def pending_canceled(self, tool_call_id: str, channel_id: str, reason: str) -> None:
        """A message being typed will not be sent (hide the typing indicator)."""

    async def turn_failed(self, channel_id: str, error: EngineError) -> None:
        """A turn ended without an answer because the model failed (``error.code`` says why)."""


@dataclass(frozen=True)
class TurnResult:
    """How a turn ended, for logs and tests."""

    model_calls: int
    messages_sent: int
    outcome: Literal["answered", "silent", "call_limit", "stopped"]


# ------------------------------------------------------------------------------ agent state


@dataclass
class _Turn:
    number: int
    channel_id: str
    task: asyncio.Task[None] | None = None
    stale: bool = False  # a newer message or a Stop ended it; it stops at the next step


@dataclass
class _Channel:
    channel_id: str
    sender: MessageSender
    burst_start: float | None = None  # first message not yet answered by a turn
    last_message: float = 0.0
    runner: asyncio.Task[None] | None = None
    turn: _Turn | None = None


class OpenAIAgent:
    """One OpenAI-compatible agent at work for one chat surface.

    ``platform`` decides the tools (web chat: ``send_message`` only) and the wording.
    ``http_client`` shares one connection pool between agents
    (:func:`~neonrain.openai_engine.client.new_http_client`; not closed here). ``clock`` and
    ``wall_clock`` are for tests; ``log_fields`` names the agent in log lines (ids only, e.g.
    ``user=… guild=…``). Create it and call :meth:`message` from the event loop.
    """

    def __init__(
        self,
        *,
        endpoint: OpenAIEndpoint,
        host: ToolHost,
        source: ConversationSource,
        platform: Platform = "discord",
        listener: EngineListener | None = None,
        typing_wpm: float = DEFAULT_TYPING_WPM,
        clock: Clock | None = None,
        wall_clock: Callable[[], datetime] | None = None,
        quiet_seconds: float = DEFAULT_QUIET_SECONDS,
        max_wait_seconds: float = DEFAULT_MAX_WAIT_SECONDS,
        max_model_calls: int = DEFAULT_MAX_MODEL_CALLS,
        timeout_seconds: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        http_client: httpx2.AsyncClient | None = None,
        max_message_length: int = DISCORD_MESSAGE_LIMIT,
        log_fields: str = "",
        send_gate: SendGate | None = None,
    ) -> None:
        if typing_wpm <= 0:
            raise ValueError("typing_wpm must be positive")
        if max_model_calls < 1:
            raise ValueError("max_model_calls must be at least 1")
        self._host = host
        self._send_gate = send_gate
        self._source = source
        self._platform: Platform = platform
        self._listener = listener or EngineListener()
        self._clock: Clock = clock or SystemClock()
        self._wall_clock = wall_clock or (lambda: datetime.now(UTC))
        self._quiet = quiet_seconds
        self._max_wait = max_wait_seconds
        self._max_calls = max_model_calls
        self._typing_wpm = typing_wpm
        self._max_length = max_message_length
        self._log_fields = log_fields or f"model={endpoint.model}"
        self._tools = function_tools(platform)
        self._tool_names = frozenset(t["function"]["name"] for t in self._tools)
        self._client = ModelClient(
            endpoint,
            timeout=timeout_seconds,
            retries=retries,
            sleep=self._clock.sleep,
            http_client=http_client,
            log_fields=self._log_fields,
        )
        self._channels: dict[str, _Channel] = {}
        self._turn_numbers = itertools.count(1)
        self._send_seq = 0
        self._notifications: set[asyncio.Task[None]] = set()
        self._state: EngineState = "ok"
        self._error: str | None = None
        self._closed = False

    # -- public API

    @property
    def endpoint(self) -> OpenAIEndpoint:
        return self._client.endpoint

    @property
    def state(self) -> EngineState:
        """``ok``, or ``error`` once the provider refused the credentials."""
        return self._state

    @property
    def error(self) -> str | None:
        """The provider's message when ``state == "error"`` (without the key), else ``None``."""
        return self._error

    @property
    def busy(self) -> bool:
        """Whether a burst is waiting or a turn is running in some channel."""
        return any(ch.runner is not None and not ch.runner.done() for ch in self._channels.values())

    def message(self, channel_id: str) -> None:
        """A message arrived in ``channel_id`` (already in the history the source returns):
        cancel that channel's running turn, if any, and answer the burst once it is quiet."""
        if self._closed:
            return
        if self._state == "error":
            logger.debug("openai message ignored, engine in error %s", self._log_fields)
            return
        channel = self._channel(channel_id)
        now = self._clock.monotonic()
        if channel.burst_start is None:
            channel.burst_start = now
        channel.last_message = now
        self._abandon_turn(channel, REASON_NEW_MESSAGE)
        if channel.runner is None or channel.runner.done():
            channel.runner = asyncio.create_task(
                self._run_channel(channel), name=f"openai-channel-{channel_id}"
            )

    async def cancel_pending(self, reason: str = REASON_STOPPED) -> bool:
        """Cancel the message being typed, and the turn typing it (the web chat's Stop button).
        ``True`` if there was one."""
        canceled = False
        for channel in list(self._channels.values()):
            taken = channel.sender.take_pending()
            if taken is None:
                continue
            if channel.turn is not None:
                channel.turn.stale = True
            await self._pending_canceled(taken, reason)
            canceled = True
        return canceled

    async def wait_idle(self) -> None:
        """Wait until no burst is waiting and no turn is running (tests, shutdown)."""
        while True:
            runners = [
                c.runner for c in self._channels.values() if c.runner and not c.runner.done()
            ]
            if not runners:
                return
            await asyncio.wait(runners)

    async def close(self) -> None:
        """Cancel what is waiting, running or being typed, and release the HTTP client."""
        if self._closed:
            return
        self._closed = True
        await self.cancel_pending(REASON_SHUTDOWN)
        # A message already being sent goes out and is recorded before its turn is canceled.
        await asyncio.gather(*(channel.sender.settle() for channel in self._channels.values()))
        tasks: list[asyncio.Task[None]] = []
        for channel in self._channels.values():
            for task in (channel.runner, channel.turn.task if channel.turn else None):
                if task is not None and not task.done():
                    task.cancel()
                    tasks.append(task)
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*self._notifications, return_exceptions=True)
        await self._client.aclose()

    # -- bursts and turns

    def _channel(self, channel_id: str) -> _Channel:
        channel = self._channels.get(channel_id)
        if channel is None:
            channel = _Channel(channel_id, sender=self._new_sender(channel_id))
            self._channels[channel_id] = channel
        return channel

    def _new_sender(self, channel_id: str) -> MessageSender:
        async def supersede() -> None:
            taken = self._channels[channel_id].sender.take_pending()
            if taken is not None:
                await self._pending_canceled(taken, REASON_SUPERSEDED)

        return MessageSender(
            self._host,
            supersede=supersede,
            clock=self._clock,
            typing_wpm=self._typing_wpm,
            max_message_length=self._max_length,
            log_prefix="openai",
            log_fields=lambda: self._log_fields,
            send_gate=self._send_gate,
        )

    def _abandon_turn(self, channel: _Channel, reason: str) -> None:
        """Stop the channel's running turn: at once, unless its message is already being sent
        (no half-sent messages), in which case it stops right after."""
        turn = channel.turn
        if turn is None or turn.stale or turn.task is None or turn.task.done():
            return
        turn.stale = True
        pending = channel.sender.pending
        if pending is not None and pending.committed:
            logger.info(
                "openai turn ends after its message %s turn=%d channel_id=%s",
                self._log_fields,
                turn.number,
                channel.channel_id,
            )
            return
        taken = channel.sender.take_pending()  # cancels the turn's task while it types
        if taken is None:
            turn.task.cancel()
        else:
            self._spawn(self._pending_canceled(taken, reason))
        logger.info(
            "openai turn canceled %s turn=%d channel_id=%s reason=%s",
            self._log_fields,
            turn.number,
            channel.channel_id,
            reason,
        )

    async def _run_channel(self, channel: _Channel) -> None:
        """Answer the channel's bursts one after the other until none is waiting."""
        while channel.burst_start is not None and not self._closed:
            await self._wait_for_quiet(channel)
            channel.burst_start = None
            if self._state == "error":
                return
            turn = _Turn(next(self._turn_numbers), channel.channel_id)
            turn.task = asyncio.create_task(
                self._turn(channel, turn), name=f"openai-turn-{turn.number}"
            )
            channel.turn = turn
            try:
                await asyncio.wait([turn.task])
            finally:
                if channel.turn is turn:
                    channel.turn = None

    async def _wait_for_quiet(self, channel: _Channel) -> None:
        while channel.burst_start is not None:
            deadline = min(channel.last_message + self._quiet, channel.burst_start + self._max_wait)
            remaining = deadline - self._clock.monotonic()
            if remaining <= 0:
                return
            await self._clock.sleep(remaining)

    async def _turn(self, channel: _Channel, turn: _Turn) -> None:
        try:
            result = await self._converse(channel, turn)
        except EngineAuthError as exc:
            self._log_failed(turn, exc)
            await self._credentials_refused(exc)
            await self._notify(self._listener.turn_failed(turn.channel_id, exc))
        except EngineError as exc:
            self._log_failed(turn, exc)
            await self._notify(self._listener.turn_failed(turn.channel_id, exc))
        except Exception:
            logger.exception(
                "openai turn crashed %s turn=%d channel_id=%s",
                self._log_fields,
                turn.number,
                turn.channel_id,
            )
        else:
            logger.info(
                "openai turn done %s turn=%d channel_id=%s outcome=%s model_calls=%d sent=%d",
                self._log_fields,
                turn.number,
                turn.channel_id,
                result.outcome,
                result.model_calls,
                result.messages_sent,
            )

    def _log_failed(self, turn: _Turn, exc: EngineError) -> None:
        logger.info(
            "openai turn failed %s turn=%d channel_id=%s reason=%s status=%s",
            self._log_fields,
            turn.number,
            turn.channel_id,
            exc.code,
            exc.status,
        )

    async def _converse(self, channel: _Channel, turn: _Turn) -> TurnResult:
        """The tool loop of one turn."""
        channel_id = channel.channel_id
        config = self._source.agent_config()
        current = ChannelRef(channel_id, self._source.channel_name(channel_id))
        history = await self._source.recent_lines(channel_id, HISTORY_LIMIT)
        messages: list[ChatCompletionMessageParam] = build_messages(
            config,
            platform=self._platform,
            channel=current,
            history=history,
            now=self._wall_clock(),
            channels=self._source.channels() if self._platform == "discord" else (),
        )
        logger.debug(
            "openai turn started %s turn=%d channel_id=%s history=%d system_chars=%d",
            self._log_fields,
            turn.number,
            channel_id,
            len(history),
            len(str(messages[0].get("content") or "")),
        )
        calls = sent = 0
        while calls < self._max_calls:
            if turn.stale or self._state == "error":
                return TurnResult(calls, sent, "stopped")
            calls += 1
            reply = await self._client.complete(messages, self._tools)
            if not reply.tool_calls:
                if reply.content and reply.content.strip():
                    logger.debug(
                        "openai plain text not posted %s turn=%d chars=%d",
                        self._log_fields,
                        turn.number,
                        len(reply.content),
                    )
                return TurnResult(calls, sent, "answered" if sent else "silent")
            messages.append(reply.assistant_message())
            for call in reply.tool_calls:
                if turn.stale:  # a newer message came while a message was being sent
                    return TurnResult(calls, sent, "stopped")
                result, delivered = await self._run_tool(channel, current, call)
                sent += delivered
                messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
        logger.info(
            "openai turn reached the call limit %s turn=%d channel_id=%s model_calls=%d",
            self._log_fields,
            turn.number,
            channel_id,
            calls,
        )
        return TurnResult(calls, sent, "call_limit")

    async def _run_tool(
        self, channel: _Channel, current: ChannelRef, call: ModelToolCall
    ) -> tuple[str, bool]:
        """Carry out one tool call: the text the model gets back, and whether a message went
        out. A bad call or a refusal is an ``Error: …`` result the model can act on."""
        logger.info("openai tool call %s id=%s tool=%s", self._log_fields, call.id, call.name[:64])
        try:
            if call.name not in self._tool_names:
                raise ToolError(f"Unknown tool: {call.name[:64]}")
            arguments = parse_arguments(call.arguments)
            if call.name == TOOL_SEND_MESSAGE:
                target = required_string(arguments, "channel_id")
                text = required_string(arguments, "message").strip()
                self._send_seq += 1
                if await channel.sender.send(call.id, target, text, self._send_seq) is None:
                    return REASON_SUPERSEDED, False
                return SENT_OK, True
            if call.name == TOOL_FETCH_CHANNEL_MESSAGES:
                target = required_string(arguments, "channel_id")
                limit = fetch_limit(arguments)
                await self._host.check_channel(target)
                fetched = await self._host.fetch_channel_messages(target, limit)
                return format_fetched(target, fetched, (current.id, current.name)), False
            raise ToolError(f"Unknown tool: {call.name[:64]}")
        except ToolError as exc:
            logger.info(
                "openai tool call refused %s id=%s error=%s", self._log_fields, call.id, exc
            )
            return f"Error: {exc}", False
        except Exception as exc:
            logger.exception("openai tool call failed %s id=%s", self._log_fields, call.id)
            return f"Error: {call.name} failed: {type(exc).__name__}", False

    # -- failures and notifications

    async def _credentials_refused(self, exc: EngineAuthError) -> None:
        if self._state == "error":
            return
        self._state, self._error = "error", str(exc)
        logger.warning(
            "openai engine credentials refused %s status=%s: %s",
            self._log_fields,
            exc.status,
            exc,
        )
        await self._notify(self._listener.state_changed("error", str(exc)))

    async def _pending_canceled(self, pending: PendingMessage, reason: str) -> None:
        logger.info(
            "openai pending message canceled %s id=%s channel_id=%s reason=%s",
            self._log_fields,
            pending.tool_call_id,
            pending.channel_id,
            reason,
        )
        await self._notify(
            self._listener.pending_canceled(str(pending.tool_call_id), pending.channel_id, reason)
        )

    async def _notify(self, awaitable: Awaitable[None]) -> None:
        """Run a listener callback; its failure must not break the agent."""
        try:
            await awaitable
        except Exception:
            logger.exception("openai listener failed %s", self._log_fields)

    def _spawn(self, coroutine: Awaitable[None]) -> None:
        async def run() -> None:
            await coroutine

        task = asyncio.create_task(run())
        self._notifications.add(task)
        task.add_done_callback(self._notifications.discard)


__all__ = [
    "ConversationSource",
    "EngineListener",
    "EngineState",
    "OpenAIAgent",
    "TurnResult",
]
