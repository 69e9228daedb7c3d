"""Discord guilds, each account's per-server configuration, its statistics and agent actions."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Index, Integer, text
from sqlalchemy.orm import Mapped, mapped_column

from neonrain.db.base import Base, IdMixin, TimestampMixin, utcnow


class Server(IdMixin, TimestampMixin, Base):
    """One row per Discord guild, shared by every account that configured it."""

    __tablename__ = "servers"
    __table_args__ = (Index("servers_guild_id_key", "guild_id", unique=True),)

    guild_id: Mapped[str]
    guild_name: Mapped[str]
    guild_icon: Mapped[str | None]


class UserServerConfig(IdMixin, TimestampMixin, Base):
    """The seed's ``UserServerConfig``: one account's bot configuration for one guild."""

    __tablename__ = "user_server_configs"
    __table_args__ = (
        Index("user_server_configs_user_id_server_id_key", "user_id", "server_id", unique=True),
        Index("user_server_configs_user_id_idx", "user_id"),
        Index("user_server_configs_server_id_idx", "server_id"),
    )

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    server_id: Mapped[str] = mapped_column(ForeignKey("servers.id", ondelete="CASCADE"))
    bot_name: Mapped[str] = mapped_column(default="Assistant", server_default=text("'Assistant'"))
    personality: Mapped[str] = mapped_column(default="", server_default=text("''"))
    rules: Mapped[str] = mapped_column(default="", server_default=text("''"))
    information: Mapped[str] = mapped_column(default="", server_default=text("''"))
    bot_active: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    messages_sent_count: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    messages_received_count: Mapped[int] = mapped_column(
        Integer, default=0, server_default=text("0")
    )
    last_message_sent_at: Mapped[datetime | None]
    last_message_received_at: Mapped[datetime | None]
    # Where and when the bot speaks (behaviour.md); the defaults are the original behaviour.
    channel_mode: Mapped[str] = mapped_column(default="all", server_default=text("'all'"))
    channel_ids: Mapped[list[str]] = mapped_column(JSON, default=list, server_default=text("'[]'"))
    reply_mode: Mapped[str] = mapped_column(default="auto", server_default=text("'auto'"))
    max_replies_per_hour: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    min_seconds_between_replies: Mapped[int] = mapped_column(
        Integer, default=0, server_default=text("0")
    )
    # Which agent engine answers here (engines.md): 'huma' or 'openai'.
    engine: Mapped[str] = mapped_column(default="huma", server_default=text("'huma'"))


#: The order in which the worker receives configurations (the tokens answer); website contents are
#: streamed in the same order so that the two can be merged without holding all contents at once.
CONFIGURATION_ORDER = (UserServerConfig.user_id, UserServerConfig.created_at, UserServerConfig.id)


class ServerDailyStat(Base):
    """Messages per configuration per UTC day, for the dashboard's charts."""

    __tablename__ = "server_daily_stats"

    user_server_config_id: Mapped[str] = mapped_column(
        ForeignKey("user_server_configs.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    messages_received: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    messages_sent: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    messages_held_back: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))


class AgentAction(IdMixin, Base):
    """A message the agent sent in Discord (or drafted and held back), with what prompted it."""

    __tablename__ = "agent_actions"
    __table_args__ = (
        Index(
            "agent_actions_user_server_config_id_created_at_idx",
            "user_server_config_id",
            text("created_at DESC"),
        ),
        Index(
            "agent_actions_config_delivered_created_at_idx",
            "user_server_config_id",
            "delivered",
            text("created_at DESC"),
        ),
    )

    user_server_config_id: Mapped[str] = mapped_column(
        ForeignKey("user_server_configs.id", ondelete="CASCADE")
    )
    channel_id: Mapped[str]
    channel_name: Mapped[str]
    agent_message: Mapped[str]
    trigger_description: Mapped[str]
    message_history: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # False for a draft that was not posted; held_back says why ('silent', 'rate_limited').
    delivered: Mapped[bool] = mapped_column(default=True, server_default=text("true"))
    held_back: Mapped[str | None]


class ChannelCursor(Base):
    """The newest message the worker saw in a channel for a configuration's account, so that a
    restarted worker reads what it missed (bounded) instead of staying silent about it."""

    __tablename__ = "channel_cursors"

    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    channel_id: Mapped[str] = mapped_column(primary_key=True)
    guild_id: Mapped[str]
    message_id: Mapped[str]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
