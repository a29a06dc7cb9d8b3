"""Accounts (docs/SECURITY.md, server/accounts/throttle.py): sign-up, the failed-login and
sign-up budgets, password strength, and how fresh an open socket's view of a role is."""
from __future__ import annotations

from dataclasses import dataclass

from server.config.environment import ConfigError, Environment


@dataclass(frozen=True)
class AccountSettings:
    allow_signup: bool = True
    # Failed logins allowed per LOGIN_WINDOW_S for one username from one address, for one
    # address across usernames, and for one username across addresses (not applied to an
    # address the user signed in from lately); sign-ups per address per hour; the minimum
    # zxcvbn score of a new password; how old an open socket's view of its user's role may get
    # before it is read again.
    login_window_s: int = 900
    login_failures_per_user_address: int = 10
    login_failures_per_address: int = 100
    login_failures_per_user: int = 50
    signups_per_address_per_hour: int = 100
    password_min_score: int = 3
    role_recheck_s: float = 15.0


def from_env(env: Environment) -> dict:
    """AccountSettings' fields from the environment."""
    budgets = dict(
        login_window_s=env.integer("LOGIN_WINDOW_S", 900),
        login_failures_per_user_address=env.integer("LOGIN_FAILURES_PER_USER_ADDRESS", 10),
        login_failures_per_address=env.integer("LOGIN_FAILURES_PER_ADDRESS", 100),
        login_failures_per_user=env.integer("LOGIN_FAILURES_PER_USER", 50),
        signups_per_address_per_hour=env.integer("SIGNUPS_PER_ADDRESS_PER_HOUR", 100),
    )
    password_min_score = env.integer("PASSWORD_MIN_SCORE", 3)
    if min(budgets.values()) < 1:
        raise ConfigError("LOGIN_* and SIGNUPS_PER_ADDRESS_PER_HOUR must be at least 1")
    if not 0 <= password_min_score <= 4:
        raise ConfigError("PASSWORD_MIN_SCORE must be from 0 to 4 (zxcvbn's scale)")
    return dict(allow_signup=env.flag("ALLOW_SIGNUP", True), password_min_score=password_min_score, **budgets)
