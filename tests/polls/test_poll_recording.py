"""A poll asked while recording shows up in the class video as "Poll: …" with its result: the
server's timeline lists it as chat and as a mark, and the worker turns those into a subtitle
cue and a chapter (issue 16.1)."""
from __future__ import annotations

import asyncio

from media_worker.post.chapters import chapters_from_marks
from media_worker.post.manifest import Chat, Mark, User
from media_worker.post.subtitles import chat_cues
from media_worker.timeline import timeline_events
from server.polls.summary import poll_line
from tests.calls.helpers import calls_settle  # noqa: F401  (autouse settle fixture)
from tests.recordings.test_recordings import config_overrides, recording_call, start_recording  # noqa: F401


def test_a_poll_line_names_the_question_each_count_and_the_correct_option():
    """``Poll: <question> — <option> <votes> [✓] · … (<n> answers)``, cut at 200 characters."""
    assert poll_line("Capital  of\nFrance?", ["Paris", "Lyon"], [12, 3], 15, [0]) == \
        "Poll: Capital of France? — Paris 12 ✓ · Lyon 3 (15 answers)"
    assert poll_line("Ready?", ["yes", "no"], [1, 0], 1, None) == "Poll: Ready? — yes 1 · no 0 (1 answer)"
    long = poll_line("x" * 300, ["a", "b"], [0, 0], 0, None)
    assert len(long) == 200 and long.endswith("…")


async def test_the_recording_timeline_shows_a_poll_with_its_final_result(server):
    """A poll asked during the recording is a chat entry and a mark "Poll: …" with the result
    as stored when the worker reads the timeline (after close); the worker makes a subtitle cue
    and a chapter of it."""
    session, a, b, w, w_tok, a_tok, b_tok = await recording_call(server)
    room = (await a.request("call.join", session=session))["session"]["room"]
    await a.request("room.join", room=room)
    rid = await start_recording(session, a, w)
    await asyncio.sleep(0.2)
    mid = (await a.request("poll.create", room=room, question="Is F = ma?", options=["yes", "no"],
                           correct=[0]))["message"]["id"]
    await b.request("poll.vote", message_id=mid, choices=[0])
    await a.request("poll.vote", message_id=mid, choices=[1])
    await a.request("poll.close", message_id=mid)
    await asyncio.sleep(0.3)
    await a.request("recording.stop", session=session)
    status, tl = await server.http("GET", f"/api/recordings/{rid}/timeline", w_tok)
    assert status == 200, tl
    line = "Poll: Is F = ma? — yes 1 ✓ · no 1 (2 answers)"
    assert [(m["kind"], m["text"]) for m in tl["chat"]] == [("poll", line)]
    assert [k["label"] for k in tl["marks"]] == [line]
    assert tl["marks"][0]["offset_s"] == tl["chat"][0]["offset_s"] >= 0.15

    events, malformed = timeline_events(tl, 0.0)
    assert malformed == 0
    chats = [Chat(e["t"], e["seq"], User(**e["user"]), e["text"]) for e in events if e["type"] == "chat"]
    marks = [Mark(e["t"], e["label"], e["by"]["id"]) for e in events if e["type"] == "mark"]
    cues = chat_cues(chats, 60.0)
    assert [line_.text for cue in cues for line_ in cue.lines] == [line]
    assert [c.title for c in chapters_from_marks(marks, 60.0)][-1] == line
