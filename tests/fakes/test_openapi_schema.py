"""The small JSON Schema validator of the fidelity test, on hand-written schemas."""

from __future__ import annotations

import pytest

from tests.fakes.openapi_schema import OpenApiDocument

DOC = OpenApiDocument(
    {
        "paths": {
            "/things/{id}": {
                "get": {
                    "responses": {
                        "200": {"$ref": "#/components/responses/Thing"},
                        "4XX": {
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Error"}
                                }
                            }
                        },
                        "204": {"description": "no body"},
                    }
                }
            }
        },
        "components": {
            "responses": {
                "Thing": {
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}
                    }
                }
            },
            "schemas": {
                "Id": {"type": "string", "pattern": "^(0|[1-9][0-9]*)$"},
                "Error": {
                    "type": "object",
                    "properties": {"code": {"type": "integer"}, "message": {"type": "string"}},
                    "required": ["code", "message"],
                },
                "Thing": {
                    "type": "object",
                    "properties": {
                        "id": {"$ref": "#/components/schemas/Id"},
                        "name": {"type": ["string", "null"], "maxLength": 5},
                        "kind": {"type": "integer", "enum": [1, 2]},
                        "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
                        "when": {"type": "string", "format": "date-time"},
                    },
                    "required": ["id", "name"],
                    "additionalProperties": False,
                },
            },
        },
    }
)


def test_responses_are_found_by_exact_status_then_class() -> None:
    assert DOC.response_schema("GET", "/things/{id}", 200) == {"$ref": "#/components/schemas/Thing"}
    assert DOC.response_schema("GET", "/things/{id}", 403) == {"$ref": "#/components/schemas/Error"}
    assert DOC.response_schema("GET", "/things/{id}", 204) is None  # declared, without a body
    with pytest.raises(KeyError):
        DOC.response_schema("GET", "/things/{id}", 500)
    with pytest.raises(KeyError):
        DOC.operation("POST", "/things/{id}")


def test_objects_types_and_references() -> None:
    thing = {"$ref": "#/components/schemas/Thing"}
    good = {"id": "12", "name": None, "kind": 2, "tags": ["a"], "when": "2024-05-01T12:00:00+00:00"}
    assert DOC.validate(good, thing) == []
    assert DOC.validate({**good, "id": "012"}, thing) == [
        "$.id: '012' does not match ^(0|[1-9][0-9]*)$"
    ]
    assert DOC.validate({"id": "1"}, thing) == ["$: required key 'name' is missing"]
    assert DOC.validate({**good, "extra": 1}, thing) == ["$: unexpected key 'extra'"]
    assert DOC.validate({**good, "name": "toolong"}, thing) == ["$.name: longer than 5"]
    assert DOC.validate({**good, "kind": 3}, thing) == ["$.kind: 3 is not one of [1, 2]"]
    assert DOC.validate({**good, "kind": True}, thing)  # a boolean is not an integer
    assert DOC.validate({**good, "tags": ["a", "a"]}, thing) == ["$.tags: items are not unique"]
    assert DOC.validate({**good, "tags": [1]}, thing) == ["$.tags[0]: 1 is not of type string"]
    naive = {**good, "when": "2024-05-01T12:00:00"}
    assert DOC.validate(naive, thing) == [
        "$.when: '2024-05-01T12:00:00' is not an RFC 3339 date-time"
    ]
    assert DOC.validate([], thing) == ["$: [] is not of type object"]


def test_unions() -> None:
    one_of = {"oneOf": [{"type": "integer"}, {"type": "number", "minimum": 0}]}
    assert DOC.validate(-1, one_of) == []  # only the integer branch
    assert DOC.validate(1.5, one_of) == []  # only the number branch
    assert DOC.validate(1, one_of) == ["$: matches 2 of the oneOf schemas, not exactly one"]
    assert DOC.validate("x", one_of)[0] == "$: matches none of the 2 oneOf schemas; closest:"
    any_of = {"anyOf": [{"type": "integer"}, {"type": "number", "minimum": 0}]}
    assert DOC.validate(1, any_of) == []
    all_of = {"allOf": [{"type": "integer"}, {"minimum": 3}]}
    assert DOC.validate(2, all_of) == ["$: 2 < minimum 3"]
    assert DOC.validate(0, {"const": 0}) == []
    assert DOC.validate(False, {"const": 0}) == ["$: False is not 0"]
    nested = {"type": "object", "additionalProperties": {"type": "integer"}}
    assert DOC.validate({"a": 1, "b": "2"}, nested) == ['$.b: "2" is not of type integer']
