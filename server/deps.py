"""The objects every handler needs, built once per process (or per test)."""
from __future__ import annotations

from dataclasses import dataclass, field

from server.chat import Chat
from server.config import Config
from server.db.engine import Database
from server.realtime.ratelimit import RateLimiter
from server.realtime.registry import Registry


@dataclass
class Deps:
    config: Config
    db: Database
    registry: Registry
    chat: Chat
    limiter: RateLimiter
    shutting_down: bool = False
    sockets: set = field(default_factory=set)  # every open /ws socket, authenticated or not
    stats: dict = field(default_factory=lambda: {"dropped": 0, "overflows": 0, "rate_limited": 0})

    async def close(self) -> None:
        await self.chat.writer.close()
        await self.db.close()

    @classmethod
    def build(cls, config: Config) -> "Deps":
        db = Database(config.database_url)
        registry = Registry()
        return cls(config=config, db=db, registry=registry, chat=Chat(db, registry, config),
                   limiter=RateLimiter(config.rate_per_s, config.rate_burst))
