"""Websites of a server configuration: listing, adding, queueing a scrape, removing.

Callers pass the configuration (already looked up for the signed-in user by
``neonrain.servers.service``), so every query here is scoped to it. Fetching and Markdown extraction
live in ``fetch.py``/``extract.py``/``scraper.py``; here a requested scrape is only *queued*.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, delete, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from neonrain.api_types import now_ms, plausible_id
from neonrain.db.base import iso, utcnow
from neonrain.db.changes import mark_config_changed
from neonrain.errors import ApiError
from neonrain.servers.models import CONFIGURATION_ORDER, UserServerConfig
from neonrain.websites.fetch import AddressPolicy, Resolver, url_refusal
from neonrain.websites.models import ServerWebsite, WebsiteScrape
from neonrain.websites.schemas import WebsiteOut
from neonrain.websites.urls import InvalidUrl, normalize_url

MAX_WEBSITES_PER_SERVER = 20
MANUAL_SCRAPE_INTERVAL = timedelta(seconds=60)


def scrape_succeeded() -> ColumnElement[bool]:
    """The one definition of a successful scrape: it finished without an error message."""
    return WebsiteScrape.error_message.is_(None)


class WebsiteNotFound(ApiError):
    def __init__(self) -> None:
        super().__init__(404, "WEBSITE_NOT_FOUND", "That website was not found on this server.")


@dataclass(frozen=True, slots=True)
class ScrapeSummary:
    """What the API shows about a website's scrapes."""

    last_scraped_at: datetime | None = None
    last_status: str = "pending"
    last_error: str | None = None
    content_size: int = 0
    truncated: bool = False


async def scrape_summaries(
    session: AsyncSession, websites: ColumnElement[bool]
) -> dict[str, ScrapeSummary]:
    """For every website matching ``websites``: its newest finished scrape (``lastScrape*``) and
    the size of its newest successful content, in one query (window functions, no N+1)."""
    ok = scrape_succeeded()
    order = (WebsiteScrape.scraped_at.desc(), WebsiteScrape.id.desc())
    ranked = (
        select(
            WebsiteScrape.website_id,
            WebsiteScrape.scraped_at,
            WebsiteScrape.error_message,
            WebsiteScrape.content_length,
            WebsiteScrape.truncated,
            func.row_number()
            .over(partition_by=WebsiteScrape.website_id, order_by=order)
            .label("newest"),
            func.row_number()
            .over(partition_by=(WebsiteScrape.website_id, ok), order_by=order)
            .label("newest_of_kind"),
        )
        .join(ServerWebsite, ServerWebsite.id == WebsiteScrape.website_id)
        .where(websites)
        .subquery()
    )
    rows = await session.execute(
        select(ranked).where(
            or_(
                ranked.c.newest == 1,
                and_(ranked.c.newest_of_kind == 1, ranked.c.error_message.is_(None)),
            )
        )
    )
    newest: dict[str, tuple[datetime, str | None]] = {}
    content: dict[str, tuple[int, bool]] = {}
    for row in rows:
        if row.newest == 1:
            newest[row.website_id] = (row.scraped_at, row.error_message)
        if row.error_message is None:
            content[row.website_id] = (int(row.content_length or 0), bool(row.truncated))
    summaries: dict[str, ScrapeSummary] = {}
    for website_id, (scraped_at, error) in newest.items():
        size, truncated = content.get(website_id, (0, False))
        summaries[website_id] = ScrapeSummary(
            last_scraped_at=scraped_at,
            last_status="success" if error is None else "error",
            last_error=error,
            content_size=size,
            truncated=truncated,
        )
    return summaries


def website_out(website: ServerWebsite, summary: ScrapeSummary | None) -> WebsiteOut:
    summary = summary or ScrapeSummary()
    return WebsiteOut(
        id=website.id,
        url=website.url,
        name=website.name,
        last_scraped_at=iso(summary.last_scraped_at),
        last_scrape_status=summary.last_status,
        last_scrape_error=summary.last_error,
        scrape_status=website.scrape_status,
        content_size=summary.content_size,
        truncated=summary.truncated,
        created_at=iso(website.created_at) or "",
    )


async def list_websites(session: AsyncSession, config_id: str) -> list[WebsiteOut]:
    websites = (
        await session.scalars(
            select(ServerWebsite)
            .where(ServerWebsite.user_server_config_id == config_id)
            .order_by(ServerWebsite.created_at, ServerWebsite.id)
        )
    ).all()
    if not websites:
        return []
    summaries = await scrape_summaries(session, ServerWebsite.user_server_config_id == config_id)
    return [website_out(w, summaries.get(w.id)) for w in websites]


async def website_counts(session: AsyncSession, config_ids: Sequence[str]) -> dict[str, int]:
    """Number of websites per configuration of ``config_ids``."""
    query = (
        select(ServerWebsite.user_server_config_id, func.count())
        .where(ServerWebsite.user_server_config_id.in_(list(config_ids)))
        .group_by(ServerWebsite.user_server_config_id)
    )
    return {config_id: int(count) for config_id, count in (await session.execute(query)).all()}


async def _website(session: AsyncSession, config_id: str, website_id: str) -> ServerWebsite:
    if not plausible_id(website_id):
        raise WebsiteNotFound()
    website = await session.scalar(
        select(ServerWebsite).where(
            ServerWebsite.id == website_id, ServerWebsite.user_server_config_id == config_id
        )
    )
    if website is None:
        raise WebsiteNotFound()
    return website


async def get_website(session: AsyncSession, config_id: str, website_id: str) -> WebsiteOut:
    website = await _website(session, config_id, website_id)
    summaries = await scrape_summaries(session, ServerWebsite.id == website.id)
    return website_out(website, summaries.get(website.id))


async def add_website(
    session: AsyncSession,
    config: UserServerConfig,
    url: str,
    name: str | None,
    *,
    policy: AddressPolicy,
    resolver: Resolver | None = None,
) -> WebsiteOut:
    """Add a website (normalised URL) and queue its first scrape. A URL the fetching rules
    refuse (``policy``: a private address, or a name resolving to one, a forbidden port) is not
    added; a name that does not resolve is, and its scrape will say so."""
    try:
        normalized = normalize_url(url)
    except InvalidUrl as exc:
        raise ApiError(400, "INVALID_URL", str(exc)) from None
    await session.commit()  # no pooled connection is held while the name is looked up
    refusal = await url_refusal(normalized, policy, resolver=resolver)
    if refusal is not None:
        reason = refusal.removeprefix("refused: ")
        raise ApiError(
            400,
            "INVALID_URL",
            f"This address cannot be added: {reason}. Neonrain only reads public websites.",
        )
    name = (name or "").strip() or None
    # Lock the configuration (PostgreSQL) so that two concurrent adds cannot pass the limit.
    await session.execute(
        select(UserServerConfig.id).where(UserServerConfig.id == config.id).with_for_update()
    )
    existing = await session.scalar(
        select(ServerWebsite.id).where(
            ServerWebsite.user_server_config_id == config.id, ServerWebsite.url == normalized
        )
    )
    if existing is not None:
        raise _already_added(existing)
    count = await session.scalar(
        select(func.count()).where(ServerWebsite.user_server_config_id == config.id)
    )
    if int(count or 0) >= MAX_WEBSITES_PER_SERVER:
        raise ApiError(
            409,
            "WEBSITE_LIMIT",
            f"A server can have at most {MAX_WEBSITES_PER_SERVER} websites; remove one first.",
        )
    now = now_ms()
    website = ServerWebsite(
        user_server_config_id=config.id,
        url=normalized,
        name=name,
        scrape_status="queued",
        next_scrape_at=now,
        created_at=now,
        updated_at=now,
    )
    session.add(website)
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        raise _already_added(None) from None
    await mark_config_changed(session, [config.user_id])
    await session.commit()
    return website_out(website, None)


def _already_added(website_id: str | None) -> ApiError:
    extra: dict[str, Any] = {"websiteId": website_id} if website_id else {}
    return ApiError(
        409, "WEBSITE_ALREADY_ADDED", "This website is already on this server.", **extra
    )


async def request_scrape(
    session: AsyncSession, config: UserServerConfig, website_id: str
) -> WebsiteOut:
    """Queue a scrape now (one manual scrape per website per minute)."""
    website = await _website(session, config.id, website_id)
    now = utcnow()
    if website.last_manual_scrape_at is not None:
        wait = (website.last_manual_scrape_at + MANUAL_SCRAPE_INTERVAL - now).total_seconds()
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            raise ApiError(
                429,
                "SCRAPE_TOO_SOON",
                f"This website was refreshed less than a minute ago; try again in {seconds} s.",
                headers={"Retry-After": str(seconds)},
                retryAfter=seconds,
            )
    website.last_manual_scrape_at = now
    website.next_scrape_at = now
    # A running scrape is already fetching fresh content; otherwise queue one.
    if website.scrape_status != "running":
        website.scrape_status = "queued"
    await session.commit()
    summaries = await scrape_summaries(session, ServerWebsite.id == website.id)
    return website_out(website, summaries.get(website.id))


async def delete_website(session: AsyncSession, config: UserServerConfig, website_id: str) -> None:
    website = await _website(session, config.id, website_id)
    await session.execute(delete(ServerWebsite).where(ServerWebsite.id == website.id))
    await mark_config_changed(session, [config.user_id])
    await session.commit()


@dataclass(frozen=True, slots=True)
class WebsiteContent:
    """A website as the worker receives it: its newest successful scrape."""

    config_id: str
    url: str
    name: str | None
    markdown: str
    scraped_at: datetime


def _successful_contents_query(
    configs: ColumnElement[bool],
) -> Select[str, str, str | None, str, datetime]:
    """The newest successful scrape of every website of the configurations matching ``configs``
    (a condition on ``UserServerConfig``); websites never scraped successfully are left out.

    The window function ranks scrape *ids* only, so the Markdown of older scrapes is never read;
    the newest one is joined afterwards. Ordered by :data:`CONFIGURATION_ORDER`, then by when the
    website was added.
    """
    ranked = (
        select(
            WebsiteScrape.id,
            func.row_number()
            .over(
                partition_by=WebsiteScrape.website_id,
                order_by=(WebsiteScrape.scraped_at.desc(), WebsiteScrape.id.desc()),
            )
            .label("newest"),
        )
        .join(ServerWebsite, ServerWebsite.id == WebsiteScrape.website_id)
        .join(UserServerConfig, UserServerConfig.id == ServerWebsite.user_server_config_id)
        .where(configs, scrape_succeeded())
        .subquery()
    )
    return (
        select(
            ServerWebsite.user_server_config_id,
            ServerWebsite.url,
            ServerWebsite.name,
            WebsiteScrape.markdown_content,
            WebsiteScrape.scraped_at,
        )
        .select_from(ranked)
        .join(WebsiteScrape, WebsiteScrape.id == ranked.c.id)
        .join(ServerWebsite, ServerWebsite.id == WebsiteScrape.website_id)
        .join(UserServerConfig, UserServerConfig.id == ServerWebsite.user_server_config_id)
        .where(ranked.c.newest == 1)
        .order_by(*CONFIGURATION_ORDER, ServerWebsite.created_at, ServerWebsite.id)
    )


def _content(row: Any) -> WebsiteContent:
    return WebsiteContent(
        config_id=row[0], url=row[1], name=row[2], markdown=row[3], scraped_at=row[4]
    )


async def successful_contents(
    session: AsyncSession, configs: ColumnElement[bool]
) -> list[WebsiteContent]:
    """The newest successful scrape of every website of the matching configurations, in one
    query (see :func:`_successful_contents_query`)."""
    rows = await session.execute(_successful_contents_query(configs))
    return [_content(row) for row in rows.all()]


async def stream_successful_contents(
    session: AsyncSession, configs: ColumnElement[bool], *, batch: int = 64
) -> AsyncIterator[WebsiteContent]:
    """Like :func:`successful_contents`, read ``batch`` rows at a time (a server-side cursor on
    PostgreSQL), so that a large answer never holds every page's Markdown at once."""
    result = await session.stream(_successful_contents_query(configs))
    try:
        async for rows in result.partitions(batch):
            for row in rows:
                yield _content(row)
    finally:
        await result.close()
