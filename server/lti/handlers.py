"""HTTP endpoints of the LTI tool (docs/PROTOCOL-ADDITIONS.md "LTI 1.3"): ``/lti/login`` (GET and
POST), ``/lti/launch`` (POST), ``/lti/deep-link`` (POST) and ``/lti/jwks``: refusals are an HTML
page, not JSON (the LMS shows it in its frame). And the REST endpoints of a course room's LMS
services: roster sync and attendance to the gradebook."""
from __future__ import annotations

import logging
from urllib.parse import parse_qsl

from server.http.base import BaseHandler
from server.lti import binding, pages
from server.lti.deep_linking import DeepLinkChoice
from server.lti.origins import origin_of
from server.lti.service import LOGIN_TTL_S
from server.lti.validate import LaunchRefused

log = logging.getLogger("podium.lti")


class _LtiPage(BaseHandler):
    def form(self) -> dict[str, str]:
        params = {k: v[-1].decode() for k, v in self.request.query_arguments.items()}
        ctype = self.request.headers.get("Content-Type", "")
        if self.request.method == "POST" and ctype.startswith("application/x-www-form-urlencoded"):
            params.update(parse_qsl(bytes(self.request.body).decode("utf-8", "replace")))
        return params

    def refuse(self, e: LaunchRefused, frames: list[str] | tuple[str, ...] = ()) -> None:
        log.warning("LTI %s refused: %s", self.request.path, e.reason)
        self.set_status(e.status)
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Content-Security-Policy", pages.csp(list(frames), script=False))
        self.finish(pages.error_page(e.reason))


class LoginHandler(_LtiPage):
    """OIDC third-party login initiation: redirect to the platform's authorization endpoint."""

    async def get(self) -> None:
        await self._login()

    async def post(self) -> None:
        await self._login()

    async def _login(self) -> None:
        try:
            login = await self.deps.lti.login(self.form(), self.base_url() + "/lti/launch")
        except LaunchRefused as e:
            return self.refuse(e, await self.deps.lti.frames.get())
        self.add_header("Set-Cookie", binding.set_cookie(login.state, LOGIN_TTL_S))
        if login.storage is None:
            return self.redirect(login.url)
        # the LMS offers its platform storage: a page puts the state there, then goes on
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.set_header("Content-Security-Policy", pages.csp(list(await self.deps.lti.frames.get()), script=True))
        self.finish(pages.storage_login_page(login.url, login.storage))


class LaunchHandler(_LtiPage):
    """The platform's form post of ``id_token`` and ``state``: sign in, open the course room."""

    async def post(self) -> None:
        form = self.form()
        state = form.get("state", "")
        name = binding.cookie_name(state)
        cookie = self.get_cookie(name) if name else None
        if cookie is not None:  # used or refused below: the login is over either way
            self.add_header("Set-Cookie", binding.clear_cookie(state))
        try:
            landing, check = await self.deps.lti.launch(form.get("id_token", ""), state,
                                                        binding.matches(cookie, state))
        except LaunchRefused as e:
            return self.refuse(e, await self.deps.lti.frames.get())
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        if isinstance(landing, DeepLinkChoice):  # an instructor adding Podium to the course
            self.set_header("Content-Security-Policy", pages.csp(landing.frame_origins, check is not None, "'self'"))
            self.finish(pages.deep_link_page(landing.selection, landing.room_name, landing.recordings, check))
            return
        self.set_header("Content-Security-Policy", pages.csp(landing.frame_origins, script=True))
        self.finish(pages.handoff_page(landing.token, landing.room_id, landing.recording_id, check))


class DeepLinkHandler(_LtiPage):
    """The selection page's post: answer the LMS with a signed LtiDeepLinkingResponse."""

    async def post(self) -> None:
        form = self.form()
        try:
            back = await self.deps.lti.deep_linking.respond(form.get("selection", ""), form.get("pick", ""),
                                                            self.base_url() + "/lti/launch")
        except LaunchRefused as e:
            return self.refuse(e, await self.deps.lti.frames.get())
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Content-Security-Policy",
                        pages.csp(back.frame_origins, script=True, form_action=origin_of(back.return_url)))
        self.finish(pages.deep_link_return_page(back.return_url, back.jwt))


class RoomLtiHandler(BaseHandler):
    """``GET /api/rooms/{id}/lti``: the LMS services of a course room (instructors)."""

    async def get(self, room_id: str) -> None:
        actor = await self.authenticate()
        self.send_json({"lti": await self.deps.lti.room_status(actor, self.path_id(room_id))})


class RosterSyncHandler(BaseHandler):
    """``POST /api/rooms/{id}/lti/roster-sync``: sync the room's members from the LMS now."""

    async def post(self, room_id: str) -> None:
        actor = await self.authenticate()
        self.send_json({"sync": await self.deps.lti.sync_roster(actor, self.path_id(room_id))})


class GradesHandler(BaseHandler):
    """``GET`` (preview) and ``POST`` (send) ``/api/sessions/{id}/lti-grades``."""

    async def get(self, session_id: str) -> None:
        actor = await self.authenticate()
        self.send_json({"grades": await self.deps.lti.gradebook.preview(actor, self.path_id(session_id))})

    async def post(self, session_id: str) -> None:
        actor = await self.authenticate()
        self.send_json({"grades": await self.deps.lti.gradebook.send(actor, self.path_id(session_id))})


class JwksHandler(BaseHandler):
    """The tool's public keys (for the platform to verify what Podium signs)."""

    def get(self) -> None:
        self.set_header("Cache-Control", "public, max-age=3600")
        self.send_json(self.deps.lti.jwks())
