"""Fixtures for browser tests: the real server as a subprocess and real headless Chromium.

``podium`` starts ``python -m server`` on a free port over this test's fresh, migrated
database (``tests/procserver.ServerProcess``). ``browser`` is one Chromium per session;
``open_page`` gives each simulated user its own browser context (own localStorage, own
socket) and fails the test on any uncaught page error.
"""
from __future__ import annotations

import json
import os
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

import pytest
from playwright.async_api import expect as async_expect
from playwright.sync_api import expect as sync_expect

from tests.procserver import ServerProcess

# Playwright's assertions wait 5 s by default; under CI load (two suites, Chromium and the
# server on 2 cores) a page has taken longer than that to show what it will show. A longer
# wait costs only a failing test time. (Every browser module, sync or async, gets it.)
sync_expect.set_options(timeout=15_000)
async_expect.set_options(timeout=15_000)

CHROMIUM = os.environ.get("PODIUM_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--use-fake-ui-for-media-stream",
                 "--use-fake-device-for-media-stream"]
# The user's "Check my devices before joining" unticked (web/js/call/device-prefs.js), other
# remembered device choices kept: Start call / Join go straight into the call.
SKIP_DEVICE_CHECK = ("(() => { let p = {}; try { p = JSON.parse(localStorage.getItem('podium.devices') || '{}') || {}; }"
                     " catch {} p.check = false; localStorage.setItem('podium.devices', JSON.stringify(p)); })();")
PASSWORD = "violet-ladder-42"  # sign-up refuses guessable passwords (server/accounts/password_rules.py)


@dataclass
class Account:
    user: dict
    token: str

    @property
    def username(self) -> str:
        return self.user["username"]

    @property
    def name(self) -> str:
        return self.user["display_name"]


class Api:
    """Blocking REST calls against a test server (setup that is not under test)."""

    def __init__(self, base_url: str):
        self.base_url = base_url

    def call(self, method: str, path: str, token: str | None = None, body: Any = None) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base_url + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=15) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def register(self, username: str, display_name: str) -> Account:
        status, body = self.call("POST", "/api/auth/register",
                                 body={"username": username, "password": PASSWORD, "display_name": display_name})
        assert status == 201, (status, body)
        return Account(body["user"], body["token"])

    def course(self, owner: Account, name: str, students: list[Account]) -> dict:
        status, body = self.call("POST", "/api/rooms", owner.token, {
            "kind": "course", "name": name, "members": [], "member_usernames": [s.username for s in students]})
        assert status == 201, (status, body)
        return body["room"]

    def send(self, sender: Account, room_id: str, content: str, client_msg_id: str) -> dict:
        status, body = self.call("POST", f"/api/rooms/{room_id}/messages", sender.token,
                                 {"client_msg_id": client_msg_id, "kind": "text", "content": content})
        assert status in (200, 201), (status, body)
        return body["message"]

    def set_avatar(self, account: Account, image: bytes, content_type: str = "image/png") -> None:
        """``PUT /api/me/avatar`` with the raw image, as the profile dialog uploads it."""
        req = urllib.request.Request(self.base_url + "/api/me/avatar", data=image, method="PUT",
                                     headers={"Authorization": f"Bearer {account.token}", "Content-Type": content_type})
        with urllib.request.urlopen(req, timeout=15) as resp:
            assert resp.status == 200, resp.status

    def messages(self, reader: Account, room_id: str, limit: int = 500) -> list[dict]:
        status, body = self.call("GET", f"/api/rooms/{room_id}/messages?limit={limit}", reader.token)
        assert status == 200, (status, body)
        return body["messages"]


@pytest.fixture(scope="module")
def browser(template_db):
    """One Chromium per module.

    Playwright's sync API keeps an asyncio loop marked as running in this thread while it
    is open, so the browser must not outlive the browser tests (later async tests need the
    thread) and the migrated template database, which runs its own loop, is made first.
    """
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"Chromium not found at {CHROMIUM} (set PODIUM_CHROMIUM)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def server_env() -> dict[str, str]:
    """Extra environment of the server process; a test module overrides it to change settings."""
    return {}


@pytest.fixture
def podium(database_url: str, tmp_path, server_env):
    """A real ``python -m server`` on a free port over a fresh migrated database."""
    srv = ServerProcess(database_url, tmp_path, extra_env=server_env)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def api(podium: ServerProcess) -> Api:
    return Api(podium.base_url)


@pytest.fixture
def open_page(browser, podium: ServerProcess):
    """``open_page(account=None, path="/")`` → ``(context, page)`` for one simulated user.

    With an account, the page starts signed in (token in localStorage, as after a login).
    Start call / Join go straight into the call unless ``device_check=True`` (the pre-join
    device check dialog, tests/browser/test_device_check_browser.py). ``phone=True`` makes a
    touch, mobile context (give it a phone's viewport, e.g. ``(390, 844)``).
    Uncaught page errors are collected and fail the test at teardown.
    """
    contexts = []
    errors: list[str] = []

    def open_(account: Account | None = None, path: str = "/", viewport=(1280, 800), device_check: bool = False,
              phone: bool = False):
        ctx = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]},
                                  is_mobile=phone, has_touch=phone)
        ctx.set_default_timeout(15_000)
        if account is not None:
            ctx.add_init_script(f"localStorage.setItem('podium.token', {json.dumps(account.token)});")
        if not device_check:
            ctx.add_init_script(SKIP_DEVICE_CHECK)
        contexts.append(ctx)
        page = ctx.new_page()
        page.on("pageerror", lambda exc: errors.append(f"{exc}"))
        page.goto(podium.base_url + path)
        return ctx, page

    yield open_
    for ctx in contexts:  # every one, even if one fails to close (a test stopped by its timeout):
        try:              # a context left open keeps its call's cameras encoding for the whole run
            ctx.close()
        except Exception as e:  # noqa: BLE001
            errors.append(f"closing a context failed: {e!r}")
    assert not errors, f"uncaught errors in the page: {errors}"
