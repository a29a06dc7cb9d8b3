"""Seed a migrated Podium database for the fan-out benchmark and mint tokens.

Run with the project venv from the repository root, with DATABASE_URL / DATA_DIR / JWT_SECRET
set exactly as the server will see them (``run.py`` does this):

    python bench/fanout/seed.py OUT.json [--subs 5000] [--fanout-members 500]
        [--idle-room-size 100] [--senders 50]

Rows are inserted with the server's own models and storage functions; tokens are minted with
``server.accounts.tokens.issue_token`` so the server accepts them. Layout:

* ``bench-pub`` (instructor): the publisher, creator of every room.
* ``sub00001`` … (students): subscribers. The first ``--fanout-members`` are members of the
  ``fanout`` room (scenarios 1 and 2); all of them are spread over ``idle-*`` rooms of
  ``--idle-room-size`` members (scenario 3).
* ``snd01`` … (students): members of the ``senders`` room (scenario 4).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

# The server source to use: the checkout this file is in, or PODIUM_SRC (run.py --ref exports a
# committed tree there).
ROOT = Path(os.environ.get("PODIUM_SRC") or Path(__file__).resolve().parents[2])
sys.path.insert(0, str(ROOT))

from server.accounts.tokens import issue_token  # noqa: E402
from server.kernel.clock import utcnow  # noqa: E402
from server.config import load_config  # noqa: E402
from server.db import rooms as rq  # noqa: E402
from server.db.engine import Database  # noqa: E402
from server.db.models import User  # noqa: E402

TOKEN_TTL_S = 24 * 3600


async def seed(args: argparse.Namespace) -> dict:
    config = load_config()
    db = Database(config.database_url)
    try:
        now = utcnow()
        async with db.write() as s:
            pub = User(username="bench-pub", display_name="Bench Publisher", password_hash=None,
                       role="instructor", created_at=now)
            subs = [User(username=f"sub{i:05d}", display_name=f"Subscriber {i}", password_hash=None,
                         role="student", created_at=now) for i in range(1, args.subs + 1)]
            senders = [User(username=f"snd{i:02d}", display_name=f"Sender {i}", password_hash=None,
                            role="student", created_at=now) for i in range(1, args.senders + 1)]
            s.add(pub)
            s.add_all(subs)
            s.add_all(senders)
            await s.flush()
            members = {pub.id: "instructor"}
            members.update({u.id: "student" for u in subs[:args.fanout_members]})
            fanout = await rq.create_room(s, "course", "Fan-out bench", pub.id, members)
            idle_rooms = []
            for k in range(0, len(subs), args.idle_room_size):
                chunk = subs[k:k + args.idle_room_size]
                members = {pub.id: "instructor"} | {u.id: "student" for u in chunk}
                room = await rq.create_room(s, "course", f"Idle bench {k // args.idle_room_size}",
                                            pub.id, members)
                idle_rooms.append(room.id)
            members = {pub.id: "instructor"} | {u.id: "student" for u in senders}
            snd_room = await rq.create_room(s, "course", "Senders bench", pub.id, members)
            ids = {"pub": pub.id, "subs": [u.id for u in subs], "senders": [u.id for u in senders],
                   "fanout": fanout.id, "idle": idle_rooms, "snd_room": snd_room.id}
    finally:
        await db.close()

    def tok(uid: int, name: str, role: str = "student") -> str:
        return issue_token(config, uid, name, role, TOKEN_TTL_S)

    return {
        "publisher": {"id": str(ids["pub"]), "token": tok(ids["pub"], "Bench Publisher", "instructor")},
        # Subscriber i (0-based) is a member of idle room i // idle_room_size.
        "subs": [tok(uid, f"Subscriber {i + 1}") for i, uid in enumerate(ids["subs"])],
        "senders": [tok(uid, f"Sender {i + 1}") for i, uid in enumerate(ids["senders"])],
        "rooms": {"fanout": str(ids["fanout"]), "idle": [str(r) for r in ids["idle"]],
                  "senders": str(ids["snd_room"])},
        "fanout_members": args.fanout_members,
        "idle_room_size": args.idle_room_size,
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--subs", type=int, default=5000)
    p.add_argument("--fanout-members", type=int, default=500)
    p.add_argument("--idle-room-size", type=int, default=100)
    p.add_argument("--senders", type=int, default=50)
    args = p.parse_args()
    t0 = time.monotonic()
    data = asyncio.run(seed(args))
    Path(args.out).write_text(json.dumps(data))
    print(f"seeded {args.subs} subscribers, {args.senders} senders, {len(data['rooms']['idle'])} idle rooms "
          f"in {time.monotonic() - t0:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
