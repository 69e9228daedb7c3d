"""A small JSON Schema validator for the subset Discord's OpenAPI 3.1 document uses.

The document (``discord-api-spec/openapi.json``) describes answers with ``type`` (also as a list,
for nullable values), ``properties``/``required``/``additionalProperties``, ``items``, ``enum``,
``const``, ``oneOf``/``anyOf``/``allOf``, string and number bounds, ``pattern``, ``format`` and
local ``$ref``s. That is what is checked here; annotations (``description``, ``title``,
``x-discord-union``, …) are ignored. ``format: date-time`` is checked (Discord's timestamps are
ISO 8601 with an offset); other formats are covered by a ``pattern`` or a type in the document.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

Schema = dict[str, Any]

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "boolean": (bool,),
    "null": (type(None),),
}


class OpenApiDocument:
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document

    @classmethod
    def load(cls, path: Path) -> OpenApiDocument:
        return cls(json.loads(path.read_text()))

    def resolve(self, ref: str) -> Any:
        if not ref.startswith("#/"):
            raise ValueError(f"only local references are supported: {ref}")
        node: Any = self.document
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def operation(self, method: str, path: str) -> dict[str, Any]:
        """The operation object for ``GET /users/@me``-style method and path template."""
        try:
            operation: dict[str, Any] = self.document["paths"][path][method.lower()]
        except KeyError:
            raise KeyError(f"{method} {path} is not in the document") from None
        return operation

    def response(self, method: str, path: str, status: int) -> dict[str, Any] | None:
        """The declared response for ``status`` (exact, then ``4XX``-style, then ``default``);
        None when the operation does not declare that status."""
        responses = self.operation(method, path)["responses"]
        for key in (str(status), f"{str(status)[0]}XX", "default"):
            if key in responses:
                response = responses[key]
                while "$ref" in response:
                    response = self.resolve(response["$ref"])
                return dict(response)
        return None

    def response_schema(self, method: str, path: str, status: int) -> Schema | None:
        response = self.response(method, path, status)
        if response is None:
            raise KeyError(f"{method} {path} does not declare a {status} answer")
        content = response.get("content") or {}
        media = content.get("application/json")
        return None if media is None else dict(media.get("schema") or {})

    def validate(self, instance: Any, schema: Schema) -> list[str]:
        """Every way ``instance`` breaks ``schema``, as ``$.path: message`` lines."""
        return list(self._errors(instance, schema, "$"))

    def _errors(self, value: Any, schema: Schema, where: str) -> Iterator[str]:
        if "$ref" in schema:
            yield from self._errors(value, self.resolve(schema["$ref"]), where)
            # Siblings of $ref are applied too (OpenAPI 3.1 is JSON Schema 2020-12).
            schema = {k: v for k, v in schema.items() if k != "$ref"}
        yield from self._type_errors(value, schema, where)
        if "enum" in schema and not any(_same(value, v) for v in schema["enum"]):
            yield f"{where}: {value!r} is not one of {schema['enum']}"
        if "const" in schema and not _same(value, schema["const"]):
            yield f"{where}: {value!r} is not {schema['const']!r}"
        for sub in schema.get("allOf", []):
            yield from self._errors(value, sub, where)
        if "anyOf" in schema:
            yield from self._union_errors(value, schema["anyOf"], where, exactly_one=False)
        if "oneOf" in schema:
            yield from self._union_errors(value, schema["oneOf"], where, exactly_one=True)
        if isinstance(value, dict):
            yield from self._object_errors(value, schema, where)
        elif isinstance(value, list):
            yield from self._array_errors(value, schema, where)
        elif isinstance(value, str):
            yield from self._string_errors(value, schema, where)
        elif _is_number(value):
            if "minimum" in schema and value < schema["minimum"]:
                yield f"{where}: {value} < minimum {schema['minimum']}"
            if "maximum" in schema and value > schema["maximum"]:
                yield f"{where}: {value} > maximum {schema['maximum']}"

    def _type_errors(self, value: Any, schema: Schema, where: str) -> Iterator[str]:
        if "type" not in schema:
            return
        allowed = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_has_type(value, t) for t in allowed):
            yield f"{where}: {_describe(value)} is not of type {'/'.join(allowed)}"

    def _union_errors(
        self, value: Any, options: list[Schema], where: str, *, exactly_one: bool
    ) -> Iterator[str]:
        results = [self.validate_at(value, option, where) for option in options]
        passing = sum(1 for errors in results if not errors)
        if passing == 0:
            closest = min(results, key=len)
            kind = "oneOf" if exactly_one else "anyOf"
            yield f"{where}: matches none of the {len(options)} {kind} schemas; closest:"
            yield from (f"  {e}" for e in closest)
        elif exactly_one and passing > 1:
            yield f"{where}: matches {passing} of the oneOf schemas, not exactly one"

    def validate_at(self, value: Any, schema: Schema, where: str) -> list[str]:
        return list(self._errors(value, schema, where))

    def _object_errors(self, value: dict[str, Any], schema: Schema, where: str) -> Iterator[str]:
        properties: dict[str, Schema] = schema.get("properties", {})
        for key in schema.get("required", []):
            if key not in value:
                yield f"{where}: required key {key!r} is missing"
        for key, item in value.items():
            if key in properties:
                yield from self._errors(item, properties[key], f"{where}.{key}")
                continue
            extra = schema.get("additionalProperties", True)
            if extra is False:
                yield f"{where}: unexpected key {key!r}"
            elif isinstance(extra, dict):
                yield from self._errors(item, extra, f"{where}.{key}")
        if "minProperties" in schema and len(value) < schema["minProperties"]:
            yield f"{where}: fewer than {schema['minProperties']} keys"
        if "maxProperties" in schema and len(value) > schema["maxProperties"]:
            yield f"{where}: more than {schema['maxProperties']} keys"

    def _array_errors(self, value: list[Any], schema: Schema, where: str) -> Iterator[str]:
        if "items" in schema:
            for index, item in enumerate(value):
                yield from self._errors(item, schema["items"], f"{where}[{index}]")
        if "minItems" in schema and len(value) < schema["minItems"]:
            yield f"{where}: fewer than {schema['minItems']} items"
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            yield f"{where}: more than {schema['maxItems']} items"
        if schema.get("uniqueItems"):
            seen = [json.dumps(v, sort_keys=True) for v in value]
            if len(set(seen)) != len(seen):
                yield f"{where}: items are not unique"

    def _string_errors(self, value: str, schema: Schema, where: str) -> Iterator[str]:
        if "minLength" in schema and len(value) < schema["minLength"]:
            yield f"{where}: shorter than {schema['minLength']}"
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            yield f"{where}: longer than {schema['maxLength']}"
        if "pattern" in schema and not _pattern(schema["pattern"]).search(value):
            yield f"{where}: {value!r} does not match {schema['pattern']}"
        if schema.get("format") == "date-time" and not _is_date_time(value):
            yield f"{where}: {value!r} is not an RFC 3339 date-time"


@lru_cache(maxsize=512)
def _pattern(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _has_type(value: Any, name: str) -> bool:
    if name == "integer":
        return _is_number(value) and float(value).is_integer()
    if name == "number":
        return _is_number(value)
    return isinstance(value, _TYPES.get(name, ()))


def _same(a: Any, b: Any) -> bool:
    """JSON equality: ``True`` is not ``1``."""
    return type(a) is type(b) and a == b if isinstance(a, bool) or isinstance(b, bool) else a == b


def _is_date_time(value: str) -> bool:
    if "T" not in value:
        return False
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return parsed.tzinfo is not None


def _describe(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."
