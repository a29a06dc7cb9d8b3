"""A real LTI 1.3 platform on loopback for the tests: ``lti1p3platform`` (PyPI, not ours) with
its FastAPI integration, served by uvicorn in a thread. It plays the LMS: ``/start`` is a
course page's link to Podium (OIDC login initiation), ``/authorize`` its authorization endpoint
(it signs the id_token and auto-posts it to Podium), ``/jwks`` its key set.

LTI Advantage, with the library's own service classes: ``/token`` (its ``get_access_token``:
client-credentials grant, Podium's assertion checked against Podium's JWKS), the NRPS context
memberships (its ``NamesRoleProvisioningService``), the AGS line items and scores (its
``AssignmentsGradesService``; both check the access token and its scopes) and the Deep Linking
return URL (its ``validate_deeplinking_resp``). The library gives those services' logic but no
HTTP routes and no storage: the FastAPI routes below hand it each request and keep the roster,
line items and scores in memory. Its NRPS page puts the next page's URL in the body; the route
sends it as the ``Link: rel=next`` header the NRPS spec (§2.4.1) names.

A launch's scenario (user, roles, course, custom claims, extra or overriding claims, token
lifetime) is kept under the ``lti_message_hint`` handed through the login.

Platform storage (1EdTech "LTI Client Side postMessages"), which the library does not have: the
course page holds a hidden frame ``post_message_forwarding`` (``/storage-frame``, this
platform's origin) that answers ``lti.capabilities``, ``lti.put_data`` and ``lti.get_data``,
keeping values per tool origin; a scenario with ``storage_target`` names it in the login
initiation (``lti_storage_target``)."""
from __future__ import annotations

import html
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse
from lti1p3platform.exceptions import LineItemNotFoundException
from lti1p3platform.framework.fastapi.message_launch import FastapiMessageLaunch
from lti1p3platform.framework.fastapi.oidc_login import FastAPIOIDCLogin
from lti1p3platform.ltiplatform import LTI1P3PlatformConfAbstract
from lti1p3platform.membership import Context
from lti1p3platform.message_launch import LTIAdvantageMessageLaunchAbstract
from lti1p3platform.registration import Registration
from lti1p3platform.request import Request as LtiRequest
from lti1p3platform.score import UpdateScoreStatus
from lti1p3platform.service_connector import AssignmentsGradesService, NamesRoleProvisioningService
from starlette.concurrency import run_in_threadpool

from tests.conftest import free_port

LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
TA = "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant"
MENTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Mentor"


STORAGE_FRAME = """<!doctype html><title>platform storage</title><script>
// The platform's side of lti.put_data / lti.get_data: values per tool origin, in memory.
window.stored = {};
window.addEventListener('message', (event) => {
  const m = event.data;
  if (!m || typeof m !== 'object' || typeof m.subject !== 'string') return;
  const reply = (body) => event.source.postMessage(Object.assign({message_id: m.message_id}, body), event.origin);
  const box = (window.stored[event.origin] = window.stored[event.origin] || {});
  if (m.subject === 'lti.capabilities') {
    reply({subject: 'lti.capabilities.response', supported_messages: [
      {subject: 'lti.put_data', frame: 'post_message_forwarding'},
      {subject: 'lti.get_data', frame: 'post_message_forwarding'}]});
  } else if (m.subject === 'lti.put_data') {
    box[m.key] = m.value;
    reply({subject: 'lti.put_data.response', key: m.key, value: m.value});
  } else if (m.subject === 'lti.get_data') {
    if (m.key in box) reply({subject: 'lti.get_data.response', key: m.key, value: box[m.key]});
    else reply({subject: 'lti.get_data.response', error: {code: 'not_found', message: 'no such key'}});
  }
});
</script>"""


def _public(item: dict) -> dict:
    return {k: v for k, v in item.items() if not k.startswith("_")}


def new_key_pem() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


@dataclass
class Scenario:
    user_id: str
    name: str = "Ada Lovelace"
    roles: list[str] = field(default_factory=lambda: [LEARNER])
    context_id: str = "course-1"
    context_title: str = "Physics 101"
    custom: dict[str, Any] | None = None
    extra_claims: dict[str, Any] | None = None
    lifetime_s: int = 300
    services: bool = False  # the launch offers NRPS and AGS (the claims name this platform's endpoints)
    deep_linking: bool = False  # an LtiDeepLinkingRequest (to the deep link return URL here)
    storage_target: str | None = None  # lti_storage_target of the login initiation


class _Req(LtiRequest):
    def build_metadata(self, request: dict) -> dict:
        return request


async def _lti_request(request: Request) -> _Req:
    ctype = request.headers.get("content-type", "")
    body = await request.body()
    # typed query parameters (the library adds 1 to ``page``)
    query = {k: int(v) if v.isdigit() else v for k, v in request.query_params.items()}
    return _Req({"method": request.method, "form_data": {}, "get_data": query,
                 "headers": request.headers, "content_type": ctype, "path": request.url.path,
                 "json": json.loads(body) if body and "json" in ctype else None})


def _reply(resp, headers: dict | None = None) -> JSONResponse:
    content = resp.result if resp.result is not None else {"error": resp.message}
    return JSONResponse(content, status_code=resp.code, media_type=resp.media_type, headers=headers)


class Platform:
    def __init__(self, tool_base: str, client_id: str = "podium-client", deployment_id: str = "dep-1") -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.issuer = f"{self.base}/lms-{secrets.token_hex(4)}"  # unique: platforms outlive a test on PostgreSQL
        self.client_id = client_id
        self.deployment_id = deployment_id
        self.tool_base = tool_base
        self.private_pem, self.public_pem = new_key_pem()
        self.scenarios: dict[str, Scenario] = {}
        # LTI Advantage state: the roster per course, line items and scores, what Podium sent
        self.roster: dict[str, list[dict]] = {}
        self.page_size = 2
        self.failing = False  # the NRPS and AGS endpoints answer 500
        self.token_requests: list[dict] = []
        self.service_requests: list[tuple[str, str, str]] = []  # (method, path, Authorization)
        self.lineitems: dict[str, dict] = {}
        self.scores: list[tuple[str, dict]] = []
        self.deep_link_items: list[list[dict]] = []
        self.deep_link_jwts: list[str] = []
        self.replays: dict[str, tuple[str, dict[str, str]]] = {}
        self.app = self._app()
        self._server: uvicorn.Server | None = None

    # -- the platform's registration of Podium (what an LMS admin types in) --------------
    def registration(self) -> Registration:
        return (Registration().set_iss(self.issuer).set_client_id(self.client_id)
                .set_deployment_id(self.deployment_id)
                .set_oidc_login_url(self.tool_base + "/lti/login")
                .set_launch_url(self.tool_base + "/lti/launch")
                .set_platform_public_key(self.public_pem).set_platform_private_key(self.private_pem)
                .set_tool_key_set_url(self.tool_base + "/lti/jwks"))

    def conf(self) -> LTI1P3PlatformConfAbstract:
        platform = self

        class Conf(LTI1P3PlatformConfAbstract):
            def init_platform_config(self, **kwargs: Any) -> None:
                pass

            def get_registration_by_params(self, **kwargs: Any) -> Registration:
                return platform.registration()

        return Conf()

    def start_url(self, scenario: Scenario) -> str:
        hint = secrets.token_hex(8)
        self.scenarios[hint] = scenario
        return f"{self.base}/start?{urlencode({'hint': hint})}"

    def course_page_url(self, scenario: Scenario) -> str:
        """A course page of the LMS that shows Podium in an iframe (as Moodle and Canvas do)."""
        return self.start_url(scenario).replace("/start?", "/course?", 1)

    def replay_page_url(self, action: str, fields: dict[str, str]) -> str:
        """A course page whose frame posts ``fields`` to ``action`` at once: someone else's
        launch form (their id_token and state) posted in this browser's frame (login CSRF)."""
        key = secrets.token_hex(8)
        self.replays[key] = (action, fields)
        return f"{self.base}/course?{urlencode({'replay': key})}"

    # -- the app -----------------------------------------------------------------------------
    def _app(self) -> FastAPI:
        app = FastAPI()
        platform = self

        class Login(FastAPIOIDCLogin):
            def set_lti_message_hint(self, **kwargs: Any) -> None:
                self._lti_message_hint = kwargs["hint"]
                self._storage_target = platform.scenarios[kwargs["hint"]].storage_target

            def get_redirect(self, url: str):
                if self._storage_target:
                    url += "&" + urlencode({"lti_storage_target": self._storage_target})
                return super().get_redirect(url)

        class Launch(FastapiMessageLaunch, LTIAdvantageMessageLaunchAbstract):
            def prepare_launch(self, preflight_response: dict) -> None:
                sc = platform.scenarios[preflight_response["lti_message_hint"]]
                assert preflight_response["login_hint"] == sc.user_id
                self.set_user_data(sc.user_id, sc.roles, full_name=sc.name)
                if sc.deep_linking:
                    self._registration.set_deeplink_launch_url(platform.tool_base + "/lti/launch")
                    self.set_dl(platform.base + "/deep_link_return", title="Podium",
                                accept_types={"ltiResourceLink"}, extra_data={"opaque": sc.context_id})
                else:
                    self.set_resource_link_claim("link-" + sc.context_id, title="Live class")
                if sc.services:
                    self.set_nrps(platform.nrps_url(sc.context_id))
                    self.set_ags(platform.base + f"/ags/{sc.context_id}/lineitems")
                self.set_launch_context_claim(sc.context_id, context_title=sc.context_title,
                                              context_types=["http://purl.imsglobal.org/vocab/lis/v2/course#CourseOffering"])
                self.set_launch_presentation_claim(document_target="iframe")
                if sc.custom:
                    self.set_custom_parameters_claim(sc.custom)
                if sc.extra_claims:
                    self.set_extra_claims(sc.extra_claims)
                self.set_id_token_expiration(sc.lifetime_s)

        @app.get("/start")
        async def start(request: Request):
            hint = request.query_params["hint"]
            login = Login(request, platform.conf())
            login.set_lti_message_hint(hint=hint)
            return login.initiate_login(platform.scenarios[hint].user_id)

        @app.get("/course")
        async def course(request: Request):
            if "replay" in request.query_params:
                start = "/replay?" + urlencode({"key": request.query_params["replay"]})
            else:
                start = "/start?" + urlencode({"hint": request.query_params["hint"]})
            return HTMLResponse(f'<!doctype html><title>Course page</title><h1>LMS course page</h1>'
                                f'<iframe name="post_message_forwarding" src="/storage-frame" hidden></iframe>'
                                f'<iframe id="tool" src="{start}" width="1200" height="760" '
                                f'allow="camera; microphone; display-capture"></iframe>')

        @app.get("/replay")
        async def replay(key: str):
            action, fields = platform.replays[key]
            inputs = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                             for k, v in fields.items())
            return HTMLResponse(f'<form id="f" method="post" action="{html.escape(action)}">{inputs}</form>'
                                '<script>document.getElementById("f").submit()</script>')

        @app.get("/storage-frame")
        async def storage_frame():
            return HTMLResponse(STORAGE_FRAME)

        @app.get("/authorize")
        async def authorize(request: Request):
            return Launch(request, platform.conf()).lti_launch()

        @app.get("/jwks")
        async def jwks():
            conf = platform.conf()
            conf.get_registration()
            return JSONResponse(conf.get_jwks())

        self._advantage_routes(app)
        return app

    def nrps_url(self, context_id: str) -> str:
        return f"{self.base}/nrps/{context_id}/memberships?limit={self.page_size}"

    def _advantage_routes(self, app: FastAPI) -> None:
        platform = self

        @app.post("/token")
        async def token(request: Request):
            form = dict(await request.form())
            platform.token_requests.append(form)
            conf = platform.conf()
            conf.get_registration()
            try:
                answer = await run_in_threadpool(conf.get_access_token, form)  # fetches Podium's JWKS
            except Exception as e:  # the library's refusals (bad assertion, grant type, claims)
                return JSONResponse({"error": "invalid_client", "error_description": repr(e)}, status_code=400)
            return JSONResponse(answer)

        class Nrps(NamesRoleProvisioningService):
            def __init__(self, request, conf, context_id: str) -> None:
                super().__init__(request, conf, f"{platform.base}/nrps/{context_id}/memberships")
                self.context_id = context_id

            def get_context_by_id(self) -> Context:
                return Context(id=self.context_id, label=self.context_id, title=self.context_id)

            def get_member_data_page(self, page=1, limit=None, role=None, since=None):
                members = platform.roster.get(self.context_id, [])
                page, limit = int(page), int(limit or len(members) or 1)
                chunk = members[(page - 1) * limit: page * limit]
                return {"content": [dict(m) for m in chunk], "has_next": page * limit < len(members)}

        @app.get("/nrps/{context_id}/memberships")
        async def memberships(context_id: str, request: Request):
            platform.service_requests.append(("GET", request.url.path, request.headers.get("authorization", "")))
            if platform.failing:
                return JSONResponse({"error": "down for maintenance"}, status_code=500)
            conf = platform.conf()
            conf.get_registration()
            service = Nrps(await _lti_request(request), conf, context_id)
            resp = service.handle_resp(service.handle_get_members)
            headers = None
            if resp.result and resp.result.get("next"):
                headers = {"Link": f'<{resp.result.pop("next")}>; rel="next"'}
            return _reply(resp, headers)

        class Ags(AssignmentsGradesService):
            def __init__(self, request, conf, context_id: str) -> None:
                super().__init__(request, conf, f"{platform.base}/ags/{context_id}/lineitems")
                self.context_id = context_id

            def find_lineitems(self, page=1, limit=None, line_item_id=None, resource_link_id=None,
                               resource_id=None, tag=None, **_):
                items = [i for i in platform.lineitems.values() if i["_context"] == self.context_id
                         and (resource_id is None or i.get("resourceId") == resource_id)]
                return {"content": [_public(i) for i in items], "has_next": False}

            def find_lineitem(self, line_item_id: str):
                if line_item_id not in platform.lineitems:
                    raise LineItemNotFoundException()
                return _public(platform.lineitems[line_item_id])

            def create_lineitem(self, creation_data):
                item_id = secrets.token_hex(4)
                item = dict(creation_data, id=f"{platform.base}/ags/{self.context_id}/lineitems/{item_id}",
                            _context=self.context_id)
                platform.lineitems[item_id] = item
                return _public(item)

            def update_lineitem(self, update_data):
                raise LineItemNotFoundException()

            def delete_lineitem(self, line_item_id: str) -> None:
                if platform.lineitems.pop(line_item_id, None) is None:
                    raise LineItemNotFoundException()

            def update_score(self, line_item_id: str, score):
                if line_item_id not in platform.lineitems:
                    raise LineItemNotFoundException()
                platform.scores.append((line_item_id, score))
                return UpdateScoreStatus.SUCCESS

            def get_results(self, line_item_id: str, page=1, limit=None, user_id=None):
                return {"content": [], "has_next": False}

        async def ags(request: Request, context_id: str) -> Ags:
            platform.service_requests.append((request.method, request.url.path, request.headers.get("authorization", "")))
            if platform.failing:
                raise HTTPException(500, "down for maintenance")
            conf = platform.conf()
            conf.get_registration()
            return Ags(await _lti_request(request), conf, context_id)

        @app.get("/ags/{context_id}/lineitems")
        async def lineitems(context_id: str, request: Request):
            service = await ags(request, context_id)
            return _reply(service.handle_resp(service.handle_get_lineitems))

        @app.post("/ags/{context_id}/lineitems")
        async def new_lineitem(context_id: str, request: Request):
            service = await ags(request, context_id)
            return _reply(service.handle_resp(service.handle_create_lineitem))

        @app.delete("/ags/{context_id}/lineitems/{item_id}")
        async def delete_lineitem(context_id: str, item_id: str, request: Request):
            service = await ags(request, context_id)
            resp = service.handle_resp(service.handle_delete_lineitem, line_item_id=item_id)
            return JSONResponse(None, status_code=resp.code)

        @app.post("/ags/{context_id}/lineitems/{item_id}/scores")
        async def score(context_id: str, item_id: str, request: Request):
            service = await ags(request, context_id)
            return _reply(service.handle_resp(service.handle_update_score, line_item_id=item_id))

        @app.post("/deep_link_return")
        async def deep_link_return(request: Request):
            form = dict(await request.form())
            platform.deep_link_jwts.append(form.get("JWT", ""))
            conf = platform.conf()
            conf.get_registration()
            try:
                items = await run_in_threadpool(conf.validate_deeplinking_resp, form)
            except Exception as e:
                return HTMLResponse(f"<h1>Deep Linking refused</h1><p>{e!r}</p>", status_code=400)
            platform.deep_link_items.append(items)
            titles = "".join(f"<li>{i.get('title', '')}</li>" for i in items)
            return HTMLResponse(f'<!doctype html><title>LMS</title><h1 id="dl-done">Content added</h1><ul>{titles}</ul>')

    def member(self, user_id: str, name: str, roles: list[str] | None = None, status: str = "Active") -> dict:
        return {"user_id": user_id, "name": name, "roles": roles or [LEARNER], "status": status}

    # -- running on loopback -------------------------------------------------------------------
    def start(self) -> "Platform":
        self._server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port,
                                                     log_level="warning", lifespan="off"))
        threading.Thread(target=self._server.run, daemon=True).start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            assert time.monotonic() < deadline, "the LTI platform did not start"
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True

    def rotate_key(self) -> None:
        self.private_pem, self.public_pem = new_key_pem()
