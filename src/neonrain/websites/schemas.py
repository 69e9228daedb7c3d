"""Request and response bodies of ``/api/servers/:serverId/websites``."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from neonrain.api_types import ApiModel, RequestBody, Storable
from neonrain.websites.urls import MAX_URL_LENGTH

ScrapeOutcome = Literal["pending", "success", "error"]
ScrapeState = Literal["idle", "queued", "running"]


class AddWebsiteBody(RequestBody):
    # Checked and normalised by neonrain.websites.urls (400 INVALID_URL), not by the schema, so
    # that a bad address gets its own code and a readable reason.
    url: Annotated[
        str, Field(description=f"http(s) address, at most {MAX_URL_LENGTH} characters"), Storable
    ]
    name: Annotated[str, Field(max_length=100), Storable] | None = None


class WebsiteOut(ApiModel):
    id: str
    url: str
    name: str | None
    last_scraped_at: str | None
    last_scrape_status: ScrapeOutcome
    last_scrape_error: str | None
    scrape_status: ScrapeState
    content_size: int
    truncated: bool
    created_at: str


class WebsiteList(ApiModel):
    websites: list[WebsiteOut]
