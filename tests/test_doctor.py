"""``neonrain doctor`` against a running install (the web app on a real port, the fake Discord and
the fake HUMA, a migrated database): a healthy install passes and exits 0; each failure exits
non-zero and its line names it."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from neonrain import doctor
from neonrain.config import Settings
from neonrain.db.migrate import head_revision
from tests.conftest import TEST_INTERNAL_KEY, TEST_SECRET_KEY, make_settings
from tests.fakes.fake_discord import FakeDiscord, FakeGuild
from tests.fakes.fake_huma import FakeHuma
from tests.webapp import WebApp, free_port

BOT_TOKEN = "ada-bot-token.doctor"
HUMA_KEY = "doctor-huma-key"
EMAIL = "ada@example.com"


@dataclass
class Install:
    database_url: str
    tmp_path: Path
    web: WebApp
    discord: FakeDiscord
    huma: FakeHuma
    guild: FakeGuild
    user_id: str

    def settings(self, **overrides: Any) -> Settings:
        """This install's settings as an operator's shell would have them (a worker's view:
        NEONRAIN_BACKEND_URL points at the web app)."""
        values: dict[str, Any] = {
            "DISCORD_API_URL": self.discord.api_url,
            "HUMA_API_URL": self.huma.url,
            "HUMA_API_KEY": HUMA_KEY,
            "NEONRAIN_BACKEND_URL": self.web.url,
        }
        values.update(overrides)
        return make_settings(self.database_url, self.tmp_path, **values)

    def environment(self, **overrides: str) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(
                ("NEONRAIN_", "DATABASE_URL", "INTERNAL_API_KEY", "HUMA_", "DISCORD_")
            )
        }
        env.update(
            DATABASE_URL=self.database_url,
            NEONRAIN_SECRET_KEY=TEST_SECRET_KEY,
            INTERNAL_API_KEY=TEST_INTERNAL_KEY,
            DISCORD_API_URL=self.discord.api_url,
            HUMA_API_URL=self.huma.url,
            HUMA_API_KEY=HUMA_KEY,
            NEONRAIN_BACKEND_URL=self.web.url,
        )
        env.update(overrides)
        return env

    async def report(self, **entry: Any) -> None:
        """A worker-status report for Ada, as the worker posts it."""
        body = {"tokens": [{"userId": self.user_id, **entry}]}
        async with httpx.AsyncClient(base_url=self.web.url, timeout=10) as http:
            response = await http.post(
                "/api/discord/worker-status", json=body, headers={"X-API-Key": TEST_INTERNAL_KEY}
            )
        assert response.status_code == 204, response.text


def online(guild: FakeGuild) -> dict[str, Any]:
    return {
        "state": "online",
        "guilds": [{"guildId": str(guild.id), "present": True, "channelsWatched": 2,
                    "channelsReadable": 2, "channelsSendable": 2}],
    }  # fmt: skip


@pytest.fixture
async def install(database_url: str, tmp_path: Path) -> AsyncIterator[Install]:
    """Ada's bot is connected and switched on in Gaming; the worker reports it can answer."""
    async with FakeDiscord() as discord, FakeHuma(api_key=HUMA_KEY) as huma:
        bot = discord.add_bot(BOT_TOKEN, "Ada Bot")
        guild = discord.add_guild("Gaming", bots=[bot])
        web_settings = make_settings(
            database_url,
            tmp_path,
            DISCORD_API_URL=discord.api_url,
            HUMA_API_URL=huma.url,
            HUMA_API_KEY=HUMA_KEY,
        )
        app = WebApp(web_settings)
        await app.start()
        try:
            async with httpx.AsyncClient(base_url=app.url, timeout=10) as http:
                registered = await http.post(
                    "/api/auth/register", json={"email": EMAIL, "password": "correct horse battery"}
                )
                assert registered.status_code == 201, registered.text
                auth = {"Authorization": f"Bearer {registered.json()['token']}"}
                connected = await http.post(
                    "/api/discord/connect", json={"token": BOT_TOKEN}, headers=auth
                )
                assert connected.status_code == 200, connected.text
                added = await http.post(
                    "/api/servers", json={"guildId": str(guild.id)}, headers=auth
                )
                assert added.status_code == 201, added.text
                switched = await http.put(
                    f"/api/servers/{added.json()['serverId']}",
                    json={"botActive": True},
                    headers=auth,
                )
                assert switched.status_code == 200, switched.text
            found = Install(
                database_url, tmp_path, app, discord, huma, guild, registered.json()["user"]["id"]
            )
            await found.report(**online(guild))
            yield found
        finally:
            await app.stop()


def by_check(report: doctor.Report) -> dict[str, doctor.Finding]:
    return {f.check: f for f in report.findings}


def failing(report: doctor.Report) -> list[str]:
    return [f.check for f in report.findings if f.status == "fail"]


# ------------------------------------------------------------------------------------ healthy


async def test_a_healthy_install_passes(install: Install) -> None:
    report = await doctor.run(install.settings(), accounts=True)
    assert report.ok, report.text()
    found = by_check(report)
    assert found["database"].status == "ok" and "newest migration" in found["database"].message
    assert found["secret key"].message.endswith(
        "decrypts all 1 stored Discord token and 0 engine keys"
    )
    assert found["HUMA"].status == "ok" and found["HUMA"].target == install.huma.url
    assert found["Discord"].status == "ok"
    assert found["Discord"].target == f"{install.discord.api_url}/gateway"
    assert found["internal API"].status == "ok"
    assert found["OpenAI-compatible engine"].status == "skip"
    server = found[f"{EMAIL} · Gaming"]
    assert server.status == "ok" and server.readiness is not None
    assert server.readiness["ready"] is True
    # The checks really asked: HUMA with the key, Discord's gateway without a token.
    probe = [r for r in install.huma.rest_requests if r.path.endswith(doctor.PROBE_AGENT_ID)]
    assert probe and probe[0].api_key == HUMA_KEY and probe[0].status == 404
    assert any(r.path == "/gateway" for r in install.discord.requests)
    text_report = report.text()
    assert "✓ database:" in text_report and "✗" not in text_report
    assert text_report.endswith("Everything checked is fine.")


async def run_command(install: Install, *args: str, **env: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "neonrain", "doctor", *args,
        env=install.environment(**env),
        cwd=install.tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, output.decode()


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_the_command_exits_0_when_healthy_and_1_naming_the_failure(
    install: Install,
) -> None:
    code, output = await run_command(install, "--accounts")
    assert code == 0, output
    assert "✓ database:" in output and f"✓ {EMAIL} · Gaming: Active" in output

    code, output = await run_command(install, "--accounts", HUMA_API_KEY="wrong-key")
    assert code == 1, output
    assert f"✗ HUMA: {install.huma.url} refused the key (HTTP 401)" in output

    code, output = await run_command(install, "--json", HUMA_API_KEY="wrong-key")
    assert code == 1
    document = json.loads(output)
    assert document["ok"] is False
    assert [c["check"] for c in document["checks"] if c["status"] == "fail"] == ["HUMA"]


# ------------------------------------------------------------------------------------ database


async def test_an_unreachable_database_fails(tmp_path: Path) -> None:
    port = free_port()
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{port}/neonrain"
    settings = make_settings(url, tmp_path, DISCORD_API_URL="http://127.0.0.1:9")
    report = await doctor.run(settings, accounts=True, timeout=5)
    database = by_check(report)["database"]
    assert database.status == "fail" and f"127.0.0.1:{port}" in database.message
    assert "cannot reach" in database.message
    assert by_check(report)["accounts"].status == "skip"
    assert not report.ok


async def test_a_missing_sqlite_file_fails_and_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "neonrain.db"
    settings = make_settings(f"sqlite+aiosqlite:///{path}", tmp_path)
    report = await doctor.run(settings, timeout=1)
    assert failing(report)[0] == "database"
    assert "neonrain db upgrade" in by_check(report)["database"].message
    assert not path.exists() and not path.parent.exists()


async def test_a_database_without_migrations_fails(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()
    report = await doctor.run(make_settings(f"sqlite+aiosqlite:///{path}", tmp_path), timeout=1)
    database = by_check(report)["database"]
    assert database.status == "fail" and "not migrated" in database.message


async def test_a_database_behind_the_newest_migration_fails(install: Install) -> None:
    engine = create_async_engine(install.database_url)

    async def stamp(revision: str) -> None:
        async with engine.begin() as connection:
            await connection.execute(
                text("UPDATE alembic_version SET version_num = :revision"), {"revision": revision}
            )

    # (The PostgreSQL database is shared by the run's tests: put the revision back.)
    await stamp("0001_legacy_schema")
    try:
        report = await doctor.run(install.settings())
    finally:
        await stamp(head_revision())
        await engine.dispose()
    database = by_check(report)["database"]
    assert database.status == "fail"
    assert "at migration 0001_legacy_schema, the newest is" in database.message


# ------------------------------------------------------------------------------------ secrets


async def test_a_wrong_secret_key_says_how_many_tokens_it_cannot_read(install: Install) -> None:
    report = await doctor.run(install.settings(NEONRAIN_SECRET_KEY="another-key"))
    assert failing(report) == ["secret key"]
    assert "cannot decrypt 1 of 1 stored Discord token" in by_check(report)["secret key"].message


async def test_no_secret_key_with_stored_tokens_fails(install: Install, tmp_path: Path) -> None:
    settings = install.settings(
        NEONRAIN_SECRET_KEY="", NEONRAIN_SECRET_KEY_FILE=str(tmp_path / "none")
    )
    report = await doctor.run(settings)
    secret = by_check(report)["secret key"]
    assert secret.status == "fail" and "1 stored Discord token" in secret.message
    assert not (tmp_path / "none").exists()  # the doctor does not generate one


# ------------------------------------------------------------------------------------ HUMA


async def test_huma_down_fails_naming_the_address(install: Install) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    report = await doctor.run(install.settings(HUMA_API_URL=dead))
    assert failing(report) == ["HUMA"]
    assert by_check(report)["HUMA"].message.startswith(f"{dead} cannot be reached")


async def test_huma_refusing_the_key_fails(install: Install) -> None:
    report = await doctor.run(install.settings(HUMA_API_KEY="not-the-key"))
    assert failing(report) == ["HUMA"]
    assert "refused the key (HTTP 401): check HUMA_API_KEY" in by_check(report)["HUMA"].message


async def test_a_huma_that_does_not_answer_times_out(install: Install) -> None:
    install.huma.rest_delay = 5
    report = await doctor.run(install.settings(), timeout=0.5)
    assert failing(report) == ["HUMA"]
    assert "did not answer within 0.5 s" in by_check(report)["HUMA"].message


# ------------------------------------------------------------------------------------ Discord


async def test_discord_unreachable_fails(install: Install) -> None:
    dead = f"http://127.0.0.1:{free_port()}/api/v10"
    report = await doctor.run(install.settings(DISCORD_API_URL=dead))
    assert failing(report) == ["Discord"]
    assert by_check(report)["Discord"].message.startswith(f"{dead}/gateway cannot be reached")


async def test_a_discord_that_hangs_or_fails_is_reported(install: Install) -> None:
    rule = install.discord.hang("/gateway")
    report = await doctor.run(install.settings(), timeout=0.5)
    assert "did not answer within 0.5 s" in by_check(report)["Discord"].message
    install.discord.failures.remove(rule)
    install.discord.add_failure("/gateway", status=503, times=1)
    report = await doctor.run(install.settings())
    assert by_check(report)["Discord"].message.endswith("answered HTTP 503")


# ------------------------------------------------------------------------------------ internal API


async def test_a_wrong_internal_key_fails(install: Install) -> None:
    report = await doctor.run(install.settings(INTERNAL_API_KEY="some-other-key"))
    assert failing(report) == ["internal API"]
    assert (
        "the web app and this process use different INTERNAL_API_KEY values"
        in by_check(report)["internal API"].message
    )


async def test_the_internal_key_is_checked_only_with_an_explicit_backend(
    install: Install,
) -> None:
    settings = make_settings(
        install.database_url,
        install.tmp_path,
        DISCORD_API_URL=install.discord.api_url,
        HUMA_API_URL=install.huma.url,
        HUMA_API_KEY=HUMA_KEY,
    )
    report = await doctor.run(settings)
    assert report.ok and by_check(report)["internal API"].status == "skip"


# ------------------------------------------------------------------------------------ accounts


async def test_an_account_whose_server_cannot_answer_fails(install: Install) -> None:
    await install.report(state="connecting", detail="resuming", reason="intent_missing")
    report = await doctor.run(install.settings(), accounts=True)
    line = by_check(report)[f"{EMAIL} · Gaming"]
    assert line.status == "fail"
    assert line.message.startswith("On, but not answering: Discord refused the message content")
    assert line.readiness is not None and line.readiness["ready"] is False
    assert failing(report) == [f"{EMAIL} · Gaming"]
    assert f"✗ {EMAIL} · Gaming: On, but not answering" in report.text()
    # Without --accounts the install itself is fine.
    assert (await doctor.run(install.settings())).ok


async def test_servers_switched_off_or_still_checking_are_not_failures(install: Install) -> None:
    await install.report(state="connecting", detail="starting")
    report = await doctor.run(install.settings(), accounts=True)
    line = by_check(report)[f"{EMAIL} · Gaming"]
    assert line.status == "skip" and line.message.startswith("On — checking… (Connecting")
    assert report.ok


# ------------------------------------------------------------------------------------ OpenAI


@pytest.fixture
async def models_server() -> AsyncIterator[str]:
    """A minimal OpenAI-compatible ``/v1/models``: key ``good-key``, one model ``llama3``."""

    async def models(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != "Bearer good-key":
            return web.json_response({"error": {"message": "Incorrect API key"}}, status=401)
        return web.json_response({"object": "list", "data": [{"id": "llama3"}]})

    app = web.Application()
    app.router.add_get("/v1/models", models)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize(
    ("key", "model", "expected"),
    [
        ("good-key", "llama3", None),
        ("bad-key", "llama3", "refused the key (HTTP 401): check NEONRAIN_OPENAI_API_KEY"),
        ("good-key", "gpt-9", "model 'gpt-9' is not among the 1 it lists"),
    ],
)
async def test_the_installs_openai_engine_is_checked(
    install: Install, models_server: str, key: str, model: str, expected: str | None
) -> None:
    settings = install.settings(
        NEONRAIN_OPENAI_BASE_URL=models_server,
        NEONRAIN_OPENAI_MODEL=model,
        NEONRAIN_OPENAI_API_KEY=key,
    )
    report = await doctor.run(settings)
    engine = by_check(report)["OpenAI-compatible engine"]
    assert engine.target == f"{models_server}/models"
    if expected is None:
        assert engine.status == "ok" and report.ok
    else:
        assert engine.status == "fail" and expected in engine.message
        assert failing(report) == ["OpenAI-compatible engine"]


async def test_half_an_openai_configuration_fails(tmp_path: Path, sqlite_template: Path) -> None:
    settings = make_settings(
        f"sqlite+aiosqlite:///{sqlite_template}",
        tmp_path,
        NEONRAIN_OPENAI_BASE_URL="http://127.0.0.1:9/v1",
        DISCORD_API_URL="http://127.0.0.1:9",
    )
    engine = by_check(await doctor.run(settings, timeout=1))["OpenAI-compatible engine"]
    assert engine.status == "fail" and "NEONRAIN_OPENAI_MODEL is not set" in engine.message
