"""The ``neonrain`` command as a person runs it: serve with no configuration, user create."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

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
