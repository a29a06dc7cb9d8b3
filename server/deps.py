"""Every long-lived object of a web process, built once (per process, or per test) in
dependency order — kernel ← db ← realtime ← rooms ← {chat, calls, files, accounts} ← recordings
— with the hooks, ops and notice handlers each feature registers. Nothing is wired later:
``start`` only starts what needs the running loop, ``close`` stops it.
"""
from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

from server.accounts.jwks import JwksCache
from server.accounts.service import Accounts
from server.accounts.signout import close_signed_out
from server.accounts.throttle import LoginThrottle, limits_storage
from server.calls import notices as call_notices
from server.calls import ops as call_ops
from server.calls.attendance import Attendance
from server.calls.controls import Controls
from server.calls.breakouts import Breakouts
from server.calls.lobby import Lobby
from server.calls.ringing import Ringing
from server.calls.policy import CallPolicy
from server.rooms.moderation import Moderation
from server.calls.sessions import Calls
from server.calls import sfu_signaling
from server.calls.sfu_resume import SfuResume
from server.calls.sfu_signaling import SfuSignaling
from server.calls.signaling import Signaling
from server.chat import ops as chat_ops
from server.chat.messages import Messages
from server.chat.wire import SendRequest
from server.chat.presence import Presence
from server.chat.search import Search
from server.config import Config
from server.db.engine import Database
from server.files.service import Files
from server.heap import GcPauses
from server.kernel.signing_keys import SigningKeys
from server.metrics import Metrics
from server.polls import ops as poll_ops
from server.polls.service import Polls
from server.realtime.dispatch import Dispatcher
from server.realtime.heartbeat import Heartbeat
from server.realtime.notices import NoticeRouter
from server.realtime.budget import Budget, LocalBudget, SharedBudget
from server.realtime.registry import Registry
from server.realtime.turn_budget import TurnBudget
from server.recordings import ops as recording_ops
from server.recordings.assets import AssetAccess, Assets
from server.recordings.lifecycle import Recordings
from server.recordings.manage import RecordingManager
from server.lti.service import Lti
from server.lti.validate import KeySets
from server.provision.service import Provisioning
from server.rooms.service import Rooms
from server.sfu.placement import RedisPlacements
from server.sfu.service import Sfu
from server.storage import storage_from_url
from server.storage.s3 import S3Options


def s3_options(config: Config) -> S3Options:
    return S3Options(endpoint_url=config.s3_endpoint_url, region=config.s3_region,
                     access_key_id=config.s3_access_key_id, secret_access_key=config.s3_secret_access_key,
                     addressing_style=config.s3_addressing_style)


class Deps:
    def __init__(self, config: Config):
        self.config = config
        self.shutting_down = False
        self.sockets: set = set()  # every open /ws socket, authenticated or not
        self.gc_pauses = GcPauses()  # installed by the served process only (server/heap.py)
        self.stats = {"dropped": 0, "overflows": 0, "rate_limited": 0, "downloads_sendfile": 0, "downloads_streamed": 0}
        self.db = Database(config.database_url)
        storage_url = config.storage_url or f"file://{(Path(config.data_dir) / 'files').resolve().as_posix()}"
        self.storage = storage_from_url(storage_url, Path.cwd(), s3_options(config))
        # load_config always supplies keys; a bare Config (tests) gets one random key.
        self.signing = SigningKeys(config.signing_keys or [("ephemeral", secrets.token_bytes(32))])
        self.transfer_budget = TurnBudget()

        # realtime: the registry, and with REDIS_URL the bus and the shared directories
        self.registry = Registry()
        self._fresh_roles: asyncio.Future | None = None
        self._fresh_rules: asyncio.Future | None = None
        self.router = NoticeRouter()
        self.rooms = Rooms(self.db, self.registry)
        self.messages = Messages(self.db, self.registry, config.max_content_bytes)
        self.search = Search(self.db, self.messages.wires)
        self.bus = presence_store = call_directory = worker_directory = None
        if config.redis_url:
            self.bus, presence_store, call_directory, worker_directory = self._redis_parts()
        # One budget per user for chat frames and REST sends; uploads and links have their own.
        self.chat_budget = self._budget("chat", config.rate_per_s, config.rate_burst)
        self.upload_budget = self._budget("upload", config.upload_rate_per_min / 60, config.upload_burst)
        self.link_budget = self._budget("link", config.link_rate_per_min / 60, config.link_burst)
        self.dispatcher = Dispatcher(self.chat_budget, LocalBudget(config.signal_rate_per_s, config.signal_burst),
                                     config.rate_abuse_limit, self.stats)
        self.heartbeat = Heartbeat(lambda: self.sockets, config.heartbeat_s, config.heartbeat_timeout_s)

        # features
        # key sets (JWKS) of the identity provider and LTI platforms: one bounded cache
        self.jwks = JwksCache.from_config(config)
        self.accounts = Accounts(config, self.db, LoginThrottle(config, limits_storage(config, self.bus.redis if self.bus else None)),
                                 self.jwks)
        self.presence = Presence(self.db, self.registry, presence_store)
        # the Janus servers of JANUS_URLS, or none: mesh calls; with Redis every process places
        # a session on the same Janus (sfu/placement.py)
        self.sfu = Sfu(config, RedisPlacements(self.bus.redis, config.redis_prefix) if self.bus else None)
        # chat lock, slow mode and bans (issue 16.4); slow mode's slots in Redis with REDIS_URL
        self.moderation = Moderation(self.db, self.registry, self.bus.redis if self.bus else None,
                                     config.redis_prefix)
        self.calls = Calls(self.db, self.registry, self.rooms, config, call_directory)
        self.signaling = Signaling(self.calls)
        # a participant's Janus session outlives its socket, for a resume (calls/sfu_resume.py)
        self.sfu_resume = SfuResume(self.db, self.sfu, config.call_resume_grace_s, self.calls.spawn)
        self.sfu_signaling = SfuSignaling(self.calls, self.sfu, self.sfu_resume)
        self.controls = Controls(self.calls)
        self.controls.enforce_with(self.sfu_signaling)  # SFU calls: instructor mutes hold at Janus
        # hands lowered by instructors, students' cameras and screens per call (issue 16.4)
        self.lobby = self.calls.lobby = Lobby(self.calls)  # a call's waiting room (issue 16.3)
        self.calls.ringing = Ringing(self.calls, config.ring_timeout_s)  # calls ring people (issue 19.1)
        # breakout rooms: groups with rooms and calls of their own (issue 16.2)
        self.breakouts = Breakouts(self.db, self.calls, self.registry, self._announce)
        self.call_policy = CallPolicy(self.calls, self.sfu_signaling, self.lobby)
        self.attendance = Attendance(self.db)
        self.polls = Polls(self.db, self.registry)
        self.files = Files(config, self.db, self.storage, self.signing, self.rooms.role)
        self.recordings = Recordings(self.db, self.registry, self.calls, config, worker_directory)
        # titles, deletion and retention of recordings (issue 15.2)
        self.recording_manager = RecordingManager(self.db, self.storage, self.registry, config.recording_retention_days)
        self.assets = Assets(self)
        self.metrics = Metrics(self)
        # LTI 1.3 launches, roster sync, gradebook, Deep Linking (server/lti/, docs/LMS.md)
        self.lti = Lti(config, self.db, self.rooms, self.attendance)
        self.lti.key_sets = KeySets(self.jwks)  # platforms' key sets in the one bounded cache
        self.provisioning = Provisioning(config, self.db, self.rooms)  # LMS back ends (server/provision/)
        self._register()

    def _budget(self, name: str, rate: float, burst: int) -> Budget:
        """Per-user budget: in Redis (shared by every process) with REDIS_URL, else local."""
        if self.bus is None:
            return LocalBudget(rate, burst)
        return SharedBudget(self.bus.raw, f"{self.config.redis_prefix}:budget:{name}", rate, burst)

    def _redis_parts(self):
        from server.realtime.bus import RedisBus
        from server.realtime.call_directory import CallDirectory
        from server.realtime.change_order import ChangeOrder
        from server.realtime.presence import RedisPresence
        from server.realtime.room_order import RoomOrder
        from server.realtime.worker_directory import WorkerDirectory

        cfg = self.config
        order = RoomOrder(self.messages.frames_after, self.registry.local_room)
        changes = ChangeOrder(self.messages.change_frames_after, self.registry.local_room)
        bus = RedisBus(cfg.redis_url, self.registry, order, channel=f"{cfg.redis_prefix}:events",
                       router=self.router, verify_tls=cfg.redis_verify_tls,
                       max_connections=cfg.redis_max_connections)
        self.registry.connect_bus(bus, order, changes)
        calls = CallDirectory(bus.redis, cfg.redis_prefix, bus.origin)
        return (bus, RedisPresence(bus.redis, cfg.redis_prefix, self.registry, bus.origin), calls,
                WorkerDirectory(bus.redis, cfg.redis_prefix, bus.origin, calls))

    def _register(self) -> None:
        """The hooks, ops and notice handlers features register (the only wiring there is)."""
        d = self.dispatcher
        chat_ops.register(d, self.messages, self.presence, self.config.max_content_bytes, self.moderation.gate)
        call_ops.register(d, self.calls, self.signaling, self.controls, self.call_policy, self.lobby)
        # SFU calls (docs/CALLS.md): the sfu.* ops, the join ack's media_path, and Janus state
        # that follows participants leaving and calls ending.
        sfu_signaling.register(d, self.sfu_signaling)
        self.calls.media_path_from(self.sfu_signaling.media_path)
        self.calls.on_participant_left(self.sfu_signaling.left)
        self.calls.on_resumed(self.sfu_signaling.resumed)
        self.calls.on_ended(self.sfu_signaling.ended)
        self.calls.on_ended(self.lobby.ended)
        self.calls.on_ended(self.calls.ringing.ended)
        recording_ops.register(d, self.recordings)
        # Polls are messages of their own kind (server/polls/): their wires carry the poll.
        poll_ops.register(d, self.polls)
        self.messages.add_kind_fields("poll", self.polls.message_fields)
        d.on_authenticated(self.presence.socket_authenticated)
        d.on_authenticated(self.calls.ringing.socket_authenticated)  # a socket opened while rung rings
        # A changed password closes the user's sockets opened with older tokens.
        self.accounts.on_signed_out(close_signed_out(self.registry))
        d.on_closed(self.calls.socket_closed)
        d.on_closed(self.lobby.socket_closed)
        d.on_closed(self.recordings.socket_closed)
        d.on_closed(self.presence.socket_closed)
        self.presence.on_join(self.calls.live_in_room)
        # A removed member leaves the room's call, and their sockets stop receiving the room.
        self.rooms.on_member_removed(self.calls.member_removed)
        self.rooms.on_member_removed(self.presence.member_removed)
        self.rooms.on_archive_changed(self.moderation.forget)  # archived rooms refuse sends
        self.rooms.on_archive_changed(self.calls.room_archive_changed)  # and their live call ends
        self.files.room_open = self.rooms.require_open  # and uploads
        self.files.tell_room = self.registry.broadcast  # files.changed to the room's members
        self.recordings.hook_into(self.calls)
        self.files.add_access_rule(AssetAccess(self.db, self.rooms))
        if self.bus is not None:
            self.rooms.register_notices(self.router, self.calls.spawn)
            self.moderation.register_notices(self.router)
            call_notices.register(self.router, self.calls, self.controls, self.call_policy, self.lobby)
            self.recordings.pool.register_notices(self.router)

    @classmethod
    def build(cls, config: Config) -> "Deps":
        return cls(config)

    async def start(self) -> None:
        """Start what needs the running loop: with ``REDIS_URL`` the bus, presence refresh, the
        call directory and the sweep of unfinished recordings; the Janus connections (if any)."""
        self.db.start()  # SQLite: the log's checkpoints, off the write path
        if not self.sfu.started:
            self.sfu.start()
        self.recording_manager.start()  # the retention sweep, when RECORDING_RETENTION_DAYS is set
        self.lti.start_services()  # the periodic LMS roster sync (LTI_ROSTER_SYNC_S)
        if self._fresh_roles is None:  # connected users' roles re-read together (accounts/service.py)
            self._fresh_roles = asyncio.ensure_future(self.accounts.keep_fresh(lambda: list(self.registry.by_user)))
            self._fresh_rules = asyncio.ensure_future(self.moderation.keep_fresh())  # rooms' chat rules, likewise
        if self.bus is None or self.bus.started:
            return
        await self.bus.start()
        self.presence.store.start()
        await self.calls.directory.start()
        self.recordings.start_sweeping()

    async def _announce(self, actor, room_id: int, text: str) -> None:
        """An instructor's announcement in a room, as a message sent (breakouts' broadcast)."""
        await self.messages.send(SendRequest(actor, room_id, "announcement", text, "bk-" + secrets.token_hex(8), None, None))

    async def close(self) -> None:
        if self._fresh_roles is not None:
            self._fresh_roles.cancel()
            self._fresh_rules.cancel()
        if self.presence.store is not None:
            await self.presence.store.close()
        if self.calls.directory is not None:
            await self.calls.directory.close()
        if self.bus is not None:
            await self.bus.close()
        self.heartbeat.stop()
        self.recordings.close()
        self.recording_manager.close()
        self.lti.close()
        self.breakouts.close()
        self.calls.ringing.close()
        await self.polls.shutdown()
        await self.calls.close()
        self.sfu_resume.close()  # parked Janus sessions stay for the next process to take
        await self.sfu.close()  # after calls: participants leaving in flight park their Janus sessions
        await self.presence.close()
        await self.messages.writer.close()
        await self.db.close()
        await self.storage.close()
