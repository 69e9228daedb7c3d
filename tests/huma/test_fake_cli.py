"""The fake HUMA server runs standalone for developers: ``python -m tests.fakes.fake_huma``."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import httpx

from neonrain.huma import HumaRestClient
from tests.webapp import free_port

ROOT = Path(__file__).resolve().parents[2]


async def test_standalone_fake_serves_the_rest_api() -> None:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.fakes.fake_huma",
        "--port",
        str(port),
        "--api-key",
        "dev",
        "--echo",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        assert process.stdout is not None
        banner = await asyncio.wait_for(process.stdout.readline(), 20)
        assert f"http://127.0.0.1:{port}" in banner.decode()
        async with HumaRestClient(f"http://127.0.0.1:{port}", "dev") as rest:
            agent = await rest.create_agent("Discord-Dev", {"className": "Nova"})
            assert (await rest.get_agent(agent.id)) is not None
        async with httpx.AsyncClient() as http:
            refused = await http.post(
                f"http://127.0.0.1:{port}/api/agents", headers={"X-API-Key": "nope"}, json={}
            )
        assert refused.status_code == 401
        assert refused.json()["statusCode"] == 401
    finally:
        process.terminate()
        output, _ = await asyncio.wait_for(process.communicate(), 20)
    assert process.returncode == 0
    assert b"1 agents created" in output
