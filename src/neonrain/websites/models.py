"""Important websites of a server configuration and their scrapes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, text
from sqlalchemy.orm import Mapped, mapped_column

from neonrain.db.base import Base, IdMixin, TimestampMixin, utcnow

SCRAPE_STATES = ("idle", "queued", "running")


class ServerWebsite(IdMixin, TimestampMixin, Base):
    __tablename__ = "server_websites"
    __table_args__ = (
        Index(
            "server_websites_user_server_config_id_url_key",
            "user_server_config_id",
            "url",
            unique=True,
        ),
        Index(
            "server_websites_scrape_status_next_scrape_at_idx", "scrape_status", "next_scrape_at"
        ),
    )

    user_server_config_id: Mapped[str] = mapped_column(
        ForeignKey("user_server_configs.id", ondelete="CASCADE")
    )
    url: Mapped[str]
    name: Mapped[str | None]
    # Scheduling state: 'queued' waits for a scraper, 'running' is claimed by one, 'idle' waits
    # for next_scrape_at.
    scrape_status: Mapped[str] = mapped_column(default="queued", server_default=text("'queued'"))
    next_scrape_at: Mapped[datetime | None]
    scrape_failures: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    scrape_started_at: Mapped[datetime | None]
    last_manual_scrape_at: Mapped[datetime | None]


class WebsiteScrape(IdMixin, Base):
    """One fetch of a website; the newest row is its current state (the last 10 are kept)."""

    __tablename__ = "website_scrapes"
    __table_args__ = (
        Index("website_scrapes_website_id_scraped_at_idx", "website_id", text("scraped_at DESC")),
    )

    website_id: Mapped[str] = mapped_column(ForeignKey("server_websites.id", ondelete="CASCADE"))
    markdown_content: Mapped[str]
    content_length: Mapped[int] = mapped_column(Integer)
    truncated: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    status_code: Mapped[int | None] = mapped_column(Integer)
    error_message: Mapped[str | None]
    scraped_at: Mapped[datetime] = mapped_column(default=utcnow)
