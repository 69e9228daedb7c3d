"""The worker's client for the web app's internal API (``X-API-Key``), speaking the contract."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from neonrain.contract import (
    AgentActionBody,
    ChannelCursor,
    ContractError,
    CursorsBody,
    StatEvent,
    StatsBody,
    TokensAnswer,
    WorkerStatusBody,
    WorkerTokenState,
)

log = logging.getLogger(__name__)


class BackendError(Exception):
    """The web app could not be reached or answered with an error. ``status`` is the HTTP
    status when there was an answer."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status

    @property
    def permanent(self) -> bool:
        """The web app refused this body for good: sending it again cannot help (a 4xx other
        than 408 Request Timeout and 429 Too Many Requests)."""
        return (
            self.status is not None and 400 <= self.status < 500 and self.status not in (408, 429)
        )


def _unreachable(exc: httpx.HTTPError) -> BackendError:
    return BackendError(f"cannot reach the web app: {exc.__class__.__name__}")


@dataclass(frozen=True)
class TokensRead:
    """A read of the tokens answer: unchanged (304), or the parsed answer with its ETag."""

    not_modified: bool
    etag: str | None
    answer: TokensAnswer | None


class BackendClient:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._timeout = timeout
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers={"X-API-Key": api_key, "User-Agent": "neonrain-worker"},
            timeout=timeout,
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def fetch_tokens(
        self,
        *,
        etag: str | None,
        since: int | None,
        wait: float,
        shard: tuple[int, int] | None,
    ) -> TokensRead:
        """The configuration, or :class:`BackendError` (a malformed answer included: the web
        app and the worker disagree about the contract, which an operator must see)."""
        params: dict[str, Any] = {}
        if wait:
            params["wait"] = wait
        if since is not None:
            params["since"] = since
        if shard is not None:
            params["shard"], params["shards"] = shard
        headers = {"If-None-Match": etag} if etag else {}
        try:
            response = await self._http.get(
                "/api/discord/tokens",
                params=params,
                headers=headers,
                timeout=self._timeout + wait,
            )
        except httpx.HTTPError as exc:
            raise _unreachable(exc) from exc
        if response.status_code == 304:
            return TokensRead(True, response.headers.get("ETag", etag), None)
        if response.status_code != 200:
            raise BackendError(
                f"tokens request answered {response.status_code}", status=response.status_code
            )
        try:
            answer = TokensAnswer.parse(response.content)
        except ContractError as exc:
            log.error("%s; keeping the last configuration", exc)
            raise BackendError(str(exc)) from None
        return TokensRead(False, response.headers.get("ETag"), answer)

    async def post(self, path: str, payload: dict[str, Any]) -> None:
        try:
            response = await self._http.post(path, json=payload)
        except httpx.HTTPError as exc:
            raise _unreachable(exc) from exc
        if response.status_code >= 300:
            raise BackendError(
                f"{path} answered {response.status_code}: {response.text[:200]}",
                status=response.status_code,
            )

    async def post_stats(self, events: Sequence[StatEvent]) -> None:
        await self.post("/api/discord/stats", StatsBody(events=tuple(events)).wire())

    async def post_agent_action(self, action: AgentActionBody) -> None:
        await self.post("/api/discord/agent-actions", action.wire())

    async def post_cursors(self, cursors: Sequence[ChannelCursor]) -> None:
        await self.post("/api/discord/cursors", CursorsBody(cursors=tuple(cursors)).wire())

    async def fetch_cursors(self, user_ids: Sequence[str]) -> list[ChannelCursor]:
        """The newest message seen per watched channel of these accounts (for catching up)."""
        try:
            response = await self._http.get(
                "/api/discord/cursors", params=[("userId", u) for u in user_ids]
            )
        except httpx.HTTPError as exc:
            raise _unreachable(exc) from exc
        if response.status_code != 200:
            raise BackendError(
                f"cursors request answered {response.status_code}", status=response.status_code
            )
        try:
            return list(CursorsBody.model_validate_json(response.content).cursors)
        except ValueError as exc:
            raise BackendError("cursors answer does not match the contract") from exc

    async def post_worker_status(self, tokens: Sequence[WorkerTokenState]) -> None:
        await self.post("/api/discord/worker-status", WorkerStatusBody(tokens=tuple(tokens)).wire())
