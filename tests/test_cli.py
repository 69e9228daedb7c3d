"""The ``neonrain`` command as a person runs it: serve with no configuration, user create."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from neonrain.crypto import TokenCipher
from neonrain.db.migrate import upgrade_database
from tests import pg
from tests.conftest import TEST_SECRET_KEY, require_postgres
from tests.webapp import free_port


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
