"""One OpenAI-compatible endpoint through the official ``openai`` SDK, with Neonrain's own policy.

:class:`ModelClient` sends ``POST {base_url}/chat/completions`` (function tools,
``tool_choice: "auto"``) with the SDK's ``AsyncOpenAI`` and turns every outcome into a
:class:`ModelReply` or one :class:`EngineError`:

* 429 and 5xx (and network errors) are retried twice, waiting what ``Retry-After`` /
  ``retry-after-ms`` asks or else an exponential backoff with jitter; the SDK's own retries are off
  so that the policy is ours (and testable with an injected ``sleep``). A wait longer than
  ``max_retry_after`` is not worth it for a chat turn: the call fails at once.
* 401/403 raise :class:`EngineAuthError` with the provider's own message: retrying with the same
  key cannot succeed.
* No answer within ``timeout`` seconds raises :class:`EngineTimeoutError` (not retried).

The API key never appears in a log line or an error text (:func:`~neonrain.agents.secrets.redact`),
and a server that needs no key gets a placeholder, never the process's ``OPENAI_API_KEY``.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC
from typing import TYPE_CHECKING, Any, Final

import openai
from openai.types.chat import (
    ChatCompletionAssistantMessageParam,
    ChatCompletionFunctionToolParam,
    ChatCompletionMessageParam,
)

from neonrain.agents.secrets import redact
from neonrain.huma.client import Backoff

if TYPE_CHECKING:
    import httpx2

logger = logging.getLogger(__name__)

#: What the SDK sends as the key to a server that needs none (Ollama, vLLM, llama.cpp …).
NO_API_KEY: Final = "no-api-key"
DEFAULT_TIMEOUT: Final = 60.0
DEFAULT_RETRIES: Final = 2
MAX_RETRY_AFTER: Final = 30.0
PROVIDER_MESSAGE_LIMIT: Final = 300

SleepFn = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class OpenAIEndpoint:
    """Where the model lives: ``base_url`` ends in ``/v1`` for most servers; ``api_key`` is
    ``None`` for local servers. The key is left out of ``repr``."""

    base_url: str
    model: str
    api_key: str | None = field(default=None, repr=False)


# --------------------------------------------------------------------------------------- errors


class EngineError(Exception):
    """A model call failed. ``code`` says why in one word (for logs and the dashboard):
    ``timeout``, ``unauthorized``, ``rate_limited``, ``server_error``, ``connection``,
    ``refused`` (another 4xx) or ``bad_response``; ``status`` is the HTTP status, if any. The
    message is the provider's own explanation, without the API key. ``retryable`` errors may
    succeed later; ``retry_after`` is how long the server asked to wait, if it did."""

    def __init__(
        self,
        message: str,
        *,
        code: str,
        status: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after


class EngineAuthError(EngineError):
    """The provider refused the credentials (401/403): nothing calls the model again until the
    credentials change."""


class EngineTimeoutError(EngineError):
    """The model did not answer within the timeout."""


class EngineUnavailableError(EngineError):
    """The model could not be reached or kept failing (retries exhausted, another 4xx, a
    response without choices)."""


# -------------------------------------------------------------------------------------- replies


@dataclass(frozen=True)
class ModelToolCall:
    """One function call of the model; ``arguments`` is the JSON string as the model wrote it."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class ModelReply:
    """The model's answer: text (never posted by the engine), tool calls, or both."""

    content: str | None
    tool_calls: tuple[ModelToolCall, ...] = ()
    finish_reason: str | None = None
    model: str = ""

    def assistant_message(self) -> ChatCompletionAssistantMessageParam:
        """The answer as the ``assistant`` message that precedes its tool results."""
        message: ChatCompletionAssistantMessageParam = {
            "role": "assistant",
            "content": self.content,
        }
        if self.tool_calls:
            message["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
                for call in self.tool_calls
            ]
        return message


# ------------------------------------------------------------------------------------- helpers


def retry_after_seconds(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """How long the server asks us to wait: ``retry-after-ms``, or ``Retry-After`` in seconds or
    as an HTTP date; ``None`` when it does not say (or says nonsense)."""
    milliseconds = headers.get("retry-after-ms")
    if milliseconds is not None:
        try:
            value = float(milliseconds) / 1000.0
        except ValueError:
            value = math.nan
        if math.isfinite(value) and value >= 0:
            return value
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        try:
            moment = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        reference = now if now is not None else time.time()
        return max(0.0, moment.timestamp() - reference)
    return value if math.isfinite(value) and value >= 0 else None


def provider_message(exc: openai.APIStatusError, api_key: str | None) -> str:
    """The provider's explanation of an error response, short and without the key."""
    body: Any = exc.body
    message: object = None
    if isinstance(body, Mapping):
        message = body.get("message") or body.get("detail") or body.get("error")
    elif isinstance(body, str):
        message = body
    if not isinstance(message, str) or not message.strip():
        message = f"HTTP {exc.status_code}"
    text = " ".join(redact(message, api_key).split())
    if len(text) > PROVIDER_MESSAGE_LIMIT:
        text = text[: PROVIDER_MESSAGE_LIMIT - 1] + "…"
    return text


def new_http_client() -> httpx2.AsyncClient:
    """An HTTP client to share between many :class:`ModelClient` (one connection pool per
    process); the caller closes it.

    It follows no redirects: an endpoint is checked where it was configured (an account's must be
    a public address), and a redirect could send the request — and the answer, shown to the user
    as the provider's message — somewhere that check never saw. A model server that redirects is
    reported as refusing the call (``HTTP 3xx``)."""
    return openai.DefaultAsyncHttpxClient(follow_redirects=False)


def _forget_environment(sdk: openai.AsyncOpenAI) -> None:
    """Drop what the SDK took from the process environment besides the key it was given.

    ``AsyncOpenAI`` reads ``OPENAI_ORG_ID``, ``OPENAI_PROJECT_ID``, ``OPENAI_ADMIN_KEY`` and the
    headers of ``OPENAI_CUSTOM_HEADERS`` when they are not passed. They belong to whoever runs the
    process, and an endpoint here is often someone else's (an account's own provider): none of
    them may reach it. The SDK has no switch for this, so its attributes are reset (pinned by
    ``tests/openai_engine/test_client.py``)."""
    sdk.organization = None
    sdk.project = None
    sdk.admin_api_key = None
    sdk._custom_headers = {}
    sdk._ambient_authorizations = frozenset()


def _not_a_completion() -> EngineUnavailableError:
    return EngineUnavailableError(
        "the model server's answer is not a chat completion (is the base URL right?)",
        code="bad_response",
    )


def _reply(completion: Any) -> ModelReply:
    choices = getattr(completion, "choices", None) or []
    if not choices:
        raise EngineUnavailableError("the model returned no choices", code="bad_response")
    message = choices[0].message
    calls: list[ModelToolCall] = []
    for call in message.tool_calls or []:
        function = getattr(call, "function", None)
        if getattr(call, "type", None) != "function" or function is None:
            continue  # custom tools are never declared
        calls.append(
            ModelToolCall(
                id=str(call.id), name=str(function.name), arguments=function.arguments or ""
            )
        )
    return ModelReply(
        content=message.content,
        tool_calls=tuple(calls),
        finish_reason=choices[0].finish_reason,
        model=str(getattr(completion, "model", "") or ""),
    )


# --------------------------------------------------------------------------------------- client


class ModelClient:
    """Chat completions against one endpoint. ``http_client`` shares a connection pool (see
    :func:`new_http_client`; it is not closed here); ``sleep`` is what retries wait with (tests
    pass a manual clock's)."""

    def __init__(
        self,
        endpoint: OpenAIEndpoint,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        backoff: Callable[[], Backoff] = lambda: Backoff(initial=1.0, maximum=MAX_RETRY_AFTER),
        max_retry_after: float = MAX_RETRY_AFTER,
        sleep: SleepFn = asyncio.sleep,
        http_client: httpx2.AsyncClient | None = None,
        log_fields: str = "",
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.endpoint = endpoint
        self._timeout = timeout
        self._retries = max(0, retries)
        self._backoff = backoff
        self._max_retry_after = max_retry_after
        self._sleep = sleep
        self._log_fields = log_fields
        self._owns_http = http_client is None
        self._sdk = openai.AsyncOpenAI(
            base_url=endpoint.base_url,
            # Always explicit: with None the SDK would send the process's OPENAI_API_KEY to
            # whatever server this endpoint names.
            api_key=endpoint.api_key or NO_API_KEY,
            timeout=timeout,
            max_retries=0,
            http_client=http_client or new_http_client(),
        )
        _forget_environment(self._sdk)

    async def complete(
        self,
        messages: Sequence[ChatCompletionMessageParam],
        tools: Iterable[ChatCompletionFunctionToolParam] = (),
    ) -> ModelReply:
        """One model answer to ``messages``, retried as the module says."""
        tool_list = list(tools)
        backoff = self._backoff()
        attempt = 0
        while True:
            try:
                return await self._create(messages, tool_list)
            except EngineError as exc:
                if not exc.retryable or attempt >= self._retries:
                    raise
                delay = exc.retry_after if exc.retry_after is not None else backoff.next_delay()
                if delay > self._max_retry_after:
                    raise EngineUnavailableError(
                        f"{exc} (asked to wait {delay:.0f} s)", code=exc.code, status=exc.status
                    ) from exc
                attempt += 1
                logger.info(
                    "model call retried %s status=%s reason=%s attempt=%d wait=%.1fs",
                    self._log_fields,
                    exc.status,
                    exc.code,
                    attempt,
                    delay,
                )
                await self._sleep(delay)

    async def _create(
        self,
        messages: Sequence[ChatCompletionMessageParam],
        tools: list[ChatCompletionFunctionToolParam],
    ) -> ModelReply:
        key = self.endpoint.api_key
        try:
            async with asyncio.timeout(self._timeout):
                if tools:
                    completion = await self._sdk.chat.completions.create(
                        model=self.endpoint.model,
                        messages=messages,
                        tools=tools,
                        tool_choice="auto",
                    )
                else:
                    completion = await self._sdk.chat.completions.create(
                        model=self.endpoint.model, messages=messages
                    )
        except (TimeoutError, openai.APITimeoutError) as exc:
            raise EngineTimeoutError(
                f"the model did not answer within {self._timeout:g} s", code="timeout"
            ) from exc
        except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
            raise EngineAuthError(
                provider_message(exc, key), code="unauthorized", status=exc.status_code
            ) from exc
        except openai.APIStatusError as exc:
            status = exc.status_code
            retryable = status == 429 or status >= 500
            code = (
                "rate_limited" if status == 429 else "server_error" if status >= 500 else "refused"
            )
            raise EngineUnavailableError(
                provider_message(exc, key),
                code=code,
                status=status,
                retryable=retryable,
                retry_after=retry_after_seconds(exc.response.headers) if retryable else None,
            ) from exc
        except openai.APIConnectionError as exc:
            raise EngineUnavailableError(
                f"cannot reach the model server: {type(exc.__cause__ or exc).__name__}",
                code="connection",
                retryable=True,
            ) from exc
        except (openai.APIError, ValueError) as exc:  # e.g. a body that is not JSON
            raise _not_a_completion() from exc
        try:
            return _reply(completion)
        except EngineError:
            raise
        except (AttributeError, TypeError, ValueError, IndexError, KeyError) as exc:
            raise _not_a_completion() from exc

    async def probe(self) -> tuple[str, float]:
        """One minimal completion (no retries): the model that answered and the latency in ms.
        Raises :class:`EngineError` like :meth:`complete`."""
        started = time.perf_counter()
        reply = await self._create(
            [{"role": "user", "content": "Reply with the single word OK."}], []
        )
        return reply.model or self.endpoint.model, (time.perf_counter() - started) * 1000.0

    async def aclose(self) -> None:
        """Close the SDK client's HTTP client, unless it is shared."""
        if self._owns_http:
            await self._sdk.close()


__all__ = [
    "NO_API_KEY",
    "EngineAuthError",
    "EngineError",
    "EngineTimeoutError",
    "EngineUnavailableError",
    "ModelClient",
    "ModelReply",
    "ModelToolCall",
    "OpenAIEndpoint",
    "new_http_client",
    "provider_message",
    "retry_after_seconds",
]
