"""The live state of each account's bot, as the Discord worker last reported it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, text
from sqlalchemy.orm import Mapped, mapped_column

from neonrain.db.base import Base, utcnow


class WorkerReport(Base):
    """The Discord worker's last report on one account's connection (online, connecting, …)."""

    __tablename__ = "worker_reports"

    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    state: Mapped[str]
    detail: Mapped[str] = mapped_column(default="", server_default=text("''"))
    guild_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: ``contract.WorkerReason``: why the bot cannot work, kept until resolved.
    reason: Mapped[str | None]
    #: ``contract.GuildReport`` entries (wire names) for the account's active guilds.
    guilds: Mapped[list[dict[str, Any]]] = mapped_column(
        JSON, default=list, server_default=text("'[]'")
    )
    engine_state: Mapped[str | None]
    engine_detail: Mapped[str] = mapped_column(default="", server_default=text("''"))
