"""The public API fuzzed from its own OpenAPI document with schemathesis: no 5xx, and every
documented response matches its schema.

Cases are generated with Hypothesis (bounded), then sent through the test's ASGI client in the
test's event loop, signed in as an account with a connected bot (on the fake Discord), a server,
a website and an agent action, so that generated requests reach real objects as well as random
ids. Runs on SQLite only, to keep CI time down.
"""

from __future__ import annotations

import contextlib
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.api.conftest import World, add_server, add_website, post_action
from tests.conftest import ApiUser

MAX_EXAMPLES = 10


def collect(strategy: Any) -> list[Any]:
    cases: list[Any] = []

    @settings(
        max_examples=MAX_EXAMPLES,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def gather(case: Any) -> None:
        cases.append(case)

    # Unsatisfiable: e.g. no negative input exists for an operation without parameters.
    with contextlib.suppress(Unsatisfiable):
        gather()
    return cases


def order(case: Any) -> int:
    """Cases that destroy what others use run last, the session-ending ones at the very end."""
    path: str = case.operation.path
    if "/logout" in path or (path == "/api/auth/me" and case.method.upper() == "DELETE"):
        return 3
    if path.endswith(("/password", "/disconnect")):
        return 2
    return 1 if case.method.upper() == "DELETE" else 0


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_public_api_fuzz(
    app: FastAPI, client: httpx.AsyncClient, connected: ApiUser, world: World
) -> None:
    server = await add_server(client, connected, world.guild1)
    website = await add_website(client, connected, server["serverId"], "https://example.com/")
    await post_action(client, connected.id, str(world.guild1.id))
    real_ids = {"server_id": server["serverId"], "website_id": website["id"]}

    raw = (await client.get("/api/openapi.json")).json()
    schema = schemathesis.openapi.from_dict(raw)
    cases: list[Any] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]
        operations += 1
        params = {p.name for p in operation.path_parameters}
        fixed = {name: value for name, value in real_ids.items() if name in params}
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            cases += collect(operation.as_strategy(generation_mode=mode))
            if fixed:
                cases += collect(operation.as_strategy(generation_mode=mode, path_parameters=fixed))
    assert operations >= 15
    cases.sort(key=order)

    failures: list[str] = []
    statuses: dict[int, int] = {}
    for case in cases:
        kwargs = case.as_transport_kwargs(base_url="http://testserver", headers=connected.headers)
        request: dict[str, Any] = {
            "headers": {k: str(v) for k, v in (kwargs.get("headers") or {}).items()},
            "params": kwargs.get("params"),
        }
        if kwargs.get("cookies"):
            cookie = "; ".join(f"{k}={v}" for k, v in kwargs["cookies"].items())
            request["headers"]["Cookie"] = cookie
        if "json" in kwargs:
            request["json"] = kwargs["json"]
        elif kwargs.get("data") is not None:
            data = kwargs["data"]
            request["content"] = data if isinstance(data, bytes | str) else str(data)
        try:
            response = await client.request(kwargs["method"], kwargs["url"], **request)
        except UnicodeEncodeError:
            continue  # not sendable over HTTP at all (e.g. a lone surrogate in a header)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        if response.status_code >= 500:
            failures.append(f"{response.status_code} {case.as_curl_command()}\n{response.text}")
            continue
        try:
            case.validate_response(
                response, checks=[not_a_server_error, response_schema_conformance]
            )
        except Exception as exc:  # a check failure: collect them all, then report
            failures.append(f"{case.method} {case.path}: {exc}")
    print(f"fuzz: {len(cases)} cases, {operations} operations, statuses {sorted(statuses.items())}")
    assert len(cases) > 100
    assert not failures, "\n\n".join(failures[:10])
