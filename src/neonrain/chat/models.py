"""Web chat: conversation groups (1, 3 or 5 panes) bound to a server, messages, personas."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, text
from sqlalchemy.orm import Mapped, mapped_column

from neonrain.db.base import Base, IdMixin, TimestampMixin, utcnow


class ChatConversationGroup(IdMixin, TimestampMixin, Base):
    __tablename__ = "chat_conversation_groups"
    __table_args__ = (
        Index(
            "chat_conversation_groups_user_id_updated_at_idx", "user_id", text("updated_at DESC")
        ),
        Index("chat_conversation_groups_server_id_idx", "server_id"),
        CheckConstraint("pane_count IN (1, 3, 5)", name="pane_count"),
    )

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    server_id: Mapped[str | None] = mapped_column(ForeignKey("servers.id", ondelete="SET NULL"))
    title: Mapped[str] = mapped_column(default="New chat", server_default=text("'New chat'"))
    pane_count: Mapped[int] = mapped_column(Integer)


class ChatConversation(IdMixin, TimestampMixin, Base):
    __tablename__ = "chat_conversations"
    __table_args__ = (
        Index("chat_conversations_user_id_updated_at_idx", "user_id", text("updated_at DESC")),
        Index("chat_conversations_group_id_pane_index_key", "group_id", "pane_index", unique=True),
        CheckConstraint("pane_index >= 0 AND pane_index <= 4", name="pane_index"),
    )

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    group_id: Mapped[str | None] = mapped_column(
        ForeignKey("chat_conversation_groups.id", ondelete="CASCADE")
    )
    pane_index: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    title: Mapped[str] = mapped_column(
        default="New conversation", server_default=text("'New conversation'")
    )
    # The HUMA agent serving this conversation, reused while it lives (huma-protocol.md).
    huma_agent_id: Mapped[str | None]
    huma_agent_fingerprint: Mapped[str | None]
    huma_agent_expires_at: Mapped[datetime | None]


class ChatMessage(IdMixin, Base):
    __tablename__ = "chat_messages"
    __table_args__ = (
        Index("chat_messages_conversation_id_created_at_idx", "conversation_id", "created_at"),
    )

    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("chat_conversations.id", ondelete="CASCADE")
    )
    role: Mapped[str]
    content: Mapped[str]
    sender_name: Mapped[str | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ChatPersona(IdMixin, Base):
    __tablename__ = "chat_personas"
    __table_args__ = (
        Index("chat_personas_user_id_nickname_key", "user_id", "nickname", unique=True),
    )

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    nickname: Mapped[str]
    color: Mapped[str]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
