"""Imports every model so that ``Base.metadata`` knows all tables (migrations, tests)."""

from neonrain.accounts.models import Session, User
from neonrain.chat.models import ChatConversation, ChatConversationGroup, ChatMessage, ChatPersona
from neonrain.db.base import Base
from neonrain.db.changes import ConfigRemoval, ConfigState
from neonrain.discord_link.models import WorkerReport
from neonrain.engines.models import EngineCredential
from neonrain.servers.models import (
    AgentAction,
    ChannelCursor,
    Server,
    ServerDailyStat,
    UserServerConfig,
)
from neonrain.websites.models import ServerWebsite, WebsiteScrape

__all__ = [
    "AgentAction",
    "Base",
    "ChannelCursor",
    "ChatConversation",
    "ChatConversationGroup",
    "ChatMessage",
    "ChatPersona",
    "ConfigRemoval",
    "ConfigState",
    "EngineCredential",
    "Server",
    "ServerDailyStat",
    "ServerWebsite",
    "Session",
    "User",
    "UserServerConfig",
    "WebsiteScrape",
    "WorkerReport",
]
