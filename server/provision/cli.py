"""``python -m server service-credential add NAME [--issuer ISS] | list | revoke NAME``
(docs/LMS.md "Server-to-server provisioning")."""
from __future__ import annotations

import argparse
import asyncio
import json
import sys


def add_parser(sub) -> None:
    sc = sub.add_parser("service-credential", help="LMS back ends' credentials for /api/provision/")
    cmds = sc.add_subparsers(dest="sc_cmd", required=True)
    add = cmds.add_parser("add", help="make a credential and print its secret (shown once)")
    add.add_argument("name")
    add.add_argument("--issuer", help="whose external ids it manages (default urn:podium:service:NAME; "
                                      "set the identity provider's JWT_ISSUER to share its users)")
    cmds.add_parser("list", help="list credentials (never their secrets)")
    rm = cmds.add_parser("revoke", help="revoke a credential (at once)")
    rm.add_argument("name")


def run(config, args: argparse.Namespace) -> None:
    asyncio.run(_run(config, args))


async def _run(config, args: argparse.Namespace) -> None:
    from server.db.engine import Database
    from server.provision import credentials

    db = Database(config.database_url)
    try:
        if args.sc_cmd == "add":
            try:
                secret, cred = await credentials.add(db, args.name, args.issuer)
            except ValueError as e:
                sys.exit(f"service-credential add: {e}")
            print(secret)
            print(f"service credential {cred.name} (issuer {cred.issuer}): keep the line above, it is not shown again",
                  file=sys.stderr)
        elif args.sc_cmd == "list":
            for item in await credentials.listing(db):
                print(json.dumps(item))
        else:
            if not await credentials.revoke(db, args.name):
                sys.exit(f"service-credential revoke: no credential named {args.name!r}")
            print(f"revoked service credential {args.name}")
    finally:
        await db.close()
