"""The command lines: ``python -m server users add|token`` and ``python -m media_worker``."""
from __future__ import annotations

import asyncio
import signal
import time

from tests.procserver import procs  # noqa: F401 - procs is a fixture


async def test_users_add_creates_then_updates_a_user_who_can_log_in(procs):  # noqa: F811
    """`users add` creates an instructor who can log in over REST; running it again updates the same user's password and role."""
    srv = procs.new()
    r = srv.cli("users", "add", "--username", "prof", "--password", "first-pass-1", "--role", "instructor",
                "--display-name", "Prof Plum")
    assert r.returncode == 0, r.stderr
    assert "created user prof" in r.stdout

    status, body = await srv.http("POST", "/api/auth/login", body={"username": "prof", "password": "first-pass-1"})
    assert status == 200, body
    user = body["user"]
    assert user["username"] == "prof" and user["role"] == "instructor" and user["display_name"] == "Prof Plum"
    status, me = await srv.http("GET", "/api/me", body["token"])
    assert status == 200 and me["user"]["id"] == user["id"]

    r = srv.cli("users", "add", "--username", "prof", "--password", "second-pass-2", "--role", "admin")
    assert r.returncode == 0, r.stderr
    assert "updated user prof" in r.stdout

    status, _ = await srv.http("POST", "/api/auth/login", body={"username": "prof", "password": "first-pass-1"})
    assert status == 401, "the old password still works after the update"
    status, body = await srv.http("POST", "/api/auth/login", body={"username": "prof", "password": "second-pass-2"})
    assert status == 200, body
    assert body["user"]["id"] == user["id"], "a second user was created instead of updating"
    assert body["user"]["role"] == "admin" and body["user"]["display_name"] == "Prof Plum"


async def test_token_prints_a_jwt_accepted_by_api_me(procs):  # noqa: F811
    """`token --user U` prints a JWT for U that GET /api/me accepts."""
    srv = procs.new()
    assert srv.cli("users", "add", "--username", "tina", "--password", "violet-ladder-42").returncode == 0
    r = srv.cli("token", "--user", "tina")
    assert r.returncode == 0, r.stderr
    token = r.stdout.strip()
    assert token.count(".") == 2 and "\n" not in token, r.stdout
    status, body = await srv.http("GET", "/api/me", token)
    assert status == 200, body
    assert body["user"]["username"] == "tina" and body["user"]["role"] == "student"
    status, _ = await srv.http("GET", "/api/me", token[:-2] + ("AA" if not token.endswith("AA") else "BB"))
    assert status == 401


async def test_token_for_unknown_user_fails_with_a_message(procs):  # noqa: F811
    """`token --user <unknown>` exits non-zero, says which user is missing, and prints no token."""
    srv = procs.new(start=False)  # the CLI needs only the (migrated) database
    r = srv.cli("token", "--user", "ghost")
    assert r.returncode != 0
    assert "ghost" in r.stderr and "no user" in r.stderr, r.stderr
    assert r.stdout.strip() == ""


async def test_media_worker_keeps_trying_without_a_server_and_exits_0_on_sigterm(procs, tmp_path):  # noqa: F811
    """`python -m media_worker` with no web process to reach keeps retrying with backoff (it
    must not exit: a Procfile runner would restart it in a loop), and exits 0 on SIGTERM."""
    from tests.procserver import free_port

    log_path = tmp_path / "worker.log"
    from tests.procserver import process_env

    env = process_env(procs.database_url, procs.data_dir)
    env.update(SERVER_URL=f"http://127.0.0.1:{free_port()}", JWT_SECRET="w" * 40, WORKER_DIR=str(tmp_path / "work"))
    p = procs.popen(["media_worker"], log_path, env=env)
    deadline = time.monotonic() + 20
    while log_path.read_text().count("failed") < 2 and time.monotonic() < deadline:
        assert p.poll() is None, f"worker exited early with {p.returncode}: {log_path.read_text()}"
        await asyncio.sleep(0.05)
    assert log_path.read_text().count("Connection refused") >= 2, log_path.read_text()
    p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    while p.poll() is None and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert p.poll() == 0, (p.returncode, log_path.read_text())
    assert "stopped" in log_path.read_text()


def test_users_add_applies_the_sign_up_rules(tmp_path):
    """users add refuses what sign-up refuses: a malformed username or a short password."""
    import subprocess
    import sys as _sys
    from pathlib import Path

    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/x.db", "DATA_DIR": str(tmp_path),
           "PATH": "/usr/bin:/bin"}
    root = Path(__file__).resolve().parents[2]
    for user, pw in (("bad name!", "password1"), ("okname", "short")):
        r = subprocess.run([_sys.executable, "-m", "server", "users", "add", "--username", user,
                            "--password", pw], cwd=root, env=env, capture_output=True, text=True)
        assert r.returncode != 0 and "users add:" in r.stderr
