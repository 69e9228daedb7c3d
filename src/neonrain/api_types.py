"""Building blocks shared by the JSON API's request and response schemas.

Every string the API stores must survive both databases: PostgreSQL refuses NUL characters and
neither driver can encode lone surrogates (which JSON's ``\\ud800`` escapes produce), so such
input is a validation error (400), never a database error (500).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

from neonrain.db.base import utcnow

MAX_ID_LENGTH = 64


def storable(value: str) -> str:
    """``value`` unchanged, if both databases can store it."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    return value


def plausible_id(value: str) -> bool:
    """Whether ``value`` could be one of our ids (or a Discord snowflake); False → not found."""
    return 0 < len(value) <= MAX_ID_LENGTH and value.isascii() and value.isprintable()


class _Storable:
    """Runs :func:`storable`, and says in the JSON schema that NUL is not allowed (so that a
    client, or a fuzzer, generating "valid" strings from the OpenAPI document does not send it)."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(storable, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        no_nul = {"pattern": "\\u0000"}  # "not" rather than a pattern for the whole string:
        if "not" in json_schema:  # generators filter on it instead of building from a regex
            return {"allOf": [json_schema, {"not": no_nul}]}
        json_schema["not"] = no_nul
        return json_schema


#: Add to ``Annotated[str, ...]`` for every string that is stored.
Storable = _Storable()

Snowflake = Annotated[str, Field(pattern=r"^[0-9]{1,20}$", examples=["1200000000000000001"])]


class ApiModel(BaseModel):
    """A response body: snake_case in Python, camelCase on the wire."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


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
