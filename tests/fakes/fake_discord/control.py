"""Endpoints for a developer driving the standalone fake with curl (not Discord's): post a
message as a user, read what bots sent, see the state."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from .rest import json_response

if TYPE_CHECKING:
    from .server import FakeDiscord


def add_control_routes(app: web.Application, fake: FakeDiscord) -> None:
    async def post_message(request: web.Request) -> web.Response:
        try:
            body = await request.json()
            message = await fake.post_user_message(
                int(body["guild_id"]),
                int(body["channel_id"]),
                str(body.get("author", "someone")),
                str(body["content"]),
                reply_to=int(body["reply_to"]) if body.get("reply_to") else None,
            )
        except (KeyError, ValueError, TypeError) as exc:
            return json_response({"error": f"bad request: {exc}"}, status=400)
        return json_response({"id": str(message.id)}, status=201)

    async def sent(request: web.Request) -> web.Response:
        return json_response(
            [
                {
                    "id": str(m.id),
                    "channel_id": str(m.channel_id),
                    "guild_id": None if m.guild_id is None else str(m.guild_id),
                    "bot": m.author.username,
                    "content": m.content,
                }
                for m in fake.sent_messages
            ]
        )

    async def state(request: web.Request) -> web.Response:
        return json_response(
            {
                "bots": [
                    {"id": str(b.id), "username": b.username, "online": fake.is_online(b.token)}
                    for b in fake.bots.values()
                ],
                "guilds": [
                    {
                        "id": str(g.id),
                        "name": g.name,
                        "channels": [
                            {"id": str(c.id), "name": c.name, "type": int(c.type)}
                            for c in [*g.channels, *g.threads]
                        ],
                        "bots": [b.username for b in fake.bots_in(g.id)],
                    }
                    for g in fake.guilds.values()
                ],
            }
        )

    app.router.add_post("/_fake/messages", post_message)
    app.router.add_get("/_fake/sent-messages", sent)
    app.router.add_get("/_fake/state", state)
