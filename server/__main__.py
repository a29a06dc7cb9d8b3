"""Command line: ``python -m server [serve|migrate|users add|token|lti ...|service-credential ...]``."""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from server.config import Config, ConfigError, load_config
from server.logs import setup_logging

log = logging.getLogger("podium")
ROOT = Path(__file__).resolve().parent.parent
HARD_EXIT_S = 23.0  # after SIGTERM; the drain itself is bounded at 20 s


def migrate(config: Config) -> None:
    """Run Alembic migrations to head."""
    from alembic import command
    from alembic.config import Config as AlembicConfig

    if config.is_sqlite:
        Path(config.database_url.split("///", 1)[-1]).parent.mkdir(parents=True, exist_ok=True)
    cfg = AlembicConfig(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", config.database_url.replace("%", "%%"))
    command.upgrade(cfg, "head")


async def _serve(config: Config) -> None:
    from server.app import make_app
    from server.deps import Deps
    from server.heap import freeze_startup_heap
    from server.http.serve import http_server
    from server.shutdown import drain

    deps = Deps.build(config)
    await deps.start()
    await deps.storage.check()  # an unreachable bucket stops the start with a clear reason
    deps.lti.start()  # the LTI tool's key pair, made on first start (server/lti/keys.py)
    await deps.calls.recover()
    await deps.breakouts.recover()  # timers of breakout rooms still open
    await deps.recordings.recover()
    sweep = getattr(deps.storage, "sweep_temp", None)  # disk only: orphans of crashed uploads
    if sweep is not None:
        await sweep(24 * 3600)
    server = http_server(make_app(deps), config)
    server.listen(config.port, config.host)
    # What is alive now lives as long as the process: out of the collector's full passes
    # (server/heap.py), which otherwise held the loop 40-74 ms each.
    frozen = freeze_startup_heap()
    deps.gc_pauses.install()
    log.info("Podium listening on http://%s:%d (database %s, event loop %s)", config.host, config.port,
             config.database_url.split("@")[-1], type(asyncio.get_running_loop()).__module__.split(".")[0])
    log.info("%d objects alive at start are out of full garbage collections", frozen)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    # Backstop for principle 7: whatever still hangs after the drain (a database call stuck on
    # a lock, a task that ignores cancellation, a non-daemon driver thread), exit before Heroku's
    # SIGKILL at 30 s instead of lingering. Exit code 1: the stop was not clean.
    watchdog = threading.Timer(HARD_EXIT_S, _hard_exit)
    watchdog.daemon = True
    watchdog.start()
    await drain(deps, server)


def _hard_exit() -> None:
    log.error("shutdown still not finished after %.0f s: forcing exit", HARD_EXIT_S)
    logging.shutdown()
    os._exit(1)


async def _add_user(config: Config, username: str, password: str, role: str, display: str | None) -> None:
    from server.accounts.passwords import hash_password
    from server.db import users as uq
    from server.db.engine import Database

    db = Database(config.database_url)
    try:
        async with db.write() as s:
            existing = await uq.get_user_by_username(s, username)
            if existing is not None:
                existing.password_hash = hash_password(password)
                existing.role = role
                if display:
                    existing.display_name = display
                print(f"updated user {existing.username} (id {existing.id}, role {role})")
                return
            user = await uq.create_user(s, username, display or username, hash_password(password), role)
        print(f"created user {user.username} (id {user.id}, role {role})")
    finally:
        await db.close()


async def _token(config: Config, username: str, ttl: int | None) -> None:
    from server.accounts.tokens import issue_token
    from server.db import users as uq
    from server.db.engine import Database

    db = Database(config.database_url)
    try:
        async with db.read() as s:
            user = await uq.get_user_by_username(s, username)
    finally:
        await db.close()
    if user is None:
        sys.exit(f"no user named {username!r}")
    print(issue_token(config, user.id, user.display_name, user.role, ttl))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m server", description="Podium web server")
    sub = parser.add_subparsers(dest="cmd")
    sub.add_parser("serve", help="run the web server (default)")
    sub.add_parser("migrate", help="run database migrations to head")
    users = sub.add_parser("users", help="manage users").add_subparsers(dest="users_cmd", required=True)
    add = users.add_parser("add", help="create or update a user")
    add.add_argument("--username", required=True)
    add.add_argument("--password", required=True)
    add.add_argument("--role", default="student", choices=["instructor", "student", "admin", "recorder"])
    add.add_argument("--display-name")
    tok = sub.add_parser("token", help="print a JWT for a user")
    tok.add_argument("--user", required=True)
    tok.add_argument("--ttl", type=int, help="lifetime in seconds")
    from server.lti import cli as lti_cli
    lti_cli.add_parser(sub)
    from server.provision import cli as provision_cli
    provision_cli.add_parser(sub)
    args = parser.parse_args(argv)
    try:
        config = load_config()
    except ConfigError as e:
        sys.exit(f"configuration error: {e}")
    setup_logging(config.log_json)
    if args.cmd == "migrate":
        migrate(config)
    elif args.cmd == "users":
        from server.kernel.errors import BadRequest
        from server.accounts.wire import check_credentials
        try:
            check_credentials(args.username, args.password, config.password_min_score, args.display_name or "")
        except BadRequest as e:
            sys.exit(f"users add: {e.reason}")
        asyncio.run(_add_user(config, args.username, args.password, args.role, args.display_name))
    elif args.cmd == "token":
        asyncio.run(_token(config, args.user, args.ttl))
    elif args.cmd == "lti":
        lti_cli.run(config, args)
    elif args.cmd == "service-credential":
        provision_cli.run(config, args)
    else:
        from server import event_loop
        from server.storage import StorageError
        try:
            event_loop.run(_serve(config), config.event_loop)
        except (ConfigError, StorageError) as e:
            sys.exit(f"cannot start: {e}")


if __name__ == "__main__":
    main()
