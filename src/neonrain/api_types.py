"""Building blocks shared by the JSON API's request and response schemas.

Every string the API stores must survive both databases (``contract.storable``), so text that
cannot be stored is a validation error (400), never a database error (500).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic.alias_generators import to_camel
from starlette.responses import Response

from neonrain.contract import MAX_ID_LENGTH, Snowflake, Storable, storable
from neonrain.db.base import utcnow

__all__ = [
    "MAX_ID_LENGTH",
    "ApiModel",
    "CheckId",
    "CheckState",
    "PatchBody",
    "ReadinessCheck",
    "ReadinessOut",
    "RequestBody",
    "Snowflake",
    "Storable",
    "json_answer",
    "now_ms",
    "plausible_id",
    "storable",
]


def plausible_id(value: str) -> bool:
    """Whether ``value`` could be one of our ids (or a Discord snowflake); False → not found."""
    return 0 < len(value) <= MAX_ID_LENGTH and value.isascii() and value.isprintable()


class ApiModel(BaseModel):
    """A response body: snake_case in Python, camelCase on the wire."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


def json_answer(model: ApiModel) -> Response:
    """``model`` as the JSON a route with ``response_model`` answers with (camelCase, compact),
    serialized once: returned from the route, it is not validated and converted again (the
    route keeps ``response_model`` for the OpenAPI document)."""
    return Response(model.model_dump_json(by_alias=True), media_type="application/json")


class RequestBody(BaseModel):
    """A request body: camelCase only, unknown fields refused."""

    model_config = ConfigDict(alias_generator=to_camel, extra="forbid")


class PatchBody(RequestBody):
    """A partial update: every field optional, but a field that is sent must not be null."""

    @model_validator(mode="after")
    def _no_nulls(self) -> Self:
        nulls = sorted(
            (self.__class__.model_fields[name].alias or name)
            for name in self.model_fields_set
            if getattr(self, name) is None
        )
        if nulls:
            raise ValueError(f"{', '.join(nulls)} must not be null")
        return self

    def changes(self) -> dict[str, Any]:
        """The fields that were sent, by Python name."""
        return {name: getattr(self, name) for name in self.model_fields_set}


def now_ms() -> datetime:
    """Now, truncated to the millisecond: what PostgreSQL's ``TIMESTAMP(3)`` keeps, so a row's
    timestamps read the same in the response that wrote them and in every later read."""
    now = utcnow()
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


#: What a bot needs to answer in a server (``neonrain.readiness`` computes them).
CheckId = Literal["token", "gateway", "intent", "guild", "channels", "engine", "active"]
CheckState = Literal["ok", "problem", "unknown"]


class ReadinessCheck(ApiModel):
    """One thing the bot needs: ``message`` says what is wrong and what to do (or what is fine)."""

    id: CheckId
    state: CheckState
    message: str


class ReadinessOut(ApiModel):
    """Whether the bot can answer (``ready``: every check ok), and each check."""

    ready: bool
    checks: list[ReadinessCheck]
