"""The fake model server runs standalone for local trials: ``python -m tests.fakes.fake_openai``."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import cast

import openai
from openai.types.chat import ChatCompletionMessageParam

from neonrain.openai_engine import function_tools
from tests.fakes.fake_openai import FakeOpenAI, quoting_reply
from tests.webapp import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_help_describes_the_options() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tests.fakes.fake_openai", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    for option in ("--port", "--host", "--api-key", "--model", "--delay", "--verbose"):
        assert option in result.stdout
    assert "send_message" in result.stdout


async def test_standalone_fake_quotes_the_last_message() -> None:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.fakes.fake_openai",
        "--port",
        str(port),
        "--api-key",
        "sk-dev",
        "--verbose",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        assert process.stdout is not None
        banner = await asyncio.wait_for(process.stdout.readline(), 20)
        assert f"http://127.0.0.1:{port}/v1" in banner.decode()
        client = openai.AsyncOpenAI(
            base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-dev", max_retries=0
        )
        async with client:
            models = await client.models.list()
            assert [m.id for m in models.data] == ["fake-model"]
            messages: list[ChatCompletionMessageParam] = [
                {"role": "system", "content": "Rules…\nCurrent channel: #general (id 42)"},
                {"role": "user", "content": "alice: does the fake answer?"},
            ]
            first = await client.chat.completions.create(
                model="fake-model",
                messages=messages,
                tools=function_tools("webchat"),
                tool_choice="auto",
            )
            [call] = first.choices[0].message.tool_calls or []
            assert call.type == "function"
            assert call.function.name == "send_message"
            assert json.loads(call.function.arguments) == {
                "channel_id": "42",
                "message": 'You said: "does the fake answer?"',
            }
            messages += [
                cast(
                    ChatCompletionMessageParam,
                    first.choices[0].message.model_dump(exclude_none=True),
                ),
                {"role": "tool", "tool_call_id": call.id, "content": "Message sent successfully"},
            ]
            second = await client.chat.completions.create(model="fake-model", messages=messages)
            assert not second.choices[0].message.tool_calls
            refused = openai.AsyncOpenAI(
                base_url=f"http://127.0.0.1:{port}/v1", api_key="wrong", max_retries=0
            )
            async with refused:
                try:
                    await refused.models.list()
                except openai.AuthenticationError as exc:
                    assert exc.status_code == 401
                else:
                    raise AssertionError("a wrong key must be refused")
    finally:
        process.terminate()
        output, _ = await asyncio.wait_for(process.communicate(), 20)
    assert process.returncode == 0
    assert b"POST /v1/chat/completions -> 200" in output
    assert b"Stopped: 2 chat completions answered." in output


async def test_the_documented_example_runs_against_the_fake() -> None:
    """``docs/engines.md``'s local run: the example script, pointed at the fake model server."""
    async with FakeOpenAI(default=quoting_reply) as fake:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "docs/openai_engine_example.py",
            "--base-url",
            fake.base_url,
            "--model",
            "fake-model",
            "is anyone here?",
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(process.communicate(), 60)
    text = output.decode()
    assert process.returncode == 0, text
    assert text.splitlines() == [
        "you: is anyone here?",
        "  (Nova is typing…)",
        'Nova: You said: "is anyone here?"',
    ]
    assert len(fake.chat_requests) == 2
