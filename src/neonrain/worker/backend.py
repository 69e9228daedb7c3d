"""The worker's client for the web app's internal API (``X-API-Key``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import httpx

log = logging.getLogger(__name__)


class BackendError(Exception):
    """The web app could not be reached or answered with an error."""


@dataclass(frozen=True)
class TokensAnswer:
    not_modified: bool
    etag: str | None
    body: dict[str, Any] | None


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
    ) -> TokensAnswer:
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
            raise BackendError(f"cannot reach the web app: {exc.__class__.__name__}") from exc
        if response.status_code == 304:
            return TokensAnswer(True, response.headers.get("ETag", etag), None)
        if response.status_code != 200:
            raise BackendError(f"tokens request answered {response.status_code}")
        try:
            body = response.json()
        except ValueError as exc:
            raise BackendError("tokens answer is not JSON") from exc
        return TokensAnswer(False, response.headers.get("ETag"), body)

    async def post(self, path: str, payload: dict[str, Any]) -> None:
        try:
            response = await self._http.post(path, json=payload)
        except httpx.HTTPError as exc:
            raise BackendError(f"cannot reach the web app: {exc.__class__.__name__}") from exc
        if response.status_code >= 300:
            raise BackendError(f"{path} answered {response.status_code}: {response.text[:200]}")

    async def post_stats(self, events: list[dict[str, Any]]) -> None:
        await self.post("/api/discord/stats", {"events": events})

    async def post_agent_action(self, action: dict[str, Any]) -> None:
        await self.post("/api/discord/agent-actions", action)

    async def post_worker_status(self, tokens: list[dict[str, Any]]) -> None:
        await self.post("/api/discord/worker-status", {"tokens": tokens})
