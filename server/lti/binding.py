"""The OIDC ``state`` bound to the browser that started the login (login CSRF, IMS Security
Framework §5.1.1.2 and OIDC's ``state``): ``/lti/login`` sets a cookie named after the state and
holding it, ``/lti/launch`` takes the launch only when the browser sends it back.

The cookie is ``SameSite=None; Secure; Partitioned`` (CHIPS): inside the LMS's iframe it is a
cookie of the tool's site under the LMS's top-level site, which browsers that block third-party
cookies still keep (the launch posts in the same frame, under the same top-level site), and in
a window of its own it is an ordinary first-party cookie. ``HttpOnly``, ``Path=/lti/`` and a
``Max-Age`` of the login's lifetime keep it out of everything else. A browser that refuses even
a partitioned cookie can prove the login by the LMS's platform storage instead (server/lti/pages.py,
``web/lti-storage.js``) when the LMS offers it (``lti_storage_target``)."""
from __future__ import annotations

import hmac
import re
from dataclasses import dataclass

PREFIX = "podium_lti_state_"
_STATE = re.compile(r"[A-Za-z0-9_-]{16,64}")
_ATTRS = "Path=/lti/; Secure; HttpOnly; SameSite=None; Partitioned"


def cookie_name(state: str) -> str | None:
    """The cookie of one login (one per state: logins in two tabs do not overwrite each other);
    None for a state Podium cannot have made."""
    return PREFIX + state if _STATE.fullmatch(state) else None


def set_cookie(state: str, max_age_s: int) -> str:
    """The ``Set-Cookie`` value that binds ``state`` to this browser."""
    return f"{cookie_name(state)}={state}; Max-Age={int(max_age_s)}; {_ATTRS}"


def clear_cookie(state: str) -> str:
    """The ``Set-Cookie`` value that removes the cookie of ``state`` (used or refused)."""
    return f"{cookie_name(state)}=; Max-Age=0; {_ATTRS}"


def matches(cookie_value: str | None, state: str) -> bool:
    """Whether the browser's cookie holds this state (compared in constant time)."""
    if not cookie_value or cookie_name(state) is None:
        return False
    return hmac.compare_digest(cookie_value.encode(), state.encode())


@dataclass(frozen=True)
class StorageCheck:
    """The LMS's platform storage (1EdTech "LTI Client Side postMessages"): the frame named
    ``target`` among the frames of Podium's parent window (``_parent``: that window itself),
    served from ``origin`` (the platform's authorization endpoint's), keeps
    ``lti_state_<state>`` = ``state`` for the browser that started the login."""
    target: str
    origin: str
    state: str
