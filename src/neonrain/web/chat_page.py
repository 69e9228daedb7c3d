"""``GET /chat``: the web chat page (``web-ui.md`` § /chat); the live parts are in ``chat.js``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from neonrain import flows
from neonrain.accounts.deps import identify
from neonrain.chat import service
from neonrain.state import ReadDb, State
from neonrain.web.pages import login_redirect, render_page

router = APIRouter(include_in_schema=False)


@router.get("/chat", response_class=HTMLResponse)
async def chat_page(request: Request, db: ReadDb, state: State) -> Response:
    identity = await identify(request, db, state)
    if identity is None:
        return login_redirect(request)
    servers = await flows.list_servers(db, state.install_engines, identity.user)
    return render_page(
        request,
        "chat.html",
        {
            "title": "Chat",
            "nav": "chat",
            "chat_servers": [
                {
                    "id": s.server_id,
                    "name": s.guild_name,
                    "botActive": s.bot_active,
                    "botName": s.bot_name,
                    "readiness": s.readiness.model_dump(by_alias=True) if s.readiness else None,
                }
                for s in servers
            ],
            "user_name": service.user_display_name(identity.user),
            "palette": list(service.PALETTE),
        },
        identity=identity,
    )
