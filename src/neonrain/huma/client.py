"""HUMA transport: the REST agent API and one self-healing Socket.IO connection per agent.

This module knows the wire format (``huma-protocol.md``) and nothing about Discord or chat:

* :class:`HumaRestClient` creates, reads, updates and deletes agents over REST.
* :class:`HumaSocket` is one Socket.IO v4 connection to one agent, without any retry logic.
* :class:`AgentConnection` keeps one agent connected: it creates the agent when it has no id,
  reconnects to the *same* id with exponential backoff and jitter, recreates the agent only when
  HUMA says it is gone (``AGENT_NOT_FOUND``/``AGENT_EXPIRED``) and stops for good on a wrong key.

The API key travels in the Socket.IO query string, so neither the URL nor any exception text that
could contain it is ever logged: every message that may echo it goes through :func:`_redact`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol
from urllib.parse import quote, urlsplit

import httpx
import socketio

from neonrain.agents.secrets import redact

logger = logging.getLogger(__name__)

HUMA_EVENT_TYPE: Final = "huma-0.1-event"
DEFAULT_AGENT_TYPE: Final = "HUMA-0.1"

#: Connection refusal codes HUMA documents.
CODE_MISSING_AGENT_ID: Final = "MISSING_AGENT_ID"
CODE_UNAUTHORIZED: Final = "UNAUTHORIZED"
CODE_AGENT_NOT_FOUND: Final = "AGENT_NOT_FOUND"
CODE_AGENT_EXPIRED: Final = "AGENT_EXPIRED"
KNOWN_CODES: Final = (
    CODE_MISSING_AGENT_ID,
    CODE_UNAUTHORIZED,
    CODE_AGENT_NOT_FOUND,
    CODE_AGENT_EXPIRED,
)
AGENT_GONE_CODES: Final = frozenset({CODE_AGENT_NOT_FOUND, CODE_AGENT_EXPIRED})

JSONDict = dict[str, Any]
#: REST requests one client sends at once (agent creations after a restart come in bursts).
MAX_CONCURRENT_REQUESTS: Final = 16
SleepFn = Callable[[float], Awaitable[None]]
_redact = redact  # the name this module has always used


# --------------------------------------------------------------------------------------- errors


class HumaError(Exception):
    """Base class of every error this package raises."""


class HumaAPIError(HumaError):
    """A REST call failed: ``status`` is the HTTP status (``None`` for a timeout or network error)
    and ``body`` the response text, so callers can show HUMA's own explanation."""

    def __init__(self, message: str, *, status: int | None = None, body: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.body = body

    @property
    def retryable(self) -> bool:
        """Whether trying again later may succeed (network trouble, 429 or 5xx)."""
        return self.status is None or self.status == 429 or self.status >= 500


class HumaTimeoutError(HumaAPIError):
    """A REST call did not complete within the client's timeout."""


class HumaAuthError(HumaAPIError):
    """HUMA rejected the API key (REST 401/403 or Socket.IO ``UNAUTHORIZED``).

    Terminal: retrying with the same key cannot succeed, so nothing retries it.
    """

    def __init__(
        self,
        message: str = "HUMA rejected the API key",
        *,
        status: int | None = None,
        body: str = "",
    ) -> None:
        super().__init__(message, status=status, body=body)

    @property
    def retryable(self) -> bool:
        return False


class HumaConnectionError(HumaError):
    """The Socket.IO connection could not be opened. ``code`` is HUMA's refusal code, if any."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class HumaAgentGoneError(HumaConnectionError):
    """HUMA says the agent no longer exists (``AGENT_NOT_FOUND``/``AGENT_EXPIRED``)."""


class HumaNotConnectedError(HumaError):
    """An emit was attempted while the agent is not connected."""


# ------------------------------------------------------------------------------------ helpers


def _find_code(data: object) -> str | None:
    """HUMA's refusal code, wherever the server put it (``data.code``, ``code``, the message)."""
    if isinstance(data, Mapping):
        code = data.get("code")
        if isinstance(code, str) and code:
            return code
        for key in ("data", "error", "message"):
            if key in data:
                found = _find_code(data[key])
                if found:
                    return found
        return None
    if isinstance(data, list | tuple):
        for item in data:
            found = _find_code(item)
            if found:
                return found
        return None
    if isinstance(data, str):
        for code in KNOWN_CODES:
            if code in data:
                return code
    return None


def _refusal_message(data: object) -> str:
    if isinstance(data, Mapping):
        message = data.get("message")
        if isinstance(message, str):
            return message
    if isinstance(data, list | tuple) and data:
        return _refusal_message(data[0])
    return str(data) if data is not None else "connection refused"


@dataclass
class Backoff:
    """Exponential backoff: ``initial`` seconds doubling up to ``maximum``, with jitter.

    Each delay is the exponential step scaled by a random factor in ``[1 - jitter, 1]``, so many
    agents that lost HUMA at the same moment do not come back in lockstep, and no delay ever
    exceeds ``maximum``.
    """

    initial: float = 1.0
    # Short enough that agents answer again within seconds of HUMA coming back after an outage
    # (a 60 s cap kept them silent for a minute more); the jitter still spreads the attempts.
    maximum: float = 8.0
    factor: float = 2.0
    jitter: float = 0.2
    rng: Callable[[], float] = field(default=random.random)
    attempt: int = 0

    def next_delay(self) -> float:
        base = min(self.maximum, self.initial * self.factor**self.attempt)
        self.attempt += 1
        return base * (1.0 - self.jitter * self.rng())

    def reset(self) -> None:
        self.attempt = 0


# --------------------------------------------------------------------------------------- REST


@dataclass(frozen=True)
class AgentInfo:
    """A HUMA agent as the REST API describes it; only ``id`` is needed to connect."""

    id: str
    name: str = ""
    agent_type: str = ""
    metadata: JSONDict = field(default_factory=dict)
    state: Any = None
    created_at: str | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AgentInfo:
        agent_id = data.get("id")
        if not isinstance(agent_id, str | int) or agent_id == "":
            raise HumaAPIError("HUMA answered without an agent id", body=json.dumps(data)[:2000])
        metadata = data.get("metadata")
        return cls(
            id=str(agent_id),
            name=str(data.get("name") or ""),
            agent_type=str(data.get("agentType") or ""),
            metadata=dict(metadata) if isinstance(metadata, Mapping) else {},
            state=data.get("state"),
            created_at=str(data["createdAt"]) if data.get("createdAt") is not None else None,
        )


class HumaRestClient:
    """The REST half of HUMA: ``/api/agents``, authenticated with ``X-API-Key``.

    At most ``max_concurrency`` requests are in flight; the others wait their turn here, outside
    the HTTP pool, and their ``timeout`` only starts once they are sent. (httpx's pool rescans
    every queued request whenever one finishes: with a thousand agents created at once, after a
    worker restart, that alone kept the CPU busy past the timeout.)
    ``transport`` lets tests plug an ``httpx.MockTransport``; normally it is left out.
    """

    def __init__(
        self,
        api_url: str,
        api_key: str,
        *,
        timeout: float = 15.0,
        max_concurrency: int = MAX_CONCURRENT_REQUESTS,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self._api_key = api_key
        self._slots = asyncio.Semaphore(max_concurrency)
        self._http = httpx.AsyncClient(
            base_url=self.api_url,
            headers={"X-API-Key": api_key, "Accept": "application/json"},
            timeout=timeout,
            limits=httpx.Limits(
                max_connections=max_concurrency, max_keepalive_connections=max_concurrency
            ),
            transport=transport,
        )

    async def __aenter__(self) -> HumaRestClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _request(
        self, method: str, path: str, *, json_body: JSONDict | None = None
    ) -> httpx.Response:
        try:
            async with self._slots:
                response = await self._http.request(method, path, json=json_body)
        except httpx.TimeoutException as exc:
            raise HumaTimeoutError(f"HUMA {method} {path} timed out") from exc
        except httpx.HTTPError as exc:
            detail = _redact(str(exc) or type(exc).__name__, self._api_key)
            raise HumaAPIError(f"HUMA {method} {path} failed: {detail}") from exc
        return response

    def _error(self, method: str, path: str, response: httpx.Response) -> HumaAPIError:
        body = _redact(response.text[:2000], self._api_key)
        message = f"HUMA {method} {path} answered {response.status_code}: {body[:300]}"
        if response.status_code in (401, 403):
            return HumaAuthError(message, status=response.status_code, body=body)
        return HumaAPIError(message, status=response.status_code, body=body)

    @staticmethod
    def _json(method: str, path: str, response: httpx.Response) -> JSONDict:
        try:
            data = response.json()
        except ValueError as exc:
            raise HumaAPIError(
                f"HUMA {method} {path} answered invalid JSON",
                status=response.status_code,
                body=response.text[:2000],
            ) from exc
        if not isinstance(data, dict):
            raise HumaAPIError(
                f"HUMA {method} {path} answered a non-object",
                status=response.status_code,
                body=response.text[:2000],
            )
        return data

    async def create_agent(
        self,
        name: str,
        metadata: Mapping[str, Any],
        *,
        agent_type: str = DEFAULT_AGENT_TYPE,
        ttl_seconds: int | None = None,
    ) -> AgentInfo:
        """``POST /api/agents``; 200 and 201 are success."""
        body: JSONDict = {"name": name, "agentType": agent_type, "metadata": dict(metadata)}
        if ttl_seconds is not None:
            body["ttlSeconds"] = ttl_seconds
        response = await self._request("POST", "/api/agents", json_body=body)
        if response.status_code not in (200, 201):
            raise self._error("POST", "/api/agents", response)
        info = AgentInfo.from_json(self._json("POST", "/api/agents", response))
        logger.info("huma agent created agent_id=%s name=%r", info.id, name)
        return info

    async def get_agent(self, agent_id: str) -> AgentInfo | None:
        """``GET /api/agents/{id}``; ``None`` when HUMA does not know the agent (404)."""
        path = f"/api/agents/{quote(agent_id, safe='')}"
        response = await self._request("GET", path)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self._error("GET", path, response)
        return AgentInfo.from_json(self._json("GET", path, response))

    async def update_agent(self, agent_id: str, changes: Mapping[str, Any]) -> AgentInfo:
        """``PUT /api/agents/{id}`` with the fields to change (e.g. ``metadata``)."""
        path = f"/api/agents/{quote(agent_id, safe='')}"
        response = await self._request("PUT", path, json_body=dict(changes))
        if response.status_code not in (200, 201):
            raise self._error("PUT", path, response)
        return AgentInfo.from_json(self._json("PUT", path, response))

    async def delete_agent(self, agent_id: str) -> bool:
        """``DELETE /api/agents/{id}``; ``False`` when it was already gone (404 is fine)."""
        path = f"/api/agents/{quote(agent_id, safe='')}"
        response = await self._request("DELETE", path)
        if response.status_code == 404:
            return False
        if response.status_code not in (200, 202, 204):
            raise self._error("DELETE", path, response)
        logger.info("huma agent deleted agent_id=%s", agent_id)
        return True


# ---------------------------------------------------------------------------------- Socket.IO


def message_payload(content: Mapping[str, Any]) -> JSONDict:
    """The data of a client → HUMA ``message`` event."""
    return {"type": HUMA_EVENT_TYPE, "content": dict(content)}


class HumaSocket:
    """One Socket.IO v4 connection (WebSocket transport only) to one agent; no retries.

    ``on_event`` receives the data of every HUMA ``event`` event; ``on_disconnect`` is called once
    when a connection that was open ends for any reason other than :meth:`close`.
    """

    def __init__(
        self,
        api_url: str,
        api_key: str,
        agent_id: str,
        *,
        on_event: Callable[[JSONDict], Awaitable[None]],
        on_disconnect: Callable[[str], Awaitable[None]],
        connect_timeout: float = 15.0,
    ) -> None:
        self.agent_id = agent_id
        self._api_url = api_url.rstrip("/")
        self._api_key = api_key
        self._on_event = on_event
        self._on_disconnect = on_disconnect
        self._connect_timeout = connect_timeout
        self._refusal: object = None
        self._closing = False
        self._opened = False
        self._lost_early = False
        self._sio = socketio.AsyncClient(
            reconnection=False,  # AgentConnection owns retries, backoff and agent recreation
            logger=False,
            engineio_logger=False,
            request_timeout=connect_timeout,
            # engineio would install its own SIGINT handler, which cancels every task on Ctrl-C
            # and breaks the graceful shutdown of the process that hosts the agents.
            handle_sigint=False,
        )
        self._sio.on("connect_error", self._handle_connect_error)
        self._sio.on("event", self._handle_event)
        self._sio.on("disconnect", self._handle_disconnect)

    @property
    def connected(self) -> bool:
        return bool(self._sio.connected) and not self._closing

    async def _handle_connect_error(self, data: object = None) -> None:
        self._refusal = data

    async def _handle_event(self, data: object = None) -> None:
        if isinstance(data, dict):
            await self._on_event(data)
        else:
            logger.warning("huma event ignored: not an object agent_id=%s", self.agent_id)

    async def _handle_disconnect(self, reason: object = None) -> None:
        if self._closing:
            return
        if not self._opened:
            self._lost_early = True  # dropped before connect() returned: connect() reports it
            return
        self._opened = False
        await self._on_disconnect(str(reason or "disconnected"))

    def _url(self) -> tuple[str, str]:
        """(URL with the credentials in the query, socketio_path). Never log the URL."""
        parts = urlsplit(self._api_url)
        query = f"agentId={quote(self.agent_id, safe='')}&apiKey={quote(self._api_key, safe='')}"
        base = f"{parts.scheme}://{parts.netloc}"
        path = f"{parts.path.strip('/')}/socket.io".lstrip("/")
        return f"{base}?{query}", path

    async def connect(self) -> None:
        """Open the connection; raise :class:`HumaAuthError`, :class:`HumaAgentGoneError` or
        :class:`HumaConnectionError` (with HUMA's code when it gave one) on failure."""
        url, path = self._url()
        self._refusal = None
        try:
            await asyncio.wait_for(
                self._sio.connect(
                    url,
                    transports=["websocket"],
                    socketio_path=path,
                    wait_timeout=self._connect_timeout,
                ),
                timeout=self._connect_timeout + 1.0,
            )
        except (socketio.exceptions.ConnectionError, OSError, TimeoutError) as exc:
            await self._abort()
            raise self._classify(exc) from None
        if self._lost_early or not self._sio.connected:
            await self._abort()
            raise HumaConnectionError(f"connection to HUMA lost at once for agent {self.agent_id}")
        self._opened = True

    def _classify(self, exc: BaseException) -> HumaError:
        if self._refusal is not None:
            code = _find_code(self._refusal)
            message = _redact(_refusal_message(self._refusal), self._api_key)
        else:
            code = None
            message = _redact(str(exc) or type(exc).__name__, self._api_key)
        text = f"HUMA refused the connection for agent {self.agent_id}: {message}"
        if code == CODE_UNAUTHORIZED:
            return HumaAuthError(text)
        if code in AGENT_GONE_CODES:
            return HumaAgentGoneError(text, code=code)
        if self._refusal is None:
            text = f"could not connect to HUMA for agent {self.agent_id}: {message}"
        return HumaConnectionError(text, code=code)

    async def _abort(self) -> None:
        self._closing = True
        with contextlib.suppress(Exception):
            await self._sio.disconnect()

    async def emit(self, content: Mapping[str, Any]) -> None:
        """Emit ``content`` wrapped as a ``huma-0.1-event`` ``message``."""
        if not self.connected:
            raise HumaNotConnectedError(f"agent {self.agent_id} is not connected")
        try:
            await self._sio.emit("message", message_payload(content))
        except socketio.exceptions.SocketIOError as exc:
            raise HumaNotConnectedError(f"emit failed for agent {self.agent_id}") from exc

    async def close(self) -> None:
        """Disconnect without triggering ``on_disconnect``."""
        self._closing = True
        self._opened = False
        with contextlib.suppress(Exception):
            await self._sio.disconnect()


# --------------------------------------------------------------------------- AgentConnection

ConnectionState = Literal["idle", "connecting", "connected", "reconnecting", "failed", "closed"]


class ConnectionListener(Protocol):
    """What an :class:`AgentConnection` tells its owner (the runtime's ``AgentSession``)."""

    async def on_huma_event(self, data: JSONDict) -> None: ...

    async def on_connected(self, agent_id: str) -> None: ...

    async def on_disconnected(self, reason: str) -> None: ...

    async def on_agent_created(self, agent_id: str, previous_id: str | None) -> None: ...

    async def on_failed(self, error: HumaError) -> None: ...


SocketFactory = Callable[..., HumaSocket]


class AgentConnection:
    """Keeps one HUMA agent connected.

    * No agent id yet → create the agent over REST (``name`` + ``metadata``).
    * Connection dropped → reconnect to the same id after 1 s, 2 s, 4 s, then every 8 s (with
      jitter), so an agent is back within seconds of HUMA.
    * HUMA says ``AGENT_NOT_FOUND``/``AGENT_EXPIRED`` (refusal or ``error`` event) → create a new
      agent and connect to it; the listener learns the new id through ``on_agent_created``.
    * ``UNAUTHORIZED`` or a REST 401/403 → state ``failed``, :attr:`error` set, no more retries.
    """

    def __init__(
        self,
        rest: HumaRestClient,
        *,
        api_url: str,
        api_key: str,
        name: str,
        metadata: Mapping[str, Any],
        listener: ConnectionListener,
        agent_id: str | None = None,
        agent_type: str = DEFAULT_AGENT_TYPE,
        ttl_seconds: int | None = None,
        backoff: Backoff | None = None,
        sleep: SleepFn = asyncio.sleep,
        connect_timeout: float = 15.0,
        socket_factory: SocketFactory = HumaSocket,
    ) -> None:
        self.rest = rest
        self.name = name
        self.metadata: JSONDict = dict(metadata)
        self._api_url = api_url
        self._api_key = api_key
        self._listener = listener
        self._agent_id = agent_id
        self._agent_type = agent_type
        self._ttl_seconds = ttl_seconds
        self.backoff = backoff or Backoff()
        self._sleep = sleep
        self._connect_timeout = connect_timeout
        self._socket_factory = socket_factory
        self._socket: HumaSocket | None = None
        self._previous_agent_id: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._connected_event = asyncio.Event()
        self.state: ConnectionState = "idle"
        self.error: HumaError | None = None
        #: How many Socket.IO connection attempts were made (for logs, tests and status pages).
        self.connect_attempts = 0

    @property
    def agent_id(self) -> str | None:
        return self._agent_id

    @property
    def connected(self) -> bool:
        return self.state == "connected" and self._socket is not None and self._socket.connected

    async def start(self) -> None:
        """Create the agent if needed and connect.

        Raises :class:`HumaAuthError` for a wrong key and :class:`HumaAPIError` for a REST error
        that retrying cannot fix (a 4xx). Any other failure (HUMA down, 5xx, timeouts) leaves the
        connection retrying in the background with state ``reconnecting``.
        """
        if self.state not in ("idle", "failed"):
            return
        self.error = None
        self.state = "connecting"
        try:
            await self._attempt()
        except HumaAgentGoneError:
            self._forget_agent()
            self._spawn_loop(immediate=True)
        except HumaError as exc:
            if self._is_terminal(exc):
                await self._fail(exc)
                raise
            logger.warning(
                "huma connect failed, retrying in background agent_id=%s error=%s",
                self._agent_id,
                exc,
            )
            self._spawn_loop(immediate=False)
        except Exception as exc:
            detail = _redact(f"{type(exc).__name__}: {exc}", self._api_key)
            logger.error("huma connect error agent_id=%s error=%s", self._agent_id, detail)
            self._spawn_loop(immediate=False)

    async def wait_connected(self) -> bool:
        """Wait until connected (bound it with ``asyncio.timeout``); ``False`` when the connection
        failed for good or was closed."""
        while not self.connected:
            if self.state in ("failed", "closed"):
                return False
            self._connected_event.clear()
            await self._connected_event.wait()
        return True

    async def emit(self, content: Mapping[str, Any]) -> None:
        """Send one ``message`` event; :class:`HumaNotConnectedError` when not connected."""
        socket = self._socket
        if socket is None or self.state != "connected":
            raise HumaNotConnectedError(f"agent {self._agent_id} is not connected")
        await socket.emit(content)

    async def close(self, *, delete_agent: bool = False) -> None:
        """Stop retrying, disconnect and optionally delete the remote agent (404 is fine)."""
        self.state = "closed"
        self._connected_event.set()
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        self._task = None
        for task in list(self._background):
            task.cancel()
        socket, self._socket = self._socket, None
        if socket is not None:
            await socket.close()
        if delete_agent and self._agent_id is not None:
            try:
                await self.rest.delete_agent(self._agent_id)
            except HumaError as exc:
                logger.warning("huma agent delete failed agent_id=%s error=%s", self._agent_id, exc)
        logger.info("huma connection closed agent_id=%s", self._agent_id)

    # -- internals

    @staticmethod
    def _is_terminal(exc: HumaError) -> bool:
        if isinstance(exc, HumaAuthError):
            return True
        if isinstance(exc, HumaAPIError):
            return not exc.retryable
        return isinstance(exc, HumaConnectionError) and exc.code == CODE_MISSING_AGENT_ID

    def _forget_agent(self) -> None:
        logger.warning("huma agent gone, will create a new one agent_id=%s", self._agent_id)
        if self._agent_id is not None:
            self._previous_agent_id = self._agent_id
        self._agent_id = None

    async def _fail(self, exc: HumaError) -> None:
        self.state = "failed"
        self.error = exc
        self._connected_event.set()
        logger.error("huma connection failed for good agent_id=%s error=%s", self._agent_id, exc)
        await self._listener.on_failed(exc)

    async def _attempt(self) -> None:
        """One try: create the agent if there is none, then open the socket."""
        if self._agent_id is None:
            previous = self._previous_agent_id
            info = await self.rest.create_agent(
                self.name,
                self.metadata,
                agent_type=self._agent_type,
                ttl_seconds=self._ttl_seconds,
            )
            self._agent_id = info.id
            await self._listener.on_agent_created(info.id, previous)
        agent_id = self._agent_id
        socket = self._socket_factory(
            self._api_url,
            self._api_key,
            agent_id,
            on_event=self._handle_event,
            on_disconnect=self._handle_disconnect,
            connect_timeout=self._connect_timeout,
        )
        self.connect_attempts += 1
        await socket.connect()
        if self.state == "closed":
            await socket.close()
            return
        self._socket = socket
        self.state = "connected"
        self.backoff.reset()
        self._connected_event.set()
        logger.info("huma connected agent_id=%s", agent_id)
        await self._listener.on_connected(agent_id)

    def _spawn_loop(self, *, immediate: bool) -> None:
        if self.state == "closed":
            return
        self.state = "reconnecting"
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(
                self._reconnect_loop(immediate=immediate), name=f"huma-reconnect-{self._agent_id}"
            )

    async def _reconnect_loop(self, *, immediate: bool) -> None:
        skip_delay = immediate
        gone_before = False
        while self.state == "reconnecting":
            if not skip_delay:
                delay = self.backoff.next_delay()
                logger.debug(
                    "huma reconnect scheduled agent_id=%s delay=%.2fs attempt=%d",
                    self._agent_id,
                    delay,
                    self.backoff.attempt,
                )
                await self._sleep(delay)
                if self.state != "reconnecting":
                    return
            skip_delay = False
            try:
                await self._attempt()
                return
            except HumaAgentGoneError:
                self._forget_agent()
                # Recreate right away (HUMA back after a restart that lost its agents); an agent
                # that is gone again at once is paced by the backoff.
                skip_delay = not gone_before
                gone_before = True
                continue
            except HumaError as exc:
                if self._is_terminal(exc):
                    await self._fail(exc)
                    return
                attempt = self.backoff.attempt
                if attempt <= 3 or attempt % 10 == 0:  # an outage must not flood the log
                    logger.warning(
                        "huma reconnect failed agent_id=%s attempt=%d error=%s",
                        self._agent_id,
                        attempt,
                        exc,
                    )
            except Exception as exc:  # never let the loop die silently; keep retrying
                detail = _redact(f"{type(exc).__name__}: {exc}", self._api_key)
                logger.error("huma reconnect error agent_id=%s error=%s", self._agent_id, detail)

    async def _handle_event(self, data: JSONDict) -> None:
        if data.get("type") == "error" and self.state == "connected":
            code = data.get("code")
            if code in AGENT_GONE_CODES or code == CODE_UNAUTHORIZED:
                await self._listener.on_huma_event(data)
                reason: HumaError = (
                    HumaAuthError(f"HUMA: {data.get('message')}")
                    if code == CODE_UNAUTHORIZED
                    else HumaAgentGoneError(f"HUMA: {data.get('message')}", code=str(code))
                )
                # Not awaited here: this runs inside the socket's own handler, which must not
                # wait for that socket to close.
                task = asyncio.create_task(self._drop(reason))
                self._background.add(task)
                task.add_done_callback(self._background.discard)
                return
        await self._listener.on_huma_event(data)

    async def _drop(self, reason: HumaError) -> None:
        """HUMA told us, over an open connection, that the agent or the key is no longer valid."""
        if self.state != "connected":
            return
        self.state = "reconnecting"
        self._connected_event.clear()
        socket, self._socket = self._socket, None
        if socket is not None:
            await socket.close()
        await self._listener.on_disconnected(str(reason))
        if isinstance(reason, HumaAuthError):
            await self._fail(reason)
            return
        self._forget_agent()
        self.state = "reconnecting"
        self._spawn_loop(immediate=True)

    async def _handle_disconnect(self, reason: str) -> None:
        if self.state != "connected":
            return
        logger.warning("huma connection lost agent_id=%s reason=%s", self._agent_id, reason)
        self._socket = None
        self.state = "reconnecting"
        self._connected_event.clear()
        await self._listener.on_disconnected(reason)
        self._spawn_loop(immediate=False)
