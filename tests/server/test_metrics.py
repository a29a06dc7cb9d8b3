"""``GET /metrics``: Prometheus text that follows what the server does."""
from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.calls.helpers import call_room, calls_settle  # noqa: F401  (autouse settle fixture)
from tests.chat.test_ws_chat import classroom, send
from tests.chat.test_ws_chat import joined as room_joined


async def scrape(server, token: str | None = None) -> dict[str, dict[tuple, float]]:
    status, body = await server.http("GET", "/metrics", headers={"Authorization": f"Bearer {token}"} if token else None)
    assert status == 200, body
    return samples(body)


def samples(body: bytes | str) -> dict[str, dict[tuple, float]]:
    """A /metrics body: sample name -> {sorted labels: value}."""
    out: dict[str, dict[tuple, float]] = {}
    for fam in text_string_to_metric_families(body.decode() if isinstance(body, bytes) else body):
        for s in fam.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def one(m: dict, name: str, **labels) -> float:
    return m[name][tuple(sorted(labels.items()))]


async def test_metrics_follow_connections_messages_deliveries_calls_and_http(server):
    """Connections, messages stored, deliveries, signaling relays, live sessions, recordings
    by status and HTTP latency by handler all move with what clients do."""
    before = await scrape(server)
    assert one(before, "podium_connections") == 0 and one(before, "podium_messages_stored_total") == 0
    k = await classroom(server)
    a = await room_joined(server, k.ana_tok, k.rid)
    b = await room_joined(server, k.ben_tok, k.rid)
    for i in range(5):
        await send(a, k.rid, f"m{i}")
    for _ in range(5):
        await b.next_event("message.new")
    m = await scrape(server)
    assert one(m, "podium_connections") == 2 and one(m, "podium_rooms_active") == 1
    assert one(m, "podium_messages_stored_total") == 5
    assert one(m, "podium_deliveries_total") >= 10  # 5 messages × 2 subscribers
    session, _ = await call_room(server, "mia", "noa")
    m = await scrape(server)
    assert one(m, "podium_call_sessions_live") == 1
    assert one(m, "podium_recordings", status="pending") == 0
    http = m["podium_http_request_duration_seconds_count"]
    assert any(dict(labels).get("handler") == "RoomsHandler" and v >= 1 for labels, v in http.items()), http
    if server.deps.db.is_sqlite:  # the log's checkpoints, off the write path (db/wal_checkpoints.py)
        assert "podium_sqlite_checkpoints_total" in m and "podium_sqlite_checkpoint_slowest_seconds" in m


@pytest.mark.parametrize("config_overrides", [{"metrics_token": "scrape-" + "s" * 30}])
async def test_metrics_token_is_required_when_set(server):
    """With METRICS_TOKEN, /metrics answers 401 without it or with a wrong one."""
    status, _ = await server.http("GET", "/metrics")
    assert status == 401
    status, _ = await server.http("GET", "/metrics", headers={"Authorization": "Bearer wrong"})
    assert status == 401
    m = await scrape(server, "scrape-" + "s" * 30)
    assert "podium_connections" in m
