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
from schemathesis.config import SchemathesisConfig
from schemathesis.generation import GenerationMode

from tests.api.conftest import World, add_server, add_website, post_action
from tests.conftest import ApiUser

MAX_EXAMPLES = 10

#: Operations whose documented rules refuse some schema-valid requests with 400 and a code of
#: their own, which the JSON schema cannot say: schemathesis' positive_data_acceptance check
#: accepts a 400 from these (and only these).
RULES_BEYOND_THE_SCHEMA = {
    "POST /api/auth/register": "special-use email domains (.test, .local, …); common passwords",
    "POST /api/auth/password": "WRONG_PASSWORD; common passwords",
    "DELETE /api/auth/me": "CONFIRMATION_MISMATCH",
    "POST /api/discord/connect": "DISCORD_TOKEN_INVALID: only Discord knows the token",
    "PUT /api/servers/{server_id}": "NOTHING_TO_UPDATE for an empty body",
    "POST /api/servers/{server_id}/websites": "INVALID_URL: the URL and address rules",
    "GET /api/chat/conversations/{conversation_id}/messages": "before: not a message there",
    "PUT /api/engine/openai": "INVALID_URL: the URL and address rules for a base URL",
}


def fuzz_config() -> SchemathesisConfig:
    accepted = ["2xx", "3xx", "400", "401", "403", "404", "409", "429", "5xx"]
    return SchemathesisConfig.from_dict(
        {
            "operations": [
                {
                    "include-name": name,
                    "checks": {"positive_data_acceptance": {"expected-statuses": accepted}},
                }
                for name in RULES_BEYOND_THE_SCHEMA
            ]
        }
    )


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


# Bounded by MAX_EXAMPLES; generating negative path parameters is slow on a busy machine.
@pytest.mark.timeout(300)
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_public_api_fuzz(
    app: FastAPI, client: httpx.AsyncClient, connected: ApiUser, world: World
) -> None:
    server = await add_server(client, connected, world.guild1)
    website = await add_website(client, connected, server["serverId"], "https://example.com/")
    await post_action(client, connected.id, str(world.guild1.id))
    real_ids = {"server_id": server["serverId"], "website_id": website["id"]}

    raw = (await client.get("/api/openapi.json")).json()
    schema = schemathesis.openapi.from_dict(raw, config=fuzz_config())
    names = {f"{method.upper()} {path}" for path, ops in raw["paths"].items() for method in ops}
    assert set(RULES_BEYOND_THE_SCHEMA) <= names  # no stale entries
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

    failures: dict[str, str] = {}  # one example of each distinct failure
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
        where = f"{case.method} {case.path}"
        if response.status_code >= 500:
            failures.setdefault(f"{where}: {response.status_code}", case.as_curl_command())
            continue
        try:
            case.validate_response(response)  # every default check of schemathesis
        except BaseExceptionGroup as group:
            for failure in group.exceptions:
                failures.setdefault(
                    f"{where}: {type(failure).__name__}",
                    f"{failure}\n{case.as_curl_command()}\n{response.status_code} {response.text}",
                )
        except Exception as exc:
            failures.setdefault(f"{where}: {type(exc).__name__}", str(exc))
    print(f"fuzz: {len(cases)} cases, {operations} operations, statuses {sorted(statuses.items())}")
    assert len(cases) > 100
    assert not failures, "\n".join(failures) + "\n\n" + "\n\n".join(list(failures.values())[:8])
