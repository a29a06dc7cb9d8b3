"""The Janus API without I/O: request builders, transaction bookkeeping, and the routing of
what Janus sends back (the ``websockets`` split: protocol here, the socket in ``client.py``).

Janus answers a request in one of four ways, matched here by ``transaction``:

* ``success`` — core requests (``create``, ``attach``, ``claim`` …) and synchronous plugin
  requests (VideoRoom ``create``, ``destroy``, ``kick``, ``moderate``, ``listparticipants``);
* ``ack`` then ``event`` — asynchronous plugin requests (``join``, ``publish``, ``start`` …);
  the ``ack`` alone answers ``keepalive`` and ``trickle``;
* ``error`` — a core error (403 unauthorised, 458 no such session, …);
* a plugin error — a ``success`` or ``event`` whose plugin data carries ``error_code``.

Everything without a pending transaction (``webrtcup``, ``media``, ``hangup``, ``slowlink``,
``detached``, ``timeout`` and plugin events such as ``publishers`` or ``talking``) is
unsolicited and is routed by ``(session_id, sender)``.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

# Core error codes that mean "this session (or handle) no longer exists in Janus".
NO_SUCH_SESSION = 458
NO_SUCH_HANDLE = 459
ACK_ENOUGH = frozenset({"keepalive", "trickle"})


class JanusError(RuntimeError):
    """Janus refused a request: ``code`` is Janus's (core or plugin) error code."""

    def __init__(self, code: int, reason: str, plugin: bool = False):
        super().__init__(f"janus {'plugin ' if plugin else ''}error {code}: {reason}")
        self.code, self.reason, self.plugin = code, reason, plugin


class JanusClosed(ConnectionError):
    """The connection to Janus closed while the request was pending (or before it was sent)."""


@dataclass
class Pending:
    """One request waiting for its answer. ``ack_enough``: an ``ack`` resolves it."""

    kind: str
    session_id: int | None
    ack_enough: bool
    acked: bool = False


@dataclass(frozen=True)
class Reply:
    """A transaction's final answer. ``data`` is the core ``data`` or the plugin's ``data``."""

    janus: str
    data: dict
    jsep: dict | None = None
    raw: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Routed:
    """What ``Transactions.receive`` made of one message from Janus."""

    transaction: str | None = None  # set: this pending request is finished
    reply: Reply | None = None
    error: JanusError | None = None
    event: dict | None = None  # set: unsolicited, for ``(session_id, sender)``
    session_id: int | None = None
    sender: int | None = None


class Transactions:
    """Transaction ids and the requests waiting for them; decides what each message answers."""

    def __init__(self, prefix: str = "p") -> None:
        self._ids = itertools.count(1)
        self._prefix = prefix
        self.pending: dict[str, Pending] = {}

    def new(self, kind: str, session_id: int | None = None) -> str:
        tid = f"{self._prefix}{next(self._ids)}"
        self.pending[tid] = Pending(kind, session_id, kind in ACK_ENOUGH)
        return tid

    def forget(self, tid: str) -> None:
        self.pending.pop(tid, None)

    def drain(self) -> list[str]:
        """Every pending transaction id, forgotten (the connection closed under them)."""
        out = list(self.pending)
        self.pending.clear()
        return out

    def receive(self, msg: dict) -> Routed | None:
        """Route one message. None: an ``ack`` that leaves its request waiting for the event."""
        kind = msg.get("janus")
        tid = msg.get("transaction")
        session_id, sender = msg.get("session_id"), msg.get("sender")
        pending = self.pending.get(tid) if isinstance(tid, str) else None
        if pending is None:
            return Routed(event=msg, session_id=session_id, sender=sender)
        if kind == "ack":
            if pending.ack_enough:
                del self.pending[tid]
                return Routed(transaction=tid, reply=Reply("ack", {}, raw=msg))
            pending.acked = True
            return None
        if kind == "error":
            del self.pending[tid]
            err = msg.get("error") or {}
            return Routed(transaction=tid, error=JanusError(int(err.get("code", 0)), str(err.get("reason", ""))))
        if kind in ("success", "event"):
            del self.pending[tid]
            plugin = (msg.get("plugindata") or {}).get("data")
            if plugin is not None and "error_code" in plugin:
                return Routed(transaction=tid, error=JanusError(int(plugin["error_code"]), str(plugin.get("error", "")), plugin=True))
            data = plugin if plugin is not None else (msg.get("data") or {})
            return Routed(transaction=tid, reply=Reply(kind, data, msg.get("jsep"), msg))
        # A transaction id on something else (e.g. ``timeout``): treat as unsolicited.
        return Routed(event=msg, session_id=session_id, sender=sender)


def request(janus: str, transaction: str, apisecret: str | None, **fields: Any) -> dict:
    """A Janus API request; ``fields`` whose value is None are left out."""
    msg = {"janus": janus, "transaction": transaction}
    if apisecret:
        msg["apisecret"] = apisecret
    msg.update({k: v for k, v in fields.items() if v is not None})
    return msg
