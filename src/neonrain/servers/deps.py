"""Request dependencies of the routes below ``/api/servers/:serverId``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from neonrain.accounts.deps import CurrentIdentity
from neonrain.servers import service
from neonrain.servers.models import UserServerConfig
from neonrain.state import Db


async def owned_config(server_id: str, identity: CurrentIdentity, db: Db) -> UserServerConfig:
    """The signed-in user's configuration of ``:serverId``; 404 ``SERVER_NOT_FOUND`` for any
    other (someone else's looks exactly like one that does not exist)."""
    config, _server = await service.get_config(db, identity.user.id, server_id)
    return config


#: The configuration a ``/api/servers/:serverId/...`` route acts on.
OwnedConfig = Annotated[UserServerConfig, Depends(owned_config)]
