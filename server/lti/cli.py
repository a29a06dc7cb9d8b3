"""``python -m server lti add-platform|list-platforms|remove-platform`` (docs/LMS.md)."""
from __future__ import annotations

import argparse
import asyncio
import json
import sys

from server.lti.origins import default_frame_origins, origin_of


def add_parser(sub) -> None:
    lti = sub.add_parser("lti", help="LTI 1.3 platforms (LMSs)").add_subparsers(dest="lti_cmd", required=True)
    add = lti.add_parser("add-platform", help="register an LMS")
    add.add_argument("--issuer", required=True)
    add.add_argument("--client-id", required=True)
    add.add_argument("--deployment-id", action="append", required=True, help="repeatable")
    add.add_argument("--auth-login-url", required=True)
    add.add_argument("--key-set-url", required=True)
    add.add_argument("--token-url", required=True)
    add.add_argument("--frame-origin", action="append", default=[],
                     help="origin the LMS frames Podium from (repeatable; default: the issuer's "
                          "and the auth login URL's)")
    lti.add_parser("list-platforms", help="list registered LMSs")
    rm = lti.add_parser("remove-platform", help="unregister an LMS")
    rm.add_argument("--id", type=int, required=True)


def run(config, args: argparse.Namespace) -> None:
    asyncio.run(_run(config, args))


async def _run(config, args: argparse.Namespace) -> None:
    from sqlalchemy.exc import IntegrityError

    from server.db import lti as q
    from server.db.engine import Database

    db = Database(config.database_url)
    try:
        if args.lti_cmd == "add-platform":
            for url in (args.auth_login_url, args.key_set_url, args.token_url):
                if origin_of(url) is None:
                    sys.exit(f"lti add-platform: not an http(s) URL: {url}")
            frames = []
            for o in args.frame_origin or default_frame_origins(args.issuer, args.auth_login_url):
                if origin_of(o) is None:
                    sys.exit(f"lti add-platform: not an origin: {o}")
                frames.append(origin_of(o))
            try:
                async with db.write() as s:
                    p = await q.add_platform(s, args.issuer, args.client_id, list(dict.fromkeys(args.deployment_id)),
                                             args.auth_login_url, args.key_set_url, args.token_url, frames)
            except IntegrityError:
                sys.exit("lti add-platform: this issuer and client id are registered already")
            print(f"registered platform {p.id}: {p.issuer} (client id {p.client_id})")
        elif args.lti_cmd == "list-platforms":
            async with db.read() as s:
                for p in await q.platforms(s):
                    print(json.dumps({"id": p.id, "issuer": p.issuer, "client_id": p.client_id,
                                      "deployment_ids": json.loads(p.deployment_ids),
                                      "auth_login_url": p.auth_login_url, "key_set_url": p.key_set_url,
                                      "token_url": p.token_url, "frame_origins": json.loads(p.frame_origins)}))
        else:
            async with db.write() as s:
                removed = await q.remove_platform(s, args.id)
            if not removed:
                sys.exit(f"lti remove-platform: no platform {args.id}")
            print(f"removed platform {args.id}")
    finally:
        await db.close()
