"""Run the fake OpenAI-compatible model server standalone, for local trials.

By default it answers every conversation with a ``send_message`` tool call quoting part of the
last user message (in the channel named by the system message's ``Current channel`` line), and the
follow-up call after the tool result with nothing, so each turn posts exactly one message.

    python -m tests.fakes.fake_openai --port 8766
    python -m tests.fakes.fake_openai --api-key sk-dev --delay 0.5 --verbose

Then point Neonrain's engine at it: NEONRAIN_OPENAI_BASE_URL=http://127.0.0.1:8766/v1,
NEONRAIN_OPENAI_MODEL=fake-model (and NEONRAIN_OPENAI_API_KEY when --api-key is given).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal

from tests.fakes.fake_openai.server import FakeOpenAI, quoting_reply


def _parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fakes.fake_openai",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8766, help="port to listen on (default 8766)")
    parser.add_argument(
        "--api-key",
        default=None,
        help="the key clients must send as 'Authorization: Bearer KEY' (default: any or none)",
    )
    parser.add_argument(
        "--model", default="fake-model", help="the model GET /v1/models lists (default fake-model)"
    )
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="print a line for every request received"
    )
    return parser.parse_args(argv)


async def _run(args: argparse.Namespace) -> None:
    fake = FakeOpenAI(
        api_key=args.api_key,
        model=args.model,
        host=args.host,
        port=args.port,
        default=quoting_reply,
        delay=args.delay,
    )
    await fake.start()
    key = f"API key {args.api_key!r}" if args.api_key else "no API key required"
    print(f"Fake OpenAI listening on {fake.base_url} ({key}); Ctrl-C stops it.", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    seen = 0
    try:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.2)
            if args.verbose:
                for request in fake.requests[seen:]:
                    print(
                        f"{request.method} {request.path} -> {request.status} "
                        f"messages={len(request.messages)} tools={request.tool_names}",
                        flush=True,
                    )
                seen = len(fake.requests)
    finally:
        await fake.stop()
        print(f"Stopped: {len(fake.chat_requests)} chat completions answered.", flush=True)


def main(argv: list[str] | None = None) -> None:
    args = _parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    asyncio.run(_run(args))


if __name__ == "__main__":
    main()
