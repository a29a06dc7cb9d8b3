"""What a new password must be (docs/SECURITY.md): 8–256 characters, not the username nor
containing it, and not easy to guess by zxcvbn's estimate.

zxcvbn (Dropbox's estimator; the maintained Python port) scores a password 0–4 from the
guesses an attacker would need, knowing its lists of common passwords, words and names,
keyboard walks, repeats, sequences and dates, and the account's own username and display
name. Score 3 ("safely unguessable", ≥ 10⁸ guesses) is the default minimum: with logins
throttled (server/accounts/throttle.py) that is out of reach online, and with scrypt it costs
an attacker holding a stolen database years of CPU per account. ``password``, ``12345678``,
``aaaaaaaa`` and ``password1`` score 0; ``correct horse`` or ``physics-lab-7`` score 3.

The same rule runs for sign-up and for ``python -m server users add``; the sign-up form shows
``PASSWORD_RULE`` under the password field before anyone fails it.
"""
from __future__ import annotations

from zxcvbn import zxcvbn

from server.kernel.errors import BadRequest

MIN_LENGTH, MAX_LENGTH = 8, 256
# zxcvbn refuses longer input (its matching is quadratic); past 72 characters the first 72
# decide, which is no loss: 72 characters that are not guessable are not made guessable by more.
_ESTIMATE_CHARS = 72
# Shorter usernames ("al", "jo") are too common as substrings to forbid inside a password.
_USERNAME_INSIDE_MIN = 3

PASSWORD_RULE = ("Use 8 or more characters that are hard to guess: not a common password, not "
                 "a pattern like 12345678, qwertyui or aaaaaaaa, and not your username. A few "
                 "unrelated words work well.")


def check_new_password(password: str, username: str, display_name: str = "", min_score: int = 3) -> None:
    """Return when ``password`` may be set for ``username``; raise BadRequest whose reason
    says what is acceptable (and, when zxcvbn has one, why this one is not)."""
    if not isinstance(password, str) or not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        raise BadRequest(f"password must be {MIN_LENGTH}-{MAX_LENGTH} characters. {PASSWORD_RULE}")
    lowered, name = password.lower(), username.lower()
    if lowered == name or (len(name) >= _USERNAME_INSIDE_MIN and name in lowered):
        raise BadRequest(f"password must not contain your username. {PASSWORD_RULE}")
    if min_score <= 0:
        return
    inputs = [username] + [w for w in display_name.split() if len(w) >= _USERNAME_INSIDE_MIN]
    result = zxcvbn(password[:_ESTIMATE_CHARS], user_inputs=inputs, max_length=_ESTIMATE_CHARS)
    if result["score"] < min_score:
        why = (result["feedback"].get("warning") or "").rstrip(".")
        why = f" ({why[:1].lower()}{why[1:]})" if why else ""
        raise BadRequest(f"password is too easy to guess{why}. {PASSWORD_RULE}")
