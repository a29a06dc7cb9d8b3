"""server/sfu/service.py: the configured Janus servers or the mesh, and what the log says."""
from __future__ import annotations

import logging

import pytest

from server.config import Config
from server.sfu.service import Sfu
from tests.sfu.conftest import wait_until

SECRET = "s" * 40


async def test_no_janus_configured_means_mesh_and_the_log_says_so(caplog):
    """Without JANUS_URL(S) nothing connects and the log names the mesh."""
    sfu = Sfu(Config(jwt_secret=SECRET))
    with caplog.at_level(logging.INFO, logger="podium.sfu"):
        sfu.start()
    assert not sfu.enabled and sfu.node_for_session(1) is None
    assert any("browser mesh" in r.getMessage() for r in caplog.records)
    await sfu.close()


@pytest.mark.slow
async def test_a_configured_janus_is_connected_and_an_unreachable_one_logged(janus, in_netns, caplog):
    """A reachable Janus becomes the node for new sessions; an unreachable one is retried and
    logged, never chosen."""
    config = Config(jwt_secret=SECRET, janus_urls=(janus.url, "ws://127.0.0.1:9"),
                    janus_api_secret=janus.settings.api_secret, janus_admin_key=janus.settings.room_admin_key)
    sfu = Sfu(config)
    with caplog.at_level(logging.INFO, logger="podium.sfu"):
        sfu.start()
        try:
            await wait_until(lambda: sfu.nodes[0].connection.connected.is_set(), 10)
            await wait_until(lambda: any("cannot connect to janus ws://127.0.0.1:9" in r.getMessage()
                                         for r in caplog.records), 10)
            node = sfu.node_for_session(1)
            assert node is sfu.nodes[0]
            await node.rooms.open("call-1")
            assert list(node.rooms.open_rooms) == ["call-1"]
            await node.rooms.close("call-1")
        finally:
            await sfu.close()


def test_janus_urls_from_the_environment(tmp_path):
    """JANUS_URLS (or JANUS_URL) is a comma list of ws:// or wss:// URLs; anything else is a
    ConfigError, as is a production Janus without JANUS_API_SECRET."""
    from server.config import ConfigError, load_config
    env = {"DATA_DIR": str(tmp_path)}
    assert load_config(env).janus_urls == ()
    c = load_config({**env, "JANUS_URLS": "ws://127.0.0.1:8188, wss://janus.example.org/ws",
                     "JANUS_API_SECRET": "a", "JANUS_ADMIN_KEY": "b"})
    assert c.janus_urls == ("ws://127.0.0.1:8188", "wss://janus.example.org/ws")
    assert (c.janus_api_secret, c.janus_admin_key) == ("a", "b")
    assert load_config({**env, "JANUS_URL": "ws://10.0.0.5:8188"}).janus_urls == ("ws://10.0.0.5:8188",)
    with pytest.raises(ConfigError):
        load_config({**env, "JANUS_URL": "http://10.0.0.5:8088/janus"})
    prod = {**env, "PODIUM_ENV": "production", "JWT_SECRET": "j" * 40, "WORKER_SECRET": "w" * 40,
            "SIGNING_KEYS": "k1:" + "x" * 43, "JANUS_URL": "ws://10.0.0.5:8188"}
    with pytest.raises(ConfigError, match="JANUS_API_SECRET"):
        load_config(prod)
