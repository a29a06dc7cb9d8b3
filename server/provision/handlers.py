"""``/api/provision/…`` (docs/PROTOCOL-ADDITIONS.md "Provisioning"): an LMS back end's service
credential as ``Authorization: Bearer podium-svc-…``; user tokens are refused here, as service
credentials are everywhere else."""
from __future__ import annotations

from server.http.base import BaseHandler
from server.provision import credentials
from server.provision.wire import external_id, parse_member, parse_room, parse_sign_in, parse_user


class ProvisionHandler(BaseHandler):
    async def credential(self):
        return await credentials.authenticate(self.deps.db, self.request.headers.get("Authorization", ""))


class UserHandler(ProvisionHandler):
    async def put(self, user_xid: str) -> None:
        cred = await self.credential()
        wire, created = await self.deps.provisioning.put_user(cred, external_id(user_xid, "user"),
                                                              parse_user(self.json_body()))
        self.send_json(wire, 201 if created else 200)


class SignInHandler(ProvisionHandler):
    async def post(self, user_xid: str) -> None:
        cred = await self.credential()
        room, ttl_s = parse_sign_in(self.json_body(), self.deps.config.token_ttl_s)
        self.send_json(await self.deps.provisioning.sign_in(cred, external_id(user_xid, "user"), room, ttl_s,
                                                            self.base_url()))


class RoomHandler(ProvisionHandler):
    async def put(self, room_xid: str) -> None:
        cred = await self.credential()
        wire, created = await self.deps.provisioning.put_room(cred, external_id(room_xid, "room"),
                                                              parse_room(self.json_body()))
        self.send_json(wire, 201 if created else 200)


class MemberHandler(ProvisionHandler):
    async def put(self, room_xid: str, user_xid: str) -> None:
        cred = await self.credential()
        wire, created = await self.deps.provisioning.put_member(
            cred, external_id(room_xid, "room"), external_id(user_xid, "user"), parse_member(self.json_body()))
        self.send_json(wire, 201 if created else 200)

    async def delete(self, room_xid: str, user_xid: str) -> None:
        cred = await self.credential()
        removed = await self.deps.provisioning.delete_member(cred, external_id(room_xid, "room"),
                                                             external_id(user_xid, "user"))
        self.send_json({"removed": removed})
