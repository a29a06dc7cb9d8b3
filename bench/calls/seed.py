"""Seed a migrated Podium database for the call benchmarks and mint tokens.

Run with the project venv from the repository root, with DATABASE_URL / DATA_DIR / JWT_SECRET
set exactly as the server will see them (``run.py`` does this):

    python bench/calls/seed.py OUT.json [--rooms 50] [--peers 4]

Layout: ``--rooms`` course rooms; room ``r`` has an instructor ``cb{r}-0`` (who starts the
call) and students ``cb{r}-1`` … ``cb{r}-{peers-1}``. OUT.json:
``{"rooms": [{"id", "tokens": [instructor, student, ...]}]}``.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
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


async def seed(rooms: int, peers: int) -> dict:
    config = load_config()
    db = Database(config.database_url)
    out = []
    try:
        async with db.write() as s:
            now = utcnow()
            for r in range(rooms):
                users = [User(username=f"cb{r}-{k}", display_name=f"Bench {r}.{k}", password_hash=None,
                              role="instructor" if k == 0 else "student", created_at=now) for k in range(peers)]
                s.add_all(users)
                await s.flush()
                members = {u.id: ("instructor" if k == 0 else "student") for k, u in enumerate(users)}
                room = await rq.create_room(s, "course", f"Call bench {r}", users[0].id, members)
                out.append((room.id, [(u.id, u.display_name, u.role) for u in users]))
    finally:
        await db.close()
    return {"rooms": [{"id": str(rid), "tokens": [issue_token(config, uid, name, role, TOKEN_TTL_S)
                                                  for uid, name, role in users]}
                      for rid, users in out]}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--rooms", type=int, default=50)
    p.add_argument("--peers", type=int, default=4)
    args = p.parse_args()
    Path(args.out).write_text(json.dumps(asyncio.run(seed(args.rooms, args.peers))))


if __name__ == "__main__":
    main()
