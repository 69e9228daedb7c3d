"""Sending a message the way a person would, shared by every agent engine.

* :class:`ToolHost` is what a chat surface (Discord worker, web chat) provides: check a channel,
  show typing, send text, record a sent message, read a channel.
* :class:`MessageSender` carries out ``send_message``: check the channel, show the typing
  indicator at once and every 8 s for :func:`typing_delay`, split the text at 2,000 characters
  (:func:`split_message`), send each chunk, then record the whole message. It keeps **one pending
  message**: a newer send or a Stop cancels a message still being typed; once typing is over and
  sending has begun, it is no longer cancelable (no half-sent messages), and it is sent and
  recorded even when its task is canceled (an engine closing waits for it: :meth:`settle`).
* :class:`Clock` is time as the engines see it; tests inject a manual clock.

The engine decides what a cancellation means to its model (HUMA: a canceled tool result), so the
sender only reports the message it took back (:meth:`MessageSender.take_pending`) and asks the
engine to supersede an older one through a callback.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

logger = logging.getLogger(__name__)

DISCORD_MESSAGE_LIMIT: Final = 2000
TYPING_MIN_SECONDS: Final = 0.5
TYPING_MAX_SECONDS: Final = 30.0
TYPING_REFRESH_SECONDS: Final = 8.0
DEFAULT_TYPING_WPM: Final = 90.0
#: How long a closing engine waits for a message already being sent.
DELIVERY_GRACE_SECONDS: Final = 10.0


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
    """A tool call cannot be carried out; the message is what the agent's model is told."""


@dataclass(frozen=True)
class FetchedMessages:
    """A channel's recent messages for ``fetch_channel_messages``: lines in history format."""

    channel_name: str
    lines: Sequence[str]


class ToolHost(Protocol):
    """What a chat surface (Discord worker, web chat) provides to run the agent's tools.

    Every method may raise :class:`ToolError` with a message meant for the agent (e.g. "Discord
    refused the message: missing permission"); other exceptions are logged and reported to the
    agent as a generic failure.
    """

    async def check_channel(self, channel_id: str) -> None:
        """Raise :class:`ToolError` unless the agent may act in ``channel_id`` (its own guild)."""

    async def show_typing(self, channel_id: str) -> None:
        """Show the typing indicator in ``channel_id`` (called at once and every 8 s)."""

    async def send_text(self, channel_id: str, text: str) -> None:
        """Deliver one chunk (≤ 2,000 characters) of a message to ``channel_id``."""

    async def message_sent(self, channel_id: str, text: str) -> Mapping[str, Any] | None:
        """Record the whole message the agent just sent (history, stats, agent actions) and return
        the context for a HUMA tool result: at least ``currentChannel`` with the updated
        ``conversationHistory`` (the agent's message appended). ``None`` sends no context; the
        OpenAI-compatible engine ignores it (its next turn reads the history anew)."""

    async def fetch_channel_messages(self, channel_id: str, limit: int) -> FetchedMessages:
        """The last ``limit`` messages of ``channel_id`` (Discord only; web chat raises
        :class:`ToolError`, and does not declare the tool anyway)."""


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


#: Called with ``(channel_id, text)`` after the channel check and before typing; raises
#: :class:`ToolError` to refuse the message (a Discord server's reply limit, for example).
SendGate = Callable[[str, str], Awaitable[None]]


# ----------------------------------------------------------------------------- MessageSender


@dataclass
class PendingMessage:
    """A message being typed: ``task`` is the task that will send it (canceled to take it back)."""

    tool_call_id: Any
    channel_id: str
    task: asyncio.Task[Any]
    seq: int
    committed: bool = False  # typing is over and sending has begun: too late to cancel


@dataclass(frozen=True)
class Sent:
    """A message delivered: ``context`` is what :meth:`ToolHost.message_sent` returned."""

    context: Mapping[str, Any] | None


#: ``send`` was overtaken by a newer call while it checked its channel; nothing was sent.
OVERTAKEN: Final = None


class MessageSender:
    """Carries out ``send_message`` for one agent (or one channel of one): typing, one pending
    message, splitting, recording.

    ``supersede`` is awaited before a newer message starts typing while an older one is pending;
    the engine cancels the older one there (:meth:`take_pending`) and tells its model and listener.
    ``log_fields`` names the agent in log lines (e.g. ``agent_id=…``); ``log_prefix`` the engine.
    """

    def __init__(
        self,
        host: ToolHost,
        *,
        supersede: Callable[[], Awaitable[object]],
        clock: Clock | None = None,
        typing_wpm: float = DEFAULT_TYPING_WPM,
        max_message_length: int = DISCORD_MESSAGE_LIMIT,
        log_prefix: str = "agent",
        log_fields: Callable[[], str] = str,
        send_gate: SendGate | None = None,
    ) -> None:
        if typing_wpm <= 0:
            raise ValueError("typing_wpm must be positive")
        self._host = host
        self._send_gate = send_gate
        self._supersede = supersede
        self._clock: Clock = clock or SystemClock()
        self._typing_wpm = typing_wpm
        self._max_length = max_message_length
        self._log_prefix = log_prefix
        self._log_fields = log_fields
        self._pending: PendingMessage | None = None
        self._send_lock = asyncio.Lock()
        self._deliveries: set[asyncio.Task[Mapping[str, Any] | None]] = set()

    @property
    def pending(self) -> PendingMessage | None:
        """The message being typed or being sent, if any."""
        return self._pending

    def take_pending(self) -> PendingMessage | None:
        """Take back the message being typed: cancel its task and return it. ``None`` when there
        is none, or when it is already being sent (too late)."""
        pending = self._pending
        if pending is None or pending.committed:
            return None
        self._pending = None
        pending.task.cancel()
        return pending

    async def send(self, tool_call_id: Any, channel_id: str, text: str, seq: int) -> Sent | None:
        """Check the channel, type, send ``text`` in chunks and record it, in the current task.

        ``seq`` orders calls by arrival: when a newer call became pending while this one checked
        its channel, nothing is sent and ``None`` (:data:`OVERTAKEN`) is returned. Raises
        :class:`ToolError` (or the host's other errors); canceling the task takes the message back
        while it is being typed.
        """
        await self._host.check_channel(channel_id)
        if self._send_gate is not None:
            await self._send_gate(channel_id, text)
        task = asyncio.current_task()
        assert task is not None
        if self._pending is not None:
            if self._pending.seq > seq:  # a newer call overtook this one during the check
                return OVERTAKEN
            await self._supersede()
        pending = PendingMessage(tool_call_id, channel_id, task, seq)
        self._pending = pending
        try:
            await self._type(channel_id, text)
            pending.committed = True
            # From here on the message goes out and is recorded even if this task is canceled
            # (an agent closing, a worker stopping): a message in Discord is always counted.
            delivery = asyncio.create_task(self._deliver(tool_call_id, channel_id, text))
            self._deliveries.add(delivery)
            delivery.add_done_callback(self._deliveries.discard)
            try:
                context = await asyncio.shield(delivery)
            except asyncio.CancelledError:
                delivery.add_done_callback(self._delivered_after_cancel)
                raise
        finally:
            if self._pending is pending:
                self._pending = None
        return Sent(context)

    async def _deliver(
        self, tool_call_id: Any, channel_id: str, text: str
    ) -> Mapping[str, Any] | None:
        async with self._send_lock:
            for chunk in split_message(text, self._max_length):
                await self._host.send_text(channel_id, chunk)
        logger.info(
            "%s message sent %s id=%s channel_id=%s chars=%d",
            self._log_prefix,
            self._log_fields(),
            tool_call_id,
            channel_id,
            len(text),
        )
        return await self._host.message_sent(channel_id, text)

    def _delivered_after_cancel(self, delivery: asyncio.Task[Mapping[str, Any] | None]) -> None:
        """A delivery whose ``send`` was canceled: nobody else hears how it ended."""
        if delivery.cancelled():
            return
        error = delivery.exception()
        if error is not None:
            logger.warning(
                "%s message not sent while closing %s: %s",
                self._log_prefix,
                self._log_fields(),
                error,
            )

    async def settle(self, timeout: float = DELIVERY_GRACE_SECONDS) -> None:
        """Wait (at most ``timeout``) for messages already being sent to be sent and recorded;
        an engine closing calls it before canceling its tasks."""
        deliveries = set(self._deliveries)
        if not deliveries:
            return
        _done, late = await asyncio.wait(deliveries, timeout=timeout)
        for delivery in late:
            logger.warning(
                "%s message still sending at close %s; abandoned after %.0f s",
                self._log_prefix,
                self._log_fields(),
                timeout,
            )
            delivery.cancel()

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
                "typing indicator failed %s channel_id=%s error=%s",
                self._log_fields(),
                channel_id,
                exc,
            )


__all__ = [
    "DEFAULT_TYPING_WPM",
    "DISCORD_MESSAGE_LIMIT",
    "OVERTAKEN",
    "Clock",
    "FetchedMessages",
    "MessageSender",
    "PendingMessage",
    "SendGate",
    "Sent",
    "SystemClock",
    "ToolError",
    "ToolHost",
    "split_message",
    "typing_delay",
]
