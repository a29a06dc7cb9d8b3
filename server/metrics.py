"""``GET /metrics`` in the Prometheus text format (prometheus-client; docs/OPERATIONS.md).

Almost everything is read at scrape time from counters the process keeps anyway (no work per
event beyond an integer add); only HTTP request latency is observed per request, in one
histogram labelled by handler (bounded cardinality: never the raw path). One
``CollectorRegistry`` per process (per ``Deps``), so tests with many servers do not share one.
"""
from __future__ import annotations

import gc

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from sqlalchemy import func, select

from server.db.models import RECORDING_STATUSES, Recording

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _Live:
    """A collector reading the process's live state at scrape time."""

    def __init__(self, deps):
        self.deps = deps
        self.recordings: dict[str, int] = {}

    def collect(self):
        d = self.deps
        g = GaugeMetricFamily
        c = CounterMetricFamily
        yield g("podium_connections", "Open WebSocket connections", value=len(d.sockets))
        yield g("podium_users_connected", "Users with at least one authenticated socket",
                value=len(d.registry.by_user))
        yield g("podium_rooms_active", "Rooms with at least one subscribed socket", value=len(d.registry.by_room))
        yield c("podium_messages_stored", "Chat messages stored (sends that created a message)",
                value=d.messages.writer.stored)
        yield c("podium_deliveries", "Frames written to sockets by fan-out", value=d.registry.deliveries)
        yield c("podium_frames_dropped", "Droppable frames (typing, presence) dropped for slow readers",
                value=d.stats["dropped"])
        yield c("podium_queue_overflows", "Sockets closed 4008 because their outgoing queue overflowed",
                value=d.stats["overflows"])
        yield g("podium_gc_frozen_objects", "Objects alive at start, kept out of full collections (server/heap.py)",
                value=gc.get_freeze_count())
        yield c("podium_gc_full_collections", "Full (generation 2) garbage collections since start",
                value=d.gc_pauses.full)
        yield g("podium_gc_full_collection_slowest_seconds", "The slowest of those collections (the loop waits)",
                value=d.gc_pauses.slowest_s)
        if d.db.checkpointer is not None:  # SQLite: the log's checkpoints, off the write path
            yield c("podium_sqlite_checkpoints", "Passive checkpoints of the SQLite log (db/wal_checkpoints.py)",
                    value=d.db.checkpointer.checkpoints)
            yield g("podium_sqlite_checkpoint_slowest_seconds", "The slowest of those checkpoints",
                    value=d.db.checkpointer.slowest_s)
        yield c("podium_rate_limited", "Frames refused by the per-user rate limit", value=d.stats["rate_limited"])
        downloads = c("podium_downloads", "Download bodies (/dl/) by how they were sent: sendfile (disk storage, "
                      "zero copy) or streamed (chunks through Python)", labels=["path"])
        downloads.add_metric(["sendfile"], d.stats["downloads_sendfile"])
        downloads.add_metric(["streamed"], d.stats["downloads_streamed"])
        yield downloads
        yield c("podium_signaling_relays", "WebRTC signals relayed between call participants", value=d.calls.relays)
        yield g("podium_call_sessions_live", "Live call sessions held by this process", value=len(d.calls.live))
        yield g("podium_call_participants", "Call participants connected to this process",
                value=sum(len(s.participants) for s in d.calls.live.values()))
        yield g("podium_workers", "Media workers registered with this process", value=len(d.recordings.workers))
        rec = g("podium_recordings", "Recordings by status (whole database)", labels=["status"])
        for status in RECORDING_STATUSES:
            rec.add_metric([status], self.recordings.get(status, 0))
        yield rec
        bus = d.registry.bus
        if bus is not None:
            for name, value in bus.stats.items():
                yield c(f"podium_bus_{name}", f"Redis bus: {name.replace('_', ' ')}", value=value)
            yield g("podium_bus_connected", "Redis subscription up", value=1 if bus.connected.is_set() else 0)
            yield c("podium_bus_gaps_filled", "Gaps in message.new and message changes filled from SQL",
                    value=d.registry.order.gaps_filled + d.registry.changes.gaps_filled)


class Metrics:
    content_type = CONTENT_TYPE  # of what render() returns

    def __init__(self, deps):
        self.registry = CollectorRegistry(auto_describe=False)
        self.live = _Live(deps)
        self.registry.register(self.live)
        self.http = Histogram("podium_http_request_duration_seconds", "HTTP request latency by handler",
                              ["handler", "method", "code"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.deps = deps

    def observe(self, handler: str, method: str, code: int, seconds: float) -> None:
        self.http.labels(handler, method, str(code // 100) + "xx").observe(seconds)

    async def render(self) -> bytes:
        async with self.deps.db.read() as s:
            rows = (await s.execute(select(Recording.status, func.count()).group_by(Recording.status))).all()
        self.live.recordings = {status: int(n) for status, n in rows}
        return generate_latest(self.registry)
