"""The OpenAPI document lists the error answers the API gives (and not the 422 it never sends).
Whether the answers really match is what ``test_fuzz.py`` checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from neonrain.app import create_app
from neonrain.openapi import ROUTE_ERRORS
from tests.conftest import make_settings


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("openapi")
    app = create_app(make_settings(f"sqlite+aiosqlite:///{tmp}/n.db", Path(tmp)))
    return app.openapi()


def operations(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        f"{method.upper()} {path}": operation
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    }


def statuses(document: dict[str, Any], name: str) -> set[str]:
    return set(operations(document)[name]["responses"])


def test_no_operation_lists_422(document: dict[str, Any]) -> None:
    for name, operation in operations(document).items():
        assert "422" not in operation["responses"], name
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_errors_have_the_error_shape(document: dict[str, Any]) -> None:
    error = document["components"]["schemas"]["Error"]
    assert error["required"] == ["error", "code"]
    assert set(error["properties"]) == {"error", "code", "details"}
    for name, operation in operations(document).items():
        for status, response in operation["responses"].items():
            if status.startswith(("4", "5")) and name != "GET /healthz":
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}, (name, status)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("POST /api/auth/register", {"201", "400", "403", "409", "413", "429", "503"}),
        ("POST /api/auth/login", {"200", "400", "401", "413", "429", "503"}),
        ("GET /api/auth/me", {"200", "401", "503"}),
        ("POST /api/auth/logout", {"204", "401", "403", "503"}),
        ("GET /api/servers/{server_id}", {"200", "401", "404", "503"}),
        ("GET /api/servers/{server_id}/stats", {"200", "400", "401", "404", "503"}),
        (
            "POST /api/servers/{server_id}/websites",
            {"201", "400", "401", "403", "404", "409", "413", "503"},
        ),
        (
            "POST /api/servers/{server_id}/websites/{website_id}/scrape",
            {"202", "401", "403", "404", "429", "503"},
        ),
        ("GET /api/discord/guilds", {"200", "401", "409", "502", "503"}),
        ("GET /healthz", {"200", "503"}),
    ],
)
def test_error_answers_follow_the_routes(
    document: dict[str, Any], name: str, expected: set[str]
) -> None:
    assert statuses(document, name) == expected


def test_rate_limits_document_retry_after(document: dict[str, Any]) -> None:
    for name, operation in operations(document).items():
        if "429" in operation["responses"]:
            assert operation["responses"]["429"]["headers"]["Retry-After"]["required"], name


def test_every_route_specific_entry_names_a_published_operation(document: dict[str, Any]) -> None:
    published = set(operations(document))
    for method, path in ROUTE_ERRORS:
        assert f"{method} {path}" in published
