"""The objects every handler needs, built once per process (or per test)."""
from __future__ import annotations

from dataclasses import dataclass, field

from server.calls import Calls
from server.chat import Chat
from server.config import Config
from server.db.engine import Database
from server.realtime.heartbeat import Heartbeat
from server.realtime.ratelimit import RateLimiter
from server.realtime.registry import Registry


@dataclass
class Deps:
    config: Config
    db: Database
    registry: Registry
    chat: Chat
    limiter: RateLimiter
    signal_limiter: RateLimiter
    calls: Calls
    heartbeat: Heartbeat = None  # type: ignore[assignment]
    shutting_down: bool = False
    sockets: set = field(default_factory=set)  # every open /ws socket, authenticated or not
    stats: dict = field(default_factory=lambda: {"dropped": 0, "overflows": 0, "rate_limited": 0})

    def __post_init__(self) -> None:
        if self.heartbeat is None:
            self.heartbeat = Heartbeat(lambda: self.sockets, self.config.heartbeat_s,
                                       self.config.heartbeat_timeout_s)

    async def close(self) -> None:
        self.heartbeat.stop()
        await self.calls.close()
        await self.chat.writer.close()
        await self.db.close()

    @classmethod
    def build(cls, config: Config) -> "Deps":
        db = Database(config.database_url)
        registry = Registry()
        chat = Chat(db, registry, config)
        return cls(config=config, db=db, registry=registry, chat=chat,
                   limiter=RateLimiter(config.rate_per_s, config.rate_burst),
                   signal_limiter=RateLimiter(config.signal_rate_per_s, config.signal_burst),
                   calls=Calls(db, registry, chat, config))
