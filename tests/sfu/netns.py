"""A private network namespace for SFU tests: Janus and its test peers talk over a veth pair
that exists only inside it (../shared/design/SFU-NOTES.md: Janus never gathers ICE candidates
on loopback, and tests must never use the machine's real interface).

``NetNamespace.create()`` starts a holder process with ``unshare --net`` (root only) that sets
up ``lo`` and a veth pair — ``v0`` 10.77.0.1/24 for Janus, ``v1`` 10.77.0.2/24 for the peers —
with ``accept_local`` on (both ends are local addresses), then sleeps at most ``lifetime_s``.
``popen(cmd)`` starts a process inside (``nsenter``); ``entered()`` moves the calling thread
into it (``setns``) for the ``with`` block, so sockets the test process opens meanwhile — its
Janus client, aiortc's ICE sockets, an in-process Podium server — live in the namespace and
stay there after the block. ``close()`` kills the holder and everything started inside.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field

CLONE_NEWNET = 0x40000000
JANUS_ADDR, PEER_ADDR = "10.77.0.1", "10.77.0.2"
JANUS_IFACE, PEER_IFACE = "v0", "v1"

_SETUP = f"""set -e
ip link set lo up
ip link add {JANUS_IFACE} type veth peer name {PEER_IFACE}
ip addr add {JANUS_ADDR}/24 dev {JANUS_IFACE}
ip addr add {PEER_ADDR}/24 dev {PEER_IFACE}
ip link set {JANUS_IFACE} up
ip link set {PEER_IFACE} up
for i in all {JANUS_IFACE} {PEER_IFACE}; do sysctl -q -w net.ipv4.conf.$i.accept_local=1; done
echo ready
exec sleep "$1"
"""

_libc = ctypes.CDLL("libc.so.6", use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


@dataclass
class NetNamespace:
    holder: subprocess.Popen
    children: list[subprocess.Popen] = field(default_factory=list)

    @classmethod
    def create(cls, lifetime_s: int = 900) -> "NetNamespace":
        if os.geteuid() != 0:
            raise PermissionError("SFU tests create a network namespace: run them as root")
        holder = subprocess.Popen(["unshare", "--net", "--", "sh", "-c", _SETUP, "netns", str(lifetime_s)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = holder.stdout.readline().strip()
        if line != "ready":
            holder.kill()
            raise RuntimeError(f"network namespace set-up failed: {line} {holder.stderr.read()}")
        return cls(holder)

    @property
    def path(self) -> str:
        return f"/proc/{self.holder.pid}/ns/net"

    def popen(self, cmd: list[str], **kw) -> subprocess.Popen:
        """Start ``cmd`` inside the namespace (in its own process group); closed by ``close``."""
        proc = subprocess.Popen(["nsenter", f"--net={self.path}", "--", *cmd], start_new_session=True, **kw)
        self.children.append(proc)
        return proc

    @contextlib.contextmanager
    def entered(self) -> Iterator[None]:
        """The calling thread is inside the namespace for the block, back outside after it."""
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        inside = os.open(self.path, os.O_RDONLY)
        try:
            _setns(inside)
            try:
                yield
            finally:
                _setns(home)
        finally:
            os.close(inside)
            os.close(home)

    def close(self) -> None:
        for proc in self.children + [self.holder]:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    if proc is self.holder:
                        proc.kill()
                    else:
                        os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        for stream in (self.holder.stdout, self.holder.stderr):
            if stream:
                stream.close()
