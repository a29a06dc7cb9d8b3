"""The objects every handler needs, built once per process (or per test)."""
from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path

from server.accounts.service import Accounts
from server.calls import Calls
from server.chat import Chat
from server.config import Config
from server.db.engine import Database
from server.files.service import Files
from server.realtime.heartbeat import Heartbeat
from server.realtime.ratelimit import RateLimiter
from server.kernel.signing_keys import SigningKeys
from server.realtime.registry import Registry
from server.recordings import Recordings
from server.storage import Storage, storage_from_url
from server.storage.s3 import S3Options


def s3_options(config: Config) -> S3Options:
    return S3Options(endpoint_url=config.s3_endpoint_url, region=config.s3_region,
                     access_key_id=config.s3_access_key_id, secret_access_key=config.s3_secret_access_key,
                     addressing_style=config.s3_addressing_style)


@dataclass
class Deps:
    config: Config
    db: Database
    registry: Registry
    chat: Chat
    limiter: RateLimiter
    signal_limiter: RateLimiter
    calls: Calls
    recordings: Recordings = None  # type: ignore[assignment]
    storage: Storage = None  # type: ignore[assignment]
    signing: SigningKeys = None  # type: ignore[assignment]
    heartbeat: Heartbeat = None  # type: ignore[assignment]
    accounts: Accounts = None  # type: ignore[assignment]
    files: Files = None  # type: ignore[assignment]
    shutting_down: bool = False
    sockets: set = field(default_factory=set)  # every open /ws socket, authenticated or not
    stats: dict = field(default_factory=lambda: {"dropped": 0, "overflows": 0, "rate_limited": 0})

    def __post_init__(self) -> None:
        from server.metrics import Metrics
        from server.realtime.turn_budget import TurnBudget

        self.metrics = Metrics(self)
        self.transfer_budget = TurnBudget()
        if self.recordings is None:
            self.recordings = Recordings(self.db, self.registry, self.chat, self.calls, self.config)
        if self.heartbeat is None:
            self.heartbeat = Heartbeat(lambda: self.sockets, self.config.heartbeat_s,
                                       self.config.heartbeat_timeout_s)

    async def start(self) -> None:
        """Start what needs the running loop: the Redis bus when ``REDIS_URL`` is set."""
        cfg = self.config
        if cfg.redis_url and self.registry.bus is None:
            from server.realtime.bus import RedisBus
            from server.realtime.change_order import ChangeOrder
            from server.realtime.notices import MemberRemoved, NoticeRouter, WorkerNotice
            from server.realtime.room_order import RoomOrder

            order = RoomOrder(self.chat.frames_after, self.registry.local_room)
            self.registry.changes = ChangeOrder(self.chat.change_frames_after, self.registry.local_room)

            router = NoticeRouter()

            def member_removed(n: MemberRemoved, frame: bytes) -> None:  # through another process
                self.chat.unsubscribe_user(n.room, n.user)
                self.calls.spawn(self.calls.member_removed(n.room, n.user))

            router.on(MemberRemoved, member_removed)
            self.calls.register_notices(router)
            router.on(WorkerNotice, self.recordings.on_worker_notice)
            bus = RedisBus(cfg.redis_url, self.registry, order, channel=f"{cfg.redis_prefix}:events",
                           router=router, verify_tls=cfg.redis_verify_tls,
                           max_connections=cfg.redis_max_connections)
            self.registry.bus, self.registry.order = bus, order
            await bus.start()
            from server.realtime.presence import RedisPresence

            self.chat.presence = RedisPresence(bus._redis, cfg.redis_prefix, self.registry, bus.origin)
            self.chat.presence.start()
            from server.realtime.call_directory import CallDirectory

            self.calls.directory = CallDirectory(bus._redis, cfg.redis_prefix, bus.origin)
            await self.calls.directory.start()
            from server.realtime.worker_directory import WorkerDirectory

            self.recordings.directory = WorkerDirectory(bus._redis, cfg.redis_prefix, bus.origin,
                                                        self.calls.directory)
            self.recordings.start_sweeping()

    async def close(self) -> None:
        if self.chat.presence is not None:
            await self.chat.presence.close()
        if self.calls.directory is not None:
            await self.calls.directory.close()
        if self.registry.bus is not None:
            await self.registry.bus.close()
        self.heartbeat.stop()
        self.recordings.close()
        await self.calls.close()
        await self.chat.writer.close()
        await self.db.close()
        await self.storage.close()

    @classmethod
    def build(cls, config: Config) -> "Deps":
        db = Database(config.database_url)
        registry = Registry()
        chat = Chat(db, registry, config)
        storage_url = config.storage_url or f"file://{(Path(config.data_dir) / 'files').resolve().as_posix()}"
        # load_config always supplies keys; a bare Config (tests) gets one random key.
        signing = SigningKeys(config.signing_keys or [("ephemeral", secrets.token_bytes(32))])
        storage = storage_from_url(storage_url, Path.cwd(), s3_options(config))
        return cls(config=config, db=db, registry=registry, chat=chat, storage=storage, signing=signing,
                   limiter=RateLimiter(config.rate_per_s, config.rate_burst),
                   signal_limiter=RateLimiter(config.signal_rate_per_s, config.signal_burst),
                   calls=Calls(db, registry, chat, config), accounts=Accounts(config, db),
                   files=Files(config, db, storage, signing, chat.room_role))
