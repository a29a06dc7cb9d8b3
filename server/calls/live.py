"""A live call in the memory of the process holding its participants' sockets: the session
(``LiveSession``) and each ``Participant`` in it."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime

from server.kernel.clock import iso
from server.kernel.frames import event_frame
from server.realtime.notices import SessionFrame


@dataclass
class Participant:
    conn: object  # the ChatSocket
    user_id: int
    display_name: str
    role: str  # room role, or "recorder"
    joined_at: datetime
    interval_id: int | None
    media: dict = field(default_factory=lambda: {"audio": False, "video": False, "screen": False})
    hand: bool = False
    # SFU calls: muted at Janus by an instructor; ``may_unmute`` false while they hold it.
    muted_by_instructor: bool = False
    may_unmute: bool = True
    # the peer id this participant resumed (calls/resume.py); else its socket's connection id
    resumed_as: str | None = None

    @property
    def peer_id(self) -> str:
        return self.resumed_as or self.conn.connection_id

    @property
    def recorder(self) -> bool:
        return self.role == "recorder"

    def wire(self) -> dict:
        return {"peer_id": self.peer_id,
                "user": {"id": str(self.user_id), "display_name": self.display_name, "role": self.role},
                "joined_at": iso(self.joined_at), "media": dict(self.media), "hand": self.hand,
                "recorder": self.recorder, "muted_by_instructor": self.muted_by_instructor,
                "may_unmute": self.may_unmute}


@dataclass
class LiveSession:
    row: object  # CallSession
    participants: dict[str, Participant] = field(default_factory=dict)
    banned: set[int] = field(default_factory=set)
    end_timer: asyncio.TimerHandle | None = None
    recording: dict | None = None  # the recording being made, as last announced
    publish: object = None  # with REDIS_URL: (header, frame) → the other processes
    # SFU calls: user id → allow_unmute, for users an instructor muted (calls/controls.py)
    instructor_mutes: dict[int, bool] = field(default_factory=dict)
    # connection id → peer id, for participants who resumed an earlier peer id
    resumed: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> int:
        return self.row.id

    @property
    def room_id(self) -> int:
        return self.row.room_id

    def has_instructor(self) -> bool:
        return any(p.role == "instructor" for p in self.participants.values())

    def send(self, event: dict, exclude: str | None = None) -> None:
        """To every participant, in every process (never dropped: signaling state)."""
        frame = event_frame(event)
        self.send_local(frame, exclude)
        if self.publish is not None:
            self.publish(SessionFrame(self.id, exclude), frame)

    def send_local(self, frame: bytes, exclude: str | None = None) -> None:
        for p in tuple(self.participants.values()):
            if p.peer_id != exclude:
                p.conn.send_frame(frame)

    def of_conn(self, conn) -> Participant | None:
        """This socket's participant, if it takes part."""
        p = self.participants.get(self.resumed.get(conn.connection_id, conn.connection_id))
        return p if p is not None and p.conn is conn else None

    def participants_of(self, user_id: int) -> list[Participant]:
        return [p for p in self.participants.values() if p.user_id == user_id and not p.recorder]
