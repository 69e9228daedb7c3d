"""``/api/chat`` on both databases: personas, groups, conversations, message pages, isolation,
malformed input."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete

from neonrain.chat import service
from neonrain.servers.models import UserServerConfig
from neonrain.state import AppState
from tests.chat.conftest import add_server
from tests.conftest import ApiUser, assert_error


def _state(app: FastAPI) -> AppState:
    state: AppState = app.state.neonrain
    return state


async def _group(
    client: httpx.AsyncClient, user: ApiUser, server_id: str, panes: int = 1, **extra: Any
) -> dict[str, Any]:
    response = await client.post(
        "/api/chat/groups",
        json={"serverId": server_id, "paneCount": panes, **extra},
        headers=user.headers,
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_personas(client: httpx.AsyncClient, user: ApiUser) -> None:
    response = await client.get("/api/chat/personas", headers=user.headers)
    assert response.json() == {"personas": []}
    first = await client.post(
        "/api/chat/personas", json={"nickname": "  Captain  "}, headers=user.headers
    )
    assert first.status_code == 201
    assert first.json()["nickname"] == "Captain"
    assert first.json()["color"] == service.PALETTE[0]
    second = await client.post(
        "/api/chat/personas", json={"nickname": "Cook", "color": "#ABCDEF"}, headers=user.headers
    )
    assert second.json()["color"] == "#abcdef"
    third = await client.post("/api/chat/personas", json={"nickname": "Mate"}, headers=user.headers)
    assert third.json()["color"] == service.PALETTE[2]
    assert_error(
        await client.post("/api/chat/personas", json={"nickname": "captain"}, headers=user.headers),
        409,
        "PERSONA_EXISTS",
    )
    listed = (await client.get("/api/chat/personas", headers=user.headers)).json()["personas"]
    assert [p["nickname"] for p in listed] == ["Captain", "Cook", "Mate"]
    assert set(listed[0]) == {"id", "nickname", "color"}
    response = await client.delete(f"/api/chat/personas/{first.json()['id']}", headers=user.headers)
    assert response.status_code == 204
    assert_error(
        await client.delete(f"/api/chat/personas/{first.json()['id']}", headers=user.headers),
        404,
    )


async def test_persona_limit(client: httpx.AsyncClient, user: ApiUser) -> None:
    for index in range(service.MAX_PERSONAS):
        response = await client.post(
            "/api/chat/personas", json={"nickname": f"p{index}"}, headers=user.headers
        )
        assert response.status_code == 201
    assert_error(
        await client.post(
            "/api/chat/personas", json={"nickname": "one more"}, headers=user.headers
        ),
        409,
        "PERSONA_LIMIT",
    )


async def test_groups_lifecycle_filter_and_activity(
    app: FastAPI, client: httpx.AsyncClient, user: ApiUser
) -> None:
    state = _state(app)
    rust = await add_server(state, user.id, "Rust Lovers")
    cats = await add_server(state, user.id, "Cat Cafe")
    created = await _group(client, user, rust, 3)
    assert created["paneCount"] == 3
    assert created["title"] == "New chat"
    assert created["serverName"] == "Rust Lovers"
    assert created["readOnly"] is False
    assert [c["paneIndex"] for c in created["conversations"]] == [0, 1, 2]
    assert all(c["messages"] == [] and c["hasMore"] is False for c in created["conversations"])
    five = await _group(client, user, cats, 5, title="Cats")
    assert five["title"] == "Cats" and len(five["conversations"]) == 5
    one = await _group(client, user, rust, 1)

    listed = (await client.get("/api/chat/groups", headers=user.headers)).json()["groups"]
    assert [g["id"] for g in listed] == [one["id"], five["id"], created["id"]]
    assert listed[0]["conversations"] == [
        {"id": one["conversations"][0]["id"], "paneIndex": 0, "messageCount": 0}
    ]

    # Activity moves a chat to the top.
    async with state.sessionmaker() as db:
        await service.store_message(db, created["conversations"][1]["id"], "user", "hi", None)
    listed = (await client.get("/api/chat/groups", headers=user.headers)).json()["groups"]
    assert listed[0]["id"] == created["id"]
    assert listed[0]["title"] == "hi"
    assert [c["messageCount"] for c in listed[0]["conversations"]] == [0, 1, 0]

    filtered = await client.get(f"/api/chat/groups?serverId={cats}", headers=user.headers)
    assert [g["id"] for g in filtered.json()["groups"]] == [five["id"]]
    unknown = await client.get("/api/chat/groups?serverId=unknown", headers=user.headers)
    assert unknown.json() == {"groups": []}

    renamed = await client.patch(
        f"/api/chat/groups/{five['id']}", json={"title": " Kittens "}, headers=user.headers
    )
    assert renamed.status_code == 200 and renamed.json()["title"] == "Kittens"

    # A removed server configuration leaves its chats read-only.
    async with state.sessionmaker() as db:
        await db.execute(delete(UserServerConfig).where(UserServerConfig.server_id == cats))
        await db.commit()
    detail = (await client.get(f"/api/chat/groups/{five['id']}", headers=user.headers)).json()
    assert detail["readOnly"] is True and detail["serverName"] == "Cat Cafe"
    assert_error(
        await client.post(
            "/api/chat/groups", json={"serverId": cats, "paneCount": 1}, headers=user.headers
        ),
        404,
    )

    response = await client.delete(f"/api/chat/groups/{five['id']}", headers=user.headers)
    assert response.status_code == 204
    assert_error(await client.get(f"/api/chat/groups/{five['id']}", headers=user.headers), 404)
    assert_error(
        await client.get(
            f"/api/chat/conversations/{five['conversations'][0]['id']}/messages",
            headers=user.headers,
        ),
        404,
    )


async def test_paging_returns_the_newest_messages_first(
    app: FastAPI, client: httpx.AsyncClient, user: ApiUser
) -> None:
    state = _state(app)
    group = await _group(client, user, await add_server(state, user.id, "Rust Lovers"))
    conversation_id = group["conversations"][0]["id"]
    async with state.sessionmaker() as db:
        for index in range(120):
            role = "user" if index % 2 == 0 else "assistant"
            await service.store_message(db, conversation_id, role, f"m{index}", None)
    url = f"/api/chat/conversations/{conversation_id}/messages"
    page = (await client.get(url, headers=user.headers)).json()
    assert [m["content"] for m in page["messages"]] == [f"m{i}" for i in range(70, 120)]
    assert page["hasMore"] is True
    assert set(page["messages"][0]) == {
        "id", "role", "content", "contentHtml", "senderName", "createdAt"
    }  # fmt: skip
    older = (
        await client.get(url, params={"before": page["messages"][0]["id"]}, headers=user.headers)
    ).json()
    assert [m["content"] for m in older["messages"]] == [f"m{i}" for i in range(20, 70)]
    oldest = (
        await client.get(
            url, params={"before": older["messages"][0]["id"], "limit": 100}, headers=user.headers
        )
    ).json()
    assert [m["content"] for m in oldest["messages"]] == [f"m{i}" for i in range(20)]
    assert oldest["hasMore"] is False
    small = (await client.get(url, params={"limit": 1}, headers=user.headers)).json()
    assert [m["content"] for m in small["messages"]] == ["m119"]
    detail = (await client.get(f"/api/chat/groups/{group['id']}", headers=user.headers)).json()
    conversation = detail["conversations"][0]
    assert [m["content"] for m in conversation["messages"]] == [f"m{i}" for i in range(70, 120)]
    assert conversation["hasMore"] is True
    assert conversation["title"] == "m0"


async def test_other_users_objects_are_not_found(
    app: FastAPI, client: httpx.AsyncClient, user: ApiUser, other_user: ApiUser
) -> None:
    state = _state(app)
    server_id = await add_server(state, user.id, "Rust Lovers")
    group = await _group(client, user, server_id)
    persona = (
        await client.post("/api/chat/personas", json={"nickname": "Cap"}, headers=user.headers)
    ).json()
    conversation_id = group["conversations"][0]["id"]
    theirs = other_user.headers
    assert_error(await client.get(f"/api/chat/groups/{group['id']}", headers=theirs), 404)
    assert_error(
        await client.patch(f"/api/chat/groups/{group['id']}", json={"title": "x"}, headers=theirs),
        404,
    )
    assert_error(await client.delete(f"/api/chat/groups/{group['id']}", headers=theirs), 404)
    assert_error(
        await client.get(f"/api/chat/conversations/{conversation_id}/messages", headers=theirs),
        404,
    )
    assert_error(await client.delete(f"/api/chat/personas/{persona['id']}", headers=theirs), 404)
    assert_error(
        await client.post(
            "/api/chat/groups", json={"serverId": server_id, "paneCount": 1}, headers=theirs
        ),
        404,
    )
    assert (await client.get("/api/chat/groups", headers=theirs)).json() == {"groups": []}
    assert (await client.get(f"/api/chat/groups?serverId={server_id}", headers=theirs)).json() == {
        "groups": []
    }
    assert (await client.get("/api/chat/personas", headers=theirs)).json() == {"personas": []}
    # The same nickname is free for another account.
    response = await client.post("/api/chat/personas", json={"nickname": "Cap"}, headers=theirs)
    assert response.status_code == 201
    # Still there for the owner.
    assert (await client.get(f"/api/chat/groups/{group['id']}", headers=user.headers)).is_success
    client.cookies.clear()
    assert_error(await client.get("/api/chat/groups"), 401, "UNAUTHENTICATED")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/chat/personas", {}),
        ("POST", "/api/chat/personas", {"nickname": ""}),
        ("POST", "/api/chat/personas", {"nickname": "   "}),
        ("POST", "/api/chat/personas", {"nickname": "x" * 33}),
        ("POST", "/api/chat/personas", {"nickname": 5}),
        ("POST", "/api/chat/personas", {"nickname": "a\u0000b"}),
        ("POST", "/api/chat/personas", {"nickname": "ok", "color": "red"}),
        ("POST", "/api/chat/personas", {"nickname": "ok", "color": "#12345"}),
        ("POST", "/api/chat/personas", {"nickname": "ok", "extra": True}),
        ("POST", "/api/chat/personas", ["nickname"]),
        ("POST", "/api/chat/groups", {}),
        ("POST", "/api/chat/groups", {"serverId": "SERVER", "paneCount": 2}),
        ("POST", "/api/chat/groups", {"serverId": "SERVER", "paneCount": "3x"}),
        ("POST", "/api/chat/groups", {"serverId": "SERVER", "paneCount": 1, "title": ""}),
        ("POST", "/api/chat/groups", {"serverId": "SERVER", "paneCount": 1, "title": "t" * 101}),
        ("POST", "/api/chat/groups", {"serverId": "", "paneCount": 1}),
        ("POST", "/api/chat/groups", {"serverId": "SERVER", "paneCount": 1, "x": 1}),
        ("PATCH", "/api/chat/groups/GROUP", {}),
        ("PATCH", "/api/chat/groups/GROUP", {"title": ""}),
        ("PATCH", "/api/chat/groups/GROUP", {"title": "t" * 101}),
        ("PATCH", "/api/chat/groups/GROUP", {"title": None}),
        ("GET", "/api/chat/conversations/CONV/messages?limit=0", None),
        ("GET", "/api/chat/conversations/CONV/messages?limit=101", None),
        ("GET", "/api/chat/conversations/CONV/messages?limit=abc", None),
        ("GET", "/api/chat/conversations/CONV/messages?before=unknown", None),
        ("GET", "/api/chat/conversations/CONV/messages?before=" + "x" * 65, None),
        ("GET", "/api/chat/groups?serverId=" + "x" * 65, None),
    ],
)
async def test_malformed_input_is_400(
    app: FastAPI,
    client: httpx.AsyncClient,
    user: ApiUser,
    method: str,
    path: str,
    body: Any,
) -> None:
    server_id = await add_server(_state(app), user.id, "Rust Lovers")
    group = await _group(client, user, server_id)
    path = (
        path.replace("SERVER", server_id)
        .replace("GROUP", group["id"])
        .replace("CONV", group["conversations"][0]["id"])
    )
    if isinstance(body, dict):
        body = {k: (server_id if v == "SERVER" else v) for k, v in body.items()}
    response = await client.request(method, path, json=body, headers=user.headers)
    assert_error(response, 400)


async def test_non_json_body_is_400(client: httpx.AsyncClient, user: ApiUser) -> None:
    response = await client.post(
        "/api/chat/personas",
        content=b"{nope",
        headers={**user.headers, "Content-Type": "application/json"},
    )
    assert_error(response, 400)


async def test_chat_page_requires_sign_in(client: httpx.AsyncClient, user: ApiUser) -> None:
    client.cookies.clear()
    response = await client.get("/chat")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/chat"
    response = await client.get("/chat", headers=user.headers)
    assert response.status_code == 200
    assert 'id="chat-app"' in response.text
