"""Request and response bodies of ``/api/engine`` and the ``engines`` part of the dashboard
status."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from neonrain.api_types import ApiModel, RequestBody, Storable
from neonrain.contract import (
    ENGINE_API_KEY_MAX,
    ENGINE_BASE_URL_MAX,
    ENGINE_MODEL_MAX,
    EngineState,
)

EngineSource = Literal["account", "install"]

BaseUrl = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=ENGINE_BASE_URL_MAX),
    Storable,
]
ModelName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=ENGINE_MODEL_MAX),
    Storable,
]
# A key travels in an HTTP header (``Authorization: Bearer …``): visible ASCII only. An empty
# key (after trimming) is no key.
ApiKey = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, max_length=ENGINE_API_KEY_MAX, pattern=r"^[\x21-\x7e]*$"
    ),
]


class SetOpenAIBody(RequestBody):
    """``PUT /api/engine/openai``: ``apiKey`` omitted keeps the stored key, ``null`` (or an empty
    string) removes it."""

    base_url: BaseUrl
    model: ModelName
    api_key: ApiKey | None = Field(default=None, json_schema_extra={"writeOnly": True})


class HumaEngineOut(ApiModel):
    available: bool


class OpenAIEngineOut(ApiModel):
    """The OpenAI-compatible engine in effect for the account: its own, else the install's.
    The key itself is never shown."""

    available: bool
    source: EngineSource | None
    base_url: str | None
    model: str | None
    has_api_key: bool


class EngineOut(ApiModel):
    huma: HumaEngineOut
    openai: OpenAIEngineOut


class EngineTestOut(ApiModel):
    ok: Literal[True]
    model: str
    latency_ms: int


class OpenAIEngineStatus(ApiModel):
    """The engine's state as last known: reported by the worker, or the account's last test."""

    available: bool
    state: EngineState | None
    detail: str


class EnginesStatus(ApiModel):
    huma: HumaEngineOut
    openai: OpenAIEngineStatus
