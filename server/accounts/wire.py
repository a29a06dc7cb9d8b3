"""Accounts on the wire (PROTOCOL §1): sign-up and login bodies parsed into typed values, and
the ``{token, user}`` answer."""
from __future__ import annotations

import re
from dataclasses import dataclass

from server.accounts.password_rules import check_new_password
from server.kernel.errors import BadRequest
from server.kernel.wire import user_wire

USERNAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]{1,31}")  # fullmatch: "$" would allow a trailing newline
SIGNUP_ROLES = ("student", "instructor")  # admin and recorder come only from the CLI or an LMS


@dataclass(frozen=True)
class Registration:
    username: str
    password: str
    display_name: str
    role: str


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str


def check_credentials(username, password, min_score: int, display_name: str = "") -> tuple[str, str]:
    """``(lower-cased username, password)`` fit for a new account (the password by
    :func:`~server.accounts.password_rules.check_new_password` with ``min_score``);
    BadRequest otherwise. Sign-up and ``python -m server users add`` both check here."""
    if not isinstance(username, str) or not USERNAME_RE.fullmatch(username.lower()):
        raise BadRequest("username must be 2-32 characters: letters, digits, . _ -")
    check_new_password(password, username.lower(), display_name, min_score)
    return username.lower(), password


def parse_registration(body: dict, min_score: int) -> Registration:
    """``{username, password, display_name?, role?}``; the display name defaults to the
    username and sign-up picks only student (default) or instructor. The password must
    score at least ``min_score`` (PASSWORD_MIN_SCORE)."""
    display = body.get("display_name") or None
    if display is not None and (not isinstance(display, str) or not display.strip() or len(display) > 128):
        raise BadRequest("display_name must be 1-128 characters")
    username, password = check_credentials(body.get("username"), body.get("password"), min_score, display or "")
    role = body.get("role", "student")
    if role not in SIGNUP_ROLES:
        raise BadRequest("role must be student or instructor")
    return Registration(username, password, display.strip() if display else username, role)


@dataclass(frozen=True)
class PasswordChange:
    old_password: str
    new_password: str


def parse_display_name(body: dict) -> str:
    """``{display_name}``: 1-128 characters once trimmed; BadRequest otherwise."""
    name = body.get("display_name")
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > 128:
        raise BadRequest("display_name must be 1-128 characters")
    return name.strip()


def parse_password_change(body: dict) -> PasswordChange:
    """``{old_password, new_password}`` as strings (the new one is checked by the service,
    which knows the account's names)."""
    old, new = body.get("old_password"), body.get("new_password")
    if not isinstance(old, str) or not old or len(old) > 256:
        raise BadRequest("old_password is required")
    if not isinstance(new, str):
        raise BadRequest("new_password must be a string")
    return PasswordChange(old, new)


def parse_login(body: dict) -> Credentials:
    """``{username, password}`` as given (an unknown username is the service's answer)."""
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not isinstance(password, str) or len(password) > 256:
        raise BadRequest("username and password are required")
    return Credentials(username, password)


def session_wire(token: str, user) -> dict:
    """The answer to sign-up and login."""
    return {"token": token, "user": user_wire(user)}
