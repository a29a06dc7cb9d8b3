"""Unit tests of server/sfu/janus_config.py: the generated Janus config folder."""
from __future__ import annotations

import json
import stat

import pytest

from server.sfu.janus_config import JanusSettings, main, render, settings_for, write_config


def test_secrets_are_generated_once_and_kept(tmp_path):
    """The first run writes secrets.json (0600); later runs reuse the same secrets."""
    a = settings_for(tmp_path / "j")
    b = settings_for(tmp_path / "j")
    assert a.api_secret == b.api_secret and a.admin_secret == b.admin_secret
    assert len({a.api_secret, a.admin_secret, a.room_admin_key}) == 3
    path = tmp_path / "j" / "secrets.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["api_secret"] == a.api_secret


def test_only_videoroom_and_websockets_on_loopback(tmp_path):
    """janus.jcfg disables every other plugin and transport; the WebSocket API binds the
    given address; the port range and enforce list are written; no HTTP transport file."""
    s = settings_for(tmp_path, rtp_port_range="30000-30100", ice_enforce_list="v0")
    files = render(s)
    core = files["janus.jcfg"]
    assert f'api_secret = "{s.api_secret}"' in core and f'admin_secret = "{s.admin_secret}"' in core
    assert 'rtp_port_range = "30000-30100"' in core and 'ice_enforce_list = "v0"' in core
    disabled = core.split("plugins: {")[1].split("}")[0]
    assert "libjanus_videoroom.so" not in disabled and "libjanus_sip.so" in disabled
    transports = core.split("transports: {")[1].split("}")[0]
    assert "libjanus_websockets.so" not in transports and "libjanus_http.so" in transports
    ws = files["janus.transport.websockets.jcfg"]
    assert 'ws_ip = "127.0.0.1"' in ws and "ws_port = 8188" in ws and "admin_ws = false" in ws
    assert f'admin_key = "{s.room_admin_key}"' in files["janus.plugin.videoroom.jcfg"]
    assert "ice_enforce_list" not in render(settings_for(tmp_path))["janus.jcfg"]
    write_config(s)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(list(files) + ["secrets.json"])


@pytest.mark.parametrize("field,value", [("rtp_port_range", "40000-20000"), ("rtp_port_range", "80-90"),
                                         ("ice_enforce_list", 'eth0"; evil = "1'), ("ws_port", 0)])
def test_bad_settings_are_refused(tmp_path, field, value):
    """A port range Janus would misread, a quote in a string, a bad port: ValueError."""
    s = settings_for(tmp_path)
    values = {k: getattr(s, k) for k in JanusSettings.__dataclass_fields__}
    values[field] = value
    with pytest.raises(ValueError):
        render(JanusSettings(**values))


def test_command_line_prints_the_web_process_env(tmp_path, capsys):
    """``--print-env`` prints JANUS_URL / JANUS_API_SECRET / JANUS_ADMIN_KEY for run.sh."""
    main([str(tmp_path / "j"), "--ws-port", "8190", "--print-env"])
    out = dict(line.split("=", 1) for line in capsys.readouterr().out.split())
    s = settings_for((tmp_path / "j").resolve())
    assert out == {"JANUS_URL": "ws://127.0.0.1:8190", "JANUS_API_SECRET": s.api_secret,
                   "JANUS_ADMIN_KEY": s.room_admin_key}
