"""Run the fake HUMA server standalone for local development.

    python -m tests.fakes.fake_huma --port 8765 --api-key dev --echo
    python -m tests.fakes.fake_huma --rule "hello=>Hi! How can I help?" --delay 1

Then start Neonrain with ``HUMA_API_URL=http://127.0.0.1:8765 HUMA_API_KEY=dev``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal

from tests.fakes.fake_huma.server import JSON, FakeHuma, last_message_text


def _parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.fake_huma", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--api-key", default="dev", help="the key clients must send (default dev)")
    parser.add_argument(
        "--rule",
        action="append",
        default=[],
        metavar="TEXT=>REPLY",
        help="answer messages containing TEXT with REPLY (repeatable)",
    )
    parser.add_argument(
        "--echo", action="store_true", help="answer every message with 'You said: <text>'"
    )
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every event received")
    return parser.parse_args(argv)


async def _run(args: argparse.Namespace) -> None:
    fake = FakeHuma(api_key=args.api_key, host=args.host, port=args.port)
    for rule in args.rule:
        text, sep, reply = rule.partition("=>")
        if not sep:
            raise SystemExit(f"--rule must look like TEXT=>REPLY, got {rule!r}")
        fake.script(text.strip(), reply=reply.strip(), delay=args.delay)
    if args.echo:

        async def echo(fake: FakeHuma, agent_id: str, content: JSON) -> None:
            context = content.get("context") or {}
            channel_id = str((context.get("currentChannel") or {}).get("id") or "")
            await fake.send_message(agent_id, channel_id, f"You said: {last_message_text(content)}")

        fake.script(action=echo, delay=args.delay)
    await fake.start()
    print(f"Fake HUMA listening on {fake.url} (API key {args.api_key!r}); Ctrl-C stops it.")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    seen = 0
    try:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)
            if args.verbose:
                for event in fake.events[seen:]:
                    print(f"[{event.agent_id}] {event.data}")
                seen = len(fake.events)
    finally:
        await fake.stop()
        print(f"Stopped: {len(fake.created)} agents created, {len(fake.events)} events received.")


def main(argv: list[str] | None = None) -> None:
    args = _parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    asyncio.run(_run(args))


if __name__ == "__main__":
    main()
