"""What a new password must be (server/accounts/password_rules.py): common and guessable ones are
refused at sign-up and by ``users add`` with a message saying what is acceptable."""
from __future__ import annotations

from pathlib import Path

import pytest

from server.accounts.password_rules import PASSWORD_RULE
from server.db import users as uq
from tests.procserver import process_env, run_module

WEB_AUTH_VIEW = Path(__file__).resolve().parents[2] / "web" / "js" / "views" / "auth.js"


@pytest.mark.parametrize("password", ["password", "12345678", "aaaaaaaa", "password1", "qwertyuiop",
                                      "iloveyou99", "Password1!", "11111111111111111111"])
async def test_common_and_guessable_passwords_refused_at_sign_up(server, password):
    """Sign-up with a common, keyboard, repeated or trivially varied password is a 400 that states the rule, and creates no user."""
    status, body = await server.http("POST", "/api/auth/register", None, {"username": "erin", "password": password})
    assert status == 400 and body["error"]["code"] == "bad_request", body
    assert PASSWORD_RULE in body["error"]["reason"]
    async with server.deps.db.read() as s:
        assert await uq.get_user_by_username(s, "erin") is None


@pytest.mark.parametrize("username,password", [("harbor-lantern", "harbor-lantern"),
                                               ("erinmaple", "erinmaple-quartz-81"),
                                               ("erin", "Erin-Erin-Erin-1")])
async def test_password_may_not_be_or_contain_the_username(server, username, password):
    """A password equal to the username or containing it (case-insensitively) is refused."""
    status, body = await server.http("POST", "/api/auth/register", None, {"username": username, "password": password})
    assert status == 400, body
    assert "username" in body["error"]["reason"] or "guess" in body["error"]["reason"]


@pytest.mark.parametrize("password", ["correct horse", "violet-ladder-42", "Tr0ub4dor&3", "x" * 8 + " tangerine dusk 1"])
async def test_hard_to_guess_passwords_accepted(server, password):
    """Passphrases and unusual passwords of 8+ characters sign up (201)."""
    status, body = await server.http("POST", "/api/auth/register", None, {"username": "quill", "password": password})
    assert status == 201, body


@pytest.mark.parametrize("config_overrides", [{"password_min_score": 0}])
async def test_min_score_zero_keeps_only_length_and_username_rules(server):
    """PASSWORD_MIN_SCORE=0 turns the estimator off; the length and username rules stay."""
    status, _ = await server.http("POST", "/api/auth/register", None, {"username": "erin", "password": "password1"})
    assert status == 201
    status, _ = await server.http("POST", "/api/auth/register", None, {"username": "fred", "password": "fred1234"})
    assert status == 400


def test_users_add_applies_the_same_rule(database_url, tmp_path):
    """`python -m server users add` refuses a guessable password with the same message and accepts a good one."""
    env = process_env(database_url, tmp_path)
    r = run_module(["server", "users", "add", "--username", "prof", "--password", "12345678"], env)
    assert r.returncode != 0 and "users add:" in r.stderr and PASSWORD_RULE in r.stderr, r.stderr
    r = run_module(["server", "users", "add", "--username", "prof", "--password", "violet-ladder-42"], env)
    assert r.returncode == 0, r.stderr


def test_sign_up_form_shows_the_rule():
    """The sign-up form's hint under the password field states the rule the server enforces."""
    assert PASSWORD_RULE in WEB_AUTH_VIEW.read_text()
