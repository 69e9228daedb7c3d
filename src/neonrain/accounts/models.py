"""Users and their sign-in sessions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, text
from sqlalchemy.orm import Mapped, mapped_column

from neonrain.db.base import Base, IdMixin, TimestampMixin, utcnow

TOKEN_STATUSES = ("valid", "invalid", "unchecked")


class User(IdMixin, TimestampMixin, Base):
    __tablename__ = "users"
    __table_args__ = (
        Index("users_email_key", "email", unique=True),
        Index("users_clerk_user_id_key", "clerk_user_id", unique=True),
        Index("users_config_generation_idx", "config_generation"),
        CheckConstraint(
            "password_hash IS NOT NULL OR clerk_user_id IS NOT NULL", name="credentials"
        ),
        CheckConstraint(
            "discord_token_status IN ('valid', 'invalid', 'unchecked')", name="token_status"
        ),
    )

    email: Mapped[str | None]
    clerk_user_id: Mapped[str | None]
    password_hash: Mapped[str | None]
    # Fernet ciphertext of the bot token (see neonrain.crypto); never the token itself.
    discord_token: Mapped[str | None]
    discord_token_status: Mapped[str] = mapped_column(
        default="unchecked", server_default=text("'unchecked'")
    )
    discord_bot_id: Mapped[str | None]
    discord_bot_username: Mapped[str | None]
    discord_bot_avatar: Mapped[str | None]
    # The configuration generation (neonrain.db.changes) at this user's last worker-visible change.
    config_generation: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))


class Session(IdMixin, TimestampMixin, Base):
    """A signed-in browser or API client. Only the SHA-256 of the secret token is stored."""

    __tablename__ = "sessions"
    __table_args__ = (
        Index("sessions_token_hash_key", "token_hash", unique=True),
        Index("sessions_user_id_idx", "user_id"),
    )

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    token_hash: Mapped[str]
    expires_at: Mapped[datetime]
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    user_agent: Mapped[str | None]
