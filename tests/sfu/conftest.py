"""Fixtures for SFU tests: a private network namespace (``netns.py``), a real Janus inside it
with a config from ``server/sfu/janus_config.py``, and the test thread entered into that
namespace with aioice gathering on the peers' veth address only.

Janus's WebSocket API listens on the namespace's own loopback (127.0.0.1:8188 there: no clash
with anything outside); its ICE candidates are on ``v0`` (10.77.0.1); aiortc peers gather on
``v1`` (10.77.0.2). Nothing here can reach, or be reached from, the machine's real network.
"""
from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import aioice.ice
import pytest

from server.sfu.janus_config import JanusSettings, settings_for, write_config
from tests.sfu.netns import JANUS_IFACE, PEER_ADDR, NetNamespace

JANUS_START_TIMEOUT_S = 15


@dataclass
class JanusProcess:
    """A real Janus in the test namespace; ``stop``/``start`` restart it (rooms are lost)."""

    ns: NetNamespace
    settings: JanusSettings
    log_path: Path
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return self.settings.url

    def start(self) -> None:
        log = open(self.log_path, "ab")
        self.proc = self.ns.popen(self.settings.command(shutil.which("janus") or "janus"),
                                  stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + JANUS_START_TIMEOUT_S
        with self.ns.entered():
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"janus exited with {self.proc.returncode}: see {self.log_path}")
                try:
                    socket.create_connection((self.settings.ws_ip, self.settings.ws_port), timeout=0.5).close()
                    return
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"janus did not listen within {JANUS_START_TIMEOUT_S}s: see {self.log_path}")
                    time.sleep(0.1)

    def stop(self, kill: bool = False) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill() if kill else self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None


@pytest.fixture(scope="module")
def netns():
    ns = NetNamespace.create(lifetime_s=600)
    yield ns
    ns.close()


def started_janus(netns, tmp_path_factory, reclaim_session_timeout_s: int = 10) -> JanusProcess:
    """A Janus in the test namespace (WebSocket 8188, RTP 20000-20999), started."""
    if shutil.which("janus") is None:
        pytest.fail("janus is not installed: run scripts/setup.sh --test")
    folder = tmp_path_factory.mktemp("janus")
    settings = settings_for(folder, ws_port=8188, rtp_port_range="20000-20999", ice_enforce_list=JANUS_IFACE,
                            reclaim_session_timeout_s=reclaim_session_timeout_s)
    write_config(settings)
    jp = JanusProcess(netns, settings, folder / "janus.log")
    jp.start()
    return jp


@pytest.fixture(scope="module")
def janus(netns, tmp_path_factory):
    jp = started_janus(netns, tmp_path_factory)
    yield jp
    jp.stop()


@pytest.fixture
def in_netns(netns, monkeypatch):
    """The test runs inside the namespace; aiortc peers gather on the peers' veth address."""
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4=True, use_ipv6=True: [PEER_ADDR])
    with netns.entered():
        yield netns


async def wait_until(predicate, timeout: float, step: float = 0.05) -> None:
    """Poll ``predicate`` until true; AssertionError after ``timeout`` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(step)
