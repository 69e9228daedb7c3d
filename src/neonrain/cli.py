"""The ``neonrain`` command: serve, web, worker, db upgrade, user create, doctor."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import getpass
import logging
import signal
import socket
import sys
import threading
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

import neonrain
from neonrain.config import Settings, get_settings

if TYPE_CHECKING:
    from fastapi import FastAPI


# Plain help (no rich panels): the rich formatter shows a value type after flags such as --help
# ("--help <bool>"), which take no value.
cli = typer.Typer(
    help=neonrain.__doc__,
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)
db_cli = typer.Typer(help="Database maintenance.", no_args_is_help=True, rich_markup_mode=None)
user_cli = typer.Typer(help="Accounts.", no_args_is_help=True, rich_markup_mode=None)
cli.add_typer(db_cli, name="db")
cli.add_typer(user_cli, name="user")

log = logging.getLogger("neonrain")


def setup_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Request lines come from uvicorn's access log; engine chatter is not for operators.
    for noisy in ("sqlalchemy.engine", "aiosqlite", "asyncio", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)


def _upgrade(settings: Settings) -> None:
    from neonrain.crypto import TokenCipher
    from neonrain.db.migrate import upgrade_database

    report = asyncio.run(
        upgrade_database(settings.database_url, TokenCipher(settings.resolved_secret_key()))
    )
    for line in report.lines():
        typer.echo(line)


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Create, upgrade or adopt (legacy Neonrain) the database at DATABASE_URL."""
    settings = get_settings()
    setup_logging(settings)
    typer.echo(f"database: {settings.database_label()}")
    try:
        _upgrade(settings)
    except Exception as exc:
        typer.echo(f"upgrade failed, nothing was changed: {exc}", err=True)
        raise typer.Exit(1) from exc


def _note_stop_signals() -> threading.Event:
    """SIGINT/SIGTERM while the process is still importing and starting set an event instead of
    killing it, so that even an early stop is a clean one."""
    requested = threading.Event()

    def note(_signum: int, _frame: FrameType | None) -> None:
        requested.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, note)
    return requested


def build_app(settings: Settings, *, scraper: bool, worker: bool) -> FastAPI:
    """The app of one server process; with ``--workers`` every process builds its own."""
    from neonrain import background as services
    from neonrain.app import create_app

    setup_logging(settings)
    background: list[services.BackgroundService] = [services.wake_long_polls_on_exit]
    if scraper:
        background.append(services.scraper)
    if worker:
        background.append(services.embedded_worker)
    background.append(services.freeze_startup_objects)
    return create_app(settings, background=background)


def _listen(host: str, port: int) -> socket.socket:
    """The server's socket, bound before anything else starts, so that a busy port stops the
    command with one clear line instead of after the worker and the scraper have started."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except socket.gaierror as exc:
        typer.echo(f"cannot start: cannot resolve the listen address {host!r}: {exc}", err=True)
        raise typer.Exit(1) from exc
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        reason = "is already in use" if exc.errno == errno.EADDRINUSE else f"cannot be used: {exc}"
        typer.echo(f"cannot start: {host}:{port} {reason}", err=True)
        raise typer.Exit(1) from exc
    sock.set_inheritable(True)
    return sock


def _run_server(
    settings: Settings,
    sock: socket.socket,
    *,
    mode: str,
    scraper: bool,
    worker: bool,
    workers: int = 1,
) -> None:
    import uvicorn

    from neonrain.middleware import server_options

    # Every process must use the same key: resolve (or create) it once, before any fork.
    settings.resolved_secret_key()
    host, port = sock.getsockname()[:2]
    factory = functools.partial(build_app, settings, scraper=scraper, worker=worker)
    config = uvicorn.Config(
        factory,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=8,
        log_config=None,
        **server_options(),  # header and WebSocket limits; proxy headers are the app's business
    )
    shown = "localhost" if host in ("127.0.0.1", "::1") else host
    typer.echo(
        f"Neonrain ({mode}) listening on http://{shown}:{port} "
        f"— database {settings.database_label()}"
        + (", scraper on" if scraper else ", scraper off")
        + (", Discord worker on" if worker else "")
        + (f", {workers} worker processes" if workers > 1 else "")
    )
    if workers > 1:
        from uvicorn.supervisors import Multiprocess

        Multiprocess(config, sockets=[sock]).run()
        return
    # uvicorn re-raises SIGINT after its graceful shutdown; Ctrl-C is a normal way to stop.
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.Server(config).run(sockets=[sock])


@cli.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Listen address (HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (PORT).")] = None,
) -> None:
    """Everything in one process: migrations, web app, Discord worker and scraper."""
    settings = get_settings()
    setup_logging(settings)
    sock = _listen(host or settings.host, port or settings.port)
    try:
        _upgrade(settings)
    except Exception as exc:
        sock.close()
        typer.echo(f"cannot start: the database upgrade failed: {exc}", err=True)
        raise typer.Exit(1) from exc
    _run_server(
        settings,
        sock,
        mode="serve",
        scraper=True,
        worker=True,
    )


@cli.command()
def web(
    host: Annotated[str | None, typer.Option(help="Listen address (HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (PORT).")] = None,
    no_scraper: Annotated[bool, typer.Option("--no-scraper", help="Do not scrape here.")] = False,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Server processes sharing the port (PostgreSQL only; WEB_CONCURRENCY); "
            "about one per core.",
        ),
    ] = None,
) -> None:
    """The web app alone (production replicas); needs INTERNAL_API_KEY."""
    settings = get_settings()
    setup_logging(settings)
    if not settings.internal_api_key:
        typer.echo("INTERNAL_API_KEY must be set for `neonrain web` (workers use it).", err=True)
        raise typer.Exit(2)
    workers = workers or settings.web_concurrency
    if workers > 1 and settings.is_sqlite:
        typer.echo(
            "--workers above 1 needs PostgreSQL: on SQLite a change made in one process would "
            "not wake the Discord workers long-polling another.",
            err=True,
        )
        raise typer.Exit(2)
    _run_server(
        settings,
        _listen(host or settings.host, port or settings.port),
        mode="web",
        scraper=not no_scraper,
        worker=False,
        workers=workers,
    )


@cli.command()
def worker(
    shard: Annotated[
        str | None, typer.Option(help="Serve only shard I of N of the accounts, as I/N.")
    ] = None,
) -> None:
    """The Discord worker alone; reads its configuration from NEONRAIN_BACKEND_URL."""
    stop_requested = _note_stop_signals()
    settings = get_settings()
    setup_logging(settings)
    if not settings.internal_api_key:
        typer.echo("INTERNAL_API_KEY must be set for `neonrain worker`.", err=True)
        raise typer.Exit(2)
    parsed: tuple[int, int] | None = None
    if shard is not None:
        try:
            index, _, count = shard.partition("/")
            parsed = (int(index), int(count))
            if not 0 <= parsed[0] < parsed[1]:
                raise ValueError
        except ValueError as exc:
            typer.echo("--shard takes I/N with 0 <= I < N, for example 0/2.", err=True)
            raise typer.Exit(2) from exc
    from neonrain.worker.manager import run_standalone

    typer.echo(
        f"Neonrain worker{f' shard {parsed[0]}/{parsed[1]}' if parsed else ''} "
        f"reading its configuration from {settings.backend_url}"
    )
    asyncio.run(run_standalone(settings, parsed, stop_requested=stop_requested))


@user_cli.command("create")
def user_create(
    email: str,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Create an account (the way in when NEONRAIN_ALLOW_REGISTRATION=false)."""
    from pydantic import ValidationError

    from neonrain.accounts.schemas import Credentials

    settings = get_settings()
    password = (
        sys.stdin.readline().rstrip("\n") if password_stdin else getpass.getpass("Password: ")
    )
    try:
        credentials = Credentials(email=email, password=password)
    except ValidationError as exc:
        typer.echo(f"invalid: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}", err=True)
        raise typer.Exit(2) from exc
    _upgrade(settings)

    async def create() -> str:
        from neonrain.accounts import service
        from neonrain.db.engine import create_engine, create_sessionmaker

        engine = create_engine(settings.database_url)
        try:
            async with create_sessionmaker(engine)() as db:
                user = await service.create_user_cli(db, credentials.email, credentials.password)
                return user.id
        finally:
            await engine.dispose()

    try:
        user_id = asyncio.run(create())
    except Exception as exc:
        typer.echo(f"could not create the account: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"created account {credentials.email} ({user_id})")


@cli.command()
def doctor(
    accounts: Annotated[
        bool,
        typer.Option("--accounts", help="Also check every server of every connected account."),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a machine-readable document instead.")
    ] = False,
) -> None:
    """Check the database, secret key, HUMA, engines, Discord and the internal API key; exit 1
    on any failure."""
    from neonrain import doctor as checks

    report = asyncio.run(checks.run(get_settings(), accounts=accounts))
    typer.echo(report.json() if as_json else report.text())
    if not report.ok:
        raise typer.Exit(1)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
