"""No valid token gets a 5xx (issue 13): every GET route of ``make_app`` — read from the
application's own route table, so a new route is covered without editing this file — asked by
a room's instructor, a student member, an admin, a media worker and no one, with ids of objects
that exist and ids that do not (missing, malformed, out of range)."""
from __future__ import annotations

import re

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from server.accounts.tokens import issue_worker_token
from server.app import make_app
from tests.api import send
from tests.calls.helpers import calls_settle  # noqa: F401  (autouse: no attendance write outlives the test)
from tests.files.test_files import upload

GROUP = re.compile(r"\([^()]*\)")
MISSING = ("999999", "0", "x", "99999999999999999999999", "-1", "%00", "..%2F..%2Fetc")


def routes(server) -> list[str]:
    """The path patterns of the application ``make_app`` builds, in its routing order."""
    return [rule.matcher.regex.pattern.rstrip("$") for rule in make_app(server.deps).wildcard_router.rules]


def fill(pattern: str, ids: dict[str, str], missing: str | None, last_only: bool = False) -> str:
    """``pattern`` with each group (or with ``last_only`` the last) replaced by ``missing``, the
    others by the id of the kind the segment before it names (``/rooms/(…)`` a room id;
    ``/dl/(…)/(…)`` a file id and its signature); a choice like ``(move|copy)`` takes its first word."""
    out, pos, prev = [], 0, ""
    groups = list(GROUP.finditer(pattern))
    for i, m in enumerate(groups):
        literal = pattern[pos:m.start()]
        out.append(literal)
        name = literal.strip("/").rsplit("/", 1)[-1] if literal.strip("/") else prev
        if re.fullmatch(r"\([a-z|]+\)", m.group()):
            value = m.group()[1:-1].split("|")[0]
        elif missing is not None and (not last_only or i == len(groups) - 1):
            value = missing
        elif literal == "/" and prev == "dl":
            value, name = ids["dl_sig"], ""
        else:
            value = ids.get(name, "")  # the page route "/(.*)": "/" itself
        out.append(value)
        prev, pos = name, m.end()
    out.append(pattern[pos:])
    return "".join(out).replace("\\", "").replace(".*", "anything")


@pytest.fixture
def world(server, io_loop):
    """A course room with an instructor (ana) and a student (ben), a message, a file with a
    signed link (``dl`` and ``dl_sig``: its id, and its name with the signed query), a live call
    session, a pending recording of it, and an admin and a worker."""
    async def make() -> dict:
        ana, ana_tok = await server.user("ana", "instructor")
        ben, ben_tok = await server.user("ben")
        _, admin_tok = await server.user("root", "admin")
        room = await server.room(ana_tok, "course", "Physics 101", members=[ben["id"]])
        msg = await send(server, ana_tok, room["id"], "hello")
        [f] = await upload(server, ana_tok, [("notes.txt", b"hello\n")], {"folder": "week 1", "room": room["id"]})
        status, body = await server.http("POST", f"/api/files/{f['id']}/signed-url", ana_tok, {})
        assert status == 200, body
        dl_id, dl_sig = body["url"].split("/dl/", 1)[1].split("/", 1)
        worker_tok = issue_worker_token(server.deps.config)
        w = await server.client(worker_tok)
        await w.request("worker.register", capacity=1, worker_id="w1", recordings=[])
        a = await server.client(ana_tok)
        session = (await a.request("call.start", room=room["id"]))["session"]
        await a.request("call.join", session=session["id"])
        recording = (await a.request("recording.start", session=session["id"]))["recording"]
        ids = {"rooms": room["id"], "members": ben["id"], "messages": msg["id"], "sessions": session["id"],
               "recordings": recording["id"], "assets": "video.mp4", "files": f["id"],
               "folders": "week%201", "dl": dl_id, "dl_sig": dl_sig}
        tokens = {"instructor": ana_tok, "student": ben_tok, "admin": admin_tok, "worker": worker_tok,
                  "anonymous": None}
        return {"ids": ids, "tokens": tokens}
    return io_loop.run_sync(make)


@pytest.mark.parametrize("who", ["instructor", "student", "admin", "worker", "anonymous"])
async def test_no_get_route_answers_5xx(server, world, who):
    """Every GET route, with existing and missing ids, answers below 500 for this caller."""
    token = world["tokens"][who]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    paths = []
    for pattern in routes(server):
        for missing in (None, *MISSING):
            for last_only in (False, True):
                path = fill(pattern, world["ids"], missing, last_only)
                if path not in paths:
                    paths.append(path)
    assert any("/dl/" in p for p in paths) and any("/timeline" in p for p in paths)
    failures, ok = [], set()
    for path in paths:
        for query in ("", "?q=a&limit=5&before=1&after=1&format=csv&room=" + world["ids"]["rooms"]):
            if query and "?" in path:
                query = "&" + query[1:]
            req = HTTPRequest(server.base_url + path + query, headers=headers, request_timeout=30)
            resp = await AsyncHTTPClient().fetch(req, raise_error=False)
            if resp.code == 200 and not query:
                ok.add(path)
            if resp.code >= 500 or resp.code == 599:
                failures.append(f"{resp.code} GET {path}{query}: {resp.body[:200]!r}")
    assert not failures, f"{who}: " + "\n".join(failures)
    if who == "instructor":  # the ids name real objects: the owner reads each of them
        i = world["ids"]
        assert {f"/api/rooms/{i['rooms']}", f"/api/files/{i['files']}",
                f"/api/recordings/{i['recordings']}", f"/api/sessions/{i['sessions']}/attendance",
                f"/dl/{i['dl']}/{i['dl_sig']}", f"/api/folders/{i['folders']}/size"} <= ok, sorted(ok)
