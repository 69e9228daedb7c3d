"""The ``neonrain`` command as a person runs it: serve with no configuration, user create, help,
a busy port, and Ctrl-C / SIGTERM with a HUMA agent connected."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from neonrain.cli import cli
from neonrain.crypto import TokenCipher
from neonrain.db.migrate import upgrade_database
from tests import pg
from tests.conftest import TEST_SECRET_KEY, require_postgres
from tests.fakes.fake_discord import FakeDiscord
from tests.fakes.fake_huma import FakeHuma
from tests.webapp import ThreadLoop, free_port


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("NEONRAIN_", "DATABASE_URL", "INTERNAL_API_KEY", "HUMA_", "CLERK_"))
    }
    env.update(extra)
    return env


def wait_for(url: str, process: subprocess.Popen[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"server exited early:\n{process.stdout.read() if process.stdout else ''}"
            )
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not come up")


def test_serve_runs_with_no_configuration_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "neonrain", "serve", "--port", str(port)],
        cwd=tmp_path,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(f"{base}/healthz", process)
        with httpx.Client(base_url=base, timeout=10) as http:
            registered = http.post(
                "/api/auth/register",
                json={"email": "ada@example.com", "password": "correct horse battery"},
            )
            assert registered.status_code == 201
            me = http.get("/api/auth/me")  # the cookie jar carries the session
            assert me.json()["user"]["email"] == "ada@example.com"
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
        assert time.monotonic() - started < 10
    finally:
        if process.poll() is None:
            process.kill()
    output = process.stdout.read() if process.stdout else ""
    # uvicorn re-raises SIGTERM after its graceful shutdown, as a service manager expects.
    assert process.returncode in (0, -signal.SIGTERM), output
    assert "Application shutdown complete" in output
    assert "Traceback" not in output and " ERROR " not in output, output
    assert f"listening on http://localhost:{port}" in output
    assert "database sqlite+aiosqlite:///./neonrain.db" in output
    assert (tmp_path / "neonrain.db").exists()
    secret = tmp_path / ".neonrain-secret"
    assert secret.exists() and (secret.stat().st_mode & 0o777) == 0o600


def test_user_create_when_registration_is_closed(tmp_path: Path) -> None:
    env = clean_env(NEONRAIN_ALLOW_REGISTRATION="false")
    result = subprocess.run(
        [sys.executable, "-m", "neonrain", "user", "create", "ops@example.com", "--password-stdin"],
        cwd=tmp_path,
        env=env,
        input="a long enough password\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "created account ops@example.com" in result.stdout
    short = subprocess.run(
        [sys.executable, "-m", "neonrain", "user", "create", "x@example.com", "--password-stdin"],
        cwd=tmp_path,
        env=env,
        input="short\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert short.returncode == 2
    assert "password" in short.stderr


def test_web_refuses_several_workers_on_sqlite(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "neonrain", "web", "--workers", "2"],
        cwd=tmp_path,
        env=clean_env(INTERNAL_API_KEY="k" * 32),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "--workers above 1 needs PostgreSQL" in result.stderr


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
                found.append(int(entry.name))
    return found


@pytest.mark.postgres
def test_web_with_two_workers_shares_the_port_and_answers_long_polls_on_sigterm(
    tmp_path: Path,
) -> None:
    require_postgres()
    key = "internal-key-for-the-cli-test"
    with pg.throwaway_database_sync("neonrain_cli") as name:
        url = pg.sqlalchemy_url(name)
        asyncio.run(upgrade_database(url, TokenCipher(TEST_SECRET_KEY)))
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "neonrain", "web", "--port", str(port), "--no-scraper"],
            cwd=tmp_path,
            env=clean_env(
                DATABASE_URL=url,
                NEONRAIN_SECRET_KEY=TEST_SECRET_KEY,
                INTERNAL_API_KEY=key,
                WEB_CONCURRENCY="2",
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_for(f"{base}/healthz", process)
            # Both processes take connections; each request below comes on a new one.
            deadline = time.monotonic() + 30
            while len(_children(process.pid)) < 2 and time.monotonic() < deadline:
                time.sleep(0.2)
            assert len(_children(process.pid)) >= 2
            registered = httpx.post(
                f"{base}/api/auth/register",
                json={"email": "ada@example.com", "password": "correct horse battery"},
            )
            assert registered.status_code == 201
            bearer = {"Authorization": f"Bearer {registered.json()['token']}"}
            for _ in range(10):
                assert httpx.get(f"{base}/api/servers", headers=bearer).status_code == 200

            internal = {"X-API-Key": key}
            first = httpx.get(f"{base}/api/discord/tokens", headers=internal)
            assert first.status_code == 200
            generation = first.json()["generation"]
            answers: list[httpx.Response | Exception] = []

            def long_poll() -> None:
                try:
                    answers.append(
                        httpx.get(
                            f"{base}/api/discord/tokens",
                            params={"since": generation, "wait": 30},
                            headers={**internal, "If-None-Match": first.headers["ETag"]},
                            timeout=60,
                        )
                    )
                except httpx.HTTPError as exc:
                    answers.append(exc)

            poller = threading.Thread(target=long_poll)
            poller.start()
            time.sleep(1.5)  # the request is waiting in one of the processes
            assert not answers
            process.send_signal(signal.SIGTERM)
            poller.join(timeout=30)
            process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    output = process.stdout.read() if process.stdout else ""
    assert "2 worker processes" in output, output
    # Answered (nothing changed: 304) instead of being cut off when the grace period ran out.
    assert len(answers) == 1 and isinstance(answers[0], httpx.Response), (answers, output)
    assert answers[0].status_code == 304


# ------------------------------------------------------------------------------------ help


def test_help_shows_no_value_after_flags() -> None:
    runner = CliRunner()
    for args in ([], ["serve"], ["web"], ["worker"], ["db"], ["user", "create"]):
        result = runner.invoke(cli, [*args, "--help"])
        assert result.exit_code == 0, result.output
        assert "--help" in result.output
        assert "<bool>" not in result.output, result.output
        flag_with_value = re.search(r"--(help|no-scraper|password-stdin)\s+<", result.output)
        assert flag_with_value is None, result.output
    web_help = runner.invoke(cli, ["web", "--help"]).output
    assert re.search(r"--port <int>\s+Listen port", web_help), web_help  # valued options keep it


# ------------------------------------------------------------------------------------ busy port


def test_serve_and_web_on_a_busy_port_fail_at_once_starting_nothing(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        for command, env in (
            (["serve"], clean_env()),
            (["web"], clean_env(INTERNAL_API_KEY="k" * 32)),
        ):
            started = time.monotonic()
            result = subprocess.run(
                [sys.executable, "-m", "neonrain", *command, "--port", str(port)],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            output = result.stdout + result.stderr
            assert result.returncode == 1, output
            assert output.strip() == f"cannot start: 127.0.0.1:{port} is already in use", output
            assert time.monotonic() - started < 20
    # Nothing started: no database was created or upgraded, no secret generated.
    assert not (tmp_path / "neonrain.db").exists()
    assert not (tmp_path / ".neonrain-secret").exists()


# ------------------------------------------------------------------------------------ signals

DISCORD_TOKEN = "MTA3Nzc3.cli-signal-token.for-the-fake"
HUMA_KEY = "cli-signal-huma-key"


@dataclass
class Fakes:
    discord: FakeDiscord
    huma: FakeHuma
    loop: ThreadLoop
    guild_id: int
    channel_id: int

    def env(self, **extra: str) -> dict[str, str]:
        return clean_env(
            DISCORD_API_URL=self.discord.api_url,
            DISCORD_GATEWAY_URL=self.discord.gateway_url,
            HUMA_API_URL=self.huma.url,
            HUMA_API_KEY=HUMA_KEY,
            NEONRAIN_TYPING_WPM="6000",
            **extra,
        )


@pytest.fixture
def fakes() -> Iterator[Fakes]:
    loop = ThreadLoop("cli-fakes")
    discord = loop.run(FakeDiscord().start())
    huma = loop.run(FakeHuma(api_key=HUMA_KEY).start())

    def world() -> tuple[int, int]:
        huma.script(reply="Hello from the agent")
        bot = discord.add_bot(DISCORD_TOKEN, "Rainbot")
        guild = discord.add_guild("Rain", bots=[bot])
        general = next(c for c in guild.channels if c.name == "general")
        return guild.id, general.id

    guild_id, channel_id = loop.call(world)
    try:
        yield Fakes(discord, huma, loop, guild_id, channel_id)
    finally:
        loop.run(huma.stop())
        loop.run(discord.stop())
        loop.close()


def start(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "neonrain", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def answered_message(base: str, fakes: Fakes) -> None:
    """An account with the fake bot switched on in one guild, and one message the agent answered
    through the fake Discord: the HUMA agent is connected when this returns."""
    with httpx.Client(base_url=base, timeout=10) as http:
        registered = http.post(
            "/api/auth/register",
            json={"email": "ada@example.com", "password": "correct horse battery"},
        )
        assert registered.status_code == 201, registered.text
        auth = {"Authorization": f"Bearer {registered.json()['token']}"}
        connected = http.post("/api/discord/connect", json={"token": DISCORD_TOKEN}, headers=auth)
        assert connected.status_code == 200, connected.text
        added = http.post("/api/servers", json={"guildId": str(fakes.guild_id)}, headers=auth)
        assert added.status_code == 201, added.text
        server = added.json()["serverId"]
        assert http.put(f"/api/servers/{server}", json={"botActive": True}, headers=auth).is_success
    deadline = time.monotonic() + 45
    while time.monotonic() < deadline:
        # Until the worker watches the guild, messages go unheard: post again now and then.
        fakes.loop.run(
            fakes.discord.post_user_message(fakes.guild_id, fakes.channel_id, "ana", "hello")
        )
        for _ in range(10):
            sent = fakes.loop.call(lambda: list(fakes.discord.sent_messages))
            if sent:
                assert sent[0].content == "Hello from the agent"
                return
            time.sleep(0.2)
    raise AssertionError("the agent never answered")


def stop(process: subprocess.Popen[str], signum: int) -> str:
    started = time.monotonic()
    process.send_signal(signum)
    try:
        process.wait(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = process.stdout.read() if process.stdout else ""
    assert time.monotonic() - started < 12, output
    return output


def assert_clean(output: str) -> None:
    for bad in ("Traceback", "CancelledError", "KeyboardInterrupt", "Aborted", " ERROR "):
        assert bad not in output, output


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_serve_with_a_live_agent_stops_cleanly(
    signum: signal.Signals, fakes: Fakes, tmp_path: Path
) -> None:
    port = free_port()
    process = start(["serve", "--port", str(port)], tmp_path, fakes.env())
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(f"{base}/healthz", process)
        answered_message(base, fakes)
        output = stop(process, signum)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    # Ctrl-C exits 0; after SIGTERM uvicorn re-raises the signal, as a service manager expects.
    expected = (0,) if signum == signal.SIGINT else (0, -signal.SIGTERM)
    assert process.returncode in expected, output
    assert_clean(output)
    assert "Application shutdown complete" in output
    assert "worker stopped" in output


def test_web_and_worker_with_a_live_agent_stop_cleanly_on_ctrl_c(
    fakes: Fakes, tmp_path: Path
) -> None:
    """Ctrl-C in each terminal (SIGTERM with an agent: the serve test above, same worker code)."""
    signum = signal.SIGINT
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    key = "internal-key-for-the-signal-test"
    upgraded = subprocess.run(
        [sys.executable, "-m", "neonrain", "db", "upgrade"],
        cwd=tmp_path,
        env=fakes.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert upgraded.returncode == 0, upgraded.stderr
    web = start(
        ["web", "--port", str(port), "--no-scraper"], tmp_path, fakes.env(INTERNAL_API_KEY=key)
    )
    worker: subprocess.Popen[str] | None = None
    try:
        wait_for(f"{base}/healthz", web)
        worker = start(
            ["worker"], tmp_path, fakes.env(INTERNAL_API_KEY=key, NEONRAIN_BACKEND_URL=base)
        )
        answered_message(base, fakes)
        worker_output = stop(worker, signum)
        web_output = stop(web, signum)
    finally:
        for process in (worker, web):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
    assert worker is not None
    assert worker.returncode == 0, worker_output
    assert_clean(worker_output)
    assert "worker stopped" in worker_output
    assert web.returncode == 0, web_output
    assert_clean(web_output)
    assert "Application shutdown complete" in web_output
