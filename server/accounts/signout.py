"""Signing out the sockets of a changed password: the ``signed_out`` hook ``deps`` registers
on ``Accounts`` closes (4401) this process's sockets of the user that authenticated with a
token of an older version."""
from __future__ import annotations

from server.accounts.service import SIGNED_OUT, SignedOutHook
from server.realtime.close_codes import CLOSE_UNAUTHORIZED
from server.realtime.registry import Registry


def close_signed_out(registry: Registry) -> SignedOutHook:
    def hook(user_id: int, version: int) -> None:
        registry.close_user(user_id, CLOSE_UNAUTHORIZED, SIGNED_OUT,
                            only=lambda conn: conn.actor.token_version < version)
    return hook
