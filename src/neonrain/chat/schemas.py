"""Request and response bodies of ``/api/chat`` (camelCase on the wire)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator, Field

from neonrain.api_types import ApiModel, RequestBody, Storable

MAX_NICKNAME = 32
MAX_TITLE = 100
MAX_CONTENT = 4000


def _strip(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


Nickname = Annotated[
    str, BeforeValidator(_strip), Field(min_length=1, max_length=MAX_NICKNAME), Storable
]
Title = Annotated[str, BeforeValidator(_strip), Field(min_length=1, max_length=MAX_TITLE), Storable]
Color = Annotated[str, Field(pattern=r"^#[0-9a-fA-F]{6}$")]
IdField = Annotated[str, Field(min_length=1, max_length=64), Storable]


class PersonaBody(RequestBody):
    nickname: Nickname
    color: Color | None = None


class PersonaOut(ApiModel):
    id: str
    nickname: str
    color: str


class PersonaList(ApiModel):
    personas: list[PersonaOut]


class GroupBody(RequestBody):
    server_id: IdField
    pane_count: Literal[1, 3, 5]
    title: Title | None = None


class GroupPatchBody(RequestBody):
    title: Title


class MessageOut(ApiModel):
    id: str
    role: str
    content: str
    content_html: str | None
    sender_name: str | None
    created_at: str


class MessagePage(ApiModel):
    messages: list[MessageOut]
    has_more: bool


class ConversationSummary(ApiModel):
    id: str
    pane_index: int
    message_count: int


class ConversationDetail(ApiModel):
    id: str
    pane_index: int
    title: str
    messages: list[MessageOut]
    has_more: bool


class GroupBase(ApiModel):
    id: str
    title: str
    pane_count: int
    server_id: str | None
    server_name: str | None
    read_only: bool
    created_at: str
    updated_at: str


class GroupSummary(GroupBase):
    conversations: list[ConversationSummary]


class GroupDetail(GroupBase):
    conversations: list[ConversationDetail]


class GroupList(ApiModel):
    groups: list[GroupSummary]


class ClientMessage(RequestBody):
    """The ``data`` of a client's ``chat:message`` frame."""

    content: Annotated[str, Field(min_length=1, max_length=MAX_CONTENT), Storable]
    sender_name: (
        Annotated[str, BeforeValidator(_strip), Field(max_length=MAX_NICKNAME), Storable] | None
    ) = None
