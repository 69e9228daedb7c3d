"""An account's own agent engine credentials."""

from __future__ import annotations

from sqlalchemy import CheckConstraint, ForeignKey, Index, text
from sqlalchemy.orm import Mapped, mapped_column

from neonrain.db.base import Base, IdMixin, TimestampMixin

ENGINE_STATES = ("ok", "error", "unchecked")


class EngineCredential(IdMixin, TimestampMixin, Base):
    """An OpenAI-compatible endpoint an account set in Settings. The key is Fernet ciphertext
    (``neonrain.crypto``, like Discord tokens); it leaves the database only towards the worker."""

    __tablename__ = "engine_credentials"
    __table_args__ = (
        Index("engine_credentials_user_id_key", "user_id", unique=True),
        CheckConstraint("kind IN ('openai')", name="engine_kind"),
        CheckConstraint("state IN ('ok', 'error', 'unchecked')", name="engine_state"),
    )

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(default="openai", server_default=text("'openai'"))
    base_url: Mapped[str]
    model: Mapped[str]
    api_key: Mapped[str | None]
    state: Mapped[str] = mapped_column(default="unchecked", server_default=text("'unchecked'"))
    state_detail: Mapped[str] = mapped_column(default="", server_default=text("''"))
